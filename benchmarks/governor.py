"""Quota governor: does quotasync stay inside its share and the 90% guard, what does a pause cost,
and how soon does it end? Measured against a real sandbox org, which counts every call per app.

One run prints three groups of figures and rewrites the "governor" section of BENCHMARKS.md:

1. Overshoot under concurrency. Four worker threads (each its own `Pool` and `Worker`, one
   store, one workspace taken in turn by lease, as in tests/integration/test_governor.py) empty a backlog of `email_sent`
   activities through sObject Collections (200 records a call; Bulk is kept out by a huge
   `bulk_threshold`, `log_within` is 0). Each writer claims the batch it takes
   (`store/outbox.claim`), so no two workers send the same rows. The backlog needs twice the
   calls quotasync may make, so the workers run into the limit. Two variants, each on a fresh
   org of `--org-calls` Data API calls a day:
   - the share binds: a 10% share, no other app;
   - the guard binds: a 90% share, another app ("Marketing Cloud", spent through the sandbox's
     `/__sandbox/consume`) already at 85% of the org, so the 90% guard leaves quotasync 5%.
     Other apps' use is worked out when a figure is told, from quotasync's calls answered
     before the request that brought it was sent (`store/ledger.answered_by`,
     `OrgFigure.others_used`); the other workers' calls still in flight are taken as other
     apps', so their race should not push the cap up. The variant is run `--guard-runs` times.
   The peer approach runs the same scenarios (fresh orgs, same sizes, same emails): four threads
   of plain simple-salesforce, each with its own login, taking 200-record batches from one shared
   queue (so no batch goes twice) and sending the collections upsert by `QS_Activity_Id__c` the
   writer sends. Like any client without a ledger, it reads `Sforce-Limit-Info` (`sf.api_usage`)
   after each call, takes its own use to be the org's use minus the org's use at its start
   (learned from its first call's answer), and sends another batch only while that is below the
   share and the org's use is below the guard (it stops on reaching the limit, not on passing
   it: the kindest reading of "stop at the share"). It logs in through another connected app of
   sandbox.json ("Data Loader"), so the org counts it apart from quotasync and from the other
   app. Overshoot is what the org counted past the limit: the app's calls past its share, the
   org's calls past 90%.
2. Calls per paused hour. (a) The share pause from 1 is held until its predicted end
   (24 hours after the connect's mirror load) while a worker pool keeps turning, its clock
   moved to whatever it is due for next (at most a minute at a time, as `Pool.run` would reach
   it in real time); the org's count for quotasync must not move: the resume time is exact and
   needs no call to find. (b) Each guard run's pause is held for `--hold-hours` with the other
   app pushed to 92% of the org on its own: the first run's by one worker, the later runs' by
   all four (turned in turn, as four `Pool.run` loops would reach each moment). A guard
   pause looks again every 30 minutes (the default recheck interval), and a look's figure now
   comes from a check call, not from a write: `engine/checker.py` reads the org's figures
   before the writer's step (`/limits` with View Setup; the sandbox's sync user, connected
   here, lacks it, so one cheap GET of the REST resource list, whose `Sforce-Limit-Info`
   carries the Data figure). Only calls of purpose `limits_check` may pass the guard, by one
   call once the figure is a recheck interval old (`store/quota_rows.caps(..., probe=True)`); the
   writer's batches are refused before they are sent. Check calls are the ledger's
   `limits_check` calls the org charged; each lands above the guard, and about 2 per paused
   hour are expected. Free reads are the checker's hourly `/limits` readings, refused to the
   sync user without charge (the sandbox's refusal carries `Sforce-Limit-Info` too). A stale
   look is a writer's look that decided on a figure a recheck interval old or older. Pause
   episodes are counted from the pause's start to its end: one pause should stay one episode
   (RULES.md, Tell the admins: one email when it starts, one when it ends).
3. Resume delay. (a) For the share pause: the predicted `writers[ws].resume_at` against the
   ledger time of the first `log_activity` call after the pause (target 0 s). (b) For each
   guard pause: room returns one minute after the org's figure is next read (the other app's
   calls leave the org's window: the sandbox clock alone is moved past their 24 hours, so
   quotasync cannot see it coming), against the ledger time of the first `log_activity` call
   after that (target: within one recheck interval, 30 minutes; 29 minutes is expected, at the
   next recheck's reading).

4. The sustained-limit scene. An org of 500 Data API calls a day, a 10% share (50 calls), and
   a backlog of `email_sent` activities for a workspace connected as the sync user, with the
   workspace's other settings as they come (Interval Sync every 30 minutes): 20,000 (the scene
   as first measured: 100 calls of 200, twice the share; now about 20 calls of 1,000, no limit
   met) and 100,000 (twice the share again at 1,000 a call). Each run stops early once the
   backlog is written and no pause is open. One `Pool.run` loop with the real notifier
   (no SMTP host: each email is an `.eml` file in the data dir's outbox) runs for 43 virtual
   hours on a virtual clock at `--scene-speed` (600x by default, as measured before: 34
   pause/resume emails then, 10 pairs in one six-hour stretch), quotasync's and the sandbox's
   clocks agreeing on one epoch, so the org's window rolls with quotasync's. Counted: emails
   sent, pause/resume pairs (episodes started and ended), activities written, the most calls
   quotasync had in any 24-hour window (from the ledger, which the org's count must equal)
   against the share, and what the org holds: every written activity once, none lost (written
   plus pending is the backlog). Target: at most 6 emails. Run alone (`--scene-only`, about 4.5
   minutes of wall time at 600x), it writes its own section of BENCHMARKS.md ("sustained").

Clocks. quotasync runs on a clock that moves with real time from the sandbox's time (a
`VirtualClock` at speed 1, as a deployed worker's clock moves) and is also moved forward by hand;
the sandbox runs a virtual clock (`--speed 1`) that `/__sandbox/clock` can move. The clock must
move during the bursts: which calls a figure holds is told from when they were answered and when
the request that brought it was sent, and on a clock that stands still every call is sent and
answered at one instant. `--frozen-clock` runs the bursts on a `ManualClock` that stands still
meanwhile (as the integration tests do) to show what that does. While the share pause is held
the sandbox clock is left alone, so its rolling count of quotasync's calls is an exact tally
(moving it 24 hours would expire the very calls being counted); it is moved by the same amount
just before the predicted resume, when the org's window must roll too. During the guard hold
both clocks move together (nothing expires within the hold).

The share pause and the first guard pause are held by the first of the four workers alone,
turned in this thread (the clock is moved by hand between its turns): every look prepares a
whole batch before its reservation is refused, a fraction of a second of CPU against tens of
thousands of pending rows, and four lookers add nothing to the share pause (its looks cost no
call). The guard pause is also held by all four, as deployed, because there the looks of the
several workers interfere (see BENCHMARKS.md).

Sizes. The default orgs of 1,000 calls (shares of 100 and 50 calls, backlogs of about 38,000 and
18,000 emails) keep a full run near 3 minutes on 2 cores (each governed call costs a few tenths
of a second: four workers on one SQLite store, every call ledgered before it goes). `--quick`:
400-call orgs, a 2-hour guard hold, 2 guard runs, BENCHMARKS.md left alone (so does
`--frozen-clock`).

Usage: python -m benchmarks.governor [--quick] [--org-calls 1000] [--hold-hours 6] [--guard-runs 3]
       [--frozen-clock] [--scene-only] [--scene-hours 43] [--scene-speed 600]
"""

from __future__ import annotations

import argparse
import json
import math
import queue
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from simple_salesforce import Salesforce
from sqlalchemy import func, select

