"""The workspace share and the org guard, enforced before each call (issue: the quota governor)."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from quotasync.clock import ManualClock
from quotasync.domain import governor
from quotasync.engine.checker import LimitsChecker
from quotasync.engine.notifier import Notifier
from quotasync.engine.pool import Pool
from quotasync.engine.worker import Progress, Worker
from quotasync.engine.writer import COLLECTIONS_ONLY
from quotasync.store import quota_rows
from quotasync.store.tables import Connection, PauseEpisode, Workspace
from tests.databases import postgres_url
from tests.integration.logging_support import CLI, Connect, Setup, people, records, stream
from tests.integration.test_auth import sobject
from tests.integration.test_logging import OrgFactory, assert_each_in_org_once
from tests.processes import finish, spawn
from tests.sandbox_process import SandboxOrg

EMAILS = {"email_sent"}


def quotasync_calls(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("quotasync", 0))


def guarded_org(
    new_org: OrgFactory, workspace: Connect, *, user: str, log_within: int
) -> tuple[SandboxOrg, ManualClock, Setup]:
    """An org of 1,000 Data calls a day on a still clock, and a workspace connected to it as
    `user` whose pauses recheck every 5 minutes: the scene of the guard tests."""
    org = new_org("--seed", "60", "--daily-api-requests", "1000", "--speed", "0", "--epoch", EPOCH)
    clock = ManualClock(datetime.fromisoformat(EPOCH.replace("Z", "+00:00")))
    setup = workspace(org, clock=clock, user=user)
    setup.settings(log_within=log_within)
    with setup.runtime.sessions.begin() as session:
        stored = session.get(Workspace, setup.workspace_id)
        assert stored is not None
        quota_rows.set_settings(session, stored, recheck_minutes=5)
    return org, clock, setup


def test_the_share_reached_pauses_the_workspace_until_its_own_calls_leave_the_window(
    new_org: OrgFactory, workspace: Connect
) -> None:
    # An org of 200 calls; a 10% share is 20 calls, of which the connect's mirror load took one.
    org = new_org("--seed", "60", "--daily-api-requests", "200", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC))
    setup = workspace(org, clock=clock)
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        quota_rows.set_share(session, ws, "data", 10)
        ws.log_within = 0
        ws.bulk_threshold = 1_000_000  # collections only: one call per 200 records
    activities = [a for a in stream(people(org), 9000, seed=21) if a["kind"] in EMAILS][:4400]
    # 4,400 emails: 22 calls of 200, more than the share leaves; full batches remain when it is
    # spent (a partial one would be held by pacing, which sees the share gone, before it tried).
    setup.ingest(activities)

    # Calls of 200 records (the shape before composite requests): the share rules are the same
    # whatever a call carries, and a smaller call spends the share with fewer activities.
    pool = setup.new_pool(COLLECTIONS_ONLY)
    progress = Progress()
    for _ in range(40):
        pool.turn(progress)
        if progress.paused:
            break
    assert progress.paused == {setup.workspace_id: "workspace_limit"}
    assert setup.ledger_calls("data") == 20 == quotasync_calls(org)  # not one call past the share
    pending_at_pause = setup.states().get("pending", 0)
    assert pending_at_pause > 0

    # Still accepted and stored while paused.
    late = [a for a in stream(people(org), 400, seed=22) if a["kind"] in EMAILS][:50]
    assert setup.ingest(late).accepted == len(late)

    # The pause knows when room returns: when the oldest of its own calls leave the window.
    writer = pool.worker.writers[setup.workspace_id]
    first_call = min(e.at for e in setup.ledger_entries("mirror_load"))
    assert writer.resume_at == first_call + timedelta(hours=24)
    # Until then it looks again every 30 minutes, and looking costs no call.
    looks = 0
    while clock.now() + timedelta(minutes=30) < writer.resume_at:
        clock.advance(30 * 60)
        pool.turn(progress)
        looks += 1
    assert looks >= 40 and quotasync_calls(org) == 20
    assert progress.paused == {setup.workspace_id: "workspace_limit"}
    clock.advance((writer.resume_at - clock.now()).total_seconds())
    # ...and at that time, with the mirror load's calls gone from the window, it resumes.
    setup.drive()
    assert setup.states() == {"logged": len(activities) + len(late)}
    assert_each_in_org_once(org, activities + late, setup)


def test_four_workers_together_never_pass_the_share(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60", "--daily-api-requests", "300", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC))
    setup = workspace(org, clock=clock)
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        quota_rows.set_share(session, ws, "data", 10)  # 30 calls
        ws.log_within = 0
        ws.bulk_threshold = 1_000_000  # collections only: one call per 200 records
    activities = [a for a in stream(people(org), 20000, seed=23) if a["kind"] in EMAILS][:8000]
    setup.ingest(activities)

    # Each pool turns until one of them has met the share. A turn while another pool holds the
    # workspace's lease steps nothing: counting turns would count how the threads happened to
    # interleave (a bound of 30 turns each once ended with 3 calls spent).
    stop = threading.Event()

    def work() -> None:
        pool = Pool(Worker(setup.runtime.connector, clock, shape=COLLECTIONS_ONLY), clock)
        progress = Progress()
        for _ in range(200_000):
            if stop.is_set():
                return
            pool.turn(progress)
            if progress.paused:
                stop.set()
                return
        stop.set()
        raise AssertionError("no pool met the share")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The org counted exactly what the ledger holds, and neither passed the share.
    assert quotasync_calls(org) == setup.ledger_calls("data") <= 30
    assert setup.ledger_calls("data") >= 28  # and the share was used, not left idle
    # Each writer claims its batch: no call re-sent another worker's, so every logging call
    # brought 200 new Tasks into the org.
    writes = setup.ledger_calls("data", "log_activity")
    assert len(records(org, "Task")) == 200 * writes


# ---------------------------------------------------------------- the org guard

EPOCH = "2026-11-28T00:00:00Z"


def in_step(org: SandboxOrg, clock: ManualClock, seconds: float) -> None:
    """Move quotasync's clock and the org's (frozen, --speed 0) clock together."""
    clock.advance(seconds)
    org.control("POST", "clock", {"advance_seconds": seconds})


def test_other_apps_at_the_guard_pause_syncing_which_looks_again_every_recheck_and_resumes(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60", "--daily-api-requests", "1000", "--speed", "0", "--epoch", EPOCH)
    clock = ManualClock(datetime.fromisoformat(EPOCH.replace("Z", "+00:00")))
    # The admin user has View Setup: quotasync reads `/limits` for its figures.
    setup = workspace(org, clock=clock, user="admin")
    setup.settings(log_within=0)
    # Other apps spend 95% of the org's 1,000 calls; the guard is at 900.
    org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 950})
    activities = [a for a in stream(people(org), 2000, seed=41) if a["kind"] in EMAILS][:600]
    setup.ingest(activities)
    notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
    # Batches of 200 (a full one is due at once whatever the paced delay).
    pool = Pool(Worker(setup.runtime.connector, clock, notifier, shape=COLLECTIONS_ONLY), clock)
    progress = Progress()
    setup.pool = pool  # the one that tells the admins, to the end of the backlog
    pool.turn(progress)
    assert progress.paused == {setup.workspace_id: "org_guard"}
    assert setup.ledger_calls("data", "log_activity") == 0  # not one write past the guard
    assert setup.ledger_calls("data", "limits_check") == 1  # the reading that showed it

    # Paused for three hours: one `/limits` reading per 30-minute recheck, nothing else.
    for _ in range(3 * 60 // 5):
        in_step(org, clock, 5 * 60)
        pool.turn(progress)
        assert progress.paused == {setup.workspace_id: "org_guard"}
    assert setup.ledger_calls("data", "limits_check") == 1 + 6
    assert setup.ledger_calls("data", "log_activity") == 0
    assert setup.states() == {"pending": len(activities)}

    # The other apps stop; a day on, their calls have left the window. The next recheck reads
    # the org's figures, finds room and replays the backlog, oldest first.
    in_step(org, clock, 24 * 3600 - 3 * 3600)
    room_back = clock.now()
    for _ in range(40):
        pool.turn(progress)
        if not progress.paused:
            break
        in_step(org, clock, 60)
    first_write = min(e.at for e in setup.ledger_entries("log_activity"))
    assert first_write - room_back <= timedelta(minutes=30)
    setup.drive()
    assert setup.states() == {"logged": len(activities)}
    assert_each_in_org_once(org, activities, setup)
    # The org counts the calls of its rolling window exactly as the ledger does.
    ledger = setup.runtime.connector.ledger
    assert quotasync_calls(org) == ledger.used(setup.workspace_id, "data", clock.now())
    # The admin heard once that syncing paused and once that it resumed.
    outbox = sorted((setup.data_dir / "outbox").glob("*.eml"))
    subjects = [path.read_text().split("Subject: ", 1)[1].split("\n", 1)[0] for path in outbox]
    assert len(subjects) == 2, subjects


def test_a_guard_pause_looked_at_by_two_workers_in_turn_still_rechecks_and_resumes(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """Worker processes take a workspace in turns (leases), each with a writer of its own. A
    look by one must not put off the recheck the other's pause is due for: found by the fault
    soak, where the guard pause outlived the other apps' calls until the activity stopped."""
    org, clock, setup = guarded_org(new_org, workspace, user="admin", log_within=0)
    org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 950})
    # 300 emails: a full batch of 200 is due whatever the paced delay (the guard leaves no room).
    setup.ingest([a for a in stream(people(org), 1000, seed=43) if a["kind"] in EMAILS][:300])
    turns = [
        Pool(Worker(setup.runtime.connector, clock, shape=COLLECTIONS_ONLY), clock)
        for _ in range(2)
    ]
    progress = Progress()
    turns[0].turn(progress)
    assert progress.paused == {setup.workspace_id: "org_guard"}
    assert setup.ledger_calls("data", "limits_check") == 1

    # Half an hour paused, the workspace stepped every 40 seconds (new activity makes it due):
    # by the first worker alone, then from 4:40 by both in turn, as when a second process
    # starts (its first look would put the recheck off to 5:40, then the other's to 6:20...).
    # A reading at each 5-minute recheck all the same, and no write.
    for turn in range(45):
        in_step(org, clock, 40)
        turns[0 if turn < 6 else (turn - 5) % 2].turn(progress)
    readings = setup.ledger_calls("data", "limits_check") - 1
    assert 5 <= readings <= 7, readings
    assert setup.ledger_calls("data", "log_activity") == 0

    # Room comes back (the other app's calls leave the window): the next recheck finds it.
    in_step(org, clock, 24 * 3600)
    room_back = clock.now()
    for turn in range(30):
        turns[turn % 2].turn(progress)
        if setup.ledger_entries("log_activity"):
            break
        in_step(org, clock, 40)
    writes = setup.ledger_entries("log_activity")
    assert writes, "still paused 20 minutes after room came back"
    assert min(e.at for e in writes) - room_back <= timedelta(minutes=5, seconds=80)


