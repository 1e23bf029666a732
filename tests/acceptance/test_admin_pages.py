"""The Integrations page says what is true for the admin reading it: how to connect when the
Connect button is not there, that an Apex pause holds no activity (Real-Time Sync handed over to
Interval Sync), and who spent the calls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from quotasync.store import workspaces
from quotasync.store.tables import PauseEpisode, Workspace
from tests.acceptance.served_app import NOW, Served, runtime_in, serve
from tests.acceptance.web_support import csrf_of, signed_in


@dataclass
class Site:
    served: Served
    workspace: str
    password: str

    def integrations(self) -> str:
        page = self.signed_in().get(
            f"{self.served.url}/w/{self.workspace}/integrations", timeout=30
        )
        assert page.status_code == 200, page.text
        return page.text

    def signed_in(self) -> requests.Session:
        return signed_in(self.served.url, "admin@acme.io", self.password)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    runtime = runtime_in(tmp_path / "data")  # no QUOTASYNC_SALESFORCE_CLIENT_ID: no button
    with runtime.sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", NOW)
        workspace_id, password = made.workspace.id, made.admin_password
    with serve(runtime) as served:
        yield Site(served, workspace_id, password)


def test_without_the_connect_button_the_page_says_how_to_connect(site: Site) -> None:
    page = site.integrations()
    assert 'href="#sync-user">Connect Salesforce</a>' not in page
    assert "Connect it with <code>quotasync connect</code>" in page
    assert "No member's activity cost a call in the past 24 hours." in page


def test_an_apex_pause_says_activities_go_on_and_changes_are_queried(site: Site) -> None:
    with site.served.runtime.sessions.begin() as session:
        workspace = session.get(Workspace, site.workspace)
        assert workspace is not None
        workspace.limits_readable = True  # the Apex card shows its state
        session.add(
            PauseEpisode(
                workspace_id=site.workspace, api="apex", reason="workspace_limit",
                started_at=NOW, next_check=NOW + timedelta(minutes=30), figures={},
            )
        )  # fmt: skip
    page = site.integrations()
    apex = page[page.index('data-api="apex"') :]
    apex = apex[: apex.index("</section>")]
    assert "Real-Time Sync handed over to Interval Sync" in apex
    assert "activities are logged as usual" in apex
    assert "kept and sent when syncing resumes" not in apex


def test_each_change_of_a_share_or_setting_is_kept_with_who_when_from_and_to(site: Site) -> None:
    browser = site.signed_in()
    url = f"{site.served.url}/w/{site.workspace}/integrations"
    csrf = csrf_of(browser.get(url, timeout=30).text)
    saved = browser.post(
        f"{url}/share", data={"csrf_token": csrf, "api": "data", "percent": "60"}, timeout=30
    )
    assert saved.status_code == 200
    row = re.search(r'<tr data-change="data share">(.*?)</tr>', saved.text, re.S)
    assert row is not None, "the change is not listed"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))
    assert cells == ["2026-11-28 12:00 UTC", "admin@acme.io", "data share", "70%", "60%"]
    # Saving the same value again changes nothing, and lists nothing more.
    again = browser.post(
        f"{url}/share", data={"csrf_token": csrf, "api": "data", "percent": "60"}, timeout=30
    )
    assert again.text.count('data-change="data share"') == 1


def test_quotasyncs_own_use_is_shown_against_its_share_at_any_scale(site: Site) -> None:
    from quotasync.store import quota_rows

    with site.served.runtime.sessions.begin() as session:
        workspace = session.get(Workspace, site.workspace)
        assert workspace is not None
        # An org of 5,000,000 calls a day, nearly all other apps': quotasync's own calls are a
        # sliver on the org's bar.
        quota_rows.observe(session, site.workspace, "data", 4_000_000, 5_000_000, NOW)
    page = site.integrations()
    data = page[page.index('data-api="data"') :]
    data = data[: data.index("</section>")]
    own = re.search(r'<p class="own-share" data-own-share="([0-9.]+)">', data)
    assert own is not None
    assert "<meter " in data and "of 3,500,000" in data  # 70% of the org's 5,000,000
    # And its calls per hour have a chart of their own scale beside the one shared with others.
    assert "quotasync alone, on its own scale" in data and "qs-sparkline" in data
