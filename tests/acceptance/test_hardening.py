"""The web app against strangers (docs/SECURITY.md): each finding of the outside security test
of `quotasync serve`, reproduced over HTTP against the served app, now answered as promised."""

from __future__ import annotations

import asyncio
import os
import re
import socket
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

import pytest
import requests
from fastapi import routing
from starlette.requests import Request

from quotasync.engine.mailers import OutboxMailer
from quotasync.sandbox import control
from quotasync.store import sign_in_failures, users, workspaces
from tests.acceptance.served_app import Served, runtime_in, serve
from tests.acceptance.web_support import csrf_of, signed_in
from tests.sandbox_process import start_sandbox


@dataclass
class Site:
    served: Served
    workspace: str
    ingest_token: str
    passwords: dict[str, str]

    @property
    def url(self) -> str:
        return self.served.url

    def signed_in(self, email: str) -> requests.Session:
        return signed_in(self.served.url, email, self.passwords[email])


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    runtime = runtime_in(tmp_path / "data")
    now = runtime.clock.now()
    with runtime.sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", now)
        member = users.add(session, made.workspace, "rep@acme.io", "member", now)
        passwords = {"admin@acme.io": made.admin_password, "rep@acme.io": member.password}
        workspace_id, token = made.workspace.id, made.ingest_token
    with serve(runtime) as served:
        yield Site(served, workspace_id, token, passwords)


# ---------------------------------------------------------------- headers (finding 5)


def test_no_page_may_be_framed_or_run_inline_script_and_none_is_cached(site: Site) -> None:
    admin = site.signed_in("admin@acme.io")
    for path in (f"/w/{site.workspace}/doctor", f"/w/{site.workspace}/integrations", "/signin"):
        page = admin.get(f"{site.url}{path}", timeout=30)
        assert page.status_code == 200, path
        policy = page.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert page.headers["X-Frame-Options"] == "DENY"
        assert page.headers["X-Content-Type-Options"] == "nosniff"
        assert page.headers["Referrer-Policy"] == "same-origin"
        assert page.headers["Cache-Control"] == "no-store"
        assert 'style="' not in page.text  # the policy allows no inline style either
    api = admin.get(f"{site.url}/api/v1/workspaces/{site.workspace}/usage", timeout=30)
    assert api.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in api.headers["Content-Security-Policy"]
    css = requests.get(f"{site.url}/static/quotasync.css", timeout=30)
    assert "Cache-Control" not in css.headers or "no-store" not in css.headers["Cache-Control"]
    assert css.headers["X-Content-Type-Options"] == "nosniff"
    # Swagger UI runs its own inline start-up script, and still may not be framed.
    docs = requests.get(f"{site.url}/docs", timeout=30)
    assert "frame-ancestors 'none'" in docs.headers["Content-Security-Policy"]


# ---------------------------------------------------------------- tokens (finding 10)


def test_a_token_that_is_nobodys_is_401_invalid_token_and_another_workspaces_is_404(
    site: Site,
) -> None:
    url = f"{site.url}/api/v1/workspaces/{site.workspace}/activities"
    made_up = requests.post(
        url, json=[], headers={"Authorization": "Bearer qsi_nobodys"}, timeout=30
    )
    assert made_up.status_code == 401
    assert made_up.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    other = f"{site.url}/api/v1/workspaces/ws_0000000000000000/activities"
    theirs = requests.post(
        other, json=[], headers={"Authorization": f"Bearer {site.ingest_token}"}, timeout=30
    )
    assert theirs.status_code == 404


# ---------------------------------------------------------------- bodies (finding 1)


def write_routes(site: Site) -> list[tuple[str, str]]:
    """Every route of a workspace that takes a body, with the workspace's id in its path."""
    found = []
    # FastAPI from 0.137 keeps an included router as one entry of app.routes.
    contexts: Callable[[list[Any]], Iterable[Any]] = getattr(routing, "iter_route_contexts", list)
    for route in contexts(site.served.app.routes):
        path = getattr(route, "path", "")
        for method in sorted(getattr(route, "methods", None) or ()):
            if method in ("POST", "PATCH", "PUT", "DELETE") and "{workspace" in path:
                found.append((method, re.sub(r"\{workspace[a-z_]*\}", site.workspace, path)))
    return found