@pytest.mark.parametrize("user", ["admin", "sync"])
def test_a_guard_reached_between_batches_is_rechecked_and_writing_resumes_within_a_recheck(
    new_org: OrgFactory, workspace: Connect, user: str
) -> None:
    """Activities arrive steadily and the other app jumps the org past 90% between two batches:
    the answer to a write shows it. Pacing, seeing no room under the guard, held the next batch
    for its longest delay (15 minutes) instead of letting it meet the guard, so no pause opened
    and nothing rechecked the room; the other app's calls left the window and quotasync wrote
    again only when that delay ran out, 13 minutes later (the fault soak: 399 and 816 virtual s
    where a recheck and a look allow 460). The batch now meets the guard, and the pause's
    recheck finds the room."""
    org, clock, setup = guarded_org(
        new_org, workspace, user=user, log_within=5
    )  # as the soak: every minute's arrivals make a batch
    recheck = timedelta(minutes=5)
    mail = iter([a for a in stream(people(org), 1000, seed=47) if a["kind"] in EMAILS])
    pool = Pool(Worker(setup.runtime.connector, clock), clock)
    progress = Progress()
    arrived = []

    def minute() -> None:
        """A minute: two activities arrive and the workspace is looked at (the worker pool looks
        at every workspace at least once a minute)."""
        arrived.extend([next(mail), next(mail)])
        setup.ingest(arrived[-2:])
        in_step(org, clock, 60)
        pool.turn(progress)

    for _ in range(5):
        minute()
    assert setup.states() == {"logged": 10}

    # The other app jumps the org to 95%; the next batch's answer shows it.
    usage = org.control("GET", "usage")["DailyApiRequests"]
    org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 950 - usage["used"]})
    minute()
    guard_seen = max(e.at for e in setup.ledger_entries("log_activity"))
    assert setup.states() == {"logged": 12}
    for _ in range(2):
        minute()
    assert setup.states() == {"logged": 12, "pending": 4}  # not one write past the guard

    # Two and a half minutes after: the other app's calls leave the org's window (its clock
    # moves a day on, as in the soak). The pause's recheck finds the room.
    in_step(org, clock, 30)
    org.control("POST", "clock", {"advance_seconds": 24 * 3600 + 60})
    room_back = clock.now()
    for _ in range(20):
        minute()
        if setup.states().get("pending", 0) == 0:
            break
    after = [e.at for e in setup.ledger_entries("log_activity") if e.at > guard_seen]
    assert after, "not written 20 minutes after room came back"
    # At the latest a recheck after the reading that showed the guard, and the writer's look.
    assert min(after) - room_back <= recheck + governor.MIN_LOOK
    assert min(after) >= guard_seen + recheck  # the guard held until that recheck
    # Nothing lost, nothing written twice, and the pause is over.
    assert open_pause(setup) is None and setup.states() == {"logged": len(arrived)}
    assert_each_in_org_once(org, arrived, setup)
    with setup.runtime.sessions() as session:
        reasons = session.scalars(
            select(PauseEpisode.reason).where(PauseEpisode.workspace_id == setup.workspace_id)
        ).all()
    assert reasons == ["org_guard"]  # one pause, one episode


