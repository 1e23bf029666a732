"""The Doctor page (admins): the doctor's checks, each a row with its status, detail and fix.

Opening it runs nothing; its button (a form, with the CSRF token) runs the doctor: one Data API
call to the org, ledgered as `doctor` (see doctor.py; diagnosis.py judges the answers). A GET that spent quota could be replayed
by any page an admin visits.
"""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from quotasync import diagnosis, doctor
from quotasync.runtime import Runtime
from quotasync.store.tables import Workspace
from quotasync.web import auth, pages
from quotasync.web.state import RuntimeDep

SUMMARY_CLASS = {"pass": "notice", "warn": "notice warn", "fail": "notice error"}


router = APIRouter(include_in_schema=False)


@router.get("/w/{workspace_id}/doctor")
def doctor_page(request: Request, workspace_id: str, runtime: RuntimeDep) -> HTMLResponse:
    return _render(runtime, request, workspace_id, run=False)


@router.post("/w/{workspace_id}/doctor")
def run_doctor(
    request: Request, workspace_id: str, runtime: RuntimeDep, csrf_token: str = Form("")
) -> HTMLResponse:
    auth.check_csrf(request, csrf_token)
    return _render(runtime, request, workspace_id, run=True)


def _render(runtime: Runtime, request: Request, workspace_id: str, run: bool) -> HTMLResponse:
    with runtime.sessions() as session:
        viewer = auth.require_admin(auth.page_viewer(session, request, workspace_id))
        workspace = session.get(Workspace, workspace_id)
        if workspace is None:
            raise HTTPException(403, "you are not a member of this workspace")
        name = workspace.name
    report = None
    if run:
        push_url = f"{str(request.base_url).rstrip('/')}/rts/{workspace_id}"
        report = doctor.run(runtime.connector, workspace_id, push_url)
    context = {
        "viewer": viewer,
        "workspace_name": name,
        "workspace_id": workspace_id,
        "page": "doctor",
        "report": report,
        "markers": diagnosis.MARKERS,
        "summary_class": SUMMARY_CLASS[report.status] if report else "",
        "csrf": auth.csrf_token(request),
    }
    return pages.templates().TemplateResponse(request, "doctor.html", context)