from benchmarks import report
from quotasync.clock import ManualClock, VirtualClock
from quotasync.domain import governor, quota
from quotasync.engine.pool import Options, Pool
from quotasync.engine.worker import Progress, Worker
from quotasync.engine.writer import COLLECTIONS_ONLY
from quotasync.salesforce.connection import LIMITS_CHECK
from quotasync.simulation import ActivityStream
from quotasync.store import quota_rows
from quotasync.store.tables import LedgerEntry, PauseEpisode, Workspace
from tests.integration.logging_support import STREAM_START, Setup, connect, people
from tests.sandbox_process import SandboxOrg, start_sandbox

WORKERS = 4
COLLECTION = 200  # records in one sObject Collections call
SMALL_SHARE = 10  # percent: the share-binds variant
WIDE_SHARE = 90  # percent: the guard-binds variant, so the share is never what stops it
OTHERS_AT = 85  # percent of the org the other app uses before the guard variant starts
OTHERS_ABOVE = 92  # percent the other app alone uses while the guard pause is held
BACKLOG_FACTOR = 2  # the backlog needs this many times the calls quotasync may make
RECHECK = governor.DEFAULT_RECHECK
ROOM_AFTER_READ = timedelta(minutes=1)  # the other app's use goes this long after a reading
QUOTASYNC_APP, PEER_APP, OTHER_APP = "quotasync", "Data Loader", "Marketing Cloud"
UPSERT_PATH = "composite/sobjects/Task/QS_Activity_Id__c"
# A look comes a few seconds of cycling after its due time, in real time as here.
RESUME_SLACK = timedelta(seconds=5)
MAX_CYCLES = 5_000  # a loop that has not finished by then is a bug, not a slow machine
GUARD_LOOKERS = (1, WORKERS, WORKERS)  # workers holding each guard run's pause, in turn


class MovableClock(Protocol):
    """quotasync's clock here: read by the worker, moved forward by the benchmark."""

    def now(self) -> datetime: ...

    def timestamp(self) -> float: ...

    def advance(self, seconds: float) -> None: ...


# ---------------------------------------------------------------- the org


@contextmanager
def sandbox(root: Path, name: str, org_calls: int) -> Iterator[SandboxOrg]:
    """A fresh seeded org of `org_calls` Data API calls a day, stopped afterwards."""
    org = start_sandbox(
        root / name,
        "--seed",
        "60",
        "--daily-api-requests",
        str(org_calls),
        "--session-timeout-minutes",
        "0",
        # A virtual clock at real speed: the same time as a real one, but /__sandbox/clock can
        # move it, which is how a 24-hour window rolls in a benchmark.
        "--speed",
        "1",
        process=True,
    )
    try:
        yield org
    finally:
        org.stop()


def data_usage(org: SandboxOrg) -> dict[str, Any]:
    """The org's DailyApiRequests: max, used and by_app, read without spending a call."""
    found: dict[str, Any] = org.control("GET", "usage")["DailyApiRequests"]
    return found


def counted(org: SandboxOrg, app: str) -> int:
    return int(data_usage(org)["by_app"].get(app, 0))


def org_time(org: SandboxOrg) -> datetime:
    return datetime.fromtimestamp(org.control("GET", "clock")["timestamp"], UTC)


def move_org_clock(org: SandboxOrg, seconds: float) -> None:
    if seconds > 0:
        org.control("POST", "clock", {"advance_seconds": seconds})


def quotasync_clock(org: SandboxOrg, *, frozen: bool) -> MovableClock:
    """A clock at the org's time: standing still until moved (`frozen`), or moving with real
    time like the sandbox's own (and a deployed worker's), and moved forward on top of that."""
    at = org_time(org)
    if frozen:
        return ManualClock(at)
    return VirtualClock(epoch=at, speed=1.0, offset_seconds=at.timestamp() - time.time())


def others_to(org: SandboxOrg, percent: int) -> None:
    """Have the other app spend until it alone uses `percent` of the org (as another app's
    calls, through the control API: the org counts them, quotasync's ledger does not)."""
    usage = data_usage(org)
    want = usage["max"] * percent // 100 - int(usage["by_app"].get(OTHER_APP, 0))
    if want > 0:
        org.control("POST", "consume", {"app": OTHER_APP, "api": "data", "calls": want})


def emails(org: SandboxOrg, count: int, seed: int = 31) -> list[dict[str, Any]]:
    """`count` email_sent activities from the seeded org's reps to its people (every seeded org
    has the same people, so one list serves every org; another `seed`, other activity ids)."""
    found = people(org)
    source = ActivityStream(sorted(found.reps), found.recipients, STREAM_START, seed=seed)
    out: list[dict[str, Any]] = []
    while len(out) < count:
        out += [a for a in source.take(10_000) if a["kind"] == "email_sent"]
    return out[:count]


# ---------------------------------------------------------------- 1. quotasync under concurrency


@dataclass
class Burst:
    """One workspace emptied by four worker threads until they paused."""

    org: SandboxOrg
    setup: Setup
    clock: MovableClock
    workers: list[Pool]
    reasons: list[str]  # each worker's pause reason ("" if it stopped otherwise)
    limit: int  # the calls quotasync may have in the window: share or what the guard leaves
    share: int
    guard: int
    org_counted: int  # quotasync's calls, as the org counted them
    org_used: int  # every app's calls
    ledger: int
    logged: int
    log_calls: int
    seconds: float
    started_at: datetime
    paused_at: datetime

    @property
    def workspace_id(self) -> str:
        return self.setup.workspace_id


def governed_burst(
    org: SandboxOrg,
    store: Path,
    share_percent: int,
    mail: Sequence[dict[str, Any]],
    *,
    frozen: bool,
) -> Burst:
    clock = quotasync_clock(org, frozen=frozen)
    setup = connect(org, store, clock=clock)
    with setup.runtime.sessions.begin() as session:
        workspace = session.get(Workspace, setup.workspace_id)
        assert workspace is not None
        quota_rows.set_share(session, workspace, "data", share_percent)
        workspace.log_within = 0
        workspace.bulk_threshold = 10_000_000  # collections only: one call per 200 records
    usage = data_usage(org)
    share = quota.share_calls(usage["max"], share_percent)
    guard = quota.guard_calls(usage["max"])
    others = usage["used"] - counted(org, QUOTASYNC_APP)
    limit = min(share, guard - others)
    room = limit - counted(org, QUOTASYNC_APP)  # the connect's mirror load is already in
    backlog = list(mail[: BACKLOG_FACTOR * room * COLLECTION])
    assert len(backlog) == BACKLOG_FACTOR * room * COLLECTION, "not enough emails generated"
    for i in range(0, len(backlog), 2_000):
        setup.ingest(backlog[i : i + 2_000])

    # Calls of 200 records (sObject Collections), as the backlog is sized: with composite
    # requests of 1,000 the backlog would not reach the limit.
    workers = [
        Pool(Worker(setup.runtime.connector, clock, shape=COLLECTIONS_ONLY), clock)
        for _ in range(WORKERS)
    ]
    reasons = [""] * WORKERS
    paused = threading.Event()  # one worker met the limit: the workspace waits on its pause

    def work(slot: int) -> None:
        progress = Progress()
        idle = 0  # turns in a row that found the workspace held by another worker, or not due
        while idle < MAX_CYCLES and not paused.is_set():
            steps = progress.steps
            workers[slot].turn(progress)
            if progress.paused:
                reasons[slot] = progress.paused[setup.workspace_id]
                paused.set()  # the workspace is due again at the pause's look, not before
                return
            idle = 0 if progress.steps > steps else idle + 1

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(WORKERS)]
    started_at, started = clock.now(), time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    usage = data_usage(org)
    return Burst(
        org=org,
        setup=setup,
        clock=clock,
        workers=workers,
        reasons=reasons,
        limit=limit,
        share=share,
        guard=guard,
        org_counted=int(usage["by_app"].get(QUOTASYNC_APP, 0)),
        org_used=int(usage["used"]),
        ledger=setup.ledger_calls("data"),
        logged=setup.states().get("logged", 0),
        log_calls=setup.ledger_calls("data", "log_activity"),
        seconds=seconds,
        started_at=started_at,
        paused_at=clock.now(),
    )