def test_a_guard_pause_rechecks_even_when_the_first_limits_reading_failed(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """The workspace's first `/limits` reading found the org unavailable, so whether the sync
    user may read `/limits` is not known yet. The guard's recheck waited for the next scheduled
    reading instead, which the guard itself put off 5 minutes (the fault soak: a write 4
    minutes past the recheck). The recheck reads `/limits`, which tells that as well."""
    org, clock, setup = guarded_org(new_org, workspace, user="admin", log_within=5)
    recheck = timedelta(minutes=5)
    connector = setup.runtime.connector
    org.control("POST", "faults", {"error_rate": 1})
    checked = LimitsChecker(
        setup.runtime.sessions,
        setup.workspace_id,
        clock,
        lambda: connector.client(setup.workspace_id),
    ).step()
    org.control("POST", "faults", {"error_rate": 0})
    assert checked is not None and checked.readable is None  # next scheduled in 5 minutes
    org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 950})
    mail = iter([a for a in stream(people(org), 1000, seed=51) if a["kind"] in EMAILS])
    pool = Pool(Worker(connector, clock), clock)
    progress = Progress()
    arrived = []

    def minute() -> None:
        arrived.extend([next(mail), next(mail)])
        setup.ingest(arrived[-2:])
        in_step(org, clock, 60)
        pool.turn(progress)

    minute()  # the first write's answer shows the guard reached
    guard_seen = max(e.at for e in setup.ledger_entries("log_activity"))
    minute()  # the next batch meets the guard: paused
    assert open_pause(setup) == "org_guard"
    in_step(org, clock, 30)
    org.control("POST", "clock", {"advance_seconds": 24 * 3600 + 60})  # room comes back
    room_back = clock.now()
    for _ in range(15):
        minute()
        if setup.states().get("pending", 0) == 0:
            break
    after = [e.at for e in setup.ledger_entries("log_activity") if e.at > guard_seen]
    assert after and min(after) - room_back <= recheck + governor.MIN_LOOK
    assert setup.states() == {"logged": len(arrived)}


