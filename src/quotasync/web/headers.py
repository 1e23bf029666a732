"""Security headers on every answer (docs/SECURITY.md): no page of quotasync's may be framed by
another site (a click on a framed Doctor page spent a call), scripts run only from quotasync's
own files and never inline, a browser never guesses a type, no address leaks to other sites,
and no answer about a signed-in person's workspace is kept in a cache.

A pure ASGI middleware: it adds headers as the answer starts, whatever route or error made it.
"""

from __future__ import annotations

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Pages and the JSON API: nothing inline, nothing from elsewhere. Charts are inline SVG with
# presentation attributes (no style attributes), which `style-src 'self'` allows.
STRICT = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
# Swagger UI and ReDoc (/docs, /redoc) start from inline scripts of fastapi-offline's own: they
# may run those, and still never be framed.
DOCS = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["Content-Security-Policy"] = DOCS if path.startswith(DOCS_PATHS) else STRICT
                headers["X-Frame-Options"] = "DENY"  # for browsers without frame-ancestors
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if not path.startswith("/static/"):
                    # Pages and API answers are about someone's workspace: never cached.
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)
