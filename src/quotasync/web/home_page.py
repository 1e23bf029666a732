"""`/` and `/w/{workspace}`: where a signed-in person lands, and the choice of workspace for one
who is a member of several."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response

from quotasync.web import auth
from quotasync.web.pages import STATIC, render, workspace_of
from quotasync.web.state import RuntimeDep

router = APIRouter(include_in_schema=False)


@router.get("/")
def home(request: Request, runtime: RuntimeDep) -> Response:
    with runtime.sessions() as session:
        viewers = auth.session_viewers(session, request)
        if not viewers:
            return RedirectResponse("/signin", 303)
        if len(viewers) == 1:
            return RedirectResponse(f"/w/{viewers[0].workspace_id}", 303)
        names = {v.workspace_id: workspace_of(session, v.workspace_id).name for v in viewers}
    return render(
        request, "choose.html", {"memberships": [(v, names[v.workspace_id]) for v in viewers]}
    )


@router.get("/favicon.ico")
def favicon() -> Response:
    """Browsers ask for it on every site: quotasync's mark (an SVG, which they all draw)."""
    return FileResponse(STATIC / "favicon.svg", media_type="image/svg+xml")


@router.get("/w/{workspace_id}")
def workspace_home(request: Request, workspace_id: str, runtime: RuntimeDep) -> Response:
    with runtime.sessions() as session:
        viewer = auth.page_viewer(session, request, workspace_id)
    where = "integrations" if viewer.is_admin else "settings"
    return RedirectResponse(f"/w/{workspace_id}/{where}", 303)
