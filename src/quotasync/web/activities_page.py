"""`/w/{workspace}/activities`: the outbox's activities, filtered, and the button that queues
failed ones again (services/activities.py). A member sees and retries their own only."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quotasync.domain.activities import Kind, State
from quotasync.runtime import Runtime
from quotasync.services import activities as activity_service
from quotasync.store import episodes, outbox, users
from quotasync.store.tables import Connection
from quotasync.web import auth
from quotasync.web.pages import render, workspace_of
from quotasync.web.state import RuntimeDep

router = APIRouter(include_in_schema=False)
ACTIVITY_PAGE = 200  # the most a retry form may name
PAGE_ROWS = 50  # rows a page shows: a screen or two, not 14,000 px
SALESFORCE_ID = re.compile(r"^[a-zA-Z0-9]{15,18}$")


@router.get("/w/{workspace_id}/activities")
def activities(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    state: str = Query("", max_length=20),
    kind: str = Query("", max_length=30),
    user: str = Query("", max_length=254),
    retried: int | None = Query(None, ge=0),
    page: int = Query(1, ge=1, le=100_000),
) -> Response:
    filters = _filters(state, kind, user)
    notice = None if retried is None else f"{retried:,} failed activities queued again."
    return activities_page(runtime, request, workspace_id, filters, notice=notice, page=page)


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
    page: int = 1,
) -> HTMLResponse:
    with runtime.sessions() as session:
        viewer = auth.page_viewer(session, request, workspace_id)
        workspace = workspace_of(session, workspace_id)
        # A member sees their own activity only, whatever the filter asks.
        who = filters.get("user") if viewer.is_admin else viewer.email
        narrowed = {"state": filters.get("state"), "kind": filters.get("kind"), "user_email": who}
        total = outbox.matching(session, workspace_id, **narrowed)
        last_page = max(1, -(-total // PAGE_ROWS))
        page = min(page, last_page)
        rows = outbox.recent(
            session, workspace_id, **narrowed, limit=PAGE_ROWS, offset=(page - 1) * PAGE_ROWS
        )
        counts = outbox.counts(session, workspace_id, user_email=None if viewer.is_admin else who)
        connection = session.get(Connection, workspace_id)
        paused = episodes.open_episode(session, workspace_id, "data")
        waits = {
            row.id: _why_waiting(row, paused, workspace.log_within, runtime.clock.now())
            for row in rows
            if row.state == State.PENDING
        }
    base = connection.instance_url.rstrip("/") if connection is not None else None
    links = {
        row.id: f"{base}/{row.salesforce_id}"
        for row in rows
        if base and row.salesforce_id and SALESFORCE_ID.match(row.salesforce_id)
    }
    query = {k: v for k, v in filters.items() if v}
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
        "links": links,
        "waits": waits,
        "paging": {
            "page": page,
            "last": last_page,
            "first_row": (page - 1) * PAGE_ROWS + 1 if total else 0,
            "last_row": min(total, page * PAGE_ROWS),
            "total": total,
            "prev": f"?{urlencode({**query, 'page': page - 1})}" if page > 1 else None,
            "next": f"?{urlencode({**query, 'page': page + 1})}" if page < last_page else None,
        },
    }
    return render(request, "activities.html", context, status)


def _why_waiting(row: Any, paused: Any, log_within: float, now: datetime) -> str:
    """Why a pending activity has not gone yet, in words."""
    if paused is not None:
        until = f" until {paused.resume_at:%H:%M} UTC" if paused.resume_at else ""
        return f"waiting: syncing is paused ({paused.reason}){until}"
    if row.next_attempt_at is not None and row.next_attempt_at > now:
        return f"waiting: tried {row.attempts} times, next at {row.next_attempt_at:%H:%M:%S} UTC"
    return f"waiting for the next batch (within {log_within:g} s)"


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
