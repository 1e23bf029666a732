"""Logging in to the sandbox org: every OAuth grant, the token response, identity, revoke, and
what a REST call does with a missing, invalid or expired session. simple-salesforce unmodified,
over TLS verified against the sandbox's own CA."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from simple_salesforce import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import token_login

from tests.sandbox_process import SandboxOrg

CALLBACK = "http://127.0.0.1:9/cb"
OrgFactory = Callable[..., SandboxOrg]


def token_url(org: SandboxOrg) -> str:
    return f"{org.config['login_url']}/services/oauth2/token"


def post_token(org: SandboxOrg, data: dict[str, str], **kwargs: Any) -> Any:
    return org.http().post(token_url(org), data=data, timeout=30, **kwargs)


def password_form(org: SandboxOrg, handle: str = "admin", app: str = "quotasync") -> dict[str, str]:
    connected, user = org.app(app), org.user(handle)
    return {
        "grant_type": "password",
        "client_id": connected["client_id"],
        "client_secret": connected["client_secret"],
        "username": user["username"],
        "password": user["password"],
    }


def login(org: SandboxOrg, data: dict[str, str], headers: dict[str, str] | None = None) -> str:
    """simple-salesforce's own token_login against the sandbox; returns the access token."""
    access, instance = token_login(
        token_url(org), data, "login", data.get("client_id", ""), headers, None, org.http()
    )
    assert f"https://{instance}" == org.instance_url
    return str(access)


def client(org: SandboxOrg, access_token: str, version: str | None = None) -> Salesforce:
    return Salesforce(
        session_id=access_token,
        instance_url=org.instance_url,
        session=org.http(),
        version=version or org.config["api_version"],
    )


