"""Who is asking: a signed-in person (session cookie), a user's API token, or the workspace's
ingest token; and what each may do in a workspace.

Sessions live in a signed, HttpOnly, SameSite=Lax cookie (Starlette's SessionMiddleware) that holds
only user ids and a CSRF token. A person whose email is in several workspaces with the same
password is signed in to all of them at once.

Answers: no credentials → 401 (pages redirect to the sign-in form); a person or user token that
does not belong to the workspace, or a member on an admin view → 403; an ingest token of another
workspace → 404 (nothing said of whether the workspace exists); a token that matches nothing →
401 with `WWW-Authenticate: Bearer error="invalid_token"` (RFC 6750).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from fastapi import HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from quotasync.clock import Clock
from quotasync.domain.roles import Role
from quotasync.errors import QuotasyncError
from quotasync.store import users, workspaces
from quotasync.store.tables import User

SESSION_USERS = "uids"
SESSION_STAMPS = "stamps"
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


def session_user_ids(request: Request) -> list[int]:
    ids = request.session.get(SESSION_USERS)
    if not isinstance(ids, list):
        return []
    return [i for i in ids if isinstance(i, int) and not isinstance(i, bool)]


def session_viewers(session: Session, request: Request) -> list[Viewer]:
    """Every workspace membership the cookie's person holds, by workspace name."""
    ids = session_user_ids(request)
    if not ids:
        return []
    stamps = request.session.get(SESSION_STAMPS)
    if not isinstance(stamps, dict):
        return []
    rows = session.scalars(select(User).where(User.id.in_(ids)).order_by(User.workspace_id))
    # A new password ends the sessions signed in with the old one.
    return [_viewer(row, True) for row in rows if stamps.get(str(row.id)) == _stamp(row)]


def start_session(request: Request, signed_in: list[User]) -> None:
    # A fresh session on every sign-in: nothing from before it (a planted CSRF token) carries over.
    request.session.clear()
    request.session[SESSION_USERS] = [row.id for row in signed_in]
    request.session[SESSION_STAMPS] = {str(row.id): _stamp(row) for row in signed_in}
    request.session[SESSION_CSRF] = secrets.token_urlsafe(32)


def _stamp(row: User) -> str:
    """A short fingerprint of the user's password hash: it changes with the password."""
    return hashlib.sha256((row.password_hash or "").encode()).hexdigest()[:16]


def end_session(request: Request) -> None:
    request.session.clear()


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


def person(caller: Caller) -> Viewer:
    """The person behind a call; the ingest token is the email product, not a person."""
    if caller.viewer is None:
        raise Denied(403, "this needs a user's API token, not the ingest token")
    return caller.viewer


def admin(caller: Caller) -> Viewer:
    return require_admin(person(caller))


class SignInThrottle:
    """At most `limit` wrong passwords per email in `window`; past that, sign-in for that email
    is refused without looking at the password until the oldest failure ages out. Kept in the
    server process: several processes each keep their own count."""

    MAX_EMAILS = 10_000

    def __init__(self, clock: Clock, limit: int = 10, window: timedelta = timedelta(minutes=15)):
        self.clock, self.limit, self.window = clock, limit, window
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def blocked_until(self, email: str) -> datetime | None:
        key, now = email.strip().lower(), self.clock.now()
        with self._lock:
            failures = self._failures.get(key)
            while failures and failures[0] <= now - self.window:
                failures.popleft()
            if failures is None or len(failures) < self.limit:
                return None
            return failures[0] + self.window

    def failed(self, email: str) -> None:
        with self._lock:
            self._failures.setdefault(email.strip().lower(), deque()).append(self.clock.now())
            # Any email can be typed: the oldest entries go, so the table cannot grow without end.
            while len(self._failures) > self.MAX_EMAILS:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, email: str) -> None:
        with self._lock:
            self._failures.pop(email.strip().lower(), None)


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