# ---------------------------------------------------------------- 1. the peer


@dataclass
class PeerRun:
    limit: int
    share: int
    guard: int
    org_counted: int  # the peer app's calls, as the org counted them
    org_used: int
    logged: int
    calls_sent: int
    seconds: float


def task_record(email: dict[str, Any]) -> dict[str, Any]:
    """The Task a developer would write for one sent email, keyed like quotasync's."""
    return {
        "attributes": {"type": "Task"},
        "QS_Activity_Id__c": email["id"],
        "Subject": f"Email: {email['subject']}"[:255],
        "Status": "Completed",
        "TaskSubtype": "Email",
        "ActivityDate": email["occurred_at"][:10],
        "Description": email["body"],
    }


def upsert(sf: Salesforce, batch: list[dict[str, Any]]) -> tuple[int, int]:
    """One collections upsert: the records written, and the org's use from the answer's
    Sforce-Limit-Info (which simple-salesforce keeps as `api_usage`)."""
    answer = sf.restful(
        UPSERT_PATH, method="PATCH", data=json.dumps({"allOrNone": False, "records": batch})
    )
    written = sum(1 for result in answer or [] if result.get("success"))
    return written, sf.api_usage["api-usage"].used


def peer(org: SandboxOrg, mail: Sequence[dict[str, Any]], share_percent: int) -> PeerRun:
    batches: queue.SimpleQueue[list[dict[str, Any]]] = queue.SimpleQueue()
    for i in range(0, len(mail), COLLECTION):
        batches.put([task_record(e) for e in mail[i : i + COLLECTION]])
    clients = [org.salesforce(handle="sync", app=PEER_APP) for _ in range(WORKERS)]
    sent, written = [0] * WORKERS, [0] * WORKERS
    started = time.perf_counter()
    # The peer knows the org's use only from answers: its first call tells where it starts.
    written[0], first_used = upsert(clients[0], batches.get())
    sent[0] += 1
    total = clients[0].api_usage["api-usage"].total
    start_used = first_used - 1
    share = quota.share_calls(total, share_percent)
    guard = quota.guard_calls(total)

    def work(slot: int) -> None:
        seen = first_used
        # Another batch only while its own use (as far as it can tell) is below the share and
        # the org's below the guard: the best a client without a shared ledger can do.
        while seen - start_used < share and seen < guard:
            try:
                batch = batches.get_nowait()
            except queue.Empty:
                return
            done, seen = upsert(clients[slot], batch)
            sent[slot] += 1
            written[slot] += done

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    usage = data_usage(org)
    others = int(usage["used"]) - int(usage["by_app"].get(PEER_APP, 0))
    return PeerRun(
        limit=min(share, guard - others),
        share=share,
        guard=guard,
        org_counted=int(usage["by_app"].get(PEER_APP, 0)),
        org_used=int(usage["used"]),
        logged=sum(written),
        calls_sent=sum(sent),
        seconds=seconds,
    )


# ---------------------------------------------------------------- 2, 3. pauses held and ended


@dataclass
class Drove:
    """What cycling the paused workers did."""

    looks: int = 0  # writer steps whose pause had come up for another look
    stale_looks: int = 0  # looks that decided on a figure a recheck interval old or older
    oldest: timedelta = timedelta(0)  # the oldest figure a look decided on
    reads: list[datetime] = field(default_factory=list)  # when the org's figure was read
    advanced: float = 0.0  # seconds the clock was moved by hand


def check_rows(setup: Setup) -> int:
    """The ledger's `limits_check` rows, charged or not: each answer brought the Data figure
    (`Sforce-Limit-Info`), the sandbox's 403 to a `/limits` reading without View Setup too."""
    with setup.runtime.sessions() as session:
        return int(
            session.scalar(
                select(func.count()).where(
                    LedgerEntry.workspace_id == setup.workspace_id,
                    LedgerEntry.purpose == LIMITS_CHECK,
                    LedgerEntry.status.is_not(None),
                )
            )
            or 0
        )


def data_figure_at(setup: Setup) -> datetime | None:
    """When the request that brought the Data figure in use was sent."""
    with setup.runtime.sessions() as session:
        figure = quota_rows.figures(session, setup.workspace_id).get("data")
        return figure.observed_at if figure is not None else None


def checker_due(setup: Setup, now: datetime) -> list[datetime]:
    """When a worker's checker would read the org's figures next: its schedule and the open
    pause's recheck. `Pool.run` polls every 0.2 s for a workspace due."""
    with setup.runtime.sessions() as session:
        workspace = session.get(Workspace, setup.workspace_id)
        assert workspace is not None
        times = list(
            session.scalars(
                select(PauseEpisode.next_check).where(
                    PauseEpisode.workspace_id == setup.workspace_id,
                    PauseEpisode.ended_at.is_(None),
                )
            )
        )
    if workspace.limits_next_check is not None:
        times.append(workspace.limits_next_check)
    return [t for t in times if t > now]


def drive(
    burst: Burst,
    until: datetime,
    *,
    move_org: bool,
    lookers: int = 1,
    stop_on_write: bool = False,
    stop_after_read: bool = False,
) -> Drove:
    """Turn the first `lookers` workers' pools in turn, moving the clock to whatever one of them is
    due for next (never more than a recheck interval at once), until `until`, or until a batch
    is written (`stop_on_write`) or the org's figure is read (`stop_after_read`).

    A look is a step of a paused writer whose next check had come; Pool.run in real time
    reaches each such moment within its 0.2 s poll, so jumping straight to it is fair.
    """
    clock, setup = burst.clock, burst.setup
    workers = burst.workers[:lookers]
    progress = [Progress() for _ in workers]
    drove = Drove()
    for _ in range(MAX_CYCLES):
        dues: list[datetime] = []
        for pool, done in zip(workers, progress, strict=True):
            now = clock.now()
            writer = pool.worker.writers.get(burst.workspace_id)
            paused_until = writer.paused_until if writer is not None else None
            look = paused_until is not None and paused_until <= now
            reads = check_rows(setup)
            due = pool.turn(done)
            if check_rows(setup) > reads:
                drove.reads.append(now)
            if look:
                observed = data_figure_at(setup)
                age = max(timedelta(0), now - observed) if observed else governor.WINDOW
                drove.looks += 1
                drove.stale_looks += age >= RECHECK
                drove.oldest = max(drove.oldest, age)
            if due is not None:
                dues.append(due)
        # Stopped after a whole round: each worker has had its turn at this moment.
        if (stop_on_write and any(done.settled for done in progress)) or (
            stop_after_read and drove.reads
        ):
            return drove
        now = clock.now()
        if any(due <= now for due in dues):
            continue  # a batch went: the worker goes on at once, as Pool.run would
        if now >= until:
            return drove
        step = (min([*dues, *checker_due(setup, now), now + RECHECK, until]) - now).total_seconds()
        clock.advance(step)
        drove.advanced += step
        if move_org:
            move_org_clock(burst.org, step)
    raise RuntimeError(f"the workers did not reach {until} in {MAX_CYCLES} turns")


