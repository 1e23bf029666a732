"""Real-Time Sync: the org's pushes reach the mirror, forged and stale ones do not, and when the
Apex quota is spent the workspace rolls over to Interval Sync and comes back by itself
(RULES.md: Real-Time Sync falls back)."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
import requests
import uvicorn
from simple_salesforce import Salesforce

from quotasync import crypto
from quotasync.clock import ManualClock
from quotasync.domain import realtime as signing
from quotasync.engine.notifier import Notifier
from quotasync.engine.pool import Pool
from quotasync.engine.realtime import RealTime
from quotasync.engine.worker import Progress, Worker
from quotasync.store import episodes, mirror
from quotasync.store.tables import Connection, Workspace
from quotasync.web.app import create_app
from tests import servers
from tests.integration.logging_support import Connect, Setup, records
from tests.integration.test_auth import sobject
from tests.integration.test_logging import OrgFactory
from tests.sandbox_process import SandboxOrg

EPOCH = "2026-11-28T00:00:00Z"


@dataclass
class Pushed:
    """A workspace with Real-Time Sync on, its web app serving pushes, the org pushing."""

    org: SandboxOrg
    setup: Setup
    clock: ManualClock
    url: str
    pool: Pool
    admin: Salesforce  # an org admin through another app, so quotasync's counts stay its own

    def advance(self, seconds: float) -> None:
        """quotasync's clock and the org's (frozen, --speed 0) move together."""
        self.clock.advance(seconds)
        self.org.control("POST", "clock", {"advance_seconds": seconds})

    def delivered(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.org.control("POST", "rts/flush", {})
        return answer

    def mirrored(self, sobject: str) -> dict[str, dict[str, Any]]:
        with self.setup.runtime.sessions() as session:
            found = mirror.records(session, self.setup.workspace_id, sobject)
            return {record_id: dict(row.fields) for record_id, row in found.items()}

    def mode(self) -> str:
        with self.setup.runtime.sessions() as session:
            workspace = session.get(Workspace, self.setup.workspace_id)
            assert workspace is not None
            return workspace.sync_mode

    def setup_org_id(self) -> str:
        with self.setup.runtime.sessions() as session:
            connection = session.get(Connection, self.setup.workspace_id)
            assert connection is not None
            return connection.org_id

    def secret(self) -> str:
        with self.setup.runtime.sessions() as session:
            workspace = session.get(Workspace, self.setup.workspace_id)
            assert workspace is not None and workspace.rts_secret_sealed is not None
            return self.setup.runtime.vault.open(workspace.rts_secret_sealed)

    def turn(self) -> Progress:
        progress = Progress()
        self.pool.turn(progress)
        return progress


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving_pushes(org: SandboxOrg, setup: Setup, clock: ManualClock) -> Iterator[Pushed]:
    """The workspace's web app serving pushes on a port of its own, Real-Time Sync switched on
    pointing at it."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(setup.runtime), host="127.0.0.1", port=port, log_level="error")
    )
    thread = servers.start(server)
    notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
    pool = setup.pool = Pool(Worker(setup.runtime.connector, clock, notifier), clock)
    pool.turn(Progress())  # reads /limits: the Apex figures are known from here on
    url = f"http://127.0.0.1:{port}/rts/{setup.workspace_id}"
    RealTime(setup.runtime.connector, setup.workspace_id, clock).enable(url)
    try:
        yield Pushed(org, setup, clock, url, pool, org.salesforce("admin", "Data Loader"))
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def pushing_org(new_org: OrgFactory) -> tuple[SandboxOrg, ManualClock]:
    """An org whose clock stands still (quotasync's manual clock moves both), and that clock."""
    org = new_org(
        "--seed", "40", "--speed", "0", "--epoch", EPOCH, "--session-timeout-minutes", "0"
    )
    return org, ManualClock(datetime.fromisoformat(EPOCH.replace("Z", "+00:00")))


@pytest.fixture
def pushed(new_org: OrgFactory, workspace: Connect) -> Iterator[Pushed]:
    org, clock = pushing_org(new_org)
    # The admin user has View Setup: quotasync reads the Apex figures it governs pushes by.
    setup = workspace(org, clock=clock, user="admin")
    with serving_pushes(org, setup, clock) as served:
        yield served


