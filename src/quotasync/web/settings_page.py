"""`/w/{workspace}/settings`: a member's own page, their calls over the past 24 hours."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from quotasync import timeline
from quotasync.web import auth, charts
from quotasync.web.pages import render, workspace_of
from quotasync.web.state import RuntimeDep

router = APIRouter(include_in_schema=False)


@router.get("/w/{workspace_id}/settings")
def settings(request: Request, workspace_id: str, runtime: RuntimeDep) -> Response:
    with runtime.sessions() as session:
        viewer = auth.page_viewer(session, request, workspace_id)
        workspace = workspace_of(session, workspace_id)
        me = timeline.member(session, workspace, viewer.email, runtime.clock.now())
    spark = charts.sparkline(me.per_hour, label="Your calls per hour, last 24 hours")
    context = {
        "viewer": viewer,
        "workspace_name": workspace.name,
        "page": "settings",
        "me": me,
        "sparkline": spark,
    }
    return render(request, "settings.html", context)