def test_the_guard_recheck_a_first_worker_is_due_for_wakes_a_second_one_that_looked_since(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """A second worker looks at a guard pause just before its recheck: its own writer would look
    again a minute on (`governor.MIN_LOOK`), a minute after the recheck the first one's pause
    is due for. That worker's step asks to be looked at again at the recheck, and the reading
    made then wakes its writer: the recheck that finds room writes in the same step."""
    org, clock, setup = guarded_org(new_org, workspace, user="admin", log_within=0)
    org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 950})
    setup.ingest([a for a in stream(people(org), 200, seed=49) if a["kind"] in EMAILS][:20])
    first, second = (Pool(Worker(setup.runtime.connector, clock), clock) for _ in range(2))
    progress = Progress()
    first.turn(progress)  # the reading shows the guard reached: paused
    read_at = clock.now()
    recheck = read_at + timedelta(minutes=5)
    assert progress.paused == {setup.workspace_id: "org_guard"}

    # 4:10 on, the second worker's first look: its writer would look again at 5:10.
    in_step(org, clock, 250)
    due = second.turn(progress)
    assert second.worker.writers[setup.workspace_id].paused_until == clock.now() + governor.MIN_LOOK
    assert due == recheck  # ...but the workspace is due at the recheck

    # Room comes back; at the recheck the second worker reads the org and writes at once.
    in_step(org, clock, 10)
    org.control("POST", "clock", {"advance_seconds": 24 * 3600})
    in_step(org, clock, (recheck - clock.now()).total_seconds())
    second.turn(progress)
    assert setup.ledger_calls("data", "limits_check") == 2
    assert [e.at for e in setup.ledger_entries("log_activity")] == [recheck]