def last_ledger_id(setup: Setup) -> int:
    with setup.runtime.sessions() as session:
        return int(
            session.scalar(
                select(func.coalesce(func.max(LedgerEntry.id), 0)).where(
                    LedgerEntry.workspace_id == setup.workspace_id
                )
            )
            or 0
        )


def ledger_since(setup: Setup, after_id: int, *, charged: bool = True) -> list[LedgerEntry]:
    with setup.runtime.sessions() as session:
        query = (
            select(LedgerEntry)
            .where(LedgerEntry.workspace_id == setup.workspace_id, LedgerEntry.id > after_id)
            .order_by(LedgerEntry.id)
        )
        if charged:
            query = query.where(LedgerEntry.calls > 0)
        return list(session.scalars(query))


def pause_episodes(setup: Setup, since: datetime) -> tuple[int, bool]:
    """Data pause episodes opened since a time, and whether every one of them has ended."""
    with setup.runtime.sessions() as session:
        rows = list(
            session.scalars(
                select(PauseEpisode).where(
                    PauseEpisode.workspace_id == setup.workspace_id,
                    PauseEpisode.api == governor.Api.DATA.value,
                    PauseEpisode.started_at >= since,
                )
            )
        )
    return len(rows), all(row.ended_at is not None for row in rows)


def first_call_after(setup: Setup, after_id: int) -> datetime | None:
    """The ledger time of the first log_activity call after ledger entry `after_id`."""
    entries = [e for e in ledger_since(setup, after_id) if e.purpose == "log_activity"]
    return entries[0].at if entries else None


@dataclass
class Hold:
    reason: str
    lookers: int  # workers cycled while it was held
    hours: float
    org_calls: int  # calls the org counted for quotasync while the pause was held
    ledger_calls: int  # calls in quotasync's ledger meanwhile
    check_calls: int  # of which `limits_check`: check calls the org charged
    free_reads: int  # `/limits` readings refused without charge (their answer has the figure)
    drove: Drove
    room_at: datetime  # predicted resume (share) or when room came back (guard)
    first_call: datetime | None  # the first log_activity call after that
    resumed: bool  # the batch after the first one went too (the pause really ended)
    episodes: int = 0  # pause episodes opened from the pause's start to its end
    ended: bool = False  # ... and whether the resume ended them
    org_used_before: int = 0  # guard: the org's use as the hold began (every app)
    guard: int = 0

    @property
    def delay(self) -> timedelta | None:
        return None if self.first_call is None else self.first_call - self.room_at

    @property
    def per_hour(self) -> float:
        return self.check_calls / self.hours


def hold_share_pause(burst: Burst) -> Hold:
    """2(a) and 3(a): the share pause, held to its predicted end, then its first call."""
    setup, clock = burst.setup, burst.clock
    writers = [w.worker.writers.get(burst.workspace_id) for w in burst.workers]
    # The writers that met the limit (another may have stepped the workspace before it).
    predicted = {w.resume_at for w in writers if w is not None and w.paused_until is not None}
    assert len(predicted) == 1 and None not in predicted, f"resume times: {predicted}"
    resume_at = predicted.pop()
    assert resume_at is not None
    start, ledger_id = clock.now(), last_ledger_id(setup)
    org_before = counted(burst.org, QUOTASYNC_APP)
    # Held up to a second before the predicted end, with the org's clock left where it was.
    drove = drive(burst, resume_at - timedelta(seconds=1), move_org=False)
    org_calls = counted(burst.org, QUOTASYNC_APP) - org_before
    held = clock.now() - start
    entries = ledger_since(setup, ledger_id, charged=False)
    # The org's window rolls with quotasync's now: its clock catches up before the resume.
    move_org_clock(burst.org, drove.advanced)
    ledger_id = last_ledger_id(setup)
    drive(burst, resume_at + RECHECK, move_org=True, stop_on_write=True)
    first = first_call_after(setup, ledger_id)
    resumed = resumed_at_once(burst)
    episodes, ended = pause_episodes(setup, burst.started_at)
    return Hold(
        reason=governor.Reason.WORKSPACE_LIMIT.value,
        lookers=1,
        hours=held.total_seconds() / 3600,
        org_calls=org_calls,
        ledger_calls=sum(e.calls for e in entries),
        check_calls=sum(e.calls for e in entries if e.purpose == LIMITS_CHECK),
        free_reads=sum(1 for e in entries if e.purpose == LIMITS_CHECK and e.calls == 0),
        drove=drove,
        room_at=resume_at,
        first_call=first,
        resumed=resumed,
        episodes=episodes,
        ended=ended,
    )


def resumed_at_once(burst: Burst, lookers: int = 1) -> bool:
    """Whether the next batches go straight after the first resumed one: one more round of the
    workers holding the pause writes, and leaves none of them paused for long. (A worker whose
    look came a moment before the figure that showed room was read pauses a recheck more.)"""
    progress = Progress()
    for pool in burst.workers[:lookers]:
        pool.turn(progress)
    return progress.settled > 0


def hold_guard_pause(burst: Burst, hours: float, lookers: int) -> Hold:
    """2(b) and 3(b): the guard pause held by `lookers` workers with the other app above 90% on
    its own; then room back one minute after the org's figure is next read, and the first call
    after that."""
    setup, clock, org = burst.setup, burst.clock, burst.org
    others_to(org, OTHERS_ABOVE)
    start, ledger_id = clock.now(), last_ledger_id(setup)
    org_before = counted(org, QUOTASYNC_APP)
    used_before = int(data_usage(org)["used"])
    drove = drive(burst, start + timedelta(hours=hours), move_org=True, lookers=lookers)
    org_calls = counted(org, QUOTASYNC_APP) - org_before
    entries = ledger_since(setup, ledger_id, charged=False)
    # Room comes back a minute after the figure is read: the org's clock alone moves past the
    # other app's 24 hours, so quotasync's clock (and its ledger) cannot have predicted it.
    drive(burst, clock.now() + 3 * RECHECK, move_org=True, lookers=lookers, stop_after_read=True)
    # The minute after the reading goes by as usual (a look due in it happens on time).
    drive(burst, clock.now() + ROOM_AFTER_READ, move_org=True, lookers=lookers)
    move_org_clock(org, governor.WINDOW.total_seconds())
    room_at, ledger_id = clock.now(), last_ledger_id(setup)
    drive(burst, room_at + 3 * RECHECK, move_org=True, lookers=lookers, stop_on_write=True)
    first = first_call_after(setup, ledger_id)
    resumed = resumed_at_once(burst, lookers)
    episodes, ended = pause_episodes(setup, burst.started_at)
    return Hold(
        reason=governor.Reason.ORG_GUARD.value,
        lookers=lookers,
        hours=hours,
        org_calls=org_calls,
        ledger_calls=sum(e.calls for e in entries),
        check_calls=sum(e.calls for e in entries if e.purpose == LIMITS_CHECK),
        free_reads=sum(1 for e in entries if e.purpose == LIMITS_CHECK and e.calls == 0),
        drove=drove,
        room_at=room_at,
        first_call=first,
        resumed=resumed,
        episodes=episodes,
        ended=ended,
        org_used_before=used_before,
        guard=burst.guard,
    )


# ---------------------------------------------------------------- 4. the sustained-limit scene

SCENE_ORG_CALLS = 500
SCENE_SHARE = 10  # percent: 50 calls
SCENE_BACKLOG = (
    20_000  # activities: 100 calls of 200 (the writer before composites), twice the share
)
# The same proportion for today's writer (1,000 records a call): 100 calls, twice the share.
SCENE_BACKLOGS = (SCENE_BACKLOG, 100_000)
SCENE_HOURS = 43.0
SCENE_SPEED = 600.0  # virtual seconds per real second
SCENE_EMAILS_TARGET = 6
SAMPLE_EVERY = 0.5  # real seconds between looks at the org's count


