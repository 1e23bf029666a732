"""The web app against strangers (docs/SECURITY.md): each finding of the outside security test
of `quotasync serve`, reproduced over HTTP against the served app, now answered as promised."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from quotasync.store import users, workspaces
from tests.acceptance.served_app import Served, runtime_in, serve
from tests.acceptance.web_support import csrf_of


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
        browser = requests.Session()
        form = browser.get(f"{self.url}/signin", timeout=30)
        done = browser.post(
            f"{self.url}/signin",
            data={"email": email, "password": self.passwords[email],
                  "csrf_token": csrf_of(form.text), "next": "/"},
            timeout=30,
        )  # fmt: skip
        assert done.status_code == 200, done.text
        return browser


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