# ---------------------------------------------------------------- pacing


# A whole virtual day of 700 emails: about 30 s alone, over 100 s when the suite's four
# processes share two busy cores.
@pytest.mark.timeout(300)
def test_a_day_that_would_spend_the_share_by_midday_is_paced_and_never_pauses(
    new_org: OrgFactory, workspace: Connect
) -> None:
    # 500 calls a day, a 70% share of 350. Logged within 5 seconds, each email of the day's 700
    # (one every ~2 minutes) would be a call of its own: the share would be gone by midday.
    org = new_org("--seed", "60", "--daily-api-requests", "500", "--session-timeout-minutes", "0")
    start = datetime(2026, 11, 30, tzinfo=UTC)
    clock = ManualClock(start)
    setup = workspace(org, clock=clock)
    # Logged within 5 seconds, which pacing may stretch up to 10 minutes: in so small an org
    # the interval sync (48 calls a day) and the /limits budget take a fifth of the share, and
    # 5 minutes would not be enough. (Without pacing, max_batch_delay=5, this day pauses at
    # 11:02.)
    setup.settings(log_within=5.0, max_batch_delay=600.0)
    activities = [a for a in stream(people(org), 2000, seed=43) if a["kind"] in EMAILS][:700]
    arrivals = [start + timedelta(days=1) * i / len(activities) for i in range(len(activities))]
    pool, progress = setup.new_pool(), Progress()
    paced_at_noon = None
    end = start + timedelta(days=1)
    next_arrival = 0
    while clock.now() < end:
        while next_arrival < len(arrivals) and arrivals[next_arrival] <= clock.now():
            setup.ingest([activities[next_arrival]])
            next_arrival += 1
        due = pool.turn(progress)
        assert not progress.paused, f"paused at {clock.now()}"
        if paced_at_noon is None and clock.now() >= start + timedelta(hours=12):
            paced_at_noon = pool.worker.writers[setup.workspace_id].pacing
        upcoming = [end]
        if next_arrival < len(arrivals):
            upcoming.append(arrivals[next_arrival])
        if due is not None:
            upcoming.append(due)
        step = (min(upcoming) - clock.now()).total_seconds()
        clock.advance(max(step, 0.001))

    assert paced_at_noon is not None and paced_at_noon.paced and paced_at_noon.avoids_pause
    share = limits_share(setup)
    used = setup.runtime.connector.ledger.used(setup.workspace_id, "data", clock.now())
    assert used <= share
    assert setup.ledger_calls("data", "log_activity") < len(activities) / 1.8  # fuller batches
    setup.drive()
    assert setup.states() == {"logged": len(activities)}
    with setup.runtime.sessions() as session:
        assert session.scalars(select(PauseEpisode)).first() is None


def limits_share(setup: Setup) -> int:
    with setup.runtime.sessions() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        return quota_rows.rooms(session, ws, setup.clock.now())["data"].share


# ---------------------------------------------------------------- worker processes


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from postgres_url()