@dataclass(frozen=True)
class Scene:
    backlog: int  # activities waiting at the start
    hours: float
    speed: float
    share: int
    emails: int  # messages in the outbox (one admin: one per notice)
    subjects: dict[str, int]  # warning / paused / resumed
    started: int  # pause episodes started
    ended: int  # ... and ended
    written: int
    pending: int
    in_org: int  # the backlog's activities the org holds as Tasks
    doubled: int  # activities the org holds twice or more
    max_window: int  # most calls quotasync had in any 24-hour window (ledger)
    org_max_seen: int  # most the org counted for quotasync in its window, sampled
    org_counted: int  # the org's count of quotasync's calls since it started
    ledger: int  # the ledger's charged calls
    seconds: float
    spans: tuple[str, ...] = ()  # each episode: its reason, start and end in hours from the start

    @property
    def pairs(self) -> int:
        return min(self.started, self.ended)

    @property
    def lost(self) -> int:
        return self.backlog - self.written - self.pending

    @property
    def meets(self) -> bool:
        return (
            self.emails <= SCENE_EMAILS_TARGET
            and self.max_window <= self.share
            and self.org_max_seen <= self.share
            and self.lost == 0
            and self.doubled == 0
            and self.in_org == self.written
            and self.org_counted == self.ledger
        )


def most_in_a_window(entries: Sequence[tuple[datetime, int]]) -> int:
    """The most calls in any 24-hour window: the count just after each call, over the calls
    of the 24 hours before it."""
    most, start, total = 0, 0, 0
    for at, calls in entries:
        total += calls
        while entries[start][0] <= at - governor.WINDOW:
            total -= entries[start][1]
            start += 1
        most = max(most, total)
    return most


def sustained_limit(root: Path, hours: float, speed: float, backlog: int) -> Scene:
    epoch = datetime.now(UTC).replace(microsecond=0)
    org = start_sandbox(
        root / "sustained",
        "--seed",
        "60",
        "--daily-api-requests",
        str(SCENE_ORG_CALLS),
        "--session-timeout-minutes",
        "0",
        "--speed",
        f"{speed:g}",
        "--epoch",
        epoch.isoformat().replace("+00:00", "Z"),
        process=True,
    )
    try:
        return _run_scene(org, root / "store-sustained", epoch, hours, speed, backlog)
    finally:
        org.stop()


def _run_scene(
    org: SandboxOrg, store: Path, epoch: datetime, hours: float, speed: float, size: int
) -> Scene:
    from quotasync.engine.notifier import Notifier
    from tests.integration.logging_support import records

    clock = VirtualClock(epoch=epoch, speed=speed)
    setup = connect(org, store, clock=clock)
    try:
        with setup.runtime.sessions.begin() as session:
            workspace = session.get(Workspace, setup.workspace_id)
            assert workspace is not None
            quota_rows.set_share(session, workspace, "data", SCENE_SHARE)
        backlog = emails(org, size, seed=53)
        for i in range(0, len(backlog), 2_000):
            setup.ingest(backlog[i : i + 2_000])
        notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
        # Leases held for a real minute, as the demo holds its claims, whatever the speed.
        lease = timedelta(seconds=60 * max(1.0, speed))
        pool = Pool(Worker(setup.runtime.connector, clock, notifier), clock, Options(lease=lease))
        stop, end = threading.Event(), clock.now() + timedelta(hours=hours)
        seen = [0]

        def done() -> bool:
            """The backlog written and no pause open: nothing more can happen."""
            with setup.runtime.sessions() as session:
                open_episode = session.scalars(
                    select(PauseEpisode).where(
                        PauseEpisode.workspace_id == setup.workspace_id,
                        PauseEpisode.ended_at.is_(None),
                    )
                ).first()
            return open_episode is None and "pending" not in setup.states()

        def watch() -> None:
            while not stop.is_set():
                seen[0] = max(seen[0], counted(org, QUOTASYNC_APP))
                if clock.now() >= end or done():
                    stop.set()
                stop.wait(SAMPLE_EVERY)

        watcher = threading.Thread(target=watch)
        started = time.perf_counter()
        watcher.start()
        pool.run(stop)
        watcher.join()
        seconds = time.perf_counter() - started
        share = quota.share_calls(SCENE_ORG_CALLS, SCENE_SHARE)
        with setup.runtime.sessions() as session:
            charged = list(
                session.execute(
                    select(LedgerEntry.at, LedgerEntry.calls)
                    .where(
                        LedgerEntry.workspace_id == setup.workspace_id,
                        LedgerEntry.api == "data",
                        LedgerEntry.calls > 0,
                    )
                    .order_by(LedgerEntry.at)
                ).all()
            )
            rows = list(
                session.scalars(
                    select(PauseEpisode).where(PauseEpisode.workspace_id == setup.workspace_id)
                )
            )
        ids = {a["id"] for a in backlog}
        tasks = setup.by_activity_id(records(org, "Task"))
        states = setup.states()
        outbox = sorted((setup.data_dir / "outbox").glob("*.eml"))
        subjects: dict[str, int] = {}
        for path in outbox:
            subject = path.read_text().split("Subject: ", 1)[1].split("\n", 1)[0]
            kind = (
                "paused"
                if "paused" in subject
                else "resumed"
                if "resumed" in subject
                else "warning"
            )
            subjects[kind] = subjects.get(kind, 0) + 1
        return Scene(
            backlog=size,
            hours=min(hours, (clock.now() - epoch).total_seconds() / 3600),
            speed=speed,
            share=share,
            emails=len(outbox),
            subjects=subjects,
            started=len(rows),
            ended=sum(1 for row in rows if row.ended_at is not None),
            written=states.get("logged", 0),
            pending=states.get("pending", 0),
            in_org=sum(1 for key in tasks if key in ids),
            doubled=sum(1 for key, found in tasks.items() if key in ids and len(found) > 1),
            max_window=most_in_a_window(charged),
            org_max_seen=seen[0],
            org_counted=int(
                org.control("GET", "counted")["DailyApiRequests"].get(QUOTASYNC_APP, 0)
            ),
            ledger=sum(calls for _, calls in charged),
            seconds=seconds,
            spans=tuple(_span(row, epoch) for row in sorted(rows, key=lambda r: r.started_at)),
        )
    finally:
        setup.close()


def _span(row: PauseEpisode, epoch: datetime) -> str:
    def hours(moment: datetime) -> str:
        return f"{(moment - epoch).total_seconds() / 3600:.1f} h"

    end = hours(row.ended_at) if row.ended_at is not None else "open"
    return f"{row.reason} {hours(row.started_at)} to {end}"


SCENE_COLUMNS = [
    "activities",
    "virtual hours",
    "speed",
    "emails",
    "warning / paused / resumed",
    "pause/resume pairs",
    "written",
    "pending",
    "max calls in a window",
    "share",
    "lost",
    "doubled",
]


def scene_row(c: Scene) -> list[str]:
    kinds = " / ".join(str(c.subjects.get(k, 0)) for k in ("warning", "paused", "resumed"))
    return [
        f"{c.backlog:,}",
        f"{c.hours:.1f}",
        f"{c.speed:g}x",
        f"{c.emails}",
        kinds,
        f"{c.pairs}" + ("" if c.started == c.ended else f" (+{c.started - c.ended} open)"),
        f"{c.written:,}",
        f"{c.pending:,}",
        f"{c.max_window:,}",
        f"{c.share:,}",
        f"{c.lost:,}",
        f"{c.doubled:,}",
    ]