def apex_by_quotasync(org: SandboxOrg) -> int:
    usage = org.control("GET", "usage")["DailyAsyncApexExecutions"]
    return int(usage["by_app"].get("quotasync", 0))


def test_changes_made_in_the_org_reach_the_mirror_through_pushes(pushed: Pushed) -> None:
    contacts = sobject(pushed.admin, "Contact")
    assert pushed.mode() == "realtime"
    some = sorted(pushed.mirrored("Contact"))[:2]
    contacts.update(some[0], {"Title": "Chief Pusher"})
    created = contacts.create({"LastName": "Lovelace", "Email": "ada@newco.example"})["id"]
    contacts.delete(some[1])
    counters = pushed.delivered()
    assert counters["delivered"] == 3 and counters["failed"] == 0

    mirrored = pushed.mirrored("Contact")
    assert mirrored[some[0]]["Title"] == "Chief Pusher"
    assert mirrored[created]["Email"] == "ada@newco.example"
    assert some[1] not in mirrored
    # Each push spent one of the org's Apex executions, and the ledger has each of them.
    assert pushed.setup.ledger_calls("apex", "rts_push") == 3 == apex_by_quotasync(pushed.org)


def test_a_push_delivered_twice_is_applied_and_counted_once(pushed: Pushed) -> None:
    pushed.org.control("POST", "rts", {"duplicate_rate": 1})
    [first] = sorted(pushed.mirrored("Contact"))[:1]
    sobject(pushed.admin, "Contact").update(first, {"Title": "Twice"})
    assert pushed.delivered()["duplicates"] == 1
    assert pushed.mirrored("Contact")[first]["Title"] == "Twice"
    assert pushed.setup.ledger_calls("apex", "rts_push") == 1 == apex_by_quotasync(pushed.org)


def test_a_forged_or_stale_push_is_refused_and_changes_nothing(pushed: Pushed) -> None:
    [target] = sorted(pushed.mirrored("Contact"))[:1]
    body = json.dumps(
        {
            "organizationId": pushed.setup_org_id(),
            "changes": [
                {
                    "sobject": "Contact",
                    "id": target,
                    "change": "updated",
                    "systemModstamp": "2099-01-01T00:00:00.000+0000",
                    "fields": {"Title": "Forged"},
                }
            ],
        }
    ).encode()
    now = int(pushed.clock.now().timestamp())
    forged = requests.post(
        pushed.url,
        data=body,
        headers={
            "X-QS-Timestamp": str(now),
            "X-QS-Signature": signing.sign("a guessed secret", now, body),
        },
        timeout=10,
    )
    assert forged.status_code == 401
    secret = pushed.secret()
    stale_at = now - 15 * 60
    stale = requests.post(
        pushed.url,
        data=body,
        headers={
            "X-QS-Timestamp": str(stale_at),
            "X-QS-Signature": signing.sign(secret, stale_at, body),
        },
        timeout=10,
    )
    assert stale.status_code == 401 and "stale" in stale.text
    assert pushed.mirrored("Contact")[target].get("Title") != "Forged"
    assert pushed.setup.ledger_calls("apex", "rts_push") == 0
    # The same push, signed with the secret now, is taken: the refusals were for cause.
    fresh = requests.post(
        pushed.url,
        data=body,
        headers={"X-QS-Timestamp": str(now), "X-QS-Signature": signing.sign(secret, now, body)},
        timeout=10,
    )
    assert fresh.status_code == 200, fresh.text
    assert pushed.mirrored("Contact")[target]["Title"] == "Forged"