def test_a_stranger_is_refused_before_the_body_is_parsed_on_every_route(site: Site) -> None:
    routes = write_routes(site)
    assert len(routes) >= 12
    for method, path in routes:
        for headers in ({}, {"Authorization": "Bearer qsu_nobodys"}):
            answer = requests.request(
                method,
                f"{site.url}{path}",
                data=b"{not json, not a form" * 100,
                headers={"Content-Type": "application/json", **headers},
                allow_redirects=False,
                timeout=30,
            )
            # Not the body's 400 or 422: the stranger is answered as a stranger.
            if path.startswith("/w/"):
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["Location"].startswith("/signin?next=")
            else:
                assert answer.status_code == 401, (method, path, answer.status_code, answer.text)


def test_a_member_is_refused_an_admin_api_before_the_body_is_parsed(site: Site) -> None:
    member = site.signed_in("rep@acme.io")
    # A member's own workspace, a session and no CSRF header: refused as the route refuses it.
    answer = member.patch(
        f"{site.url}/api/v1/workspaces/{site.workspace}/limits", data=b"{broken", timeout=30
    )
    assert answer.status_code == 403


def test_a_declared_length_over_the_limit_is_refused_before_any_body_is_sent(site: Site) -> None:
    host, port = site.url.removeprefix("http://").split(":")
    for path, headers in (
        (f"/api/v1/workspaces/{site.workspace}/activities",
         f"Authorization: Bearer {site.ingest_token}\r\n"),
        (f"/rts/{site.workspace}", ""),
        ("/signin", ""),
    ):  # fmt: skip
        with socket.create_connection((host, int(port))) as raw:
            raw.sendall(
                f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{headers}"
                "Content-Type: application/json\r\nContent-Length: 1073741824\r\n\r\n".encode()
            )
            # No body follows: the answer comes without the server waiting for one.
            reply = raw.makefile("rb").readline()
        assert reply.startswith(b"HTTP/1.1 413"), (path, reply)


class Source:
    """A chunked body's arrival, as the ASGI server hands it over: 64 KiB at a time, counted."""

    def __init__(self, chunks: int) -> None:
        self.left, self.pulled = chunks, 0

    async def receive(self) -> MutableMapping[str, Any]:
        self.pulled += 1
        self.left -= 1
        return {"type": "http.request", "body": b"x" * 65536, "more_body": self.left > 0}


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(site: Site) -> None:
    # A 64 MiB chunked ingest (no Content-Length), through the app's own middleware stack: it
    # stops taking chunks at the 16 MiB limit and answers 413.
    source = Source(1024)
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
        "scheme": "http", "path": f"/api/v1/workspaces/{site.workspace}/activities",
        "raw_path": b"", "query_string": b"", "root_path": "", "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "headers": [(b"host", b"127.0.0.1"),
                    (b"authorization", f"Bearer {site.ingest_token}".encode()),
                    (b"content-type", b"application/json"),
                    (b"transfer-encoding", b"chunked")],
    }  # fmt: skip
    asyncio.run(site.served.app(scope, source.receive, send))
    assert sent[0]["status"] == 413
    assert source.pulled == 16 * 16 + 1  # 16 MiB in 64 KiB chunks, and the one past the limit
    assert b"the body is over 16 MiB" in b"".join(
        bytes(m.get("body", b"")) for m in sent if m["type"] == "http.response.body"
    )
    assert site.served.stored_count() == 0