def test_four_worker_processes_on_postgresql_never_pass_the_share(
    new_org: OrgFactory, postgres: str, workspace: Connect
) -> None:
    org = new_org("--seed", "60", "--daily-api-requests", "100", "--session-timeout-minutes", "0")
    setup = workspace(org, database_url=postgres)
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        quota_rows.set_share(session, ws, "data", 10)  # 10 calls
        ws.log_within = 0
        ws.bulk_threshold = 1_000_000
    # 12,000 emails need 12 calls of 1,000; the mirror load took some of the 10.
    activities = [a for a in stream(people(org), 25000, seed=23) if a["kind"] in EMAILS][:12000]
    setup.ingest(activities)

    workers = [spawn([*CLI, "worker"], setup.cli_env()) for _ in range(4)]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not open_pause(setup):
            time.sleep(0.25)
        time.sleep(1.0)  # the others meet the same pause, and must not send past it
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        errors = [finish(process)[1] for process in workers]
    assert open_pause(setup) == "workspace_limit", errors
    ledger = setup.runtime.connector.ledger
    used = ledger.used(setup.workspace_id, "data", datetime.now(UTC))
    # The org counted exactly the ledger's calls, which never passed the share of 10.
    assert quotasync_calls(org) == used <= 10
    assert used >= 9  # and the share was used, not left idle
    assert all(process.returncode == 0 for process in workers), errors


def open_pause(setup: Setup) -> str | None:
    with setup.runtime.sessions() as session:
        episode = session.scalars(
            select(PauseEpisode).where(
                PauseEpisode.workspace_id == setup.workspace_id, PauseEpisode.ended_at.is_(None)
            )
        ).first()
        return episode.reason if episode is not None else None


# ---------------------------------------------------------------- no API access


def test_a_sync_user_who_loses_api_access_pauses_syncing_until_it_is_granted_again(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC))
    setup = workspace(org, clock=clock)
    setup.settings(log_within=0)
    with setup.runtime.sessions() as session:
        connection = session.get(Connection, setup.workspace_id)
        assert connection is not None
        sync_user = connection.user_id
    # An org admin (through another app, so quotasync's count stays its own) takes the sync
    # user's permission sets away: with them goes "API Enabled".
    admin = org.salesforce("admin", "Data Loader")
    assignments = sobject(admin, "PermissionSetAssignment")
    assigned = admin.query(
        f"SELECT Id, PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId = '{sync_user}'"
    )["records"]
    assert assigned
    for row in assigned:
        assignments.delete(row["Id"])

    activities = [a for a in stream(people(org), 400, seed=47) if a["kind"] in EMAILS][:100]
    setup.ingest(activities)
    notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
    pool, progress = Pool(Worker(setup.runtime.connector, clock, notifier), clock), Progress()
    pool.turn(progress)
    assert progress.paused == {setup.workspace_id: "no_api_access"}
    assert setup.states() == {"pending": len(activities)}  # kept, not failed
    for _ in range(4):  # looked at again every 30 minutes; still no access, still one episode
        clock.advance(30 * 60)
        pool.turn(progress)
    assert progress.paused == {setup.workspace_id: "no_api_access"}

    for row in assigned:
        assignments.create({"AssigneeId": sync_user, "PermissionSetId": row["PermissionSetId"]})
    clock.advance(30 * 60)
    setup.pool = pool
    setup.drive()
    assert setup.states() == {"logged": len(activities)}
    assert_each_in_org_once(org, activities, setup)
    mails = [path.read_text() for path in (setup.data_dir / "outbox").glob("*.eml")]
    assert len(mails) == 2  # one when syncing paused, one when it resumed
    assert any("API Enabled" in mail for mail in mails), mails


