"""`/w/{workspace}/settings`: a member's own page: their calls over the past 24 hours, and their
API tokens (made with a name and a life, shown once, listed with their last use, revoked)."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from quotasync import timeline
from quotasync.store import users
from quotasync.web import auth, charts
from quotasync.web.pages import render, workspace_of
from quotasync.web.state import RuntimeDep

router = APIRouter(include_in_schema=False)


@router.get("/w/{workspace_id}/settings")
def settings(
    request: Request, workspace_id: str, runtime: RuntimeDep, revoked: str = ""
) -> Response:
    notices = {"yes": "The token is revoked.", "none": "You have no such token: nothing revoked."}
    return settings_page(runtime, request, workspace_id, notice=notices.get(revoked))


@router.post("/w/{workspace_id}/settings/tokens")
def make_token(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    csrf_token: str = Form(""),
    name: str = Form("", max_length=100),
    days: int = Form(users.TOKEN_DAYS, ge=1, le=users.MAX_TOKEN_DAYS),
) -> Response:
    """A new API token of the signed-in person's own, shown once on the page."""
    auth.check_csrf(request, csrf_token)
    with runtime.sessions.begin() as session:
        viewer = auth.page_viewer(session, request, workspace_id)
        person = session.get(users.User, viewer.user_id)
        assert person is not None
        token = users.new_api_token(session, person, runtime.clock.now(), name=name, days=days)
    return settings_page(runtime, request, workspace_id, made=token)


@router.post("/w/{workspace_id}/settings/tokens/{token_id}/revoke")
def revoke_token(
    request: Request,
    workspace_id: str,
    token_id: int,
    runtime: RuntimeDep,
    csrf_token: str = Form(""),
) -> Response:
    """Revoke one of the signed-in person's own tokens. Another's, or none, is answered alike
    (the page says nothing was revoked), so the answer tells nobody which ids exist."""
    auth.check_csrf(request, csrf_token)
    with runtime.sessions.begin() as session:
        viewer = auth.page_viewer(session, request, workspace_id)
        try:
            users.revoke_token(session, viewer.user_id, token_id, runtime.clock.now())
        except users.UserError:
            return RedirectResponse(f"/w/{workspace_id}/settings?revoked=none#tokens", 303)
    return RedirectResponse(f"/w/{workspace_id}/settings?revoked=yes#tokens", 303)


def settings_page(
    runtime: RuntimeDep,
    request: Request,
    workspace_id: str,
    *,
    made: str | None = None,
    notice: str | None = None,
) -> Response:
    with runtime.sessions() as session:
        viewer = auth.page_viewer(session, request, workspace_id)
        workspace = workspace_of(session, workspace_id)
        now = runtime.clock.now()
        me = timeline.member(session, workspace, viewer.email, now)
        tokens = [
            {
                "id": t.id,
                "name": t.name or "(unnamed)",
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "expires_at": t.expires_at,
                "state": "revoked"
                if t.revoked_at is not None
                else "expired"
                if t.expires_at is not None and t.expires_at <= now
                else "live",
            }
            for t in users.tokens_of(session, viewer.user_id)
        ]
    spark = charts.sparkline(me.per_hour, label="Your calls per hour, last 24 hours")
    context = {
        "viewer": viewer,
        "workspace_name": workspace.name,
        "page": "settings",
        "me": me,
        "sparkline": spark,
        "tokens": tokens,
        "made": made,
        "notice": notice,
        "token_days": users.TOKEN_DAYS,
        "max_token_days": users.MAX_TOKEN_DAYS,
    }
    return render(request, "settings.html", context)
