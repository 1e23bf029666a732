"""Nobody's body is read before they are known (docs/SECURITY.md). A request that carries a body
to a workspace's route is let in only once its credentials are: a signed-in member of the
workspace for its pages' forms, a token or a session for its JSON API, its ingest token for the
activities it posts, a signed and timestamped push for Real-Time Sync. Otherwise it is answered
as the route would answer a stranger (401, 403, 404, the sign-in form), before a byte of the
body is read or parsed.

The routes check again, fully (the CSRF token, the role), once they have the body: this gate
only keeps strangers from making the server read and parse what they send.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match
from starlette.types import ASGIApp, Receive, Scope, Send

from quotasync.domain import realtime
from quotasync.runtime import Runtime
from quotasync.services import pushes
from quotasync.web import auth, pages

READS = frozenset({"GET", "HEAD", "OPTIONS"})
_PAGE = re.compile(r"^/w/([^/]+)/.+")
_INGEST = re.compile(r"^/api/v1/workspaces/([^/]+)/activities/?$")
_API = re.compile(r"^/api/v1/workspaces/([^/]+)/.+")
_PUSH = re.compile(r"^/rts/([^/]+)/?$")


class SignedInFirst:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        request = Request(scope)  # no `receive`: the body cannot be read from here
        check = _check_for(scope["method"], scope.get("path", ""))
        refusal = None
        # Only a route that takes this method: any other request is the router's (404, 405).
        if check is not None and _routed(scope):
            runtime: Runtime = scope["app"].state.runtime
            refusal = await run_in_threadpool(check, runtime, request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)


Check = Callable[[Runtime, Request], Response | None]


def _routed(scope: Scope) -> bool:
    return any(route.matches(scope)[0] == Match.FULL for route in scope["app"].router.routes)


def _check_for(method: str, path: str) -> Check | None:
    """The check a write to `path` must pass before its body is read; None for the public
    routes (signing in and out: their forms are small and bounded)."""
    routes: list[tuple[re.Pattern[str], Callable[[Runtime, Request, str], Response | None]]] = [
        (_PAGE, _member),
        *([(_INGEST, _ingest)] if method == "POST" else []),
        (_API, _caller),
        (_PUSH, _push),
    ]
    for pattern, check in routes:
        found = pattern.match(path)
        if found is not None:
            workspace_id = found[1]
            return lambda runtime, request: check(runtime, request, workspace_id)
    return None


def _member(runtime: Runtime, request: Request, workspace_id: str) -> Response | None:
    with runtime.sessions() as session:
        try:
            auth.page_viewer(session, request, workspace_id)
        except auth.SignInRequired:
            return pages.sign_in_redirect(request)
        except auth.Denied as refused:
            return pages.error_page(request, refused.status_code, str(refused.detail))
    return None


def _ingest(runtime: Runtime, request: Request, workspace_id: str) -> Response | None:
    with runtime.sessions() as session:
        try:
            auth.ingest_workspace(session, workspace_id, request.headers.get("authorization"))
        except auth.Denied as refused:
            return _json(refused)
    return None


def _caller(runtime: Runtime, request: Request, workspace_id: str) -> Response | None:
    with runtime.sessions() as session:
        try:
            auth.api_caller(
                session,
                request,
                workspace_id,
                runtime.clock,
                request.headers.get("authorization"),
            )
        except auth.Denied as refused:
            return _json(refused)
    return None


def _push(runtime: Runtime, request: Request, workspace_id: str) -> Response | None:
    try:
        pushes.admit(
            runtime.sessions,
            workspace_id,
            request.headers.get("x-qs-timestamp"),
            request.headers.get("x-qs-signature"),
        )
    except realtime.PushRefused as refused:
        return _json(auth.Denied(401, f"push refused: {refused}"))
    return None


def _json(refused: auth.Denied) -> JSONResponse:
    return JSONResponse(
        {"detail": refused.detail}, refused.status_code, headers=dict(refused.headers or {})
    )
