"""The Integrations page's "Install in Salesforce" button, over HTTP against the served app: it
runs the same service as `quotasync org install` (the package deployed, the permission set
assigned, the outcome kept and shown), only for an admin with the page's CSRF token, and shows
Salesforce's refusal on the page. The org runs as a process of its own: a deploy changes its
objects (tests/integration/test_org_install.py says why)."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from quotasync.clock import ManualClock
from quotasync.salesforce.connection import SandboxLogin
from quotasync.store import users, workspaces
from quotasync.store.tables import Workspace
from tests.acceptance.served_app import Served, runtime_in, serve
from tests.acceptance.web_support import csrf_of, signed_in
from tests.sandbox_process import SandboxOrg, start_sandbox


@dataclass
class Page:
    served: Served
    org: SandboxOrg
    workspace_id: str
    passwords: dict[str, str]

    def signed_in(self, email: str) -> requests.Session:
        return signed_in(self.served.url, email, self.passwords[email])

    @property
    def url(self) -> str:
        return f"{self.served.url}/w/{self.workspace_id}/integrations"

    def install(self, session: requests.Session, csrf: str | None = None) -> requests.Response:
        token = csrf if csrf is not None else csrf_of(session.get(self.url, timeout=30).text)
        return session.post(f"{self.url}/org-package", data={"csrf_token": token}, timeout=120)

    def uninstall(self, session: requests.Session, **form: str) -> requests.Response:
        # The sign-out form of any page carries the session's token: a member's home page too.
        token = csrf_of(session.get(f"{self.served.url}/", timeout=30).text)
        return session.post(
            f"{self.url}/org-package/uninstall", data={"csrf_token": token, **form}, timeout=120
        )


def start(tmp_path: Path, user: str) -> Iterator[Page]:
    org = start_sandbox(tmp_path / "org", "--without-package", process=True)
    runtime = runtime_in(tmp_path / "data", public_url="https://quotasync.acme.example")
    clock = runtime.clock
    assert isinstance(clock, ManualClock)
    runtime = dataclasses.replace(runtime, sleep=clock.advance)  # a deploy's waits move it
    with runtime.sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", clock.now())
        member = users.add(session, made.workspace, "rep@acme.io", "member", clock.now())
        passwords = {"admin@acme.io": made.admin_password, "rep@acme.io": member.password}
        workspace_id = made.workspace.id
    login = SandboxLogin.read(org.state_dir / "sandbox.json", user)
    runtime.connector.connect_sandbox(workspace_id, login)
    try:
        with serve(runtime) as served:
            yield Page(served, org, workspace_id, passwords)
    finally:
        org.stop()


@pytest.fixture
def as_admin(tmp_path: Path) -> Iterator[Page]:
    """A workspace connected as the org's admin, who may deploy."""
    yield from start(tmp_path, "admin")


@pytest.fixture
def as_sync_user(tmp_path: Path) -> Iterator[Page]:
    """A workspace connected as the integration user, who may not."""
    yield from start(tmp_path, "sync")


def shown(html: str) -> str:
    found = re.search(r'data-figure="org_package">([^<]+)<', html)
    assert found, "the page does not say whether the package is installed"
    return found.group(1)


def test_an_admin_installs_the_package_from_the_page(as_admin: Page) -> None:
    page = as_admin
    admin = page.signed_in("admin@acme.io")
    before = admin.get(page.url, timeout=30).text
    assert shown(before) == "Not installed from here"
    assert "Install in Salesforce" in before

    done = page.install(admin)
    assert done.status_code == 200 and done.url.endswith("?saved=org-package#org-package")
    assert "quotasync&#39;s package is installed in Salesforce" in done.text
    assert shown(done.text) == "Installed"
    assert "Install again" in done.text
    sf = page.org.salesforce()
    tasks: Any = sf.Task
    described = {f["name"] for f in tasks.describe()["fields"]}
    assert {"QS_Activity_Id__c", "QS_Opens__c", "QS_Clicks__c"} <= described
    (permission_set,) = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'QS_Sync_User'")[
        "records"
    ]
    (admin_user,) = sf.query("SELECT Id FROM User WHERE Alias = 'admin'")["records"]
    assigned = sf.query(
        "SELECT Id FROM PermissionSetAssignment "
        f"WHERE AssigneeId = '{admin_user['Id']}' AND PermissionSetId = '{permission_set['Id']}'"
    )["records"]
    assert len(assigned) == 1  # the sync user (here the admin who connected) holds it
    with page.served.runtime.sessions() as session:
        workspace = session.get(Workspace, page.workspace_id)
        assert workspace is not None and workspace.org_package == "installed"


def test_a_member_or_a_form_without_the_token_installs_nothing(as_admin: Page) -> None:
    page = as_admin
    member = page.signed_in("rep@acme.io")
    assert page.install(member, csrf="x").status_code == 403
    admin = page.signed_in("admin@acme.io")
    assert page.install(admin, csrf="not-the-token").status_code == 403
    assert page.org.control("GET", "package") == {"CustomField": []}


def test_salesforces_refusal_is_shown_on_the_page(as_sync_user: Page) -> None:
    page = as_sync_user
    admin = page.signed_in("admin@acme.io")
    refused = page.install(admin)
    assert refused.status_code == 502
    assert "INSUFFICIENT_ACCESS" in refused.text or "Modify All Data" in refused.text
    assert "It takes a Salesforce admin (Modify All Data)" in refused.text
    assert shown(refused.text) == "Not installed from here"


def test_an_admin_removes_the_package_from_the_page_once_they_confirm(as_admin: Page) -> None:
    page = as_admin
    admin = page.signed_in("admin@acme.io")
    assert "Remove from Salesforce" not in admin.get(page.url, timeout=30).text  # nothing to
    assert page.install(admin).status_code == 200
    assert "Remove from Salesforce" in admin.get(page.url, timeout=30).text

    unconfirmed = page.uninstall(admin)
    assert unconfirmed.status_code == 422
    assert "Nothing was removed: tick the box" in unconfirmed.text
    assert page.org.control("GET", "package")["CustomField"] != []
    member = page.signed_in("rep@acme.io")
    assert page.uninstall(member, confirm="remove").status_code == 403

    done = page.uninstall(admin, confirm="remove")
    assert done.status_code == 200 and done.url.endswith("?saved=org-package-removed#org-package")
    assert "quotasync&#39;s package is removed from Salesforce." in done.text
    assert shown(done.text) == "Removed"
    left = page.org.control("GET", "package")
    assert {kind: found for kind, found in left.items() if found} == {}
