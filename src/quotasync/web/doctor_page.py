"""The Doctor page (admins): the doctor's checks, each a row with its status, detail and fix.

Loading it runs the doctor: one Data API call to the org, ledgered as `doctor` (see doctor.py).
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse

from quotasync import doctor
from quotasync.runtime import Runtime
from quotasync.store.tables import Workspace
from quotasync.web import auth, pages

SUMMARY_CLASS = {"pass": "notice", "warn": "notice warn", "fail": "notice error"}


def doctor_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    jinja = pages.templates()

    @router.get("/w/{workspace_id}/doctor")
    def doctor_page(request: Request, workspace_id: str) -> HTMLResponse:
        with runtime.sessions() as session:
            viewer = auth.require_admin(auth.page_viewer(session, request, workspace_id))
            workspace = session.get(Workspace, workspace_id)
            if workspace is None:
                raise HTTPException(403, "you are not a member of this workspace")
            name = workspace.name
        push_url = f"{str(request.base_url).rstrip('/')}/rts/{workspace_id}"
        report = doctor.run(runtime.connector, workspace_id, push_url)
        context = {
            "viewer": viewer,
            "workspace_name": name,
            "page": "doctor",
            "report": report,
            "markers": doctor.MARKERS,
            "summary_class": SUMMARY_CLASS[report.status],
            "csrf": auth.csrf_token(request),
        }
        return jinja.TemplateResponse(request, "doctor.html", context)

    return router