def whoami(org: SandboxOrg, access_token: str) -> str:
    """The username a token belongs to, read through a counted REST call."""
    sf = client(org, access_token)
    resources: Any = sf.restful("")  # the resource list: any authenticated call proves the token
    assert "sobjects" in resources
    identity = org.http().get(
        f"{org.config['login_url']}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )
    assert identity.status_code == 200
    return str(identity.json()["preferred_username"])


def used(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["used"])


def sobject(sf: Salesforce, name: str) -> SFType:
    """`sf.<name>`, typed."""
    return cast(SFType, getattr(sf, name))


def content(error: SalesforceError) -> Any:
    """The parsed JSON body simple-salesforce attached to an error."""
    body: Any = error.content
    return body


# ---------------------------------------------------------------- the token response


def test_a_password_login_answers_the_salesforce_token_shape_with_a_valid_signature(
    org: SandboxOrg,
) -> None:
    before = time.time()
    response = post_token(org, password_form(org))
    assert response.status_code == 200
    assert "no-store" in response.headers["Cache-Control"]
    body = response.json()
    admin = org.user("admin")
    org_id = org.config["org_id"]

    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == org.instance_url
    assert body["access_token"].startswith(org_id[:15] + "!")
    assert body["refresh_token"]
    assert re.fullmatch(r"00D\w{15}", org_id)
    assert re.fullmatch(r"005\w{15}", admin["user_id"])
    assert body["id"] == f"{org.config['login_url']}/id/{org_id}/{admin['user_id']}"
    # issued_at: epoch milliseconds, as a string
    assert isinstance(body["issued_at"], str) and body["issued_at"].isdigit()
    assert before - 5 <= int(body["issued_at"]) / 1000 <= time.time() + 5
    secret = org.app("quotasync")["client_secret"].encode()
    expected = hmac.new(secret, (body["id"] + body["issued_at"]).encode(), hashlib.sha256)
    assert body["signature"] == base64.b64encode(expected.digest()).decode()


def test_simple_salesforce_logs_in_with_the_password_grant_and_reads_data(
    org: SandboxOrg,
) -> None:
    token = login(org, password_form(org))
    sf = client(org, token)
    result = sf.query(f"SELECT Id, Username FROM User WHERE Id = '{org.user('admin')['user_id']}'")
    assert result["totalSize"] == 1
    assert result["records"][0]["Username"] == org.user("admin")["username"]


def test_a_password_with_a_security_token_appended_is_accepted(org: SandboxOrg) -> None:
    form = password_form(org)
    form["password"] += "SECURITYTOKEN123"
    assert whoami(org, login(org, form)) == org.user("admin")["username"]


def test_a_refresh_token_gets_a_working_access_token_and_no_new_refresh_token(
    org: SandboxOrg,
) -> None:
    first = post_token(org, password_form(org)).json()
    app = org.app("quotasync")
    response = post_token(
        org,
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert "refresh_token" not in body
    assert body["access_token"] != first["access_token"]
    assert body["id"] == first["id"]
    assert whoami(org, body["access_token"]) == org.user("admin")["username"]


def test_client_credentials_with_a_basic_header_run_as_the_apps_user(org: SandboxOrg) -> None:
    app = org.app("Data Loader")
    # Exactly what simple-salesforce's SalesforceLogin sends for this flow.
    encoded = base64.b64encode(f"{app['client_id']}:{app['client_secret']}".encode()).decode()
    token = login(
        org, {"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {encoded}"}
    )
    assert whoami(org, token) == app["run_as"]
    by_app = org.control("GET", "usage")["DailyApiRequests"]["by_app"]
    assert by_app.get("Data Loader", 0) >= 1


def test_client_credentials_as_form_fields_run_as_the_apps_user(org: SandboxOrg) -> None:
    app = org.app("quotasync")
    token = login(
        org,
        {
            "grant_type": "client_credentials",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert whoami(org, token) == app["run_as"]


def test_client_credentials_with_a_wrong_secret_are_refused(org: SandboxOrg) -> None:
    app = org.app("quotasync")
    encoded = base64.b64encode(f"{app['client_id']}:wrong".encode()).decode()
    response = post_token(
        org, {"grant_type": "client_credentials"}, headers={"Authorization": f"Basic {encoded}"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client"


def jwt_assertion(org: SandboxOrg, audience: str, app: str = "quotasync", **claims: Any) -> str:
    connected = org.app(app)
    key = Path(connected["jwt_key_file"]).read_text()
    payload = {
        "iss": connected["client_id"],
        "sub": org.user("sync")["username"],
        "aud": audience,
        "exp": int(time.time()) + 300,
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256")


@pytest.mark.parametrize("audience", ["login_url", "https://login.salesforce.com"])
def test_a_jwt_bearer_assertion_signed_with_the_apps_key_logs_the_user_in(
    org: SandboxOrg, audience: str
) -> None:
    aud = org.config["login_url"] if audience == "login_url" else audience
    data = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "assertion": jwt_assertion(org, aud),
    }
    response = post_token(org, data)
    assert response.status_code == 200
    assert "refresh_token" not in response.json()
    assert whoami(org, login(org, data)) == org.user("sync")["username"]


def test_a_jwt_assertion_signed_with_another_apps_key_is_refused(org: SandboxOrg) -> None:
    connected = org.app("quotasync")
    other_key = Path(org.app("Marketing Cloud")["jwt_key_file"]).read_text()
    assertion = jwt.encode(
        {
            "iss": connected["client_id"],
            "sub": org.user("sync")["username"],
            "aud": "https://login.salesforce.com",
            "exp": int(time.time()) + 300,
        },
        other_key,
        algorithm="RS256",
    )
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        login(
            org,
            {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        )
    assert failure.value.code == "invalid_grant"


def test_an_expired_jwt_assertion_is_refused(org: SandboxOrg) -> None:
    assertion = jwt_assertion(org, "https://login.salesforce.com", exp=int(time.time()) - 3600)
    response = post_token(
        org, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


# ---------------------------------------------------------------- web-server flow


def authorize_url(org: SandboxOrg) -> str:
    return f"{org.config['login_url']}/services/oauth2/authorize"


def consent_form(org: SandboxOrg, app: str = "quotasync") -> dict[str, str]:
    """GET the consent page and read its form's hidden fields, as a browser would submit them."""
    response = org.http().get(
        authorize_url(org),
        params={
            "response_type": "code",
            "client_id": org.app(app)["client_id"],
            "redirect_uri": CALLBACK,
            "state": "xyz",
        },
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<form" in page and 'name="username"' in page and 'name="password"' in page
    assert app in page
    hidden = re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)
    return {name: unescape(value) for name, value in hidden}


def submit_consent(
    org: SandboxOrg, form: dict[str, str], action: str, handle: str = "admin"
) -> Any:
    user = org.user(handle)
    return org.http().post(
        authorize_url(org),
        data={**form, "username": user["username"], "password": user["password"], "action": action},
        allow_redirects=False,
        timeout=30,
    )


def test_the_authorization_code_flow_consents_redirects_and_exchanges_the_code_once(
    org: SandboxOrg,
) -> None:
    form = consent_form(org)
    assert form["redirect_uri"] == CALLBACK and form["state"] == "xyz"
    response = submit_consent(org, form, "allow")
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith(CALLBACK + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["xyz"]
    code = query["code"][0]

    app = org.app("quotasync")
    exchange = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "redirect_uri": CALLBACK,
    }
    granted = post_token(org, exchange)
    assert granted.status_code == 200
    body = granted.json()
    assert body["refresh_token"]
    assert body["id"].endswith(f"/{org.user('admin')['user_id']}")
    assert whoami(org, body["access_token"]) == org.user("admin")["username"]

    again = post_token(org, exchange)
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


def test_a_code_exchanged_with_another_redirect_uri_is_refused(org: SandboxOrg) -> None:
    response = submit_consent(org, consent_form(org), "allow")
    code = parse_qs(urlsplit(response.headers["location"]).query)["code"][0]
    app = org.app("quotasync")
    refused = post_token(
        org,
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "redirect_uri": "http://127.0.0.1:9/elsewhere",
        },
    )
    assert refused.status_code == 400
    assert "access_token" not in refused.json()


def test_denying_consent_redirects_with_access_denied_and_the_state(org: SandboxOrg) -> None:
    response = submit_consent(org, consent_form(org), "deny")
    assert response.status_code == 302
    query = parse_qs(urlsplit(response.headers["location"]).query)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["xyz"]
    assert "code" not in query


def test_a_wrong_password_on_the_consent_page_shows_the_page_again(org: SandboxOrg) -> None:
    form = consent_form(org)
    response = org.http().post(
        authorize_url(org),
        data={**form, "username": org.user("admin")["username"], "password": "nope"},
        allow_redirects=False,
        timeout=30,
    )
    assert response.status_code == 200
    assert "authentication failure" in response.text
    assert "location" not in response.headers


# ---------------------------------------------------------------- OAuth errors


def test_a_wrong_password_raises_authentication_failed(org: SandboxOrg) -> None:
    form = {**password_form(org), "password": "not-the-password"}
    response = post_token(org, form)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        login(org, form)
    assert failure.value.code == "invalid_grant"
    assert failure.value.auth_message == "authentication failure"


def test_an_unknown_client_id_answers_invalid_client_id(org: SandboxOrg) -> None:
    form = {**password_form(org), "client_id": "3MVG9nobodyknowsthisone"}
    response = post_token(org, form)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client_id",
        "error_description": "client identifier invalid",
    }
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        login(org, form)
    assert failure.value.code == "invalid_client_id"


def test_a_wrong_client_secret_answers_invalid_client(org: SandboxOrg) -> None:
    response = post_token(org, {**password_form(org), "client_secret": "0" * 64})
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_client",
        "error_description": "invalid client credentials",
    }


def test_an_unknown_refresh_token_answers_invalid_grant(org: SandboxOrg) -> None:
    app = org.app("quotasync")
    response = post_token(
        org,
        {
            "grant_type": "refresh_token",
            "refresh_token": "5Aep861nothing",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }


def test_an_unknown_grant_type_is_refused(org: SandboxOrg) -> None:
    response = post_token(org, {"grant_type": "magic"})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


# ---------------------------------------------------------------- identity, userinfo, revoke


def test_the_identity_url_describes_the_user_behind_the_token(org: SandboxOrg) -> None:
    body = post_token(org, password_form(org, "sync")).json()
    sync = org.user("sync")
    response = org.http().get(
        body["id"], headers={"Authorization": f"Bearer {body['access_token']}"}, timeout=30
    )
    assert response.status_code == 200
    identity = response.json()
    assert identity["id"] == body["id"]
    assert identity["user_id"] == sync["user_id"]
    assert identity["organization_id"] == org.config["org_id"]
    assert identity["username"] == sync["username"]
    assert identity["active"] is True
    assert identity["display_name"]
    assert identity["urls"]["rest"].startswith(f"{org.instance_url}/services/data/v")
    assert "query" in identity["urls"] and "sobjects" in identity["urls"]

    anonymous = org.http().get(body["id"], timeout=30)
    assert anonymous.status_code == 403


def test_userinfo_names_the_user_behind_the_bearer_token(org: SandboxOrg) -> None:
    body = post_token(org, password_form(org)).json()
    response = org.http().get(
        f"{org.config['login_url']}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {body['access_token']}"},
        timeout=30,
    )
    assert response.status_code == 200
    info = response.json()
    admin = org.user("admin")
    assert info["sub"] == body["id"]
    assert info["user_id"] == admin["user_id"]
    assert info["organization_id"] == org.config["org_id"]
    assert info["preferred_username"] == admin["username"]
    assert info["email"]


def test_a_revoked_access_token_stops_working(org: SandboxOrg) -> None:
    token = login(org, password_form(org))
    sf = client(org, token)
    sf.query("SELECT Id FROM Organization")
    revoke = org.http().post(
        f"{org.config['login_url']}/services/oauth2/revoke", data={"token": token}, timeout=30
    )
    assert revoke.status_code == 200
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Organization")


def test_a_revoked_refresh_token_can_no_longer_be_redeemed(org: SandboxOrg) -> None:
    body = post_token(org, password_form(org)).json()
    revoke = org.http().post(
        f"{org.config['login_url']}/services/oauth2/revoke",
        data={"token": body["refresh_token"]},
        timeout=30,
    )
    assert revoke.status_code == 200
    app = org.app("quotasync")
    response = post_token(
        org,
        {
            "grant_type": "refresh_token",
            "refresh_token": body["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_oauth_and_identity_calls_do_not_count_against_the_api_quota(org: SandboxOrg) -> None:
    before = used(org)
    body = post_token(org, password_form(org)).json()
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    org.http().get(body["id"], headers=bearer, timeout=30).raise_for_status()
    org.http().get(
        f"{org.config['login_url']}/services/oauth2/userinfo", headers=bearer, timeout=30
    ).raise_for_status()
    post_token(org, {**password_form(org), "password": "wrong"})
    assert used(org) == before


# ---------------------------------------------------------------- versions and sessions


def test_the_versions_list_needs_no_session_and_is_not_counted(org: SandboxOrg) -> None:
    before = used(org)
    response = org.http().get(f"{org.instance_url}/services/data/", timeout=30)
    assert response.status_code == 200
    assert "Sforce-Limit-Info" not in response.headers
    listed = response.json()
    # Every version a real org serves: v31.0 (Summer '14) to the newest.
    assert [v["version"] for v in listed] == [f"{n}.0" for n in range(31, 68)]
    assert listed[0] == {"label": "Summer '14", "url": "/services/data/v31.0", "version": "31.0"}
    assert {"label": "Winter '25", "url": "/services/data/v62.0", "version": "62.0"} in listed
    assert used(org) == before


def test_an_old_api_version_is_served_and_a_retired_one_answers_gone(org: SandboxOrg) -> None:
    token = login(org, password_form(org))
    user_id = org.user("admin")["user_id"]
    # The Salesforce CLI looks the user up at v51.0, through an instance URL ending in a slash.
    old = org.http().get(
        f"{org.instance_url}//services/data/v51.0/sobjects/User/{user_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert old.status_code == 200 and old.json()["Id"] == user_id
    oldest = client(org, token, version="31.0")
    assert oldest.query("SELECT Id FROM Organization")["totalSize"] == 1
    gone = org.http().get(
        f"{org.instance_url}/services/data/v30.0/query",
        params={"q": "SELECT Id FROM Organization"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert gone.status_code == 410
    assert gone.json()[0]["errorCode"] == "GONE"


def test_an_unknown_api_version_answers_not_found(org: SandboxOrg) -> None:
    sf = client(org, login(org, password_form(org)), version="99.0")
    with pytest.raises(SalesforceResourceNotFound) as failure:
        sf.query("SELECT Id FROM Organization")
    assert content(failure.value)[0]["errorCode"] == "NOT_FOUND"


def test_a_missing_token_answers_invalid_session_id(org: SandboxOrg) -> None:
    response = org.http().get(
        f"{org.instance_url}/services/data/v62.0/query", params={"q": "SELECT Id FROM User"}
    )
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_an_invalid_token_raises_expired_session_in_simple_salesforce(org: SandboxOrg) -> None:
    sf = client(org, org.config["org_id"][:15] + "!AQnotarealtoken")
    with pytest.raises(SalesforceExpiredSession) as failure:
        sf.query("SELECT Id FROM User")
    assert failure.value.status == 401
    assert content(failure.value)[0]["errorCode"] == "INVALID_SESSION_ID"


def test_expired_sessions_fail_until_a_refresh_token_gets_a_new_one(
    new_org: Callable[..., SandboxOrg],
) -> None:
    sandbox = new_org()
    first = post_token(sandbox, password_form(sandbox)).json()
    sf = client(sandbox, first["access_token"])
    sf.query("SELECT Id FROM Organization")

    expired = sandbox.control("POST", "faults", {"expire_sessions": True})
    assert expired["expired_sessions"] >= 1
    with pytest.raises(SalesforceExpiredSession) as failure:
        sf.query("SELECT Id FROM Organization")
    assert content(failure.value)[0]["errorCode"] == "INVALID_SESSION_ID"

    app = sandbox.app("quotasync")
    refreshed = login(
        sandbox,
        {
            "grant_type": "refresh_token",
            "refresh_token": first["refresh_token"],
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
        },
    )
    assert client(sandbox, refreshed).query("SELECT Id FROM Organization")["totalSize"] == 1


def test_a_session_times_out_after_inactivity_on_the_virtual_clock(
    new_org: Callable[..., SandboxOrg],
) -> None:
    sandbox = new_org("--speed", "1", "--epoch", "2026-11-28T00:00:00Z")
    sf = sandbox.salesforce()
    sf.query("SELECT Id FROM Organization")
    sandbox.control("POST", "clock", {"advance_seconds": 60 * 60})
    sf.query("SELECT Id FROM Organization")  # an hour idle is within the 2-hour default
    sandbox.control("POST", "clock", {"advance_seconds": 3 * 60 * 60})
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM Organization")
    assert sandbox.salesforce().query("SELECT Id FROM Organization")["totalSize"] == 1


# ---------------------------------------------------------------- other clients


def test_curl_trusts_the_sandbox_with_its_ca_file(org: SandboxOrg) -> None:
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed on this machine")
    token = post_token(org, password_form(org)).json()["access_token"]
    result = subprocess.run(
        [
            curl,
            "--silent",
            "--show-error",
            "--fail-with-body",
            "--cacert",
            org.config["ca_file"],
            "--header",
            f"Authorization: Bearer {token}",
            "--include",
            f"{org.instance_url}/services/data/v62.0/query?q=SELECT+OrganizationType+FROM+Organization",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},  # no CURL_CA_BUNDLE: trust comes from --cacert alone
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^sforce-limit-info: api-usage=\d+/\d+", result.stdout, re.I | re.M)
    assert '"OrganizationType":"Enterprise Edition"' in result.stdout


def unsigned(payload: dict[str, Any]) -> str:
    """A JWT with alg "none", built by hand: PyJWT will not encode a non-string iss."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(payload)}."


@pytest.mark.parametrize("claims", [{"iss": ["a", "b"]}, {"iss": {"x": 1}}, {"sub": ["someone"]}])
def test_an_assertion_whose_iss_or_sub_is_not_a_string_is_an_oauth_error(
    org: SandboxOrg, claims: dict[str, Any]
) -> None:
    payload = {
        "iss": org.app()["client_id"],
        "sub": org.user("sync")["username"],
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 300,
        **claims,
    }
    response = post_token(
        org,
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": unsigned(payload),
        },
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_a_signed_assertion_whose_exp_is_not_a_number_is_an_oauth_error(org: SandboxOrg) -> None:
    assertion = jwt_assertion(org, "https://login.salesforce.com", exp="soon")
    response = post_token(
        org, {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_grant"


def test_a_session_that_expired_from_idleness_stays_expired_after_a_restart(
    new_org: Callable[..., SandboxOrg], tmp_path: Path
) -> None:
    state = tmp_path / "idle"
    first = new_org("--speed", "1", "--epoch", "2026-11-28T00:00:00Z", state_dir=state)
    idle = first.token()["access_token"]
    busy = first.token()["access_token"]
    first.control("POST", "clock", {"advance_seconds": 100 * 60})
    client(first, busy).query("SELECT Id FROM Organization")  # used: its last use is kept
    first.control("POST", "clock", {"advance_seconds": 30 * 60})
    with pytest.raises(SalesforceExpiredSession):  # 130 minutes idle
        client(first, idle).query("SELECT Id FROM Organization")
    first.stop()
    assert session_rows(state) == 1  # the expired session's row is gone

    second = new_org("--speed", "1", "--epoch", "2026-11-28T00:00:00Z", state_dir=state)
    with pytest.raises(SalesforceExpiredSession):
        client(second, idle).query("SELECT Id FROM Organization")
    # 30 minutes since its last use, not 130 since it was issued: still alive.
    assert client(second, busy).query("SELECT Id FROM Organization")["totalSize"] == 1


def test_sessions_that_expired_while_the_org_was_down_are_pruned_at_start(
    new_org: Callable[..., SandboxOrg], tmp_path: Path
) -> None:
    state = tmp_path / "pruned"
    first = new_org("--speed", "1", "--epoch", "2026-11-28T00:00:00Z", state_dir=state)
    first.token()
    first.control("POST", "clock", {"advance_seconds": 3 * 60 * 60})
    first.stop()
    assert session_rows(state) == 1
    second = new_org("--speed", "1", "--epoch", "2026-11-28T00:00:00Z", state_dir=state)
    second.stop()
    assert session_rows(state) == 0


def session_rows(state: Path) -> int:
    with sqlite3.connect(state / "org.sqlite3") as db:
        (count,) = db.execute("SELECT COUNT(*) FROM settings WHERE key LIKE 'session:%'").fetchone()
    return int(count)
