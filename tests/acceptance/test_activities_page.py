"""The Activities page as an admin and a member read it: a page of 50 with where it stands among
all of them, a logged activity linking to its record in the org, a pending one saying why it
waits, and a member's own view without a Member column."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from quotasync.ingest import Ingest
from quotasync.store import outbox, users, workspaces
from quotasync.store.tables import Connection, PauseEpisode
from tests.acceptance.served_app import NOW, Served, runtime_in, serve
from tests.acceptance.web_support import signed_in

INSTANCE = "https://acme.my.salesforce.com"


@dataclass
class Page:
    served: Served
    workspace: str
    passwords: dict[str, str]

    def signed_in(self, email: str) -> requests.Session:
        return signed_in(self.served.url, email, self.passwords[email])

    def get(self, browser: requests.Session, query: str = "") -> str:
        answer = browser.get(f"{self.served.url}/w/{self.workspace}/activities{query}", timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.text


def email(n: int, user: str) -> dict[str, object]:
    return {"id": f"e-{n:03d}", "kind": "email_sent", "occurred_at": "2026-11-28T09:00:00+00:00",
            "user_email": user, "to": [f"buyer{n}@corp.io"], "subject": f"Note {n}", "body": "x"}  # fmt: skip


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    runtime = runtime_in(tmp_path / "data")
    with runtime.sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", NOW)
        member = users.add(session, made.workspace, "rep@acme.io", "member", NOW)
        passwords = {"admin@acme.io": made.admin_password, "rep@acme.io": member.password}
        workspace_id = made.workspace.id
        session.add(
            Connection(
                workspace_id=workspace_id, instance_url=INSTANCE, login_url=INSTANCE,
                api_version="62.0", client_id="3MVG9", username="sync@acme.io",
                org_id="00D000000000001AAA", user_id="005000000000001AAA",
                access_token_sealed=runtime.vault.seal("a token"), connected_at=NOW,
            )
        )  # fmt: skip
    Ingest(runtime.sessions, runtime.clock).accept(
        workspace_id,
        [email(n, "rep@acme.io" if n % 2 else "other@acme.io") for n in range(55)],
    )
    with runtime.sessions.begin() as session:
        outbox.mark_logged(session, workspace_id, {"e-000": "00T000000000001AAA"}, NOW)
    with serve(runtime) as served:
        yield Page(served, workspace_id, passwords)


def test_a_page_holds_50_and_says_where_it_stands(page: Page) -> None:
    admin = page.signed_in("admin@acme.io")
    first = page.get(admin)
    assert len(re.findall(r"<tr data-activity=", first)) == 50
    assert re.search(r"data-paging>1\u201350 of 55<", first)
    assert 'rel="next"' in first and 'rel="prev"' not in first
    second = page.get(admin, "?page=2")
    assert len(re.findall(r"<tr data-activity=", second)) == 5
    assert re.search(r"data-paging>51\u201355 of 55<", second)
    # Filters carry over to the next page's link.
    filtered = page.get(admin, "?state=pending")
    assert re.search(r"data-paging>1\u201350 of 54<", filtered)
    assert 'href="?state=pending&amp;page=2"' in filtered


def test_a_logged_activity_links_to_its_record_and_a_pending_one_says_why_it_waits(
    page: Page,
) -> None:
    admin = page.signed_in("admin@acme.io")
    text = page.get(admin)
    assert f'href="{INSTANCE}/00T000000000001AAA"' in text
    assert "waiting for the next batch (within 60 s)" in text
    with page.served.runtime.sessions.begin() as session:
        session.add(
            PauseEpisode(
                workspace_id=page.workspace, api="data", reason="org_guard", started_at=NOW,
                next_check=NOW + timedelta(minutes=30), figures={},
            )
        )  # fmt: skip
    assert "waiting: syncing is paused (org_guard)" in page.get(admin)


def test_a_member_sees_their_own_without_a_member_column(page: Page) -> None:
    member = page.signed_in("rep@acme.io")
    text = page.get(member)
    assert ">Member</th>" not in text
    assert len(re.findall(r"<tr data-activity=", text)) == 27  # their odd-numbered 27 of 55
    assert "other@acme.io" not in text