# ---------------------------------------------------------------- files (finding 7)


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_data_dir_and_its_files_are_quotasyncs_users_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, under which files were world-readable
    try:
        data = tmp_path / "data"
        runtime = runtime_in(data)
        OutboxMailer(data / "outbox", runtime.clock).send([notice()])
        with runtime.sessions.begin() as session:
            workspaces.create(session, "Acme", "admin@acme.io", runtime.clock.now())
        runtime.sessions.kw["bind"].dispose()
        org = start_sandbox(tmp_path / "org")
        org.stop()
    finally:
        os.umask(old)
    assert mode(data) == 0o700
    files = [p for p in data.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"quotasync.db", "secret.key"}
    assert any(p.suffix == ".eml" for p in files)
    assert {str(p.relative_to(data)): mode(p) for p in files} == {
        str(p.relative_to(data)): 0o600 for p in files
    }
    state = tmp_path / "org"
    assert mode(state) == 0o700
    for name in ("sandbox.json", "org.sqlite3"):
        assert mode(state / name) == 0o600, name


def test_a_store_made_before_is_narrowed_when_quotasync_opens_it(tmp_path: Path) -> None:
    data = tmp_path / "data"
    runtime_in(data).sessions.kw["bind"].dispose()
    (data / "quotasync.db").chmod(0o644)
    data.chmod(0o755)
    runtime_in(data).sessions.kw["bind"].dispose()
    assert mode(data) == 0o700 and mode(data / "quotasync.db") == 0o600


def notice() -> EmailMessage:
    message = EmailMessage()
    message["Subject"], message["To"] = "Syncing paused", "admin@acme.io"
    message.set_content("The Data API share is spent.")
    return message


# ---------------------------------------------------------------- the sandbox (finding 11)


def test_the_sandboxs_control_api_refuses_a_strange_bearer_and_any_other_machine(
    tmp_path: Path,
) -> None:
    org = start_sandbox(tmp_path / "org")
    try:
        http = org.http()
        strange = http.get(
            f"{org.instance_url}/__sandbox/usage",
            headers={"Authorization": "Bearer j\u00e9t\u00f6n".encode().decode("latin-1")},
            timeout=30,
        )
        assert strange.status_code == 401  # was a 500
        # The token from another machine: refused, whatever --host the org listens on.
        scope = {
            "type": "http", "method": "GET", "path": "/__sandbox/usage", "headers": [
                (b"authorization", f"Bearer {org.config['admin_token']}".encode())],
            "client": ("192.0.2.7", 50000), "app": None,
        }  # fmt: skip
        request = Request(scope)
        request.scope["app"] = SimpleNamespace(
            state=SimpleNamespace(admin_token=org.config["admin_token"])
        )
        assert control._authorized(request) is False
        request.scope["client"] = ("127.0.0.1", 50000)
        assert control._authorized(request) is True
    finally:
        org.stop()


def test_a_sandbox_password_is_checked_whole(tmp_path: Path) -> None:
    org = start_sandbox(tmp_path / "org")
    try:
        user, app = org.user("admin"), org.app()
        form = {"grant_type": "password", "client_id": app["client_id"],
                "client_secret": app["client_secret"], "username": user["username"]}  # fmt: skip
        url = f"{org.instance_url}/services/oauth2/token"
        for password in (user["password"][:-1], "", "\u00e9" * 40):
            refused = org.http().post(url, data={**form, "password": password}, timeout=30)
            assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        unknown = org.http().post(
            url, data={**form, "username": "nobody@nowhere.example", "password": "x"}, timeout=30
        )
        assert unknown.json() == refused.json()  # an unknown user is answered alike
        assert org.http().post(url, data={**form, "password": user["password"]}, timeout=30).ok
    finally:
        org.stop()


# ---------------------------------------------------------------- sign-in (findings 2, 3, 6)


def sign_in_form(
    site: Site, browser: requests.Session, email: str, password: str
) -> requests.Response:
    csrf = csrf_of(browser.get(f"{site.url}/signin", timeout=30).text)
    return browser.post(
        f"{site.url}/signin",
        data={"email": email, "password": password, "csrf_token": csrf, "next": "/"},
        allow_redirects=False,
        timeout=30,
    )


def test_a_full_set_of_password_checks_refuses_a_sign_in_at_once(site: Site) -> None:
    taken = [users._slots.acquire(blocking=False) for _ in range(users.CHECK_SLOTS)]
    try:
        assert all(taken)
        busy = sign_in_form(
            site, requests.Session(), "admin@acme.io", site.passwords["admin@acme.io"]
        )
    finally:
        for _ in taken:
            users._slots.release()
    assert busy.status_code == 503 and int(busy.headers["Retry-After"]) > 0
    assert "Signing in is busy" in busy.text
    # A refused try counts against nobody: the next one goes through.
    done = sign_in_form(site, requests.Session(), "admin@acme.io", site.passwords["admin@acme.io"])
    assert done.status_code == 303


