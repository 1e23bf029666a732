"""Who is asking: a signed-in person (session cookie), a user's API token, or the workspace's
ingest token; and what each may do in a workspace.

Sessions live in the store (store/web_sessions.py); the signed, HttpOnly, SameSite=Lax cookie
(Starlette's SessionMiddleware) holds only the session's random id and a CSRF token. A person
whose email is in several workspaces with the same password is signed in to all of them at once.

Answers: no credentials → 401 (pages redirect to the sign-in form); a person or user token that
does not belong to the workspace, or a member on an admin view → 403; an ingest token of another
workspace → 404 (nothing said of whether the workspace exists); a token that matches nothing →
401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime

from fastapi import HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from quotasync.clock import Clock
from quotasync.domain.roles import Role
from quotasync.errors import QuotasyncError
from quotasync.store import users, web_sessions, workspaces
from quotasync.store.tables import User

SESSION_ID = "sid"  # the server-side session's id (store/web_sessions.py); nothing else of it
SESSION_CSRF = "csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
SESSION_HOURS = 12


@dataclass(frozen=True)
class Viewer:
    """One person acting in one workspace."""

    user_id: int
    email: str
    role: str
    workspace_id: str
    by_cookie: bool  # writes by cookie need the CSRF token; by token they cannot be forged

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


@dataclass(frozen=True)
class Caller:
    """Whoever called a JSON endpoint: a person (`viewer`) or the email product (ingest token)."""

    workspace_id: str
    viewer: Viewer | None

    @property
    def is_admin(self) -> bool:
        return self.viewer is not None and self.viewer.is_admin


class Denied(HTTPException):
    """A caller refused (401, 403, 404) by a check of this module: answered by the app's HTTP
    error handler like any HTTPException, and caught by this name where a refusal must be
    answered before the app runs (web/gate.py)."""


class SignInRequired(QuotasyncError):
    """A page was asked for without a session: the answer is the sign-in form."""


def _viewer(row: User, by_cookie: bool) -> Viewer:
    return Viewer(row.id, row.email, row.role, row.workspace_id, by_cookie)


def session_viewers(session: Session, request: Request) -> list[Viewer]:
    """Every workspace membership the cookie's session signed in to, by workspace name; [] when
    the session is unknown, ended (signed out, a new password) or expired."""
    sid = request.session.get(SESSION_ID)
    if not isinstance(sid, str) or not sid:
        return []
    ids = web_sessions.user_ids(session, sid, _now(request))
    if not ids:
        return []
    rows = session.scalars(select(User).where(User.id.in_(ids)).order_by(User.workspace_id))
    return [_viewer(row, True) for row in rows]


def start_session(session: Session, request: Request, signed_in: list[User]) -> None:
    """A new server-side session for these memberships, its id in the cookie."""
    # A fresh session on every sign-in: nothing from before it (a planted CSRF token) carries
    # over, and the session it replaces ends in the store too (a copy of the old cookie).
    old = request.session.get(SESSION_ID)
    if isinstance(old, str) and old:
        web_sessions.end(session, old)
    request.session.clear()
    request.session[SESSION_ID] = web_sessions.start(
        session, [row.id for row in signed_in], _now(request)
    )
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def end_session(session: Session, request: Request) -> None:
    """Sign out: the session is deleted from the store, so the cookie (or a copy) is worthless."""
    sid = request.session.get(SESSION_ID)
    if isinstance(sid, str) and sid:
        web_sessions.end(session, sid)
    request.session.clear()


def _now(request: Request) -> datetime:
    runtime = request.app.state.runtime
    now: datetime = runtime.clock.now()
    return now


def csrf_token(request: Request) -> str:
    token = request.session.get(SESSION_CSRF)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[SESSION_CSRF] = token
    return token


def check_csrf(request: Request, sent: str | None) -> None:
    expected = request.session.get(SESSION_CSRF)
    # Compared as bytes: compare_digest refuses str with characters beyond ASCII.
    if (
        not isinstance(expected, str)
        or not sent
        or not hmac.compare_digest(expected.encode(), sent.encode())
    ):
        raise Denied(
            403, "the form's security token is missing or stale: reload the page and try again"
        )


def page_viewer(session: Session, request: Request, workspace_id: str) -> Viewer:
    """The signed-in person in this workspace; a sign-in form without a session, 403 without a
    membership here."""
    viewers = session_viewers(session, request)
    if not viewers:
        raise SignInRequired
    for viewer in viewers:
        if viewer.workspace_id == workspace_id:
            return viewer
    raise Denied(403, "you are not a member of this workspace")


def require_admin(viewer: Viewer) -> Viewer:
    if not viewer.is_admin:
        raise Denied(403, "only the workspace's admins can see this")
    return viewer


def api_caller(
    session: Session,
    request: Request,
    workspace_id: str,
    clock: Clock,
    authorization: str | None,
) -> Caller:
    """Whoever calls a JSON endpoint of `workspace_id`, by bearer token or else by session."""
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if authorization:
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized()
        workspace = workspaces.by_ingest_token(session, token)
        if workspace is not None:
            if workspace.id != workspace_id:
                raise Denied(404, "no such workspace for this token")
            return Caller(workspace_id, None)
        user = users.by_api_token(session, token, clock.now())
        if user is None:
            raise invalid_token()
        if user.workspace_id != workspace_id:
            raise Denied(403, "this token's user is not a member of this workspace")
        return Caller(workspace_id, _viewer(user, False))
    viewers = session_viewers(session, request)
    if not viewers:
        raise _unauthorized()
    for viewer in viewers:
        if viewer.workspace_id == workspace_id:
            if request.method not in ("GET", "HEAD", "OPTIONS"):
                check_csrf(request, request.headers.get(CSRF_HEADER))
            return Caller(workspace_id, viewer)
    raise Denied(403, "you are not a member of this workspace")


def ingest_workspace(session: Session, workspace_id: str, authorization: str | None) -> str:
    """The workspace whose ingest token `authorization` carries, when it is `workspace_id`'s:
    401 without a bearer token or with one that is nobody's, 404 for another workspace's (the
    same answer whether `workspace_id` exists or not)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise missing_token()
    found = workspaces.by_ingest_token(session, token.strip())
    if found is None:
        raise invalid_token()
    if found.id != workspace_id:
        raise Denied(404, "no such workspace for this token")
    return found.id


def person(caller: Caller) -> Viewer:
    """The person behind a call; the ingest token is the email product, not a person."""
    if caller.viewer is None:
        raise Denied(403, "this needs a user's API token, not the ingest token")
    return caller.viewer


def admin(caller: Caller) -> Viewer:
    return require_admin(person(caller))


def missing_token() -> Denied:
    return Denied(
        401,
        "send the workspace's ingest token: Authorization: Bearer <token>",
        headers={"WWW-Authenticate": "Bearer"},
    )


def invalid_token() -> Denied:
    """A bearer token that is nobody's (made up, revoked or expired): RFC 6750's answer, which a
    client reads as "get a new token" rather than "wrong URL"."""
    return Denied(
        401,
        "this token is not valid: it was revoked, has expired, or never existed",
        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def _unauthorized() -> Denied:
    return Denied(
        401,
        "sign in, or send a token: Authorization: Bearer <token>",
        headers={"WWW-Authenticate": "Bearer"},
    )
