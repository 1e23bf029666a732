"""Connect Salesforce: the OAuth 2.0 web-server flow with PKCE, started from the Integrations page.

The admin picks the login host and is sent to Salesforce's consent page; Salesforce sends them
back to `/oauth/callback` with a code, which is exchanged for tokens (stored sealed). The user who
approves becomes the workspace's sync user: quotasync acts as them. The flow's state and PKCE
verifier wait in the admin's signed session cookie and are used once. Once connected, the mirror
is loaded as `quotasync connect` loads it (services/connecting.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from quotasync import errors
from quotasync.salesforce import oauth_flows
from quotasync.services import connecting
from quotasync.web import auth
from quotasync.web.state import RuntimeDep

MY_DOMAIN = re.compile(r"[a-z0-9-]+(\.[a-z0-9-]+)*\.salesforce\.com")
FLOW_MINUTES = 10  # a consent left open longer than this starts again
SESSION_FLOW = "oauth"
FLASH = "flash"  # a message for the next page the admin sees
LOGIN_HOSTS = {
    "production": "https://login.salesforce.com",
    "sandbox": "https://test.salesforce.com",
}


router = APIRouter(include_in_schema=False)


@router.post("/w/{workspace_id}/connect")
def start(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    csrf_token: str = Form(""),
    host: str = Form("default", max_length=20),
    my_domain: str = Form("", max_length=300),
) -> Response:
    auth.check_csrf(request, csrf_token)
    settings = runtime.settings
    with runtime.sessions() as session:
        auth.require_admin(auth.page_viewer(session, request, workspace_id))
    if not settings.salesforce_client_id:
        raise HTTPException(
            409,
            "quotasync has no connected app to connect with: set "
            "QUOTASYNC_SALESFORCE_CLIENT_ID (see docs/CONNECTING.md)",
        )
    if settings.public_url is None and not _from_loopback(request):
        # The callback address would come from the request's Host header, which a browser
        # beyond this machine (or a proxy) may have been led to set: say where quotasync is.
        raise HTTPException(
            409,
            "set QUOTASYNC_PUBLIC_URL to the address browsers reach quotasync at before "
            "connecting from another machine (see docs/CONNECTING.md)",
        )
    login_url = _login_url(host, my_domain, settings.salesforce_login_url)
    verifier = secrets.token_urlsafe(64)
    state = secrets.token_urlsafe(32)
    request.session[SESSION_FLOW] = {
        "state": state,
        "verifier": verifier,
        "workspace": workspace_id,
        "login_url": login_url,
        "started": runtime.clock.timestamp(),
    }
    target = oauth_flows.authorize_url(
        login_url,
        settings.salesforce_client_id,
        _callback(request, settings.public_url),
        state,
        code_challenge=_challenge(verifier),
    )
    return RedirectResponse(target, 303)


@router.get("/oauth/callback")
def callback(
    request: Request,
    runtime: RuntimeDep,
    state: str = "",
    code: str = "",
    error: str = "",
    error_description: str = "",
) -> Response:
    """Where Salesforce's consent page sends the admin back: the code is exchanged, and the
    workspace connected and its mirror loaded as `quotasync connect` does (services/connecting.py).
    """
    settings = runtime.settings
    flow = request.session.get(SESSION_FLOW)
    if (
        not isinstance(flow, dict)
        or not state
        # Compared as bytes: compare_digest refuses str beyond ASCII (a 500, not a 400).
        or not hmac.compare_digest(str(flow.get("state", "")).encode(), state.encode())
    ):
        # Not this flow's callback (a cross-site GET with a made-up state): the admin's flow in
        # progress stays as it was.
        raise HTTPException(
            400, "this sign-in to Salesforce was not started here, or was used already"
        )
    request.session.pop(SESSION_FLOW, None)  # its own callback ends it, used or stale
    if not _fresh(flow.get("started"), runtime.clock.timestamp()):
        raise HTTPException(400, "this sign-in to Salesforce took too long; start it again")
    workspace_id = str(flow["workspace"])
    with runtime.sessions() as session:
        auth.require_admin(auth.page_viewer(session, request, workspace_id))
    back = f"/w/{workspace_id}/integrations"
    if error:
        return _told(request, back, f"Salesforce did not connect: {error_description or error}")
    code_flow = connecting.CodeFlow(
        login_url=str(flow["login_url"]),
        client_id=settings.salesforce_client_id or "",
        client_secret=settings.salesforce_client_secret.get_secret_value()
        if settings.salesforce_client_secret
        else None,
        code=code,
        redirect_uri=_callback(request, settings.public_url),
        ca_file=settings.salesforce_ca_file,
        code_verifier=str(flow["verifier"]),
    )
    try:
        connected = connecting.connect(
            runtime.sessions, runtime.connector, runtime.clock, workspace_id, code_flow
        )
    except (
        errors.SalesforceError,
        errors.InvalidInput,
        errors.NotConnected,
        errors.QuotaExhausted,
    ) as exc:
        return _told(request, back, f"Salesforce did not connect: {exc}")
    username = connected.connection.username
    request.session[FLASH] = {"text": f"Connected to Salesforce as {username}."}
    return RedirectResponse(back, 303)


def _told(request: Request, back: str, message: str) -> Response:
    request.session[FLASH] = {"text": message, "error": True}
    return RedirectResponse(back, 303)


def _fresh(started: object, now: float) -> bool:
    return isinstance(started, float | int) and 0 <= now - started <= FLOW_MINUTES * 60


def _login_url(host: str, my_domain: str, default: str) -> str:
    if host == "default":
        return default.rstrip("/")
    if host in LOGIN_HOSTS:
        return LOGIN_HOSTS[host]
    if host == "my_domain":
        typed = my_domain.strip().lower()
        parts = urlsplit(typed if "://" in typed else f"https://{typed}")
        # The host must be a Salesforce host and nothing else: no user, port or backslash that
        # one parser reads as part of the name and another as a different host.
        if (
            parts.scheme == "https"
            and parts.hostname
            and parts.netloc == parts.hostname
            and MY_DOMAIN.fullmatch(parts.hostname)
            and parts.path in ("", "/")
        ):
            return f"https://{parts.hostname}"
        raise HTTPException(422, "a My Domain is like https://yourcompany.my.salesforce.com")
    raise HTTPException(422, "the login host is production, sandbox or my_domain")


def _from_loopback(request: Request) -> bool:
    client = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(client).is_loopback and request.url.hostname in (
            "127.0.0.1",
            "localhost",
            "::1",
        )
    except ValueError:
        return False


def _callback(request: Request, public_url: str | None) -> str:
    base = (public_url or str(request.base_url)).rstrip("/")
    return f"{base}/oauth/callback"


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