def test_one_client_trying_many_emails_is_held_up_whatever_the_emails(site: Site) -> None:
    browser = requests.Session()
    for n in range(sign_in_failures.PER_CLIENT):
        assert (
            sign_in_form(site, browser, f"guess{n}@acme.io", "not the password").status_code == 401
        )
    held = sign_in_form(site, browser, "admin@acme.io", site.passwords["admin@acme.io"])
    assert held.status_code == 429 and int(held.headers["Retry-After"]) > 0
    assert "Too many wrong passwords from here" in held.text


# ---------------------------------------------------------------- sessions and tokens (finding 4)


def test_signing_out_ends_the_session_for_a_copied_cookie_too(site: Site) -> None:
    admin = site.signed_in("admin@acme.io")
    copy = requests.Session()
    copy.cookies.update(admin.cookies)
    page = f"{site.url}/w/{site.workspace}/settings"
    assert copy.get(page, timeout=30).status_code == 200
    csrf = csrf_of(admin.get(page, timeout=30).text)
    assert admin.post(f"{site.url}/signout", data={"csrf_token": csrf}, timeout=30).ok
    after = copy.get(page, allow_redirects=False, timeout=30)
    assert after.status_code == 303 and after.headers["Location"].startswith("/signin")


def test_a_new_password_ends_every_session_signed_in_with_the_old_one(site: Site) -> None:
    member = site.signed_in("rep@acme.io")
    page = f"{site.url}/w/{site.workspace}/settings"
    assert member.get(page, timeout=30).status_code == 200
    with site.served.runtime.sessions.begin() as session:
        person = users.find(session, site.workspace, "rep@acme.io")
        assert person is not None
        users.reset_password(session, person, site.served.runtime.clock.now(), revoke_tokens=False)
    assert member.get(page, allow_redirects=False, timeout=30).status_code == 303


def test_a_member_makes_names_and_revokes_their_own_token_on_the_settings_page(site: Site) -> None:
    member = site.signed_in("rep@acme.io")
    page = f"{site.url}/w/{site.workspace}/settings"
    csrf = csrf_of(member.get(page, timeout=30).text)
    made = member.post(
        f"{page}/tokens", data={"csrf_token": csrf, "name": "my script", "days": "7"}, timeout=30
    )
    assert made.status_code == 200
    token = re.search(r"<code data-token>([^<]+)</code>", made.text)
    assert token is not None
    api = f"{site.url}/api/v1/workspaces/{site.workspace}/me/usage"
    bearer = {"Authorization": f"Bearer {token.group(1)}"}
    assert requests.get(api, headers=bearer, timeout=30).status_code == 200
    listed = member.get(page, timeout=30).text
    assert token.group(1) not in listed  # shown once
    row = re.search(r'<tr data-token-id="(\d+)" data-state="live">\s*<td>my script</td>', listed)
    assert row is not None
    assert "<code data-token>" not in listed
    revoked = member.post(
        f"{page}/tokens/{row.group(1)}/revoke", data={"csrf_token": csrf}, timeout=30
    )
    assert revoked.status_code == 200 and "The token is revoked." in revoked.text
    gone = requests.get(api, headers=bearer, timeout=30)
    assert gone.status_code == 401
    assert gone.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    # Another person's token id is answered like one that does not exist.
    admin = site.signed_in("admin@acme.io")
    admin_csrf = csrf_of(admin.get(page, timeout=30).text)
    theirs = admin.post(
        f"{page}/tokens/{row.group(1)}/revoke", data={"csrf_token": admin_csrf}, timeout=30
    )
    assert "You have no such token: nothing revoked." in theirs.text


# ---------------------------------------------------------------- hosts and OAuth (finding 9)