def test_apex_spent_rolls_over_to_interval_sync_and_the_window_rolling_brings_it_back(
    pushed: Pushed,
) -> None:
    contacts = sobject(pushed.admin, "Contact")
    first, second, third = sorted(pushed.mirrored("Contact"))[:3]
    # Other apps spend the org's whole Apex quota: the org stops pushing.
    pushed.org.control("POST", "consume", {"app": "Marketing Cloud", "api": "apex", "calls": 10**7})
    contacts.update(first, {"Title": "Missed push"})
    assert pushed.delivered()["suppressed_no_apex"] >= 1
    assert pushed.mirrored("Contact")[first].get("Title") != "Missed push"

    # Within one check of the org's figures, the workspace is on intervals and admins know.
    for _ in range(13):
        pushed.advance(5 * 60)
        pushed.turn()
        if pushed.mode() == "interval":
            break
    assert pushed.mode() == "interval"
    with pushed.setup.runtime.sessions() as session:
        rollover = episodes.open_episode(session, pushed.setup.workspace_id, "apex")
        assert rollover is not None and rollover.reason == "org_guard"
    assert pushed.org.control("GET", "rts")["enabled"] is False
    # The change pushes missed, and one made during the gap, arrive with the next interval.
    contacts.update(second, {"Title": "Made in the gap"})
    pushed.advance(30 * 60)
    pushed.turn()
    mirrored = pushed.mirrored("Contact")
    assert mirrored[first]["Title"] == "Missed push"
    assert mirrored[second]["Title"] == "Made in the gap"

    # A day on, the other apps' executions have left the window: Real-Time Sync comes back.
    pushed.advance(24 * 3600)
    for _ in range(6):
        pushed.turn()
        if pushed.mode() == "realtime":
            break
        pushed.advance(10 * 60)
    assert pushed.mode() == "realtime"
    assert pushed.org.control("GET", "rts")["enabled"] is True
    with pushed.setup.runtime.sessions() as session:
        assert episodes.open_episode(session, pushed.setup.workspace_id, "apex") is None
    contacts.update(third, {"Title": "Pushed again"})
    pushed.delivered()
    assert pushed.mirrored("Contact")[third]["Title"] == "Pushed again"
    # Two emails: the rollover and the return.
    mails = sorted((pushed.setup.data_dir / "outbox").glob("*.eml"))
    assert len(mails) == 2, [m.read_text()[:200] for m in mails]


def test_the_sidebar_answers_from_the_mirror_without_a_call_to_salesforce(pushed: Pushed) -> None:
    setup = pushed.setup
    token = "qsi_sidebar-test-token"
    with setup.runtime.sessions.begin() as session:
        workspace = session.get(Workspace, setup.workspace_id)
        assert workspace is not None
        workspace.ingest_token_hash = crypto.token_hash(token)
    open_deals: dict[str, set[str]] = {}
    for deal in records(pushed.org, "Opportunity", "IsClosed = false"):
        open_deals.setdefault(deal["AccountId"], set()).add(deal["Id"])
    contact = next(
        c
        for c in records(pushed.org, "Contact", "Email != null")
        if c.get("AccountId") in open_deals
    )
    account = records(pushed.org, "Account", f"Id = '{contact['AccountId']}'")[0]
    base = pushed.url.split("/rts/")[0] + f"/api/v1/workspaces/{setup.workspace_id}/people"
    auth = {"Authorization": f"Bearer {token}"}
    calls_before = org_calls(pushed.org)

    answer = requests.get(
        base, params={"email": contact["Email"].upper()}, headers=auth, timeout=10
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["person"]["id"] == contact["Id"] and body["person"]["sobject"] == "Contact"
    assert body["account"] == {"id": account["Id"], "name": account["Name"]}
    assert {d["id"] for d in body["open_opportunities"]} == open_deals[contact["AccountId"]]
    assert org_calls(pushed.org) == calls_before  # answered from the mirror alone

    nobody = requests.get(
        base, params={"email": "nobody@nowhere.example"}, headers=auth, timeout=10
    )
    assert nobody.status_code == 404
    assert (
        requests.get(base, params={"email": "not-an-email"}, headers=auth, timeout=10).status_code
        == 422
    )
    stranger = {"Authorization": "Bearer qsi_not-this-workspace"}
    assert (
        requests.get(
            base, params={"email": contact["Email"]}, headers=stranger, timeout=10
        ).status_code
        == 401  # a token that is nobody's: invalid_token
    )


def org_calls(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["used"])
