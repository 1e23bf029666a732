"""`/w/{workspace}/activities`: the outbox's activities, filtered, and the button that queues
failed ones again (services/activities.py). A member sees and retries their own only."""

from __future__ import annotations

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quotasync.domain.activities import Kind, State
from quotasync.runtime import Runtime
from quotasync.services import activities as activity_service
from quotasync.store import outbox, users
from quotasync.web import auth
from quotasync.web.pages import render, workspace_of
from quotasync.web.state import RuntimeDep

router = APIRouter(include_in_schema=False)
ACTIVITY_PAGE = 200


@router.get("/w/{workspace_id}/activities")
def activities(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    state: str = Query("", max_length=20),
    kind: str = Query("", max_length=30),
    user: str = Query("", max_length=254),
    retried: int | None = Query(None, ge=0),
) -> Response:
    filters = _filters(state, kind, user)
    notice = None if retried is None else f"{retried:,} failed activities queued again."
    return activities_page(runtime, request, workspace_id, filters, notice=notice)


@router.post("/w/{workspace_id}/activities/retry")
def retry(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    id: list[str] = Form(..., max_length=255),
    csrf_token: str = Form(""),
) -> Response:
    auth.check_csrf(request, csrf_token)
    with runtime.sessions() as session:
        viewer = auth.page_viewer(session, request, workspace_id)
    if len(id) > ACTIVITY_PAGE:
        raise HTTPException(413, f"retry at most {ACTIVITY_PAGE} activities at once")
    own = None if viewer.is_admin else viewer.email
    moved = activity_service.retry(
        runtime.sessions, runtime.clock, workspace_id, id, user_email=own
    )
    if not moved:
        return activities_page(
            runtime,
            request,
            workspace_id,
            _filters("", "", ""),
            error="Nothing to retry: only failed activities can be retried.",
            status=409,
        )
    return RedirectResponse(f"/w/{workspace_id}/activities?retried={len(moved)}&state=pending", 303)


def activities_page(
    runtime: Runtime,
    request: Request,
    workspace_id: str,
    filters: dict[str, str | None],
    *,
    notice: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    with runtime.sessions() as session:
        viewer = auth.page_viewer(session, request, workspace_id)
        workspace = workspace_of(session, workspace_id)
        # A member sees their own activity only, whatever the filter asks.
        who = filters.get("user") if viewer.is_admin else viewer.email
        rows = outbox.recent(
            session,
            workspace_id,
            state=filters.get("state"),
            kind=filters.get("kind"),
            user_email=who,
            limit=ACTIVITY_PAGE,
        )
        counts = outbox.counts(session, workspace_id, user_email=None if viewer.is_admin else who)
    context = {
        "viewer": viewer,
        "workspace_name": workspace.name,
        "page": "activities",
        "rows": rows,
        "filters": filters,
        "states": list(State),
        "kinds": [kind.value for kind in Kind],
        "counts": counts,
        "notice": notice,
        "error": error,
    }
    return render(request, "activities.html", context, status)


def _filters(state: str, kind: str, user: str) -> dict[str, str | None]:
    if state and state not in list(State):
        raise HTTPException(422, f"the state is one of {', '.join(State)}")
    kinds = [k.value for k in Kind]
    if kind and kind not in kinds:
        raise HTTPException(422, f"the kind is one of {', '.join(kinds)}")
    email = None
    if user:
        try:
            email = users.normal_email(user)
        except users.UserError as exc:
            raise HTTPException(422, str(exc)) from None
    return {"state": state or None, "kind": kind or None, "user": email}
