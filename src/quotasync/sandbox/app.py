"""The sandbox org as an ASGI application."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from quotasync.sandbox import control, oauth, rest
from quotasync.sandbox.errors import ApiError, not_found, retired_version
from quotasync.sandbox.org import API_VERSIONS, RELEASES, RETIRED_API_VERSIONS, Org

log = logging.getLogger("quotasync.sandbox")


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type="application/json;charset=UTF-8",
        headers=headers,
    )


async def versions(request: Request) -> Response:
    # No session needed and never counted.
    return _json_response(
        200,
        [{"label": RELEASES[v], "url": f"/services/data/v{v}", "version": v} for v in API_VERSIONS],
    )


async def rest_api(request: Request) -> Response:
    org: Org = request.app.state.org
    version = request.path_params["version"]
    if version in RETIRED_API_VERSIONS:
        return _json_response(410, retired_version(version).body())
    if version not in API_VERSIONS:
        return _json_response(404, not_found().body())
    if org.faults.error_hit():
        return _json_response(
            503,
            [
                {
                    "errorCode": "SERVER_UNAVAILABLE",
                    "message": "Server is temporarily unavailable. Please retry.",
                }
            ],
        )
    delay = org.faults.delay()
    if delay:
        await asyncio.sleep(delay)
    headers: dict[str, str] = {}
    path = request.path_params.get("path", "").strip("/")
    counted = False
    try:
        caller = org.caller(request.headers.get("authorization"))
        try:
            org.admit(caller, path)
            counted = True
        finally:
            headers["Sforce-Limit-Info"] = org.limit_info()
        call = rest.Call(
            org=org,
            caller=caller,
            method=request.method,
            path=path,
            params=dict(request.query_params),
            body=await request.body(),
            version=version,
            headers={k.lower(): v for k, v in request.headers.items()},
            now=org.now(),
        )
        reply = rest.dispatch(call)
    except ApiError as error:
        reply = rest.Reply(error.status, error.body())
    except Exception:
        log.exception("unexpected error serving %s %s", request.method, request.url.path)
        # Whatever the request had begun is undone rather than saved half-way.
        org.records.rollback_all()
        error_id = secrets.randbelow(10**9)
        reply = rest.Reply(
            500,
            [
                {
                    "errorCode": "UNKNOWN_EXCEPTION",
                    "message": f"An unexpected error occurred. Please include this ErrorId if you contact support: {error_id}-{error_id % 9973} ({error_id % 99991})",
                }
            ],
        )
    finally:
        org.commit()
    if org.faults.drop_hit(counted=counted):
        request.scope["sandbox.drop"] = True
    headers.update(reply.headers)
    if reply.status == 204:
        return Response(status_code=204, headers=headers)
    if reply.text is not None:
        return Response(
            reply.text, status_code=reply.status, media_type=reply.media_type, headers=headers
        )
    return _json_response(reply.status, reply.body, headers)


async def not_found_anywhere(request: Request) -> Response:
    return _json_response(404, not_found().body())


class DropConnections:
    """Closes the connection instead of answering when a request drew the `drop_rate` fault.

    The request has been carried out by then: the nasty case, where a client cannot know whether
    its write landed.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        dropped = False

        async def guarded(message: Message) -> None:
            nonlocal dropped
            if dropped:
                return
            if message["type"] == "http.response.start" and scope.get("sandbox.drop"):
                transport = getattr(getattr(receive, "__self__", None), "transport", None)
                if transport is not None:
                    dropped = True
                    transport.abort()
                    await asyncio.sleep(0)
                    return
            await send(message)

        await self.app(scope, receive, guarded)


class OneSlash:
    """Repeated slashes in a path read as one, as Salesforce's servers take them: the Salesforce
    CLI keeps an instance URL with a trailing slash and asks for `//services/data/...`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and "//" in path:
            scope = {**scope, "path": re.sub("/{2,}", "/", path)}
        await self.app(scope, receive, send)


def build_app(org: Org, admin_token: str) -> Starlette:
    routes = [
        Route("/services/data", versions, methods=["GET"]),
        Route("/services/data/", versions, methods=["GET"]),
        Route(
            "/services/data/v{version}/{path:path}",
            rest_api,
            methods=["GET", "POST", "PATCH", "PUT", "DELETE", "HEAD"],
        ),
        Route("/services/data/v{version}", rest_api, methods=["GET"]),
        Route("/services/oauth2/token", oauth.token, methods=["POST"]),
        Route("/services/oauth2/authorize", oauth.authorize, methods=["GET", "POST"]),
        Route("/services/oauth2/userinfo", oauth.userinfo, methods=["GET", "POST"]),
        Route("/services/oauth2/revoke", oauth.revoke, methods=["POST"]),
        Route("/id/{org}/{user}", oauth.identity, methods=["GET"]),
        *control.ROUTES,
        Route(
            "/{path:path}", not_found_anywhere, methods=["GET", "POST", "PATCH", "PUT", "DELETE"]
        ),
    ]
    app = Starlette(routes=routes)
    app.state.org = org
    app.state.admin_token = admin_token
    app.add_middleware(DropConnections)
    app.add_middleware(OneSlash)
    return app
