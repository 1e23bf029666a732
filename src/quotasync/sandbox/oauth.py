"""OAuth 2.0 endpoints: token (five grants), authorize with a consent page (and PKCE), identity,
userinfo, revoke. They never count against API limits."""

from __future__ import annotations

import base64
import binascii
import html
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from quotasync.sandbox import auth
from quotasync.sandbox.auth import ConnectedApp, OAuthError
from quotasync.sandbox.org import Org
from quotasync.sandbox.records import Record


def _org(request: Request) -> Org:
    org: Org = request.app.state.org
    return org


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-cache,must-revalidate,max-age=0,no-store,private"
    return response


async def _form(request: Request) -> dict[str, str]:
    """OAuth bodies are application/x-www-form-urlencoded; anything unreadable reads as empty."""
    try:
        text = (await request.body()).decode()
    except UnicodeDecodeError:
        return {}
    return dict(parse_qsl(text, keep_blank_values=True))


async def token(request: Request) -> Response:
    org = _org(request)
    fields = await _form(request)
    if "grant_type" not in fields:
        return _oauth_error(OAuthError("unsupported_grant_type", "grant type not supported"))
    try:
        user, app, with_refresh = _grant(org, fields, request.headers.get("authorization"))
        org.check_approved(user, app, fields["grant_type"])  # the app's Permitted Users
        body = _token_body(org, user, app, with_refresh)
    except OAuthError as error:
        return _oauth_error(error)
    finally:
        org.commit()
    return _no_store(JSONResponse(body))


def _grant(
    org: Org, form: dict[str, str], authorization: str | None
) -> tuple[Record, ConnectedApp, bool]:
    grant = form.get("grant_type", "")
    if grant == "password":
        app = org.auth.app_by_client_id(form.get("client_id"))
        org.auth.check_secret(app, form.get("client_secret"))
        username = org.auth.check_password(form.get("username"), form.get("password"))
        return _active(org, username), app, True
    if grant == "refresh_token":
        user_id, app = org.auth.redeem_refresh(form.get("refresh_token"))
        if form.get("client_id") and form["client_id"] != app.client_id:
            raise OAuthError("invalid_client_id", "client identifier invalid")
        if form.get("client_secret"):
            org.auth.check_secret(app, form.get("client_secret"))
        user = org.records.get(user_id)
        if user is None or not user.get("IsActive"):
            raise OAuthError("invalid_grant", "inactive user")
        return user, app, False
    if grant == "client_credentials":
        client_id, secret = form.get("client_id"), form.get("client_secret")
        basic = _basic(authorization)
        if basic:
            client_id, secret = basic
        app = org.auth.app_by_client_id(client_id)
        org.auth.check_secret(app, secret)
        if not app.run_as:
            raise OAuthError("invalid_grant", "no client credentials user enabled")
        return _active(org, app.run_as), app, False
    if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
        app, username = org.auth.verify_assertion(
            form.get("assertion"), org.base_url, (org.timestamp(), time.time())
        )
        return _active(org, username), app, False
    if grant == "authorization_code":
        app = org.auth.app_by_client_id(form.get("client_id"))
        org.auth.check_secret(app, form.get("client_secret"))
        user_id = org.auth.redeem_code(
            form.get("code"), app, form.get("redirect_uri"), form.get("code_verifier")
        )
        user = org.records.get(user_id)
        if user is None:
            raise OAuthError("invalid_grant", "inactive user")
        return user, app, True
    raise OAuthError("unsupported_grant_type", "grant type not supported")


def _basic(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip()).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _active(org: Org, username: str) -> Record:
    user = org.user_by_username(username)
    if user is None:
        raise OAuthError("invalid_grant", "authentication failure")
    if not user.get("IsActive"):
        raise OAuthError("invalid_grant", "inactive user")
    return user