def scene_words(c: Scene) -> str:
    return (
        f"An org of {SCENE_ORG_CALLS} Data API calls a day, a {SCENE_SHARE}% share "
        f"({c.share} calls), {c.backlog:,} activities waiting, {c.hours:.1f} virtual hours at "
        f"{c.speed:g}x ({c.seconds:.0f} s of wall time): {c.emails} emails (target at most "
        f"{SCENE_EMAILS_TARGET}; 34 before episodes covered a sustained limit), {c.started} "
        f"pause episode(s) started and {c.ended} ended. The most calls quotasync had in a 24-hour "
        f"window: {c.max_window} by the ledger, {c.org_max_seen} as the org counted (sampled "
        f"every {SAMPLE_EVERY:g} s of wall time); the org's count of all of quotasync's calls "
        f"{c.org_counted:,}, the ledger's {c.ledger:,}. Written {c.written:,}, each once in the "
        f"org ({c.in_org:,} found, {c.doubled} twice), {c.pending:,} still waiting, {c.lost} lost "
        f"({verdict(c.meets)}). Episodes: {'; '.join(c.spans) or 'none'}."
    )


def run_scene(hours: float, speed: float) -> list[Scene]:
    """Run scene 4 with each backlog and print it; at its default length and speed, also write
    its own section of BENCHMARKS.md ("sustained") and its headline figures."""
    scenes = []
    for size in SCENE_BACKLOGS:
        with tempfile.TemporaryDirectory() as folder:
            scenes.append(sustained_limit(Path(folder), hours, speed, size))
    rows = [scene_row(scene) for scene in scenes]
    report.show("4. The sustained-limit scene", SCENE_COLUMNS, rows)
    for scene in scenes:
        print(scene_words(scene))
    if (hours, speed) != (SCENE_HOURS, SCENE_SPEED):
        print("BENCHMARKS.md left as it is (its figures come from the default length and speed).")
        return scenes
    title = "## Sustained limit (`python -m benchmarks.governor --scene-only`)"
    lead = (
        f"The scene as first measured held {SCENE_BACKLOG:,} activities, 100 calls of 200 for a "
        "50-call share: 34 pause and resume emails in 43 hours. Today's writer carries up to "
        f"1,000 records a call, so the same backlog needs about {SCENE_BACKLOG // 1000} calls "
        "and meets no limit at all (first row, stopped once written); the second row keeps the "
        "scene's proportion, a backlog of twice the share, at 1,000 a call."
    )
    table = report.markdown_table(SCENE_COLUMNS, rows)
    words = "\n\n".join(scene_words(scene) for scene in scenes)
    report.write_section("sustained", "\n\n".join([title, lead, table, words]))
    report.save_results(
        "sustained",
        {
            str(scene.backlog): {
                "emails": scene.emails,
                "pairs": scene.pairs,
                "episodes_started": scene.started,
                "written": scene.written,
                "max_window": scene.max_window,
                "share": scene.share,
                "lost": scene.lost,
                "doubled": scene.doubled,
                "meets": scene.meets,
            }
            for scene in scenes
        },
    )
    return scenes


# ---------------------------------------------------------------- the report


def past(used: int, limit: int) -> int:
    return max(0, used - limit)


@dataclass(frozen=True)
class Overshoot:
    """One row of the overshoot table, quotasync's or the peer's."""

    scenario: str
    org_counted: int
    ledger: int | None
    limit: int
    past_share: int
    past_guard: int
    logged: int
    calls: int  # the calls that carried activities (quotasync: log_activity)

    def row(self) -> list[str]:
        return [
            self.scenario,
            f"{self.org_counted:,}",
            "-" if self.ledger is None else f"{self.ledger:,}",
            f"{self.limit:,}",
            f"{self.past_share:,}",
            f"{self.past_guard:,}",
            f"{self.logged / max(1, self.calls):.0f}",
        ]


def of_burst(scenario: str, b: Burst) -> Overshoot:
    return Overshoot(
        scenario,
        b.org_counted,
        b.ledger,
        b.limit,
        past(b.org_counted, b.share),
        past(b.org_used, b.guard),
        b.logged,
        b.log_calls,
    )


def of_peer(scenario: str, p: PeerRun) -> Overshoot:
    return Overshoot(
        scenario,
        p.org_counted,
        None,
        p.limit,
        past(p.org_counted, p.share),
        past(p.org_used, p.guard),
        p.logged,
        p.calls_sent,
    )


def shown(delay: timedelta | None) -> str:
    if delay is None:
        return "no call"
    seconds = delay.total_seconds()
    if abs(seconds) < 120:
        return f"{seconds:.0f} s"
    whole, rest = divmod(round(seconds), 60)
    return f"{whole} min {rest} s"


def hold_row(h: Hold) -> list[str]:
    guard = h.reason == governor.Reason.ORG_GUARD.value
    return [
        h.reason,
        f"{h.lookers}",
        f"{h.hours:.1f} h",
        f"{h.org_calls:,}",
        f"{h.check_calls:,}",
        f"{h.per_hour:.2f}",
        f"{h.free_reads:,}",
        f"{h.drove.looks:,}",
        f"{h.drove.stale_looks:,}" if guard else "-",
        f"{h.episodes:,}",
    ]


def resume_row(h: Hold, paused_at: datetime, target: str) -> list[str]:
    def since(moment: datetime | None) -> str:
        return "-" if moment is None else f"+{(moment - paused_at).total_seconds() / 3600:.2f} h"

    return [
        h.reason,
        f"{h.lookers}",
        since(h.room_at),
        since(h.first_call),
        shown(h.delay),
        target,
        "yes" if h.resumed else "NO",
    ]


OVERSHOOT_COLUMNS = [
    "scenario",
    "org count",
    "ledger",
    "limit",
    "past share",
    "past guard",
    "per call",
]
HOLD_COLUMNS = [
    "pause",
    "workers",
    "held",
    "org count",
    "check calls",
    "per hour",
    "free reads",
    "looks",
    "stale looks",
    "episodes",
]
RESUME_COLUMNS = ["pause", "workers", "room back", "first call", "delay", "target", "resumed"]


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def listed(values: Sequence[int]) -> str:
    return ", ".join(str(v) for v in values)


def minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f}"


EXPECTED_PER_HOUR = timedelta(hours=1) / RECHECK  # one check call per recheck


def per_hour_ok(h: Hold) -> bool:
    """About one check call per recheck: within one call over the hold."""
    return abs(h.per_hour - EXPECTED_PER_HOUR) <= 1 / h.hours


def resume_ok(h: Hold) -> bool:
    if h.delay is None:
        return False
    if h.reason == governor.Reason.WORKSPACE_LIMIT.value:
        return abs(h.delay) < timedelta(seconds=1)
    return h.delay <= RECHECK + RESUME_SLACK


@dataclass(frozen=True)
class Results:
    org_calls: int
    frozen: bool
    share: Burst
    guards: list[Burst]  # the first one's pause is held by one worker, the second's by four
    peer_share: PeerRun
    peer_guards: list[PeerRun]
    share_hold: Hold
    guard_holds: list[Hold]
    seconds: float

    @property
    def overshoot(self) -> list[Overshoot]:
        runs = len(self.guards)
        return [
            of_burst("quotasync: share", self.share),
            of_peer("peer: share", self.peer_share),
            *(of_burst(f"quotasync: guard {n}/{runs}", b) for n, b in enumerate(self.guards, 1)),
            *(of_peer(f"peer: guard {n}/{runs}", p) for n, p in enumerate(self.peer_guards, 1)),
        ]

    @property
    def bursts(self) -> list[Burst]:
        return [self.share, *self.guards]

    @property
    def resent(self) -> int:
        """quotasync logging calls that carried a batch another worker was also sending: the
        calls beyond those the logged activities fill at 200 a call."""
        return sum(b.log_calls - math.ceil(b.logged / COLLECTION) for b in self.bursts)

    def tables(self) -> list[tuple[str, list[str], list[list[str]]]]:
        recheck = f"<= {minutes(RECHECK)} min"
        holds = [self.share_hold, *self.guard_holds]
        resumes = [resume_row(self.share_hold, self.share.paused_at, "0 s")]
        resumes += [
            resume_row(h, b.paused_at, recheck)
            for h, b in zip(self.guard_holds, self.guards, strict=False)
        ]
        return [
            ("1. Overshoot under concurrency", OVERSHOOT_COLUMNS, [o.row() for o in self.overshoot]),
            ("2. Calls while paused", HOLD_COLUMNS, [hold_row(h) for h in holds]),
            ("3. Resume delay", RESUME_COLUMNS, resumes),
        ]  # fmt: skip


