"""Request bodies bounded while they are read (docs/SECURITY.md): a declared length over the
route's limit is refused before a byte of the body is read, and a chunked body is refused as
soon as it passes the limit, so no client can make the server hold more than the limit.

A pure ASGI middleware that counts what `receive` hands the app; past the limit it raises a
413, which the app's error handler answers (JSON for the API and pushes, a page for a person).
"""

from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quotasync.services import pushes

KIB, MIB = 1024, 1024 * 1024
INGEST_BYTES = 16 * MIB  # up to 1,000 activities with their bodies
PUSH_BYTES = pushes.MAX_PUSH_BYTES  # a Real-Time Sync push
API_BYTES = 256 * KIB  # the JSON API's settings, shares and retries: a few fields or ids
FORM_BYTES = 64 * KIB  # a page's form: a few fields

_INGEST = re.compile(r"^/api/v1/workspaces/[^/]+/activities/?$")


def limit_for(method: str, path: str) -> int:
    """The most a body may hold on this route."""
    if method == "POST" and _INGEST.match(path):
        return INGEST_BYTES
    if path.startswith("/rts/"):
        return PUSH_BYTES
    if path.startswith("/api/"):
        return API_BYTES
    return FORM_BYTES


def said(limit: int) -> str:
    return f"{limit // MIB} MiB" if limit >= MIB else f"{limit // KIB} KiB"


class BoundedBodies:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        limit = limit_for(scope["method"], path)
        machine = path.startswith(("/api/", "/rts/"))
        detail = (
            f"the body is over {said(limit)}" if machine else f"a form is at most {said(limit)}"
        )
        declared = _declared_length(scope)
        if declared is not None and (declared < 0 or declared > limit):
            # Refused before reading: the app never sees the request.
            answer = (
                JSONResponse({"detail": detail}, 413)
                if machine
                else PlainTextResponse(f"Not accepted: {detail}.", 413)
            )
            await answer(scope, receive, send)
            return
        seen = 0

        async def bounded() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, bounded, send)


def _declared_length(scope: Scope) -> int | None:
    """The Content-Length header's value; -1 when it is not a number (refused like a huge one)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() and len(text) < 19 else -1
    return None
