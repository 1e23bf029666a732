"""Activity logging end to end: activities accepted into the outbox, the worker writing them to a
sandbox org (a real subprocess over HTTPS) as Tasks and Events, and what a user of the org or of
quotasync then sees: the records, the outbox states, the calls spent."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from quotasync.clock import ManualClock, RealClock
from quotasync.engine.worker import Progress
from quotasync.store import outbox
from quotasync.store.tables import LedgerEntry
from tests.integration.logging_support import (
    CLI,
    Connect,
    People,
    Setup,
    by_activity_id,
    duplicates,
    expected_events,
    expected_tasks,
    open_workspace,
    people,
    records,
    reply_lines,
    sf_time,
    stream,
)
from tests.processes import cli
from tests.sandbox_process import SandboxOrg

OrgFactory = Callable[..., SandboxOrg]
EPOCH = "2026-11-28T00:00:00Z"
# Ingest does not look anyone up: made-up reps and recipients do.
NOBODY_IN_PARTICULAR = People(
    {f"rep{n}@acme.io": "" for n in range(3)}, {f"buyer{n}@corp.example": "" for n in range(9)}, {}
)
EMAIL_KINDS = {"email_sent", "email_opened", "link_clicked", "email_replied"}


@pytest.fixture
def unconnected(database_url: str, tmp_path: Path) -> Iterator[Setup]:
    """A workspace that is not connected to any org: ingest needs none."""
    setup = open_workspace(tmp_path, database_url)
    yield setup
    setup.close()


def assert_each_in_org_once(
    org: SandboxOrg, activities: list[dict[str, Any]], *workspaces: Setup
) -> None:
    """One Task per email and one live Event per meeting not canceled last, in the `workspaces`'
    own records; nothing else."""
    prefixes = [w.prefix for w in workspaces]
    tasks, events = records(org, "Task"), records(org, "Event")
    assert duplicates(tasks) == {}
    assert duplicates(events) == {}
    assert set(by_activity_id(tasks, prefixes)) == set(expected_tasks(activities))
    live = {k for k, e in expected_events(activities).items() if not e.canceled}
    assert set(by_activity_id(events, prefixes)) == live


# ---------------------------------------------------------------- 1. the main flow


def test_5000_activities_from_20_reps_end_as_exactly_the_right_tasks_and_events(
    new_org: OrgFactory, database_url: str, workspace: Connect
) -> None:
    org = new_org("--seed", "300")
    known = people(org)
    assert len(known.reps) == 20
    setup = workspace(org, database_url)
    activities = stream(known, 5000)
    # The email product posts as things happen: five waves, the worker catching up after each.
    for start in range(0, len(activities), 1000):
        summary = setup.ingest(activities[start : start + 1000])
        assert summary.accepted == 1000 and not summary.errors
        setup.drive()

    assert setup.states() == {"logged": 5000}
    tasks = setup.by_activity_id(records(org, "Task"))
    expected = expected_tasks(activities)
    assert {k: len(v) for k, v in tasks.items() if len(v) > 1} == {}
    assert set(tasks) == set(expected)
    for key, want in expected.items():
        task = tasks[key][0]
        assert task["WhoId"] == known.who(want.first_recipient), key
        assert task["OwnerId"] == known.reps[want.rep], key
        assert task["QS_Opens__c"] == want.opens, key
        assert task["QS_Clicks__c"] == want.clicks, key
        assert reply_lines(task["Description"]) == want.replies, key
        assert task["Subject"].startswith("Email"), key

    events = setup.by_activity_id(records(org, "Event"))
    meetings = expected_events(activities)
    assert {k: len(v) for k, v in events.items() if len(v) > 1} == {}
    assert set(events) == {k for k, m in meetings.items() if not m.canceled}
    assert any(m.canceled for m in meetings.values())
    assert any(m.changes and not m.canceled for m in meetings.values())
    for key, meeting in meetings.items():
        if meeting.canceled:
            continue
        event = events[key][0]
        assert sf_time(event["StartDateTime"]) == meeting.start, key
        assert sf_time(event["EndDateTime"]) == meeting.end, key
        assert event["OwnerId"] == known.reps[meeting.rep], key
        assert meeting.attendee is not None
        assert event["WhoId"] == known.who(meeting.attendee), key
    canceled = [k for k, m in meetings.items() if m.canceled]
    quoted = ", ".join(f"'{setup.external_id(key)}'" for key in canceled)
    assert records(org, "Event", f"QS_Activity_Id__c IN ({quoted})") == []

    # The ledger agrees with the org about the calls spent, and batching packs many activities
    # into each call.
    spent = setup.runtime.connector.ledger.by_purpose(setup.workspace_id)
    usage = org.control("GET", "usage")["DailyApiRequests"]
    assert sum(spent.values()) == usage["by_app"]["quotasync"]
    assert spent["log_activity"] == sum(spent.values()) - spent["mirror_load"] - spent.get(
        "lookup", 0
    )
    per_call = 5000 / spent["log_activity"]
    print(f"\n5,000 activities in {spent['log_activity']} log_activity calls: {per_call:.0f}/call")
    assert per_call >= 100


# ---------------------------------------------------------------- 2. crashes and lost answers


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def call_in_flight(setup: Setup) -> bool:
    """The worker's last ledgered call was sent and has had no answer yet."""
    with setup.runtime.sessions() as session:
        last = session.scalars(
            select(LedgerEntry)
            .where(LedgerEntry.workspace_id == setup.workspace_id)
            .order_by(LedgerEntry.id.desc())
            .limit(1)
        ).first()
    return last is not None and last.purpose == "log_activity" and last.status is None