def overshoot_words(r: Results) -> str:
    qs_share, peer_share = of_burst("", r.share), of_peer("", r.peer_share)
    qs_guard = [past(b.org_used, b.guard) for b in r.guards]
    peer_guard = [past(p.org_used, p.guard) for p in r.peer_guards]
    in_step = all(b.org_counted == b.ledger for b in r.bursts)
    reasons = sorted({reason for b in r.guards for reason in b.reasons})
    words = [
        f"Past the share ({r.share.share:,} calls, {SMALL_SHARE}% of the org): quotasync "
        f"{qs_share.past_share}, the peer {peer_share.past_share} "
        f"({peer_share.past_share / r.peer_share.share:.1%} of the share); target 0 "
        f"({verdict(qs_share.past_share == 0)}). Past the 90% guard ({r.guards[0].guard:,} "
        f"calls; another app at {OTHERS_AT}%, so {r.guards[0].limit:,} left for the app) in "
        f"{len(r.guards)} runs each: quotasync {listed(qs_guard)}, the peer "
        f"{listed(peer_guard)}; target 0 ({verdict(max(qs_guard) == 0)}).",
        f"The org's count equals quotasync's ledger in every run: {'yes' if in_step else 'NO'}.",
    ]
    short = [b.limit - b.org_counted for b in r.guards]
    if max(short) > 0:
        words.append(
            f"In the guard runs quotasync stopped {listed(short)} calls short of its limit: "
            "the other workers' calls still in flight when a figure's request went are taken "
            "as other apps' until a later answer holds them, and the figure the workers "
            "paused on held some (the safe side: the next recheck finds that room)."
        )
    if max(qs_guard) > 0 and r.frozen:
        words.append(
            "These bursts ran on a clock standing still (`--frozen-clock`): every call is sent "
            "and answered at one instant, so `store/ledger.answered_by` (`settled_at <= "
            "moment`) counts as held by a figure its own request, and the other workers' calls "
            "answered after it was served; `store/quota_rows.observe` adds the request's own call "
            "again (`own_in_answer`), so other apps' use is taken a call or more too low and "
            "the guard's cap rises with it."
        )
    elif max(qs_guard) > 0:
        words.append(
            "The guard was passed on a moving clock: other apps' use, as "
            "`store/quota_rows.observe` worked it out, was below the org's."
        )
    if governor.Reason.WORKSPACE_LIMIT.value in reasons:
        words.append(
            "A guard-run worker reported workspace_limit: the writer gives that reason to a "
            "refused reservation whose second look at the figures found room (look again at "
            "once); the share was nowhere near."
        )
    log_calls = sum(b.log_calls for b in r.bursts)
    words.append(
        f"Of quotasync's {log_calls:,} logging calls, {r.resent:,} re-sent a batch another "
        "worker was sending: each writer claims its batch (`store/outbox.claim`), so the four "
        "share the backlog and each call carries a full batch, as the peer's do. Burst times: "
        f"quotasync {r.share.seconds:.1f} s (share), {r.guards[0].seconds:.1f} s (guard); the "
        f"peer {r.peer_share.seconds:.1f} s, {r.peer_guards[0].seconds:.1f} s (quotasync's "
        "four workers share one SQLite store, and each call is ledgered before it goes)."
    )
    return " ".join(words)


def guard_hold_words(h: Hold) -> str:
    writes = h.ledger_calls - h.check_calls
    who = "one worker" if h.lookers == 1 else f"{h.lookers} workers"
    return (
        f"org_guard held by {who} for {h.hours:.1f} h (the org at {h.org_used_before:,} of a "
        f"{h.guard:,}-call guard): {h.check_calls} check calls, {h.per_hour:.2f} per paused "
        f"hour; target about {EXPECTED_PER_HOUR:.0f} ({verdict(per_hour_ok(h))}). Other calls: "
        f"{writes}. Free reads: {h.free_reads}. {h.drove.stale_looks} of {h.drove.looks} looks "
        f"decided on a figure {minutes(RECHECK)} min old or older (the oldest "
        f"{minutes(h.drove.oldest)} min)."
    )


def hold_words(r: Results) -> str:
    share = r.share_hold
    words = [
        f"workspace_limit: {share.org_calls} calls the org counted over {share.hours:.1f} paused "
        f"hours and {share.drove.looks:,} looks; target 0 ({verdict(share.org_calls == 0)}).",
        *(guard_hold_words(h) for h in r.guard_holds),
        "Each check call is one GET of the REST resource list (the sync user lacks View Setup), "
        "let past the guard by the one call a stale figure allows a `limits_check`; the "
        "writer's batches are refused before they are sent. A free read is the checker's "
        "hourly `/limits` reading, refused to that user without charge; the sandbox's refusal "
        "carries `Sforce-Limit-Info`, so it brings the Data figure too.",
    ]
    if any(h.free_reads for h in r.guard_holds if h.lookers == 1):
        words.append(
            "A free read took a recheck's place in the pause held by one worker: when a "
            "recheck falls at the checker's hourly `/limits` reading (or at its retry 5 "
            "minutes on, if the ledger refused it because "
            "the figure was not yet a recheck interval old: `engine/checker.py` line 78), "
            "`_due` answers SCHEDULED before RECHECK (line 151), and `step` makes that reading, "
            "refused to the sync user, instead of the probe (line 68). Only the sandbox's "
            "refusal carrying `Sforce-Limit-Info` keeps such a look's figure fresh."
        )
    if any(h.drove.stale_looks for h in r.guard_holds):
        words.append(
            "Why looks decide on stale figures: each writer's look re-records the shared "
            "episode's `next_check` as its own look plus the recheck (`engine/hold.py` "
            "`Hold.paused`, to `store/episodes.update`, line 53), and the probe waits for "
            "`PauseEpisode.next_check <= now` (`engine/checker.py` line 160). With several "
            "workers whose looks are a moment apart, each look sets the episode's next check "
            "past the next worker's look, so a checker seldom finds the recheck due (see the "
            "check calls above), the looks decide on what the hourly `/limits` reading last "
            "brought, and room "
            "that comes back is seen at the first look after the next such reading. Held by "
            "one worker, it can cost the first look, when another worker paused a moment later "
            "and set the episode's next check."
        )
    episodes = [share, *r.guard_holds]
    ended = all(h.ended for h in episodes)
    words.append(
        f"Pause episodes from the pause's start to its end: "
        f"{listed([h.episodes for h in episodes])}, {'each' if ended else 'NOT all'} ended by "
        f"the resume; target 1 each ({verdict(all(h.episodes == 1 for h in episodes))})."
    )
    return " ".join(words)