@pytest.fixture
def connectable(tmp_path: Path) -> Iterator[Site]:
    runtime = runtime_in(
        tmp_path / "data",
        salesforce_client_id="3MVG9-the-connected-app",
        allowed_hosts="127.0.0.1,quotasync.lan",
    )
    now = runtime.clock.now()
    with runtime.sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", now)
        passwords = {"admin@acme.io": made.admin_password}
        workspace_id, token = made.workspace.id, made.ingest_token
    with serve(runtime) as served:
        yield Site(served, workspace_id, token, passwords)


def test_a_host_quotasync_is_not_served_at_is_refused(site: Site) -> None:
    port = site.url.rsplit(":", 1)[1]
    evil = requests.get(f"{site.url}/signin", headers={"Host": f"evil.example:{port}"}, timeout=30)
    assert evil.status_code == 400
    assert requests.get(f"{site.url}/signin", timeout=30).status_code == 200


def test_connect_from_beyond_loopback_needs_the_public_url(connectable: Site) -> None:
    admin = connectable.signed_in("admin@acme.io")
    page = f"{connectable.url}/w/{connectable.workspace}/integrations"
    csrf = csrf_of(admin.get(page, timeout=30).text)
    port = connectable.url.rsplit(":", 1)[1]
    # As a browser on the LAN would ask (requests matches cookies to a Host header it is given,
    # so the session cookie is sent by hand).
    cookie = f"quotasync_session={admin.cookies['quotasync_session']}"
    lan = requests.post(
        f"{connectable.url}/w/{connectable.workspace}/connect",
        data={"csrf_token": csrf, "host": "production"},
        headers={"Host": f"quotasync.lan:{port}", "Cookie": cookie},
        allow_redirects=False,
        timeout=30,
    )
    assert lan.status_code == 409 and "QUOTASYNC_PUBLIC_URL" in lan.text
    here = admin.post(
        f"{connectable.url}/w/{connectable.workspace}/connect",
        data={"csrf_token": csrf, "host": "production"},
        allow_redirects=False,
        timeout=30,
    )
    assert here.status_code == 303
    assert here.headers["Location"].startswith("https://login.salesforce.com/")


def test_a_forged_callback_leaves_the_admins_flow_in_progress(connectable: Site) -> None:
    admin = connectable.signed_in("admin@acme.io")
    page = f"{connectable.url}/w/{connectable.workspace}/integrations"
    csrf = csrf_of(admin.get(page, timeout=30).text)
    started = admin.post(
        f"{connectable.url}/w/{connectable.workspace}/connect",
        data={"csrf_token": csrf, "host": "production"},
        allow_redirects=False,
        timeout=30,
    )
    state = re.search(r"[?&]state=([^&]+)", started.headers["Location"])
    assert state is not None
    # A cross-site GET with a state of its own: refused, and the flow is not ended by it.
    forged = admin.get(f"{connectable.url}/oauth/callback?state=forged&code=x", timeout=30)
    assert forged.status_code == 400
    # Salesforce's own answer (here: the admin denied it) still finds the flow.
    back = admin.get(
        f"{connectable.url}/oauth/callback",
        params={"state": unquote(state.group(1)), "error": "access_denied"},
        allow_redirects=False,
        timeout=30,
    )
    assert back.status_code == 303 and back.headers["Location"].endswith("/integrations")


def test_signing_in_again_ends_the_session_it_replaces(site: Site) -> None:
    admin = site.signed_in("admin@acme.io")
    copy = requests.Session()
    copy.cookies.update(admin.cookies)
    page = f"{site.url}/w/{site.workspace}/settings"
    assert copy.get(page, timeout=30).status_code == 200
    form = admin.get(f"{site.url}/signin", timeout=30)
    again = admin.post(
        f"{site.url}/signin",
        data={"email": "admin@acme.io", "password": site.passwords["admin@acme.io"],
              "csrf_token": csrf_of(form.text), "next": "/"},
        timeout=30,
    )  # fmt: skip
    assert again.status_code == 200
    assert admin.get(page, timeout=30).status_code == 200  # the new session
    assert copy.get(page, allow_redirects=False, timeout=30).status_code == 303  # the old one