def test_a_worker_killed_mid_batch_and_restarted_leaves_no_duplicate_and_no_gap(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org, clock=RealClock())
    # The least time allowed: the worker runs in real time, and the last batch is partial.
    setup.settings(log_within=5)
    # Several calls' worth (a call carries up to 1,000 records), so one can be cut mid-way.
    activities = stream(people(org), 3000)
    assert setup.ingest(activities).accepted == 3000
    org.control("POST", "faults", {"latency_ms": 300})
    # The killed worker's batch stays claimed, and its workspace leased, this long; then the
    # restarted worker takes them.
    env = {**setup.cli_env(), "QUOTASYNC_CLAIM_SECONDS": "3", "QUOTASYNC_LEASE_SECONDS": "3"}
    worker = subprocess.Popen(
        [*CLI, "worker"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: setup.states().get("logged", 0) > 0, 60, "a first batch to be logged")
        wait_for(lambda: call_in_flight(setup), 30, "a write to be in flight")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    killed_at = setup.states()
    assert 0 < killed_at.get("logged", 0) < 3000, killed_at

    org.control("POST", "faults", {"latency_ms": 0})
    finished = cli(["worker", "--until-idle"], env, timeout=90)
    assert finished.returncode == 0, finished.stderr
    assert setup.states() == {"logged": 3000}
    assert_each_in_org_once(org, activities, setup)


def meeting(rep: str, attendee: str, key: str) -> list[dict[str, Any]]:
    """A meeting booked, and then canceled."""
    booked = {
        "id": key,
        "kind": "meeting_booked",
        "occurred_at": "2026-11-02T09:00:00+00:00",
        "user_email": rep,
        "subject": "Intro call",
        "meeting": {
            "start": "2026-11-09T10:00:00+00:00",
            "end": "2026-11-09T10:30:00+00:00",
            "attendees": [attendee],
        },
    }
    canceled = {
        "id": f"{key}-canceled",
        "kind": "meeting_canceled",
        "occurred_at": "2026-11-02T09:05:00+00:00",
        "user_email": rep,
        "meeting_id": key,
    }
    return [booked, canceled]


@pytest.mark.parametrize("lost", ["the answer dropped", "the worker killed"])
def test_a_meeting_canceled_after_its_write_went_unanswered_is_deleted_all_the_same(
    new_org: OrgFactory, workspace: Connect, lost: str
) -> None:
    """The Event's write was carried out but its answer never came back (a dropped connection;
    a worker killed mid-call), so its id is unknown; the cancel arrives before the write is
    retried. Found by the fault soak: the Event stayed in the org, a canceled meeting still in
    the rep's calendar."""
    org = new_org("--seed", "60")
    setup = workspace(org)
    setup.settings(log_within=0)
    known = people(org)
    booked, canceled = meeting(sorted(known.reps)[0], known.recipients[0], "mt-unanswered")
    setup.ingest([booked])
    org.control("POST", "faults", {"drop_rate": 1})
    setup.new_pool().turn(Progress())
    org.control("POST", "faults", {"drop_rate": 0})
    assert setup.rows()["mt-unanswered"].attempts == 1  # to be retried after a backoff
    if lost == "the worker killed":
        # What a worker killed mid-call leaves: no outcome, the activity claimed for a while.
        with setup.runtime.sessions.begin() as session:
            outbox.mark(
                session,
                setup.workspace_id,
                ["mt-unanswered"],
                attempts=0,
                next_attempt_at=setup.clock.now() + outbox.CLAIM,
            )
    assert (
        len(records(org, "Event", f"QS_Activity_Id__c = '{setup.external_id('mt-unanswered')}'"))
        == 1
    )

    setup.ingest([canceled])
    setup.drive()
    assert setup.states() == {"logged": 2}
    assert (
        records(org, "Event", f"QS_Activity_Id__c = '{setup.external_id('mt-unanswered')}'") == []
    )


def test_writes_whose_answer_was_lost_are_retried_without_duplicates(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    activities = stream(people(org), 800, seed=11)
    setup.ingest(activities)
    org.control("POST", "faults", {"drop_rate": 0.4})
    setup.drive()
    org.control("POST", "faults", {"drop_rate": 0})

    unanswered = [e for e in setup.ledger_entries("log_activity") if e.status is None]
    assert unanswered, "no connection was dropped: the test proved nothing"
    assert setup.states() == {"logged": 800}
    assert_each_in_org_once(org, activities, setup)


# ---------------------------------------------------------------- 3. a record Salesforce refuses


def email_with_follow_ups(rep: str, to: str, key: str, at: str) -> list[dict[str, Any]]:
    sent = {
        "id": key,
        "kind": "email_sent",
        "occurred_at": at,
        "user_email": rep,
        "to": [to],
        "subject": "Pricing for your team",
        "body": "Hi,\n\nthe numbers.",
    }
    follow = {"occurred_at": at, "user_email": rep, "to": [to], "email_id": key}
    return [
        sent,
        {**follow, "id": f"{key}-open", "kind": "email_opened"},
        {**follow, "id": f"{key}-click", "kind": "link_clicked", "url": "https://example.com/p"},
        {**follow, "id": f"{key}-reply", "kind": "email_replied", "subject": "Re: Pricing"},
    ]


def test_a_record_salesforce_rejects_parks_only_that_activity_with_salesforces_message(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    known = people(org)
    victim = sorted(known.contacts)[0]
    setup = workspace(org)  # the mirror now knows the victim's Contact
    org.salesforce().restful(f"sobjects/Contact/{known.contacts[victim]}", method="DELETE")
    others = type(known)(known.reps, {k: v for k, v in known.contacts.items() if k != victim}, {})
    batch = stream(others, 150)
    rep = sorted(known.reps)[0]
    doomed = email_with_follow_ups(rep, victim, "em-doomed", "2026-11-02T09:00:00+00:00")
    assert setup.ingest([*batch[:70], *doomed, *batch[70:]]).accepted == 154
    setup.drive()

    rows = setup.rows()
    assert rows["em-doomed"].state == "failed"
    error = rows["em-doomed"].last_error or ""
    # Salesforce's code and its message, for a person to read.
    assert error.startswith("ENTITY_IS_DELETED: entity is deleted"), error
    for follow_up in ("em-doomed-open", "em-doomed-click", "em-doomed-reply"):
        assert rows[follow_up].state == "failed", follow_up
    assert {rows[a["id"]].state for a in batch} == {"logged"}
    assert records(org, "Task", f"QS_Activity_Id__c = '{setup.external_id('em-doomed')}'") == []
    assert_each_in_org_once(org, batch, setup)

    # A follow-up arriving later is failed as well, naming its email's error.
    late = email_with_follow_ups(rep, victim, "em-doomed", "2026-11-02T10:00:00+00:00")[1]
    setup.ingest([{**late, "id": "em-doomed-late-open"}])
    setup.drive()
    late_row = setup.rows()["em-doomed-late-open"]
    assert late_row.state == "failed"
    assert "em-doomed was failed" in (late_row.last_error or "")


# ---------------------------------------------------------------- 4. open tracking off


def test_with_open_tracking_off_no_opens_or_clicks_are_written_but_emails_are(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    setup.settings(open_tracking=False)
    activities = [a for a in stream(people(org), 500, seed=3) if a["kind"] in EMAIL_KINDS]
    setup.ingest(activities)
    setup.drive()

    rows = setup.rows()
    for activity in activities:
        row = rows[activity["id"]]
        if activity["kind"] in ("email_opened", "link_clicked"):
            assert (row.state, row.last_error) == ("skipped", "open tracking is off")
        else:
            assert row.state == "logged", activity["id"]
    tasks = records(org, "Task")
    assert len(tasks) == sum(a["kind"] == "email_sent" for a in activities)
    assert all(t.get("QS_Opens__c") is None and t.get("QS_Clicks__c") is None for t in tasks)
    quiet = sum(a["kind"] in ("email_opened", "link_clicked") for a in activities)
    with setup.runtime.sessions() as session:
        assert outbox.skipped_reasons(session, setup.workspace_id) == {"open_tracking_off": quiet}
    replied = expected_tasks(activities)
    assert sum(reply_lines(t["Description"]) for t in tasks) == sum(
        t.replies for t in replied.values()
    )


# ---------------------------------------------------------------- 5. locks and 5xx


def test_lock_errors_and_server_errors_are_retried_with_backoff_until_all_is_logged_once(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    setup.settings(log_within=0)
    activities = stream(people(org), 800, seed=5)
    setup.ingest(activities)
    clock = setup.clock
    assert isinstance(clock, ManualClock)

    # Every call answered 503: the batch (all of it: one call carries up to 1,000 records)
    # goes back to pending with a retry time.
    org.control("POST", "faults", {"error_rate": 1})
    setup.new_pool().turn(Progress())
    rows = setup.rows()
    bounced = [r for r in rows.values() if r.attempts == 1]
    # (Meetings booked and canceled within the batch needed no call: they are done.)
    unwritten = [r for r in rows.values() if r.state == "logged"]
    assert all(r.kind.startswith("meeting_") and not r.salesforce_id for r in unwritten)
    assert len(bounced) == 800 - len(unwritten)
    assert {r.state for r in bounced} == {"pending"}
    assert all(r.next_attempt_at and r.next_attempt_at > clock.now() for r in bounced)
    assert {e.status for e in setup.ledger_entries("log_activity")} == {503}

    # Then locks on a share of the records and 5xx on a share of the calls, until all is done.
    org.control("POST", "faults", {"lock_rate": 0.3, "error_rate": 0.2})
    setup.drive()
    org.control("POST", "faults", {"lock_rate": 0, "error_rate": 0})

    rows = setup.rows()
    assert {r.state for r in rows.values()} == {"logged"}
    first = {b.id for b in bounced}
    locked = [r for r in rows.values() if r.attempts > (1 if r.id in first else 0)]
    assert locked, "no lock was met: the test proved nothing"
    assert_each_in_org_once(org, activities, setup)
    # Refused calls (503) cost nothing, in the org's count and in the ledger alike.
    spent = setup.runtime.connector.ledger.by_purpose(setup.workspace_id)
    assert (
        sum(spent.values())
        == org.control("GET", "usage")["DailyApiRequests"]["by_app"]["quotasync"]
    )


# ---------------------------------------------------------------- 6. an expired session


def test_an_expired_session_is_refreshed_once_and_the_work_continues(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    activities = stream(people(org), 600, seed=9)
    setup.ingest(activities[:200])
    setup.drive()
    assert org.control("POST", "faults", {"expire_sessions": True})["expired_sessions"] >= 1
    setup.ingest(activities[200:])
    setup.drive()

    assert setup.states() == {"logged": 600}
    assert len(setup.ledger_entries("refresh_token")) == 1
    assert_each_in_org_once(org, activities, setup)


# ---------------------------------------------------------------- 7. the org's limit


def test_request_limit_exceeded_pauses_the_workspace_keeps_the_work_and_resumes_a_day_later(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60", "--speed", "0", "--epoch", EPOCH)
    clock = ManualClock(datetime.fromisoformat(EPOCH.replace("Z", "+00:00")).astimezone(UTC))
    setup = workspace(org, clock=clock)
    pool = setup.new_pool()
    progress = Progress()
    pool.turn(progress)  # quotasync's first look at the org: far from every limit
    # Then, before quotasync looks again, other apps spend the whole quota: the org refuses
    # on its own what quotasync's figures still allow.
    spent = org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 10**6})
    assert spent["usage"]["used"] == spent["usage"]["max"]
    activities = stream(people(org), 500, seed=13)
    assert setup.ingest(activities).accepted == 500

    for _ in range(3):
        pool.turn(progress)
        clock.advance(60)
    assert progress.paused == {setup.workspace_id: "salesforce_refused"}
    # Meetings booked and canceled within the batch needed no call: they are done. The rest
    # waits.
    unwritten = [r for r in setup.rows().values() if r.state == "logged"]
    assert all(r.record_type == "Event" and not r.salesforce_id for r in unwritten)
    assert setup.states().get("pending") == 500 - len(unwritten)
    assert records(org, "Task") == [] and records(org, "Event") == []
    # Accepting goes on while paused.
    more = stream(people(org), 600, seed=13)[500:]
    assert setup.ingest(more).accepted == 100

    org.control("POST", "clock", {"advance_seconds": 24 * 3600 + 60})
    clock.advance(24 * 3600)
    setup.drive()
    assert setup.states() == {"logged": 600}
    assert_each_in_org_once(org, [*activities, *more], setup)


# ---------------------------------------------------------------- 8. unmatched recipients


def strangers_stream(org: SandboxOrg, count: int) -> list[dict[str, Any]]:
    return stream(people(org), count, seed=17, strangers=0.25)


def is_stranger(email: str) -> bool:
    return email.startswith("stranger")


def origin_recipient(activity: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str:
    origin = by_id[activity.get("email_id") or activity.get("meeting_id") or activity["id"]]
    if origin["kind"] == "email_sent":
        return str(origin["to"][0])
    return str(origin["meeting"]["attendees"][0])


def test_unmatched_recipients_are_skipped_by_default_naming_the_email(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    activities = strangers_stream(org, 400)
    setup.ingest(activities)
    setup.drive()

    by_id = {a["id"]: a for a in activities}
    rows = setup.rows()
    unknown = [a for a in activities if is_stranger(origin_recipient(a, by_id))]
    assert unknown
    for activity in activities:
        row, recipient = rows[activity["id"]], origin_recipient(activity, by_id)
        if is_stranger(recipient):
            assert row.state == "skipped", activity["id"]
            assert recipient in (row.last_error or ""), row.last_error
        else:
            assert row.state == "logged", activity["id"]
    written = set(setup.by_activity_id(records(org, "Task"))) | set(
        setup.by_activity_id(records(org, "Event"))
    )
    assert not written & {a["id"] for a in unknown}
    assert records(org, "Lead", "Email LIKE 'stranger%'") == []
    # Unmatched recipients are counted, apart from other reasons to skip.
    with setup.runtime.sessions() as session:
        assert outbox.skipped_reasons(session, setup.workspace_id) == {"unmatched": len(unknown)}


def test_unmatched_recipients_are_logged_without_a_who_under_log_unlinked(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    setup.settings(unmatched="log_unlinked")
    activities = strangers_stream(org, 400)
    setup.ingest(activities)
    setup.drive()

    assert set(setup.states()) == {"logged"}
    assert_each_in_org_once(org, activities, setup)
    tasks = setup.by_activity_id(records(org, "Task"))
    for key, task in expected_tasks(activities).items():
        if is_stranger(task.first_recipient):
            assert tasks[key][0].get("WhoId") is None, key
        else:
            assert tasks[key][0].get("WhoId") is not None, key


def test_unmatched_recipients_get_one_new_lead_each_under_create_lead(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    setup.settings(unmatched="create_lead")
    activities = strangers_stream(org, 400)
    setup.ingest(activities)
    setup.drive()

    assert set(setup.states()) == {"logged"}
    assert_each_in_org_once(org, activities, setup)
    leads: dict[str, list[str]] = {}
    for lead in records(org, "Lead", "Email LIKE 'stranger%'"):
        leads.setdefault(lead["Email"], []).append(lead["Id"])
    by_id = {a["id"]: a for a in activities}
    wanted = {origin_recipient(a, by_id) for a in activities}
    assert set(leads) == {e for e in wanted if is_stranger(e)}
    assert {e: len(ids) for e, ids in leads.items() if len(ids) > 1} == {}
    tasks = setup.by_activity_id(records(org, "Task"))
    for key, task in expected_tasks(activities).items():
        if is_stranger(task.first_recipient):
            assert tasks[key][0]["WhoId"] == leads[task.first_recipient][0], key


# ---------------------------------------------------------------- 9. a big backlog


def test_a_big_backlog_goes_through_one_bulk_job_and_still_yields_one_record_per_email(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    # The admin user has View Setup, so `/limits` tells the Bulk figures that govern the job.
    setup = workspace(org, user="admin")
    setup.settings(bulk_threshold=500)
    activities = [a for a in stream(people(org), 3000, seed=21) if a["kind"] in EMAIL_KINDS]
    activities = activities[:1500]
    assert setup.ingest(activities).accepted == 1500
    setup.drive()

    assert setup.states() == {"logged": 1500}
    assert setup.ledger_calls(api="bulk") == 1
    usage = org.control("GET", "usage")["DailyBulkApiBatches"]
    assert usage["by_app"]["quotasync"] == 1
    assert_each_in_org_once(org, activities, setup)
    tasks = setup.by_activity_id(records(org, "Task"))
    for key, want in expected_tasks(activities).items():
        assert tasks[key][0]["QS_Opens__c"] == want.opens, key

    # Without View Setup the Bulk figures are closed, so Bulk is not used (RULES.md: Without View
    # Setup, Data only): the same kind of backlog goes through sObject Collections, governed by the
    # Data share.
    data_only = workspace(org)
    data_only.settings(bulk_threshold=500)
    more = [a for a in stream(people(org), 3000, seed=31) if a["kind"] in EMAIL_KINDS][:1000]
    assert data_only.ingest(more).accepted == 1000
    data_only.drive()
    assert data_only.states() == {"logged": 1000}
    assert data_only.ledger_calls(api="bulk") == 0
    # Five collections of 200 in one composite: one call.
    assert data_only.ledger_calls(api="data", purpose="log_activity") == 1
    assert org.control("GET", "usage")["DailyBulkApiBatches"]["by_app"]["quotasync"] == 1
    assert_each_in_org_once(
        org, activities + more, setup, data_only
    )  # the first workspace's, and these


# ---------------------------------------------------------------- 10. ingest rules


def test_a_repeated_id_is_acknowledged_and_not_stored_again(
    unconnected: Setup,
) -> None:
    setup = unconnected
    first, second = stream(NOBODY_IN_PARTICULAR, 2, seed=1)
    assert setup.ingest([first, first]).as_dict() == {
        "accepted": 1,
        "duplicates": 1,
        "errors": [],
    }
    changed = {**first, "subject": "something else"}
    assert setup.ingest([changed, second]).as_dict() == {
        "accepted": 1,
        "duplicates": 1,
        "errors": [],
    }
    rows = setup.rows()
    assert set(rows) == {first["id"], second["id"]}
    assert rows[first["id"]].payload.get("subject") == first.get("subject")


def test_invalid_items_get_422_entries_naming_the_field_and_the_valid_ones_are_stored(
    unconnected: Setup,
) -> None:
    setup = unconnected
    good = stream(NOBODY_IN_PARTICULAR, 2, seed=1)
    bad_kind = {**good[0], "id": "bad-kind", "kind": "email_sent_twice"}
    bad_to = {**good[0], "id": "bad-to", "kind": "email_sent", "to": ["not an address"]}
    summary = setup.ingest([good[0], bad_kind, "not an object", good[1], bad_to]).as_dict()

    assert (summary["accepted"], summary["duplicates"]) == (2, 0)
    errors = {e["index"]: e for e in summary["errors"]}
    assert set(errors) == {1, 2, 4}
    assert all(e["status"] == 422 for e in errors.values())
    assert errors[1]["id"] == "bad-kind"
    assert [p["field"] for p in errors[1]["problems"]] == ["kind"]
    assert "must be one of" in errors[1]["problems"][0]["message"]
    assert "JSON object" in errors[2]["problems"][0]["message"]
    assert [p["field"] for p in errors[4]["problems"]] == ["to[0]"]
    assert "not a valid email address" in errors[4]["problems"][0]["message"]
    assert set(setup.rows()) == {good[0]["id"], good[1]["id"]}


def test_a_cli_import_with_one_bad_line_reports_that_line_and_stores_the_rest(
    unconnected: Setup, tmp_path: Path
) -> None:
    setup = unconnected
    activities = stream(NOBODY_IN_PARTICULAR, 30, seed=2)
    lines = [json.dumps(a) for a in activities]
    lines.insert(11, json.dumps({**activities[0], "id": "x-1", "occurred_at": "yesterday"}))
    file = tmp_path / "activities.jsonl"
    file.write_text("\n".join(lines) + "\n")

    result = setup.cli("activities", "import", "--workspace", setup.workspace_id, str(file))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "accepted 30" in result.stdout
    assert "invalid 1" in result.stdout
    assert "line 12" in result.stderr and "occurred_at" in result.stderr
    assert set(setup.rows()) == {a["id"] for a in activities}

    again = setup.cli(
        "activities", "import", "--workspace", setup.workspace_id, "--json", str(file)
    )
    assert json.loads(again.stdout)["duplicates"] == 30
    assert [e["line"] for e in json.loads(again.stdout)["errors"]] == [12]