def resume_words(r: Results) -> str:
    share = r.share_hold
    words = [
        f"workspace_limit: the first call went {shown(share.delay)} after the predicted "
        f"`resume_at`; target 0 s ({verdict(resume_ok(share))}).",
    ]
    for h in r.guard_holds:
        who = "one worker" if h.lookers == 1 else f"{h.lookers} workers"
        words.append(
            f"org_guard held by {who}: room came back {minutes(ROOM_AFTER_READ)} min after the "
            f"org's figure was read (the other app's calls left the org's window), the first "
            f"call went {shown(h.delay)} later; target <= {minutes(RECHECK)} min "
            f"({verdict(resume_ok(h))})."
        )
    words.append(
        f"A look may come up to {RESUME_SLACK.total_seconds():.0f} s after the recheck (the "
        "time the workers' turns take, in real time). Times are from the pause's start; "
        "`resumed`: the next round of the workers holding the pause wrote too."
    )
    return " ".join(words)


def write(r: Results) -> None:
    clock = (
        "a clock standing still during the bursts (`--frozen-clock`)"
        if r.frozen
        else "a clock moving with real time, moved forward by hand while paused"
    )
    parts = [
        "## Quota governor (`python -m benchmarks.governor`)",
        f"A fresh sandbox org of {r.org_calls:,} Data API calls a day per run; a backlog of "
        f"`email_sent` activities needing {BACKLOG_FACTOR}x the calls quotasync may make, sent "
        f"as sObject Collections upserts of {COLLECTION} records. quotasync: {WORKERS} `Worker` "
        f"threads on one store and workspace, connected as the sandbox's sync user (no View "
        f"Setup), on {clock}. The peer: {WORKERS} threads of plain "
        'simple-salesforce (another connected app, "Data Loader") that read `Sforce-Limit-Info` '
        "after each call and send no more once the share or the guard is reached. `share`: a "
        f"{SMALL_SHARE}% share binds; `guard`: a {WIDE_SHARE}% share with another app at "
        f"{OTHERS_AT}%, so the 90% guard binds. Calls are counted by the org, per connected app; "
        "`limit` is what the binding limit allows the app, `past share` its calls beyond its "
        "share, `past guard` the org's calls beyond 90%, `per call` activities logged per call. "
        "A pause is held by one worker (the guard's also by all four, on the later guard "
        "runs), the clock moved to whatever is due next; `check calls` are the ledger's "
        "`limits_check` calls the org charged, `free reads` the `/limits` readings it refused "
        "without charge, `stale looks` the writer's looks that decided on a figure a recheck "
        "interval old, `episodes` the pause episodes opened from the pause's start to its end.",
    ]
    words = [overshoot_words(r), hold_words(r), resume_words(r)]
    for (title, columns, rows), text in zip(r.tables(), words, strict=True):
        parts += [f"### {title}", report.markdown_table(columns, rows), text]
    parts.append(f"Whole run: {r.seconds:.0f} s of wall time.")
    report.write_section("governor", "\n\n".join(parts))
    save(r)


def save(r: Results) -> None:
    """The headline figures for benchmarks/run.py's summary: (d) overshoot, (e) resume delay."""
    past_share = of_burst("", r.share).past_share
    past_guard = [past(b.org_used, b.guard) for b in r.guards]

    def seconds(h: Hold) -> float | None:
        return None if h.delay is None else round(h.delay.total_seconds(), 1)

    report.save_results(
        "governor",
        {
            "past_share": past_share,
            "past_guard": past_guard,
            "peer_past_share": of_peer("", r.peer_share).past_share,
            "peer_past_guard": [past(p.org_used, p.guard) for p in r.peer_guards],
            "overshoot_meets": past_share == 0 and max(past_guard) == 0,
            "share_resume_delay_s": seconds(r.share_hold),
            "guard_resume_delays_s": [seconds(h) for h in r.guard_holds],
            "guard_recheck_s": RECHECK.total_seconds(),
            "resume_meets": all(resume_ok(h) for h in [r.share_hold, *r.guard_holds]),
        },
    )


def run(
    org_calls: int,
    hold_hours: float,
    guard_runs: int,
    *,
    frozen: bool = False,
    write_section: bool = True,
) -> None:
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        setups: list[Setup] = []
        guards: list[Burst] = []
        peer_guards: list[PeerRun] = []
        guard_holds: list[Hold] = []
        try:
            with sandbox(root, "share", org_calls) as org:
                room = quota.share_calls(org_calls, SMALL_SHARE)
                mail = emails(org, BACKLOG_FACTOR * room * COLLECTION)
                share = governed_burst(org, root / "store-share", SMALL_SHARE, mail, frozen=frozen)
                setups.append(share.setup)
                share_hold = hold_share_pause(share)
            with sandbox(root, "peer-share", org_calls) as org:
                peer_share = peer(org, mail, SMALL_SHARE)
            # The guard overshoot would come from a race between the workers: run it again.
            for n in range(guard_runs):
                with sandbox(root, f"guard-{n}", org_calls) as org:
                    others_to(org, OTHERS_AT)
                    store = root / f"store-guard-{n}"
                    guards.append(governed_burst(org, store, WIDE_SHARE, mail, frozen=frozen))
                    setups.append(guards[-1].setup)
                    if n < len(GUARD_LOOKERS):
                        guard_holds.append(
                            hold_guard_pause(guards[n], hold_hours, GUARD_LOOKERS[n])
                        )
                with sandbox(root, f"peer-guard-{n}", org_calls) as org:
                    others_to(org, OTHERS_AT)
                    peer_guards.append(peer(org, mail, WIDE_SHARE))
        finally:
            for setup in setups:
                setup.close()
    results = Results(
        org_calls,
        frozen,
        share,
        guards,
        peer_share,
        peer_guards,
        share_hold,
        guard_holds,
        time.perf_counter() - wall,
    )
    words = [overshoot_words(results), hold_words(results), resume_words(results)]
    for (title, columns, rows), text in zip(results.tables(), words, strict=True):
        report.show(title, columns, rows)
        print(text)
    print(f"Whole run: {results.seconds:.0f} s.")
    if write_section:
        write(results)
    else:
        print("BENCHMARKS.md left as it is (its figures come from a full run).")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--org-calls", type=int, default=1_000, help="each org's DailyApiRequests allocation"
    )
    parser.add_argument(
        "--hold-hours", type=float, default=6.0, help="virtual hours the guard pause is held"
    )
    parser.add_argument(
        "--guard-runs", type=int, default=3, help="runs of the guard variant (it is a race)"
    )
    parser.add_argument(
        "--frozen-clock",
        action="store_true",
        help="run the bursts on a clock standing still, as the integration tests do; "
        "BENCHMARKS.md is left alone",
    )
    parser.add_argument(
        "--scene-only",
        action="store_true",
        help="run only the sustained-limit scene (4); at its default length and speed it "
        "rewrites its own section of BENCHMARKS.md",
    )
    parser.add_argument(
        "--scene-hours", type=float, default=SCENE_HOURS, help="virtual hours the scene runs"
    )
    parser.add_argument(
        "--scene-speed",
        type=float,
        default=SCENE_SPEED,
        help="virtual seconds per real second in the scene",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smaller run: 400-call orgs, a 2-hour guard hold, 2 guard runs; BENCHMARKS.md "
        "is left alone",
    )
    args = parser.parse_args()
    if args.scene_only:
        run_scene(args.scene_hours, args.scene_speed)
        return
    if args.quick:
        args.org_calls, args.hold_hours, args.guard_runs = 400, 2.0, 2
    run(
        args.org_calls,
        args.hold_hours,
        max(1, args.guard_runs),
        frozen=args.frozen_clock,
        write_section=not (args.quick or args.frozen_clock),
    )


if __name__ == "__main__":
    main()