def _token_body(org: Org, user: Record, app: ConnectedApp, with_refresh: bool) -> dict[str, Any]:
    issued_at = str(int(org.timestamp() * 1000))
    identity = f"{org.base_url}/id/{org.org_id}/{user['Id']}"
    body = {
        "access_token": org.auth.issue(user["Id"], app, org.timestamp()),
        "instance_url": org.base_url,
        "id": identity,
        "token_type": "Bearer",
        "issued_at": issued_at,
        "signature": auth.signature(app, identity, issued_at),
        "scope": "api refresh_token id" if with_refresh else "api id",
    }
    if with_refresh:
        body["refresh_token"] = org.auth.issue_refresh(user["Id"], app)
    return body


def _oauth_error(error: OAuthError) -> Response:
    return _no_store(JSONResponse(error.body(), status_code=error.status))


# ---------------------------------------------------------------- identity


def _identity_user(request: Request) -> Record | None:
    org = _org(request)
    token = auth.bearer_token(request.headers.get("authorization"))
    token = token or request.query_params.get("oauth_token")
    session = org.auth.session_for(token, org.timestamp()) if token else None
    return org.records.get(session.user_id) if session else None


def _forbidden() -> Response:
    return Response("Bad_OAuth_Token", status_code=403, media_type="text/plain")


async def identity(request: Request) -> Response:
    org = _org(request)
    user = _identity_user(request)
    if user is None:
        return _forbidden()
    if (
        request.path_params["org"][:15] != org.org_id[:15]
        or request.path_params["user"][:15] != user["Id"][:15]
    ):
        return _forbidden()
    base = f"{org.base_url}/services/data/v{{version}}"
    return JSONResponse(
        {
            "id": f"{org.base_url}/id/{org.org_id}/{user['Id']}",
            "asserted_user": True,
            "user_id": user["Id"],
            "organization_id": org.org_id,
            "username": user["Username"],
            "nick_name": user.get("Alias"),
            "display_name": user.get("Name"),
            "email": user.get("Email"),
            "email_verified": True,
            "first_name": user.get("FirstName"),
            "last_name": user.get("LastName"),
            "timezone": user.get("TimeZoneSidKey"),
            "active": bool(user.get("IsActive")),
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "last_modified_date": user["LastModifiedDate"].strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "is_app_installed": True,
            "urls": {
                "enterprise": f"{org.base_url}/services/Soap/c/{{version}}/{org.org_id[:15]}",
                "partner": f"{org.base_url}/services/Soap/u/{{version}}/{org.org_id[:15]}",
                "rest": f"{base}/",
                "sobjects": f"{base}/sobjects/",
                "search": f"{base}/search/",
                "query": f"{base}/query/",
                "recent": f"{base}/recent/",
                "profile": f"{org.base_url}/{user['Id']}",
                "limits": f"{base}/limits/",
            },
        }
    )


