"""The mirror following the org: the initial load (REST below the threshold, a Bulk API 2.0 query
job above it), the interval sync of updates and deletes made in the org by other apps, the
worker running it when due, a stop at the quota, and `mirror.apply`'s rules on the store itself
(SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from quotasync.clock import ManualClock
from quotasync.engine import sync
from quotasync.engine.sync import Syncer, SyncReport
from quotasync.engine.worker import Progress
from quotasync.salesforce.connection import SandboxLogin
from quotasync.store import mirror, quota_rows, sync_state
from quotasync.store.tables import LedgerEntry, SyncState, Workspace
from tests.integration.logging_support import Connect, Setup, open_workspace, records
from tests.sandbox_process import SandboxOrg, start_sandbox

OrgFactory = Callable[..., SandboxOrg]
EPOCH = "2026-11-28T00:00:00Z"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def run(setup: Setup, full: bool = False) -> SyncReport:
    return Syncer(setup.runtime.connector, setup.workspace_id, setup.clock).run(full=full)


def mirrored(setup: Setup, sobject: str, *, live: bool = True) -> dict[str, Any]:
    with setup.runtime.sessions() as session:
        return mirror.records(session, setup.workspace_id, sobject, live=live)


def assert_mirror_equals_org(setup: Setup, org: SandboxOrg) -> None:
    """Every live record of every mirrored type, with each mirrored field and its SystemModstamp."""
    for sobject, fields in sync.FIELDS.items():
        in_org = {r["Id"]: r for r in records(org, sobject)}
        here = mirrored(setup, sobject)
        assert set(here) == set(in_org), sobject
        for record_id, record in here.items():
            want = {f: in_org[record_id].get(f) for f in fields}
            assert {f: record.fields.get(f) for f in fields} == want, (sobject, record_id)
            assert record.modstamp == mirror.modstamp(want["SystemModstamp"])


def watermarks(setup: Setup) -> dict[str, datetime | None]:
    with setup.runtime.sessions() as session:
        return {
            s: state.watermark
            for s, state in sync_state.states(session, setup.workspace_id).items()
        }


def in_org_clock(org: SandboxOrg, seconds: float) -> None:
    org.control("POST", "clock", {"advance_seconds": seconds})


# ---------------------------------------------------------------- the initial load

MORE_CONTACTS = 24_000  # 12 pages more than the seed's: more than two calls of five pages


def add_records(org: SandboxOrg, sobject: str, count: int) -> None:
    """Another app's import, through the sandbox's control API (no quota spent)."""
    for start in range(0, count, 5_000):
        org.control(
            "POST",
            f"records/{sobject}",
            [
                {"LastName": f"Buyer {n}", "Email": f"buyer{n}@corp.example", "Title": "CFO",
                 "Company": f"Corp {n}"} if sobject == "Lead" else
                {"LastName": f"Buyer {n}", "Email": f"buyer{n}@corp.example", "Title": "CFO"}
                for n in range(start, min(count, start + 5_000))
            ],
        )  # fmt: skip


@pytest.fixture(scope="module")
def big_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxOrg]:
    """The seed's 60 records of each type and 24,000 more Contacts: 13 query pages of them.
    Tests on it only read."""
    org = start_sandbox(tmp_path_factory.mktemp("big"), "--seed", "60")
    add_records(org, "Contact", MORE_CONTACTS)
    yield org
    org.stop()


def query_pages(org: SandboxOrg, sobject: str) -> int:
    return math.ceil(len(records(org, sobject)) / 2000)


def test_the_load_at_connect_reads_every_type_s_first_page_in_one_call(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)

    assert_mirror_equals_org(setup, org)
    # One composite request carried the five types' first pages, each the whole type.
    assert setup.ledger_calls("data", "mirror_load") == 1 == org_usage(org)
    assert setup.ledger_calls("bulk_query") == 0
    with setup.runtime.sessions() as session:
        states = sync_state.states(session, setup.workspace_id)
    assert set(states) == set(sync.OBJECTS)
    for sobject, state in states.items():
        newest = max(r["SystemModstamp"] for r in records(org, sobject))  # one format: sortable
        assert state.watermark == mirror.modstamp(newest), sobject
        assert state.last_full_at == setup.clock.now(), sobject


def test_a_load_reads_five_query_pages_a_call_and_brings_every_record_once(
    big_org: SandboxOrg, workspace: Connect
) -> None:
    # The sync user: no View Setup, so no Bulk job, however many records.
    setup = workspace(big_org, load=False)
    before = org_usage(big_org)

    report = Syncer(
        setup.runtime.connector, setup.workspace_id, setup.clock, purpose=sync.LOAD_PURPOSE
    ).run(full=True)

    assert report.complete and report.paused is None
    pages = {s: query_pages(big_org, s) for s in sync.OBJECTS}
    assert pages["Contact"] == 13 and sum(pages.values()) == 17
    # The five first pages in one call, then the Contacts' twelve more, five to a call (each page
    # naming the next within the call): 17 pages, 4 calls.
    assert report.calls == {"data": math.ceil(17 / 5)} == {"data": 4}
    assert org_usage(big_org) - before == 4 == setup.ledger_calls("data", "mirror_load")
    assert {o.via for o in report.objects.values()} == {"rest"}
    for sobject, got in report.objects.items():
        assert got.fetched == got.applied == got.counted == len(records(big_org, sobject)), sobject
    assert_mirror_equals_org(setup, big_org)


def test_above_the_threshold_a_bulk_job_reads_a_type_in_fewer_calls_with_the_same_fields(
    big_org: SandboxOrg, workspace: Connect
) -> None:
    setup = workspace(big_org)  # the sync user's load: query pages
    # The same workspace's sync user becomes the admin, who has View Setup: the Bulk API's
    # figures can be read, so Bulk query jobs are governed.
    login = SandboxLogin.read(big_org.state_dir / "sandbox.json", "admin")
    setup.runtime.connector.connect_sandbox(setup.workspace_id, login)
    assert isinstance(setup.clock, ManualClock)
    setup.clock.advance(31 * 60)  # past the sync interval: a full load loads in full again

    report = run(setup, full=True)

    assert report.complete and report.paused is None
    assert all(o.full for o in report.objects.values())
    vias = {name: o.via for name, o in report.objects.items()}
    assert vias == {
        "User": "rest", "Account": "rest", "Contact": "bulk", "Lead": "rest", "Opportunity": "rest"
    }  # fmt: skip
    # What query pages loaded, the Bulk job found identical, typed the same: nothing changed.
    assert {name: o.applied for name, o in report.objects.items()} == dict.fromkeys(sync.OBJECTS, 0)
    assert_mirror_equals_org(setup, big_org)
    # The five first pages (1), the `/limits` reading that says Bulk may go (1), and the job:
    # its create and one page of results (2), where pages would have taken 3 more calls.
    assert report.calls == {"data": 4, "bulk_query": 1}
    assert setup.ledger_calls("bulk_query", "mirror_sync") == 1


def test_the_initial_load_of_50000_contacts_takes_at_most_10_data_calls(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org()
    add_records(org, "Contact", 50_000)
    started = time.monotonic()
    setup = workspace(org, user="admin")  # connecting loads the mirror
    seconds = time.monotonic() - started

    assert mirrored(setup, "Contact").keys() == {r["Id"] for r in records(org, "Contact")}
    assert_mirror_equals_org(setup, org)
    data = setup.ledger_calls("data", "mirror_load") + setup.ledger_calls("data", "limits_check")
    print(
        f"\ninitial load of 50,000 Contacts: {data} Data calls, 1 Bulk query job, {seconds:.1f} s"
    )
    # The first pages, `/limits`, the job's create and its one page of 50,000 results.
    assert data == 1 + 1 + 2 <= 10
    assert setup.ledger_calls("bulk_query") == 1


def test_a_query_the_org_refuses_fails_its_own_type_only(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "20")
    setup = workspace(org, load=False)
    # A field this org lacks, asked of the Leads: their subrequest is answered 400 INVALID_FIELD
    # inside the composite's own 200.
    fields = {**sync.FIELDS, "Lead": (*sync.FIELDS["Lead"], "Rating__c")}

    report = Syncer(setup.runtime.connector, setup.workspace_id, setup.clock, fields=fields).run()

    lead = report.objects["Lead"]
    assert not lead.done and lead.error is not None and lead.error.startswith("INVALID_FIELD")
    assert report.paused is None and report.error is None
    assert [n for n, o in report.objects.items() if o.done] == [
        "User", "Account", "Contact", "Opportunity"
    ]  # fmt: skip
    assert report.calls == {"data": 1}
    assert mirrored(setup, "Lead") == {}
    assert set(mirrored(setup, "Contact")) == {r["Id"] for r in records(org, "Contact")}
    assert watermarks(setup)["Lead"] is None  # the next run loads the Leads again


# ---------------------------------------------------------------- the interval sync


def test_updates_and_deletes_made_by_another_app_reach_the_mirror_and_a_rerun_changes_nothing(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "30", "--speed", "0", "--epoch", EPOCH)
    setup = workspace(org)
    loader: Any = org.salesforce(
        "admin", "Data Loader"
    )  # another app: quotasync's count stays clean
    contact, gone_lead = records(org, "Contact")[0], records(org, "Lead")[0]
    account = records(org, "Account")[0]

    in_org_clock(org, 600)
    loader.Contact.update(contact["Id"], {"Title": "Chief Revenue Officer"})
    loader.Lead.delete(gone_lead["Id"])
    deal = loader.Opportunity.create(
        {"Name": "Acme - Expansion", "AccountId": account["Id"], "StageName": "Prospecting",
         "CloseDate": "2026-12-31", "Amount": 42000}
    )  # fmt: skip
    before = watermarks(setup)
    report = run(setup)

    assert report.complete and report.paused is None and report.error is None
    # Users and Accounts did not change: nothing newer than their watermarks, nothing fetched.
    assert {n: o.via for n, o in report.objects.items()} == {
        "User": None, "Account": None, "Contact": "rest", "Lead": "rest", "Opportunity": "rest"
    }  # fmt: skip
    assert report.objects["Lead"].deleted == 1
    assert report.objects["Contact"].applied == 1 and report.objects["Opportunity"].applied == 1
    assert_mirror_equals_org(setup, org)
    assert mirrored(setup, "Contact")[contact["Id"]].fields["Title"] == "Chief Revenue Officer"
    tombstone = mirrored(setup, "Lead", live=False)[gone_lead["Id"]]
    assert tombstone.is_deleted and tombstone.modstamp is not None
    assert tombstone.fields["SystemModstamp"] > gone_lead["SystemModstamp"]
    assert mirrored(setup, "Opportunity")[deal["id"]].fields["Amount"] == 42000
    after = watermarks(setup)
    for sobject in ("Contact", "Lead", "Opportunity"):
        assert after[sobject] > before[sobject]  # type: ignore[operator]
    with setup.runtime.sessions() as session:
        assert mirror.ids_by_email(session, setup.workspace_id, "Lead", [gone_lead["Email"]]) == {}

    # Again, with nothing new: nothing is newer than a watermark, and the mirror holds what the
    # org holds in each lookback window. One call, nothing fetched, nothing changed.
    spent = setup.ledger_calls("data")
    again = run(setup)
    assert again.complete
    assert sum(o.fetched + o.applied for o in again.objects.values()) == 0
    assert setup.ledger_calls("data") - spent == 1 == again.calls["data"]
    assert watermarks(setup) == after

    # Later, one change: one request counting the five types, one page for the Contact.
    in_org_clock(org, 600)
    loader.Contact.update(contact["Id"], {"Title": "CEO"})
    spent = setup.ledger_calls("data")
    one = run(setup)
    assert {n: o.counted for n, o in one.objects.items()} == {
        "User": 0, "Account": 0, "Contact": 1, "Lead": 0, "Opportunity": 0
    }  # fmt: skip
    assert setup.ledger_calls("data") - spent == 2 == one.calls["data"]
    assert mirrored(setup, "Contact")[contact["Id"]].fields["Title"] == "CEO"
    # quotasync spent only what its ledger says; the other app's calls are not in it.
    usage = org.control("GET", "usage")["DailyApiRequests"]["by_app"]
    assert usage["quotasync"] == setup.ledger_calls("data") and usage["Data Loader"] > 0


def test_a_sync_full_right_after_connecting_fetches_nothing_the_load_fetched(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "40")
    setup = workspace(org)  # connecting loaded the mirror, in one call

    report = run(setup, full=True)

    # Loaded moments ago: the sync goes on from the load's watermarks, one look at the five
    # types in one call, and fetches nothing.
    assert report.complete
    assert not any(o.full for o in report.objects.values())
    assert sum(o.fetched for o in report.objects.values()) == 0
    assert report.calls == {"data": 1}
    assert setup.ledger_calls("data") == 1 + 1 == org_usage(org)
    assert_mirror_equals_org(setup, org)


def test_connecting_the_workspace_to_another_org_loads_that_org_in_full(
    new_org: OrgFactory, workspace: Connect
) -> None:
    # Two sandbox orgs (they share an org id; their instances tell them apart).
    first, second = new_org("--seed", "12"), new_org("--seed", "8")
    setup = workspace(first)
    login = SandboxLogin.read(second.state_dir / "sandbox.json")
    setup.runtime.connector.connect_sandbox(setup.workspace_id, login)

    # Moments after the first org's load: still a full load, for the watermarks were another's.
    report = run(setup, full=True)

    assert all(o.full for o in report.objects.values())
    assert_mirror_equals_org(setup, second)


def test_a_full_load_tombstones_what_the_org_no_longer_has(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "20")
    setup = workspace(org)
    gone = records(org, "Contact")[3]
    loader: Any = org.salesforce("admin", "Data Loader")
    loader.Contact.delete(gone["Id"])
    assert isinstance(setup.clock, ManualClock)
    setup.clock.advance(31 * 60)  # the load at connect is older than the sync interval

    report = run(setup, full=True)

    assert report.objects["Contact"].full and report.objects["Contact"].deleted == 1
    assert gone["Id"] not in mirrored(setup, "Contact")
    assert mirrored(setup, "Contact", live=False)[gone["Id"]].is_deleted
    assert_mirror_equals_org(setup, org)


def test_many_changes_come_through_a_bulk_query_all_with_the_deletes(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "40")
    setup = workspace(org, user="admin")
    loader: Any = org.salesforce("admin", "Data Loader")
    leads = records(org, "Lead")
    for lead in leads[:3]:
        loader.Lead.delete(lead["Id"])
    add_records(org, "Lead", 24_000)  # an import: 12 pages of changes, more than 2 calls hold

    report = run(setup)

    assert report.complete
    got = report.objects["Lead"]
    assert not got.full and got.via == "bulk" and got.deleted == 3
    assert got.counted == len(records(org, "Lead", "IsDeleted = true OR IsDeleted = false")) + 3
    assert_mirror_equals_org(setup, org)
    assert {lead["Id"] for lead in leads[:3]} <= set(mirrored(setup, "Lead", live=False))
    # The looks (1), `/limits` (1), and the job: its create and one page of results (2).
    assert report.calls == {"data": 4, "bulk_query": 1}


# ---------------------------------------------------------------- the quota


def test_a_sync_the_quota_stops_keeps_what_it_applied_and_moves_only_finished_watermarks(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "20", "--daily-api-requests", "30")
    setup = workspace(org)  # connecting spent 1 call
    changed = {s: records(org, s)[0]["Id"] for s in ("Account", "Opportunity")}
    for sobject, record_id in changed.items():
        org.control("PATCH", f"records/{sobject}/{record_id}", {"Description": "changed"})
    add_records(org, "Contact", 6_000)  # 3 pages of new Contacts
    add_records(org, "Lead", 6_000)  # and of Leads
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        quota_rows.set_share(session, ws, "data", 10)  # 3 calls: 2 left
    before = watermarks(setup)
    contacts_before = len(mirrored(setup, "Contact"))

    report = run(setup)

    # The looks; then the changed Account and Opportunity with the first pages of the Contacts
    # (two of them) and the Leads. The pages after those would pass the share, and are not sent.
    assert report.paused is not None and report.paused.reason == "workspace_limit"
    assert "paused by the quota" in report.paused.message
    done = [n for n, o in report.objects.items() if o.done]
    assert done == ["User", "Account", "Opportunity"]
    assert setup.ledger_calls("data") == 3 == org_usage(org)
    assert report.calls == {"data": 2}
    after = watermarks(setup)
    assert after["Account"] > before["Account"]  # type: ignore[operator]
    assert after["Contact"] == before["Contact"] and after["Lead"] == before["Lead"]
    # What was applied stays: two pages of Contacts and one of Leads; the next run goes on.
    assert report.objects["Contact"].fetched == 4_000 and report.objects["Lead"].fetched == 2_000
    assert contacts_before < len(mirrored(setup, "Contact")) < len(records(org, "Contact"))

    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        quota_rows.set_share(session, ws, "data", 70)
    assert run(setup).complete
    assert_mirror_equals_org(setup, org)


def org_usage(org: SandboxOrg) -> int:
    """The calls the org counted for quotasync."""
    return int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("quotasync", 0))


# ---------------------------------------------------------------- the worker


def sync_due(setup: Setup) -> datetime | None:
    """When the workspace's interval sync is next due, as the worker's step reads it."""
    with setup.runtime.sessions() as session:
        workspace = session.get_one(Workspace, setup.workspace_id)
        return sync.next_due(session, workspace, setup.clock.now())


def test_the_worker_runs_the_interval_sync_when_due_and_only_hourly_in_realtime_mode(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "20")
    clock = ManualClock(T0)
    setup = workspace(org, clock=clock)
    loader: Any = org.salesforce("admin", "Data Loader")
    contact = records(org, "Contact")[0]
    pool, progress = setup.new_pool(), Progress()

    pool.turn(progress)  # connecting loaded the mirror: the first sync is 30 min on
    assert sync_due(setup) == T0 + timedelta(minutes=30)
    assert setup.ledger_entries("mirror_sync") == []
    loader.Contact.update(contact["Id"], {"Title": "Head of Growth"})
    clock.advance(29 * 60)
    pool.turn(progress)
    assert setup.ledger_entries("mirror_sync") == []
    assert mirrored(setup, "Contact")[contact["Id"]].fields["Title"] != "Head of Growth"

    clock.advance(60)
    pool.turn(progress)
    assert setup.ledger_entries("mirror_sync") != []
    assert mirrored(setup, "Contact")[contact["Id"]].fields["Title"] == "Head of Growth"
    assert sync_due(setup) == clock.now() + timedelta(minutes=30)
    with setup.runtime.sessions() as session:
        runs = {s.last_run_at for s in session.scalars(select(SyncState))}
    assert runs == {clock.now()}

    # A shorter interval applies from the next run on.
    setup.settings(sync_interval_minutes=5)
    clock.advance(5 * 60)
    spent = len(setup.ledger_entries("mirror_sync"))
    pool.turn(progress)
    assert len(setup.ledger_entries("mirror_sync")) > spent

    # In Real-Time mode the org pushes changes: no half-hourly sync, only the hourly
    # reconciling one that catches what the org could not push (one call when idle).
    setup.settings(sync_mode="realtime")
    clock.advance(5 * 60)
    pool.turn(progress)  # the sync just ran: nothing is due for an hour
    spent = len(setup.ledger_entries("mirror_sync"))
    clock.advance(31 * 60)
    pool.turn(progress)
    assert len(setup.ledger_entries("mirror_sync")) == spent
    clock.advance(31 * 60)
    pool.turn(progress)
    assert len(setup.ledger_entries("mirror_sync")) == spent + 1


def test_a_workspace_connected_before_sync_existed_gets_its_first_sync_at_once(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "10")
    setup = workspace(org, clock=ManualClock(T0))
    with setup.runtime.sessions.begin() as session:
        for state in session.scalars(select(SyncState)):
            session.delete(state)
    with setup.runtime.sessions() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        assert sync.due(session, ws, T0)

    setup.new_pool().turn(Progress())

    assert {e.purpose for e in setup.ledger_entries("mirror_sync")} == {"mirror_sync"}
    assert_mirror_equals_org(setup, org)
    with setup.runtime.sessions() as session:
        assert all(
            s.watermark is not None for s in sync_state.states(session, setup.workspace_id).values()
        )


# ---------------------------------------------------------------- mirror.apply on the store


# Salesforce ids: the mirror takes no other (domain/org_values.py).
CONTACT_A, CONTACT_B = "003000000000000AAA", "003000000000000BAA"


def row(record_id: str, at: datetime | None, **fields: Any) -> dict[str, Any]:
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000+0000") if at is not None else None
    return {"attributes": {"type": "Contact"}, "Id": record_id, "SystemModstamp": stamp,
            "IsDeleted": False, **fields}  # fmt: skip


def test_an_older_row_never_overwrites_a_newer_one_and_tombstones_are_not_matched(
    database_url: str, tmp_path: Path
) -> None:
    setup = open_workspace(tmp_path, database_url)
    ws, later = setup.workspace_id, T0 + timedelta(minutes=5)
    try:
        with setup.runtime.sessions.begin() as session:
            assert (
                mirror.apply(session, ws, "Contact", [row(CONTACT_A, later, Email="New@Corp.io")])
                == 1
            )
            # A late row (a push that took its time, a page fetched before the change).
            assert (
                mirror.apply(session, ws, "Contact", [row(CONTACT_A, T0, Email="old@corp.io")]) == 0
            )
            # The same row again changes nothing; a row with no SystemModstamp fills no gap.
            assert (
                mirror.apply(session, ws, "Contact", [row(CONTACT_A, later, Email="New@Corp.io")])
                == 0
            )
            assert (
                mirror.apply(session, ws, "Contact", [{"Id": CONTACT_A, "Email": "x@corp.io"}]) == 0
            )
            # Two rows of one record in a batch: the newer wins, whatever the order.
            batch = [row(CONTACT_B, later, Title="CFO"), row(CONTACT_B, T0, Title="Intern")]
            assert mirror.apply(session, ws, "Contact", batch) == 1
            assert mirror.ids_by_email(session, ws, "Contact", ["new@corp.io"]) == {
                "new@corp.io": CONTACT_A
            }
        stored = {r.salesforce_id: r for r in mirrored(setup, "Contact").values()}
        assert stored[CONTACT_A].fields["Email"] == "New@Corp.io"
        assert stored[CONTACT_A].modstamp == later
        assert stored[CONTACT_B].fields["Title"] == "CFO"

        deleted_at = later + timedelta(minutes=1)
        with setup.runtime.sessions.begin() as session:
            # A tombstone carries only what a delete says; the record's fields stay.
            gone = {"Id": CONTACT_A, "IsDeleted": True, "SystemModstamp": deleted_at}
            assert mirror.apply(session, ws, "Contact", [gone]) == 1
            # An update from before the delete, arriving after it, does not bring it back.
            assert mirror.apply(session, ws, "Contact", [row(CONTACT_A, later, Title="CEO")]) == 0
            assert mirror.ids_by_email(session, ws, "Contact", ["new@corp.io"]) == {}
            assert mirror.count(session, ws, "Contact", live=True) == 1
        tombstone = mirrored(setup, "Contact", live=False)[CONTACT_A]
        assert tombstone.is_deleted and tombstone.modstamp == deleted_at
        assert tombstone.fields["Email"] == "New@Corp.io"

        with setup.runtime.sessions.begin() as session:
            # A Lead quotasync created is known by id and email until the org describes it.
            assert (
                mirror.put(
                    session, ws, "Lead", [{"Id": "00Q000000000000AAA", "Email": "a@b.io"}], T0
                )
                == 1
            )
            assert mirror.ids_by_email(session, ws, "Lead", ["a@b.io"]) == {
                "a@b.io": "00Q000000000000AAA"
            }
            described = {**row("00Q000000000000AAA", T0, Email="a@b.io"), "Company": "B"}
            assert mirror.apply(session, ws, "Lead", [described]) == 1
        assert mirrored(setup, "Lead")["00Q000000000000AAA"].modstamp == T0
    finally:
        setup.close()


def test_applying_a_big_batch_twice_writes_it_once(database_url: str, tmp_path: Path) -> None:
    setup = open_workspace(tmp_path, database_url)
    rows = [row(f"003{n:015d}", T0, Email=f"p{n}@corp.io") for n in range(20_000)]
    try:
        started = time.monotonic()
        with setup.runtime.sessions.begin() as session:
            assert mirror.apply(session, setup.workspace_id, "Contact", rows) == 20_000
        first = time.monotonic() - started
        with setup.runtime.sessions.begin() as session:
            assert mirror.apply(session, setup.workspace_id, "Contact", rows) == 0
        print(f"\n20,000 rows applied in {first:.1f} s")
        with setup.runtime.sessions() as session:
            assert mirror.count(session, setup.workspace_id, "Contact") == 20_000
            entries = session.scalars(select(LedgerEntry)).all()
        assert entries == []
    finally:
        setup.close()


def test_values_salesforce_could_not_have_sent_never_break_the_mirror(
    database_url: str, tmp_path: Path
) -> None:
    """On PostgreSQL an over-long id or email would have failed the whole statement (a push or a
    sync stuck on one record): the bad row or field is left out, the rest applied."""
    setup = open_workspace(tmp_path, database_url)
    rows = [
        row("003" + "A" * 200, T0, Email="long-id@corp.io"),  # not an id: left out
        row("0030000000000BADSTAMP"[:18], None, Email="no@corp.io") | {"SystemModstamp": "soon"},
        row("003000000000000001", T0, Email="x" * 300 + "@corp.io", Name={"not": "text"}),
        row("003000000000000002", T0, Email="kept@corp.io", LastName="Kept"),
    ]
    try:
        with setup.runtime.sessions.begin() as session:
            assert mirror.apply(session, setup.workspace_id, "Contact", rows) == 2
        with setup.runtime.sessions() as session:
            stored = mirror.records(session, setup.workspace_id, "Contact")
            found = {record_id: dict(r.fields) for record_id, r in stored.items()}
        assert sorted(found) == ["003000000000000001", "003000000000000002"]
        assert "Email" not in found["003000000000000001"]
        assert "Name" not in found["003000000000000001"]
        assert found["003000000000000002"]["Email"] == "kept@corp.io"
    finally:
        setup.close()