def test_a_revoked_grant_pauses_syncing_for_auth_and_keeps_the_work(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    clock = ManualClock(datetime.now(UTC))
    setup = workspace(org, clock=clock)
    setup.settings(log_within=0)
    with setup.runtime.sessions() as session:
        connection = session.get(Connection, setup.workspace_id)
        assert connection is not None and connection.refresh_token_sealed is not None
        refresh_token = setup.runtime.vault.open(connection.refresh_token_sealed)
    # The org's admin revokes quotasync's grant: the refresh token and its sessions are gone.
    with org.http() as http:
        revoked = http.post(
            f"{org.config['login_url']}/services/oauth2/revoke", data={"token": refresh_token}
        )
        assert revoked.status_code == 200
    org.control("POST", "faults", {"expire_sessions": True})

    activities = [a for a in stream(people(org), 400, seed=53) if a["kind"] in EMAILS][:50]
    setup.ingest(activities)
    notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
    pool, progress = Pool(Worker(setup.runtime.connector, clock, notifier), clock), Progress()
    pool.turn(progress)
    assert progress.paused == {setup.workspace_id: "auth"}
    assert setup.states() == {"pending": len(activities)}
    mails = [path.read_text() for path in (setup.data_dir / "outbox").glob("*.eml")]
    assert len(mails) == 1


# ---------------------------------------------------------------- the guard through a surge


def counted_calls(org: SandboxOrg, app: str = "quotasync") -> int:
    """The calls the org has counted for an app since it started, in the window or not."""
    return int(org.control("GET", "counted")["DailyApiRequests"].get(app, 0))


def test_after_an_answer_shows_the_guard_reached_no_call_goes_until_a_recheck_finds_room(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """Other apps surge to 89.9% and go on spending while quotasync's own calls of the day
    before leave the window. Each expiry looked like room under the guard (other apps' use
    held at its last reading), so a restarted worker went on writing, syncing and probing
    past 90%. Now the answer that shows the guard reached is the last call until a recheck."""
    org = new_org("--seed", "60", "--daily-api-requests", "1000", "--speed", "0", "--epoch", EPOCH)
    clock = ManualClock(datetime.fromisoformat(EPOCH.replace("Z", "+00:00")))
    setup = workspace(org, clock=clock)  # the sync user: figures from Sforce-Limit-Info
    setup.settings(
        log_within=0, bulk_threshold=1_000_000, sync_mode="interval", sync_interval_minutes=15
    )
    mail = [a for a in stream(people(org), 12000, seed=45) if a["kind"] in EMAILS]
    # A day earlier: a batch a minute for a quarter of an hour (so a call of quotasync's leaves
    # the window every minute from 24:00), other apps at about 10% an hour later. Calls of 200
    # records (the shape before composite requests), so 200 emails make a call.
    pool = Pool(Worker(setup.runtime.connector, clock, shape=COLLECTIONS_ONLY), clock)
    for minute in range(15):
        setup.ingest(mail[minute * 200 : (minute + 1) * 200])
        pool.turn(Progress())
        in_step(org, clock, 60)
    in_step(org, clock, 45 * 60)
    org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 100})
    setup.ingest(mail[3000:3200])
    pool.turn(Progress())
    assert setup.states() == {"logged": 3200}

    # 23:58: the other app jumps the org to 89.9% and keeps spending a call every two minutes.
    # A restarted worker (nothing in memory) meets it with a backlog and a sync due.
    surge_at = datetime.fromisoformat("2026-11-28T23:58:00+00:00")
    in_step(org, clock, (surge_at - clock.now()).total_seconds())
    usage = org.control("GET", "usage")["DailyApiRequests"]
    org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 899 - usage["used"]})
    org.control("POST", "load", {"app": "Marketing Cloud", "calls_per_hour": 30})
    setup.ingest(mail[3200:4200])  # five calls' worth
    before, in_window = counted_calls(org), quotasync_calls(org)
    restarted = Pool(Worker(setup.runtime.connector, clock, shape=COLLECTIONS_ONLY), clock)
    progress = Progress()
    for _ in range(22):  # to 00:20, while quotasync's calls of the day before leave the window
        restarted.turn(progress)
        in_step(org, clock, 60)
    # One call went past 90% (the one whose answer showed it), as the org counted...
    sent = counted_calls(org) - before
    assert sent <= 1
    # ...while its calls of the day before left the window, which looked like room (other
    # apps' use held at its reading).
    assert quotasync_calls(org) <= in_window + sent - 15
    assert open_pause(setup) == "org_guard"
    assert progress.paused == {setup.workspace_id: "org_guard"}
    assert setup.states().get("pending") == 1000

    # The other app stops; the recheck a recheck interval after that answer reads the org,
    # finds room and the backlog goes.
    org.control("POST", "load", {"app": "Marketing Cloud", "calls_per_hour": 0})
    # (To 01:10, past 01:00, when the other app's calls of the day before leave the window:
    # the room after the surge holds only what quotasync's own expired calls freed.)
    for _ in range(50):
        restarted.turn(progress)
        in_step(org, clock, 60)
    writes = [e.at for e in setup.ledger_entries("log_activity") if e.at > surge_at]
    assert writes and min(writes) >= surge_at + timedelta(minutes=30)
    assert setup.states() == {"logged": 4200}
    assert open_pause(setup) is None
    assert int(org.control("GET", "usage")["DailyApiRequests"]["used"]) <= 900