async def userinfo(request: Request) -> Response:
    org = _org(request)
    user = _identity_user(request)
    if user is None:
        return _forbidden()
    return JSONResponse(
        {
            "sub": f"{org.base_url}/id/{org.org_id}/{user['Id']}",
            "user_id": user["Id"],
            "organization_id": org.org_id,
            "preferred_username": user["Username"],
            "nickname": user.get("Alias"),
            "name": user.get("Name"),
            "email": user.get("Email"),
            "email_verified": True,
            "given_name": user.get("FirstName"),
            "family_name": user.get("LastName"),
            "zoneinfo": user.get("TimeZoneSidKey"),
            "active": bool(user.get("IsActive")),
            "user_type": "STANDARD",
            "language": "en_US",
            "locale": "en_US",
            "utcOffset": 0,
            "updated_at": user["LastModifiedDate"].strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    )


async def revoke(request: Request) -> Response:
    org = _org(request)
    form = await _form(request)
    token = form.get("token") or request.query_params.get("token") or ""
    if not org.auth.revoke(token):
        return JSONResponse(
            {
                "error": "unsupported_token_type",
                "error_description": "this token type is not supported",
            },
            status_code=400,
        )
    org.commit()
    return Response(status_code=200)


# ---------------------------------------------------------------- authorize (consent page)


def _redirect_allowed(app: ConnectedApp, redirect_uri: str) -> bool:
    if redirect_uri in app.callback_urls:
        return True
    # Any loopback callback is allowed, so local tools can pick a free port.
    parts = urlsplit(redirect_uri)
    return parts.scheme in ("http", "https") and parts.hostname in ("127.0.0.1", "localhost", "::1")


async def authorize(request: Request) -> Response:
    org = _org(request)
    params = dict(request.query_params)
    if request.method == "POST":
        params.update(await _form(request))
    try:
        app = org.auth.app_by_client_id(params.get("client_id"))
    except OAuthError as error:
        return _error_page(error.description)
    redirect_uri = params.get("redirect_uri", "")
    if not _redirect_allowed(app, redirect_uri):
        return _error_page("redirect_uri_mismatch: redirect_uri must match configuration")
    if params.get("response_type") != "code":
        return _redirect(
            redirect_uri,
            {
                "error": "unsupported_response_type",
                "error_description": "response type not supported",
                "state": params.get("state"),
            },
        )
    method = params.get("code_challenge_method")
    if method and (method not in auth.PKCE_METHODS or not params.get("code_challenge")):
        return _redirect(
            redirect_uri,
            {
                "error": "invalid_request",
                "error_description": "invalid code_challenge_method: use S256",
                "state": params.get("state"),
            },
        )
    if request.method == "GET":
        return HTMLResponse(_consent_page(app, params))
    if params.get("action") == "deny":
        return _redirect(
            redirect_uri,
            {
                "error": "access_denied",
                "error_description": "end-user denied authorization",
                "state": params.get("state"),
            },
        )
    try:
        username = org.auth.check_password(params.get("username"), params.get("password"))
        user = _active(org, username)
    except OAuthError as error:
        return HTMLResponse(_consent_page(app, params, error.description), status_code=200)
    code = org.auth.new_code(
        user["Id"],
        app,
        redirect_uri,
        time.time(),
        params.get("code_challenge") or None,
        params.get("code_challenge_method") or None,
    )
    return _redirect(redirect_uri, {"code": code, "state": params.get("state")})


def _redirect(uri: str, params: dict[str, Any]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return RedirectResponse(f"{uri}{'&' if '?' in uri else '?'}{query}", status_code=302)


def _error_page(message: str) -> Response:
    body = f"<!doctype html><title>OAuth error</title><h1>OAuth error</h1><p>{html.escape(message)}</p>"
    return HTMLResponse(body, status_code=400)


# What the consent form carries over from the authorize request to its POST.
_CONSENT_FIELDS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
)


def _consent_page(app: ConnectedApp, params: dict[str, str], error: str | None = None) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in params.items()
        if k in _CONSENT_FIELDS
    )
    problem = f'<p class="error" role="alert">{html.escape(error)}</p>' if error else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Allow Access? | Salesforce sandbox</title>
<style>body{{font-family:system-ui,sans-serif;max-width:26rem;margin:4rem auto;color:#181818}}
label{{display:block;margin:.6rem 0}}input[type=text],input[type=password]{{width:100%;padding:.4rem}}
.error{{color:#ba0517}}button{{padding:.5rem 1.2rem;margin-right:.5rem}}</style></head>
<body><h1>Allow Access?</h1>
<p><strong>{html.escape(app.name)}</strong> is asking to access your data and manage it on your
behalf (api, refresh_token).</p>{problem}
<form method="post">{hidden}
<label>Username <input type="text" name="username" autocomplete="username" required></label>
<label>Password <input type="password" name="password" autocomplete="current-password" required></label>
<button type="submit" name="action" value="allow">Allow</button>
<button type="submit" name="action" value="deny" formnovalidate>Deny</button>
</form></body></html>"""
