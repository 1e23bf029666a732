"""Fault soak: quotasync as deployed (the web app, several worker processes, one PostgreSQL store)
against a sandbox org that misbehaves the whole time, then a count of what came through.

For `--minutes` the email product's side posts activity streams to `quotasync serve` over HTTP,
one stream per workspace (several workspaces on one org; each workspace's ids carry its own
prefix), at a steady rate in batches of 1 to 2x the rate. A post whose answer never comes (the
client gives up on a few on purpose, after sending them) is posted again with the same ids, until
a 202 says it is stored: an id is *accepted* once a 202 has answered a post that carried it. All
the while:

- the org answers 5% of REST calls 503 `SERVER_UNAVAILABLE`, refuses 5% of record writes with
  `UNABLE_TO_LOCK_ROW`, carries out 2% of calls and then drops the connection, and holds every
  answer back by a latency plus a random jitter (`/__sandbox/faults`);
- every session is ended now and then (`expire_sessions`);
- the org's records change (Contacts, Leads, Accounts, Opportunities updated, created, deleted
  through `/__sandbox/records`, as the org's people would), so the mirror has something to follow;
- another connected app ("Data Loader") takes the org past the 90% guard for a while; room comes
  back when the org's clock is moved a day on, so those calls leave its window;
- a random worker process is killed with SIGKILL every so often and a new one started.

Then the faults stop and the workers drain (nothing pending, no pause open), they are stopped,
and a last `quotasync sync` runs for each workspace. The checks:

1. every accepted activity is in the org exactly once: one Task per email (its opens, clicks and
   replies folded in, as counted from the accepted follow-ups), one live Event per meeting not
   canceled last, no record twice (`tests/integration/logging_support` says what is expected);
2. nothing lost: every accepted id is in the outbox and logged; failed or skipped ones are
   listed with their reasons (none are expected: every fault here is one to retry);
3. the mirror equals the org for each mirrored object (live ids and SystemModstamp), in every
   workspace;
4. the org's count of quotasync's calls equals the ledger, per API type: no call escaped the
   seam. The org's count is `/__sandbox/counted`, which keeps every call since the org started,
   so the day the clock jumps does not take any away.

The clocks: quotasync's processes and the org share a virtual clock (`--speed`, 1 by default:
real time), so that the test suite can run the same soak in a minute at 10x, where the 5-minute
recheck of a guard pause takes 30 real seconds. Times in the options are real seconds.

Usage: python -m benchmarks.soak [--minutes 10] [--workers 3] [--seed 1]
                                 [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import requests
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from benchmarks import report
from benchmarks.postgres import fresh_schema
from quotasync.clock import Clock, VirtualClock
from quotasync.config import Settings
from quotasync.domain import governor
from quotasync.engine import sync
from quotasync.engine.matching import Matcher
from quotasync.runtime import Runtime, open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.sandbox.launcher import stop_process
from quotasync.simulation import ActivityStream
from quotasync.store import db, mirror, quota_rows, workspaces
from quotasync.store.tables import Activity, LedgerEntry, PauseEpisode
from tests.integration.logging_support import (
    STREAM_START,
    by_activity_id,
    duplicates,
    expected_events,
    expected_tasks,
    people,
    prefix_of,
    records,
    reply_lines,
    sf_time,
)
from tests.sandbox_process import SandboxOrg, start_sandbox

CLI = [sys.executable, "-m", "quotasync.cli"]
DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
OTHER_APP = "Data Loader"
OVER_GUARD = 0.93  # other apps' share of the org while the guard is passed
# The org's types and quotasync's ledger types, for the count of calls.
COUNTED = {
    "data": "DailyApiRequests",
    "bulk": "DailyBulkApiBatches",
    "bulk_query": "DailyBulkV2QueryJobs",
    "apex": "DailyAsyncApexExecutions",
}
FAULT_KINDS = ("server_error", "lock", "drop", "delayed", "expire_sessions")
RECHECK = timedelta(minutes=5)  # the soak's workspaces look again this often while paused


@dataclass(frozen=True)
class Options:
    """What one soak does. Times are real seconds; rates are per real second."""

    minutes: float = 10.0
    workers: int = 3  # worker processes at any time
    concurrency: int = 2  # threads in each worker process
    seed: int = 1
    workspaces: int = 3  # on one org; connected as the admin (View Setup) and the sync user in turn
    rate: float = 4.0  # activities posted per second, per workspace
    speed: float = 1.0  # virtual seconds per real second, for quotasync and the org alike
    error_rate: float = 0.05
    lock_rate: float = 0.05
    drop_rate: float = 0.02
    latency_ms: float = 20.0
    jitter_ms: float = 300.0
    lost_answers: float = 0.03  # posts whose answer the client does not wait for
    kill_every: float = 40.0  # a worker process is killed every 0.5-1.5x this
    expire_every: float = 45.0  # every session ends this often
    change_every: float = 2.0  # one change to the org's records this often
    guard_from: float = 0.2  # other apps pass the guard at this part of the run...
    guard_until: float = 0.5  # ...and leave the org's window at this part
    lease_seconds: float = 5.0  # QUOTASYNC_LEASE_SECONDS, in real seconds
    claim_seconds: float = 10.0  # QUOTASYNC_CLAIM_SECONDS, in real seconds
    bulk_threshold: int = 500  # a backlog above this goes as a Bulk job (admin workspaces)
    org_seed: int = 200  # Accounts, Contacts, Leads and Opportunities seeded in the org
    drain_minutes: float = 20.0  # virtual minutes the drain may take (a killed Bulk job's
    # batch stays claimed for 15)

    @property
    def seconds(self) -> float:
        return self.minutes * 60

    def virtual(self, seconds: float) -> float:
        return seconds * self.speed


# ---------------------------------------------------------------- the store


@dataclass(frozen=True)
class Tenant:
    """One workspace of the soak: who it connects as, and its ingest token."""

    number: int
    workspace_id: str
    token: str
    user: str  # the org user it connects as


def open_tenants(org: SandboxOrg, runtime: Runtime, options: Options) -> list[Tenant]:
    """Workspaces connected to the org, their mirrors loaded, ready for a soak."""
    tenants = []
    connector = runtime.connector
    login = org.state_dir / "sandbox.json"
    for number in range(1, options.workspaces + 1):
        user = ("admin", "sync")[(number - 1) % 2]
        with runtime.sessions.begin() as session:
            made = workspaces.create(
                session, f"Soak {number}", f"admin@soak{number}.example", runtime.clock.now()
            )
            workspace = made.workspace
            # A guard pause looks again as soon as an admin may ask (5 minutes); the worker's
            # interval sync runs every minute, so it meets the faults too. Activities are logged
            # within 5 seconds, the least allowed, so that the faults meet as many writes as
            # they can (at the 60-second default a short soak sends too few to meet each kind).
            quota_rows.set_settings(
                session,
                workspace,
                recheck_minutes=int(RECHECK.total_seconds() // 60),
                log_within=governor.MIN_LOG_WITHIN,
            )
            workspace.sync_interval_minutes = 1
            workspace.bulk_threshold = options.bulk_threshold
        connector.connect_sandbox(workspace.id, SandboxLogin.read(login, user))
        Matcher(runtime.sessions, workspace.id, runtime.clock).load(connector.client(workspace.id))
        tenants.append(Tenant(number, workspace.id, made.ingest_token, user))
    return tenants


# ---------------------------------------------------------------- processes


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: IO[bytes]
    path: Path


class Processes:
    """quotasync's processes (the web app, the workers), each logging to a file of its own."""

    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env
        self.names = itertools.count(1)
        self.workers: list[Process] = []
        self.stopped: list[Process] = []
        self.web: Process | None = None
        self.web_url = ""
        self.kills = 0
        self.died: list[str] = []  # workers that ended without being told to

    def start_web(self) -> str:
        self.web = self._start("web", ["serve", "--port", "0"])
        line = _wait_for_line(self.web, "quotasync serving on ", 60)
        self.web_url = line.split(" on ", 1)[1].strip()
        return self.web_url

    def start_worker(self, concurrency: int) -> Process:
        worker = self._start(
            f"worker-{next(self.names)}", ["worker", "--concurrency", str(concurrency)]
        )
        self.workers.append(worker)
        return worker

    def kill_one(self, rng: random.Random, concurrency: int) -> None:
        """SIGKILL a random worker (no chance to give anything back), then start another."""
        victim = rng.choice(self.workers)
        victim.popen.send_signal(signal.SIGKILL)
        victim.popen.wait(timeout=30)
        self._retire(victim)
        self.kills += 1
        self.start_worker(concurrency)

    def replace_dead(self, concurrency: int) -> None:
        for worker in list(self.workers):
            if worker.popen.poll() is not None:
                self.died.append(f"{worker.name} exited {worker.popen.returncode}")
                self._retire(worker)
                self.start_worker(concurrency)

    def stop_workers(self, timeout: float = 60) -> dict[str, int | None]:
        """SIGTERM: each finishes the batch in flight and gives its leases back."""
        for worker in self.workers:
            worker.popen.send_signal(signal.SIGTERM)
        codes: dict[str, int | None] = {}
        for worker in list(self.workers):
            try:
                codes[worker.name] = worker.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                worker.popen.kill()
                codes[worker.name] = worker.popen.wait()
            self._retire(worker)
        return codes

    def stop(self) -> None:
        for process in [*self.workers, *([self.web] if self.web else [])]:
            stop_process(process.popen, timeout=15)
            process.log.close()
        self.workers = []
        self.web = None

    def cli(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env=self.env, timeout=timeout
        )

    def logs(self) -> list[Path]:
        return [p.path for p in [*self.stopped, *self.workers, *([self.web] if self.web else [])]]

    def _start(self, name: str, args: list[str]) -> Process:
        path = self.root / f"{name}.log"
        log = path.open("wb")
        popen = subprocess.Popen([*CLI, *args], stdout=log, stderr=subprocess.STDOUT, env=self.env)
        return Process(name, popen, log, path)

    def _retire(self, worker: Process) -> None:
        self.workers.remove(worker)
        worker.log.close()
        self.stopped.append(worker)


def _wait_for_line(process: Process, prefix: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in process.path.read_text(errors="replace").splitlines():
            if line.startswith(prefix):
                return line
        if process.popen.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{process.name} did not start:\n{process.path.read_text()}")


# ---------------------------------------------------------------- the email product's side


@dataclass
class Posting:
    """What one workspace's stream posted, and what the web app answered."""

    tenant: Tenant
    accepted: list[dict[str, Any]] = field(default_factory=list)  # in posting order
    posts: int = 0
    resent: int = 0  # posts of ids sent before without an answer
    unanswered: int = 0
    acknowledged_duplicates: int = 0  # the web app's `duplicates`, summed
    refused: Counter[int] = field(default_factory=Counter)  # status -> posts
    invalid: list[dict[str, Any]] = field(default_factory=list)  # 422 entries (none expected)


def prefixed(activity: dict[str, Any], prefix: str) -> dict[str, Any]:
    """The activity with its id, and the id it refers to, made unique to one workspace."""
    out = {**activity, "id": prefix + activity["id"]}
    for key in ("email_id", "meeting_id"):
        if out.get(key):
            out[key] = prefix + out[key]
    return out


class Poster(threading.Thread):
    """One workspace's email product: posts its stream at a steady rate, and posts again what
    got no answer until a 202 says it is stored."""

    def __init__(
        self,
        url: str,
        posting: Posting,
        stream: ActivityStream,
        options: Options,
        stop: threading.Event,
    ) -> None:
        super().__init__(name=f"poster-{posting.tenant.number}", daemon=True)
        self.endpoint = f"{url}/api/v1/workspaces/{posting.tenant.workspace_id}/activities"
        self.headers = {"Authorization": f"Bearer {posting.tenant.token}"}
        self.posting = posting
        self.stream = stream
        self.options = options
        self.stop = stop
        self.rng = random.Random(options.seed * 1000 + posting.tenant.number)
        self.prefix = f"s{options.seed}w{posting.tenant.number}-"

    def run(self) -> None:
        rate = self.options.rate
        most = max(1, round(2 * rate) - 1)
        due = time.monotonic()
        with requests.Session() as http:
            while not self.stop.is_set():
                batch = [
                    prefixed(self.stream.next(), self.prefix)
                    for _ in range(self.rng.randint(1, most))
                ]
                self.deliver(http, batch)
                due += len(batch) / rate
                self.stop.wait(max(0.0, due - time.monotonic()))

    def deliver(self, http: requests.Session, batch: list[dict[str, Any]]) -> None:
        posting = self.posting
        for attempt in itertools.count():
            posting.posts += 1
            posting.resent += attempt > 0
            # The answer lost on its way: half of those the client gives up on as soon as the
            # batch is sent (the web app may not have stored it yet, or at all), half come back
            # and go missing (the batch was stored). The client cannot tell them apart.
            roll = self.rng.random()
            give_up, lose = roll < self.options.lost_answers / 2, roll < self.options.lost_answers
            try:
                answer = http.post(
                    self.endpoint,
                    json=batch,
                    headers=self.headers,
                    timeout=(10, 0.001 if give_up else 60),
                )
            except requests.RequestException:
                answer = None
            if answer is None or lose:
                posting.unanswered += 1
                time.sleep(min(2.0, 0.05 * 2**attempt))
                continue
            if answer.status_code == 202:
                body = answer.json()
                posting.acknowledged_duplicates += int(body["duplicates"])
                posting.invalid += body["errors"]
                posting.accepted += batch
                return
            posting.refused[answer.status_code] += 1
            if answer.status_code < 500:
                return  # refused for good: a bug of the soak or the app, reported
            time.sleep(min(2.0, 0.05 * 2**attempt))


# ---------------------------------------------------------------- the org changing


@dataclass
class OrgChanges:
    """The org's people changing it: updates, new records, deletions, as its admins would."""

    org: SandboxOrg
    rng: random.Random
    ids: dict[str, list[str]] = field(default_factory=dict)  # type -> live ids to update
    created: list[tuple[str, str]] = field(default_factory=list)  # (type, id) the soak made
    done: Counter[str] = field(default_factory=Counter)  # "update Contact" -> n
    refused: list[str] = field(default_factory=list)

    def load(self) -> None:
        for sobject in ("Account", "Contact", "Lead", "Opportunity"):
            self.ids[sobject] = [r["Id"] for r in records(self.org, sobject)]

    def one(self) -> None:
        roll = self.rng.random()
        if roll < 0.6:
            self._update()
        elif roll < 0.85:
            self._create()
        else:
            self._delete()

    def _update(self) -> None:
        sobject = self.rng.choice(("Account", "Contact", "Lead", "Opportunity"))
        choices: dict[str, dict[str, Any]] = {
            "Account": {"Name": f"Renamed {self.rng.randint(1, 10**6)} Inc"},
            "Contact": {"Title": self.rng.choice(("CFO", "VP Sales", "Buyer", "CTO"))},
            "Lead": {"Title": self.rng.choice(("Analyst", "Director", "Head of Ops"))},
            "Opportunity": {"Amount": self.rng.randint(1, 500) * 1000},
        }
        values = choices[sobject]
        record_id = self.rng.choice(self.ids[sobject])
        self._call("PATCH", f"records/{sobject}/{record_id}", values, f"update {sobject}")

    def _create(self) -> None:
        n = self.rng.randint(1, 10**9)
        sobject, values = self.rng.choice(
            (
                ("Account", {"Name": f"Soak Newco {n}"}),
                ("Contact", {"LastName": f"Newperson{n}", "Email": f"new{n}@soak-new.example"}),
                ("Lead", {"LastName": f"Newlead{n}", "Company": f"Lead Co {n}"}),
            )
        )
        answer = self._call("POST", f"records/{sobject}", values, f"create {sobject}")
        if answer:
            self.created.append((sobject, answer[0]["id"]))

    def _delete(self) -> None:
        # Opportunities and the soak's own records: nobody's email is matched to them, so a
        # deletion fails no activity (a deleted recipient would, for good, by design).
        if self.created and self.rng.random() < 0.5:
            sobject, record_id = self.created.pop(self.rng.randrange(len(self.created)))
            if sobject == "Account":
                return  # an Account is kept: its Contacts would go with it
        else:
            sobject = "Opportunity"
            pool = self.ids[sobject]
            record_id = pool.pop(self.rng.randrange(len(pool)))
        self._call("DELETE", f"records/{sobject}/{record_id}", None, f"delete {sobject}")

    def _call(self, method: str, path: str, body: Any, what: str) -> Any:
        try:
            answer = self.org.control(method, path, body)
        except requests.RequestException as error:
            self.refused.append(f"{what}: {error}")
            return None
        self.done[what] += 1
        return answer


# ---------------------------------------------------------------- the run


@dataclass
class Guard:
    """Other apps past the org's 90% guard, and back."""

    pushed_at: float | None = None  # real seconds into the run
    back_at: float | None = None
    others_percent: float = 0.0  # the org's use by others once pushed
    counted_before: int = 0  # the org's count of quotasync's Data calls when pushed...
    counted_after: int = 0  # ...and just before room came back
    since: datetime | None = None  # the same two moments on quotasync's clock
    until: datetime | None = None
    by_purpose: Counter[str] = field(default_factory=Counter)  # quotasync's calls meanwhile

    @property
    def quotasync_calls(self) -> int:
        return self.counted_after - self.counted_before


@dataclass
class Chaos:
    """The soak's own schedule: kills, session expiries, record changes, the guard."""

    org: SandboxOrg
    processes: Processes
    options: Options
    changes: OrgChanges
    rng: random.Random
    clock: Clock
    guard: Guard = field(default_factory=Guard)
    expiries: int = 0

    def run(self, started: float, stop: threading.Event) -> None:
        options = self.options
        next_kill = options.kill_every * self.rng.uniform(0.5, 1.5)
        next_expiry = options.expire_every
        next_change = 0.0
        while not stop.is_set():
            elapsed = time.monotonic() - started
            if elapsed >= options.seconds:
                return
            self.processes.replace_dead(options.concurrency)
            if elapsed >= next_kill:
                self.processes.kill_one(self.rng, options.concurrency)
                next_kill = elapsed + options.kill_every * self.rng.uniform(0.5, 1.5)
            if elapsed >= next_expiry:
                self.org.control("POST", "faults", {"expire_sessions": True})
                self.expiries += 1
                next_expiry = elapsed + options.expire_every
            if elapsed >= next_change:
                self.changes.one()
                next_change = elapsed + options.change_every * self.rng.uniform(0.5, 1.5)
            if self.guard.pushed_at is None and elapsed >= options.guard_from * options.seconds:
                self.push_past_guard(elapsed)
            if self.guard.back_at is None and elapsed >= options.guard_until * options.seconds:
                self.room_again(elapsed)
            stop.wait(0.1)

    def push_past_guard(self, elapsed: float) -> None:
        usage = self.org.control("GET", "usage")["DailyApiRequests"]
        want = math.ceil(usage["max"] * OVER_GUARD) - usage["used"]
        self.guard.counted_before = quotasync_counted(self.org)
        self.guard.since = self.clock.now()
        self.org.control("POST", "consume", {"app": OTHER_APP, "api": "data", "calls": want})
        after = self.org.control("GET", "usage")["DailyApiRequests"]
        self.guard.others_percent = 100 * after["by_app"].get(OTHER_APP, 0) / after["max"]
        self.guard.pushed_at = elapsed

    def room_again(self, elapsed: float) -> None:
        """The other app's calls leave the org's window: its clock moves a day on (the org's
        sessions, idle for that day, expire with it)."""
        if self.guard.pushed_at is None:
            return
        self.guard.counted_after = quotasync_counted(self.org)
        self.guard.until = self.clock.now()
        self.org.control("POST", "clock", {"advance_seconds": 24 * 3600 + 60})
        self.guard.back_at = elapsed


def quotasync_counted(org: SandboxOrg, api: str = "data") -> int:
    return int(org.control("GET", "counted")[COUNTED[api]].get("quotasync", 0))


def faults_on(org: SandboxOrg, options: Options) -> None:
    org.control(
        "POST",
        "faults",
        {
            "error_rate": options.error_rate,
            "lock_rate": options.lock_rate,
            "drop_rate": options.drop_rate,
            "latency_ms": options.latency_ms,
            "jitter_ms": options.jitter_ms,
        },
    )


def faults_off(org: SandboxOrg) -> None:
    quiet = {"error_rate": 0, "lock_rate": 0, "drop_rate": 0, "latency_ms": 0, "jitter_ms": 0}
    org.control("POST", "faults", quiet)


def unsettled(sessions: sessionmaker[Session]) -> tuple[int, int]:
    """Activities still pending, and pause episodes still open, over every workspace."""
    with sessions() as session:
        pending = session.scalar(
            select(func.count()).select_from(Activity).where(Activity.state == "pending")
        )
        paused = session.scalar(
            select(func.count()).select_from(PauseEpisode).where(PauseEpisode.ended_at.is_(None))
        )
    return int(pending or 0), int(paused or 0)


def drain(
    sessions: sessionmaker[Session], processes: Processes, options: Options
) -> tuple[float, tuple[int, int]]:
    """Wait until nothing is pending and no pause is open; returns the real seconds it took
    and what was left if it timed out."""
    started = time.monotonic()
    limit = options.drain_minutes * 60 / options.speed
    left = unsettled(sessions)
    while left != (0, 0) and time.monotonic() - started < limit:
        processes.replace_dead(options.concurrency)
        time.sleep(1.0)
        left = unsettled(sessions)
    return time.monotonic() - started, left


# ---------------------------------------------------------------- the checks


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Figures:
    """What a soak did and found; `checks` decide whether it passed."""

    options: Options
    postings: list[Posting] = field(default_factory=list)  # what each workspace's stream posted
    accepted: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    posts: int = 0
    resent: int = 0
    unanswered: int = 0
    acknowledged_duplicates: int = 0
    refused_posts: Counter[int] = field(default_factory=Counter)
    injected: dict[str, int] = field(default_factory=dict)
    expired_sessions: int = 0
    kills: int = 0
    died: list[str] = field(default_factory=list)
    worker_exits: dict[str, int | None] = field(default_factory=dict)
    errors: Counter[str] = field(default_factory=Counter)  # "web: ClientDisconnect" -> times
    pauses: Counter[str] = field(default_factory=Counter)  # "org_guard data" -> episodes
    resumed_after: list[float] = field(default_factory=list)  # guard pauses: room -> a write (s)
    guard: Guard = field(default_factory=Guard)
    record_changes: Counter[str] = field(default_factory=Counter)
    states: Counter[str] = field(default_factory=Counter)
    failed: dict[str, str] = field(default_factory=dict)  # activity id -> last_error
    skipped: dict[str, str] = field(default_factory=dict)
    duplicates_in_org: int = 0
    lost: int = 0
    lost_detail: list[str] = field(default_factory=list)
    unexpected_in_org: list[str] = field(default_factory=list)
    mirror: dict[str, tuple[int, int]] = field(default_factory=dict)  # type -> (org, mismatched)
    ledger: dict[str, int] = field(default_factory=dict)
    counted: dict[str, int] = field(default_factory=dict)
    ledger_by_purpose: Counter[str] = field(default_factory=Counter)
    unanswered_calls: int = 0  # Data calls in the ledger that got no answer (kept as spent)
    logged_seconds: list[float] = field(default_factory=list)  # accepted -> logged (virtual)
    drain_seconds: float = 0.0
    left_after_drain: tuple[int, int] = (0, 0)
    sync_failures: list[str] = field(default_factory=list)
    wall_seconds: float = 0.0
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def resume_limit(self) -> float:
        """The longest a guard pause may outlast the other apps' calls, in virtual seconds: one
        recheck, the writer's next look (`governor.MIN_LOOK`) and 10 real seconds of steps."""
        look = governor.MIN_LOOK.total_seconds()
        return RECHECK.total_seconds() + look + self.options.virtual(10)

    @property
    def refused_unanswered(self) -> int:
        """Answers the org dropped to calls it had refused without counting them: the ledger
        keeps such a call as spent (its client cannot tell), the org does not."""
        return self.injected.get("drop_not_counted", 0)

    def calls_apart(self, api: str) -> int:
        """The ledger's calls of a type less the org's count, beyond what dropped answers
        explain: below 0, a call escaped the seam; above, the ledger holds a call the org never
        received."""
        explained = self.refused_unanswered if api == "data" else 0
        return self.ledger[api] - self.counted[api] - explained


def check_org(
    org: SandboxOrg,
    accepted: list[dict[str, Any]],
    prefixes: list[str | None],
    figures: Figures,
) -> None:
    """Every accepted activity in the org exactly once, follow-ups folded into their Task, in
    the records of the workspaces whose external-id `prefixes` are given."""
    tasks, events = records(org, "Task"), records(org, "Event")
    doubled = {**duplicates(tasks), **duplicates(events)}
    figures.duplicates_in_org = sum(n - 1 for n in doubled.values())
    want_tasks, want_events = expected_tasks(accepted), expected_events(accepted)
    live_events = {k: e for k, e in want_events.items() if not e.canceled}
    found_tasks, found_events = by_activity_id(tasks, prefixes), by_activity_id(events, prefixes)
    for key in sorted(set(want_tasks) - set(found_tasks)):
        figures.lost_detail.append(f"no Task for {key}")
    for key in sorted(set(live_events) - set(found_events)):
        figures.lost_detail.append(f"no Event for {key}")
    figures.unexpected_in_org += [f"Task {k}" for k in sorted(set(found_tasks) - set(want_tasks))]
    figures.unexpected_in_org += [
        f"Event {k}" for k in sorted(set(found_events) - set(live_events))
    ]
    for key, want in want_tasks.items():
        task = _first(found_tasks, key)
        if task is None:
            continue
        got = (task.get("QS_Opens__c") or 0, task.get("QS_Clicks__c") or 0)
        got_replies = reply_lines(task.get("Description"))
        if got != (want.opens, want.clicks) or got_replies != want.replies:
            figures.lost_detail.append(
                f"Task {key}: opens/clicks/replies {(*got, got_replies)}, "
                f"want {(want.opens, want.clicks, want.replies)}"
            )
    for key, event in live_events.items():
        found = _first(found_events, key)
        if found is not None and (
            sf_time(found.get("StartDateTime")),
            sf_time(found.get("EndDateTime")),
        ) != (event.start, event.end):
            figures.lost_detail.append(f"Event {key}: times differ from its latest change")


def _first(grouped: dict[str, list[dict[str, Any]]], key: str) -> dict[str, Any] | None:
    found = grouped.get(key)
    return found[0] if found else None


def check_outbox(
    sessions: sessionmaker[Session], postings: list[Posting], figures: Figures
) -> None:
    """Every accepted id stored and settled: logged, or failed or skipped with a reason."""
    with sessions() as session:
        rows = {
            (row.workspace_id, row.id): row
            for row in session.scalars(select(Activity))
        }  # fmt: skip
    for posting in postings:
        for activity in posting.accepted:
            row = rows.get((posting.tenant.workspace_id, activity["id"]))
            if row is None:
                figures.lost_detail.append(f"{activity['id']} was accepted but is not stored")
                continue
            figures.states[row.state] += 1
            if row.state == "failed":
                figures.failed[row.id] = row.last_error or ""
            elif row.state == "skipped":
                figures.skipped[row.id] = row.last_error or ""
            elif row.state == "pending":
                figures.lost_detail.append(f"{row.id} is still pending")
            if row.logged_at is not None:
                figures.logged_seconds.append((row.logged_at - row.received_at).total_seconds())


def check_mirror(
    org: SandboxOrg, sessions: sessionmaker[Session], tenants: list[Tenant], figures: Figures
) -> None:
    """The mirror equals the org: the same live records, with the same SystemModstamp."""
    for sobject in sync.OBJECTS:
        found = org.control("GET", f"records/{sobject}?include_deleted=true")
        live = {
            r["Id"]: mirror.modstamp(r["SystemModstamp"]) for r in found if not r.get("IsDeleted")
        }
        wrong = 0
        with sessions() as session:
            for tenant in tenants:
                kept = mirror.records(session, tenant.workspace_id, sobject)
                mirrored = {i: r.modstamp for i, r in kept.items()}
                wrong += len(set(live) ^ set(mirrored))
                wrong += sum(1 for i in set(live) & set(mirrored) if live[i] != mirrored[i])
        figures.mirror[sobject] = (len(live), wrong)


def check_calls(org: SandboxOrg, sessions: sessionmaker[Session], figures: Figures) -> None:
    """The org's count of quotasync's calls against the ledger, per API type."""
    counted = org.control("GET", "counted")
    with sessions() as session:
        ledger = dict(
            session.execute(
                select(LedgerEntry.api, func.coalesce(func.sum(LedgerEntry.calls), 0)).group_by(
                    LedgerEntry.api
                )
            ).all()
        )
        purposes = session.execute(
            select(LedgerEntry.purpose, func.coalesce(func.sum(LedgerEntry.calls), 0))
            .where(LedgerEntry.api == "data")
            .group_by(LedgerEntry.purpose)
        ).all()
    for api, name in COUNTED.items():
        figures.ledger[api] = int(ledger.get(api, 0))
        figures.counted[api] = int(counted[name].get("quotasync", 0))
    figures.ledger_by_purpose = Counter({p: int(n) for p, n in purposes})
    guard = figures.guard
    if guard.since is not None and guard.until is not None:
        with sessions() as session:
            meanwhile = session.execute(
                select(LedgerEntry.purpose, func.sum(LedgerEntry.calls))
                .where(
                    LedgerEntry.api == "data",
                    LedgerEntry.at >= guard.since,
                    LedgerEntry.at < guard.until,
                    LedgerEntry.calls > 0,
                )
                .group_by(LedgerEntry.purpose)
            ).all()
        guard.by_purpose = Counter({p: int(n or 0) for p, n in meanwhile})
    with sessions() as session:
        figures.unanswered_calls = int(
            session.scalar(
                select(func.count())
                .select_from(LedgerEntry)
                .where(
                    LedgerEntry.api == "data", LedgerEntry.status.is_(None), LedgerEntry.calls > 0
                )
            )
            or 0
        )


def note_pauses(sessions: sessionmaker[Session], figures: Figures) -> None:
    """Pause episodes by reason, and how long after room came back each guard pause's workspace
    wrote again. (Its episode may go on after that: a limit's episode ends when the backlog is
    written or the room stays comfortable for a while, so one email each way covers the time
    the backlog takes; writing again is what the recheck promises.)"""
    back = figures.guard.until
    with sessions() as session:
        for episode in session.scalars(select(PauseEpisode)):
            figures.pauses[f"{episode.reason} ({episode.api})"] += 1
            if episode.reason != "org_guard" or back is None:
                continue
            if episode.ended_at is not None and episode.ended_at <= back:
                resumed = episode.ended_at
            else:
                resumed = session.scalar(
                    select(func.min(LedgerEntry.at)).where(
                        LedgerEntry.workspace_id == episode.workspace_id,
                        LedgerEntry.purpose == "log_activity",
                        LedgerEntry.at >= max(back, episode.started_at),
                        LedgerEntry.status >= 200,
                        LedgerEntry.status < 300,
                    )
                ) or datetime.max.replace(tzinfo=UTC)
            figures.resumed_after.append((resumed - back).total_seconds())


def note_errors(logs: list[Path], figures: Figures) -> None:
    """Exceptions quotasync's processes logged (caught and carried on from, or the end of a
    process), each by its process ("web", "worker") and its last line, the exception itself."""
    for path in logs:
        process = path.stem.split("-")[0]
        lines = path.read_text(errors="replace").splitlines()
        for n, line in enumerate(lines):
            if line.startswith("Traceback"):
                end = next(
                    (m for m in range(n + 1, len(lines)) if not lines[m].startswith((" ", "\t"))),
                    len(lines) - 1,
                )
                figures.errors[f"{process}: {lines[end][:160]}"] += 1


def decide(figures: Figures) -> None:
    f = figures
    ledger_equal = all(f.calls_apart(api) == 0 for api in COUNTED)
    mirror_wrong = sum(w for _, w in f.mirror.values())
    f.lost = len(f.lost_detail)
    f.checks = [
        Check("activities accepted", f.accepted > 0 and not f.refused_posts, _refused(f)),
        Check(
            "every accepted activity in the org exactly once",
            f.duplicates_in_org == 0 and not f.unexpected_in_org,
            f"duplicates {f.duplicates_in_org}, unexpected records {len(f.unexpected_in_org)}",
        ),
        Check("nothing lost", f.lost == 0, f"lost {f.lost}"),
        Check(
            "nothing failed or skipped",
            not f.failed and not f.skipped,
            f"failed {len(f.failed)}, skipped {len(f.skipped)}",
        ),
        Check(
            "drained",
            f.left_after_drain == (0, 0),
            f"pending {f.left_after_drain[0]}, open pauses {f.left_after_drain[1]} after "
            f"{f.drain_seconds:.0f} s",
        ),
        Check("mirror equals the org", mirror_wrong == 0, f"{mirror_wrong} records differ"),
        Check("final mirror sync", not f.sync_failures, "; ".join(f.sync_failures) or "complete"),
        Check(
            "guard pauses wrote again within a recheck of room coming back",
            bool(f.resumed_after) and max(f.resumed_after) <= f.resume_limit,
            f"after {_seconds(f.resumed_after)} (virtual s; at most {f.resume_limit:.0f})",
        ),
        Check(
            "ledger equals the org's count",
            ledger_equal,
            _ledger_words(f),
        ),
        Check(
            "workers: none died on its own, each stopped cleanly",
            not f.died and all(code == 0 for code in f.worker_exits.values()),
            f"died {f.died or 0}, exits {sorted(set(f.worker_exits.values()), key=str)}",
        ),
    ]


def _seconds(values: list[float]) -> str:
    return ", ".join("never" if v > 10**8 else f"{v:.0f}" for v in sorted(values)) or "-"


def _refused(f: Figures) -> str:
    if not f.refused_posts:
        return f"{f.accepted:,} accepted"
    return "posts refused: " + ", ".join(f"{s}: {n}" for s, n in sorted(f.refused_posts.items()))


# ---------------------------------------------------------------- one soak


def run(options: Options, database_url: str, root: Path) -> Figures:
    """One soak in `root` (the org's state, the data dir, the logs) on a migrated-or-empty store."""
    wall = time.monotonic()
    figures = Figures(options)
    epoch = datetime.now(UTC).replace(microsecond=0)
    org = start_sandbox(
        root / "org",
        "--seed",
        str(options.org_seed),
        "--speed",
        str(options.speed),
        "--epoch",
        epoch.isoformat(),
        process=True,
    )
    with ExitStack() as stack:
        stack.callback(org.stop)
        db.upgrade(database_url)
        clock = VirtualClock(epoch=epoch, speed=options.speed)
        runtime = open_runtime(Settings(data_dir=root / "data", database_url=database_url), clock)
        stack.callback(runtime.sessions.kw["bind"].dispose)
        tenants = open_tenants(org, runtime, options)
        processes = Processes(root, environment(options, root, database_url, epoch))
        stack.callback(processes.stop)
        soak(org, runtime, tenants, processes, options, figures)
        sessions = runtime.sessions
        figures.drain_seconds, figures.left_after_drain = drain(sessions, processes, options)
        figures.worker_exits = processes.stop_workers()
        figures.died = processes.died
        for tenant in tenants:
            done = processes.cli("sync", "--workspace", tenant.workspace_id, "--json")
            if done.returncode != 0:
                figures.sync_failures.append(f"{tenant.workspace_id}: {done.stderr.strip()}")
        figures.injected = org.control("GET", "faults")["injected"]
        accepted = [a for p in figures.postings for a in p.accepted]
        prefixes = [prefix_of(sessions, tenant.workspace_id) for tenant in tenants]
        check_org(org, accepted, prefixes, figures)
        check_outbox(sessions, figures.postings, figures)
        check_mirror(org, sessions, tenants, figures)
        check_calls(org, sessions, figures)
        note_pauses(sessions, figures)
        note_errors(processes.logs(), figures)
    figures.wall_seconds = time.monotonic() - wall
    decide(figures)
    return figures


def environment(options: Options, root: Path, database_url: str, epoch: datetime) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "QUOTASYNC_DATA_DIR": str(root / "data"),
        "QUOTASYNC_DATABASE_URL": database_url,
        "QUOTASYNC_CLOCK_SPEED": str(options.speed),
        "QUOTASYNC_CLOCK_EPOCH": epoch.isoformat(),
        "QUOTASYNC_LEASE_SECONDS": str(options.virtual(options.lease_seconds)),
        "QUOTASYNC_CLAIM_SECONDS": str(options.virtual(options.claim_seconds)),
    }


def soak(
    org: SandboxOrg,
    runtime: Runtime,
    tenants: list[Tenant],
    processes: Processes,
    options: Options,
    figures: Figures,
) -> None:
    """The soak itself: posting, faults and chaos for `options.minutes`, then quiet."""
    rng = random.Random(options.seed)
    url = processes.start_web()
    for _ in range(options.workers):
        processes.start_worker(options.concurrency)
    known = people(org)
    changes = OrgChanges(org, random.Random(options.seed + 1))
    changes.load()
    chaos = Chaos(org, processes, options, changes, rng, runtime.clock)
    postings = figures.postings = [Posting(t) for t in tenants]
    stop = threading.Event()
    posters = [
        Poster(url, posting, stream_for(known, options, posting.tenant), options, stop)
        for posting in postings
    ]
    faults_on(org, options)
    started = time.monotonic()
    for poster in posters:
        poster.start()
    try:
        chaos.run(started, stop)
    finally:
        stop.set()
        for poster in posters:
            poster.join(timeout=120)
        faults_off(org)
    if chaos.guard.back_at is None:
        chaos.room_again(time.monotonic() - started)
    figures.kills = processes.kills
    figures.expired_sessions = chaos.expiries
    figures.guard = chaos.guard
    figures.record_changes = changes.done
    for posting in postings:
        figures.accepted += len(posting.accepted)
        figures.by_kind.update(a["kind"] for a in posting.accepted)
        figures.posts += posting.posts
        figures.resent += posting.resent
        figures.unanswered += posting.unanswered
        figures.acknowledged_duplicates += posting.acknowledged_duplicates
        figures.refused_posts.update(posting.refused)


def stream_for(known: Any, options: Options, tenant: Tenant) -> ActivityStream:
    return ActivityStream(
        sorted(known.reps),
        known.recipients,
        STREAM_START,
        seed=options.seed * 100 + tenant.number,
    )


# ---------------------------------------------------------------- the report


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def rows(f: Figures) -> list[list[str]]:
    o = f.options
    kinds = ", ".join(f"{k} {n:,}" for k, n in sorted(f.by_kind.items()))
    faults = ", ".join(f"{k} {f.injected.get(k, 0):,}" for k in FAULT_KINDS)
    pauses = ", ".join(f"{k} {n}" for k, n in sorted(f.pauses.items())) or "none"
    changes = ", ".join(f"{k} {n}" for k, n in sorted(f.record_changes.items()))
    errors = sum(f.errors.values())
    mirror_rows = ", ".join(f"{k} {n:,}/{w}" for k, (n, w) in f.mirror.items())
    ledger = _ledger_words(f)
    speed = "" if o.speed == 1 else f" at {o.speed:g}x"
    return [
        ["soak", f"{o.minutes:g} min{speed}, {o.workspaces} workspaces, {o.workers} workers x {o.concurrency} threads"],
        ["activities accepted", f"{f.accepted:,} ({kinds})"],
        ["posts", f"{f.posts:,}; {f.resent:,} re-sent after no answer ({f.unanswered:,} unanswered)"],
        ["duplicate ids acknowledged, not stored", f"{f.acknowledged_duplicates:,}"],
        ["faults injected", faults],
        ["sessions expired", f"{f.injected.get('expired_sessions', 0):,} in {f.injected.get('expire_sessions', 0)} expiries (and every one when the org's clock jumped a day)"],
        ["worker processes killed (SIGKILL)", f"{f.kills} (died on their own: {len(f.died)})"],
        ["exceptions logged", f"{errors}" + (f": {_errors_words(f)}" if errors else "")],
        ["other apps past the guard", _guard_words(f)],
        ["pauses (episodes)", pauses],
        ["guard pauses wrote again after room came back (virtual s)", _seconds(f.resumed_after)],
        ["org records changed", changes],
        ["duplicates in the org", f"{f.duplicates_in_org}"],
        ["lost", f"{f.lost}"],
        ["failed / skipped", f"{len(f.failed)} / {len(f.skipped)}"],
        ["accepted -> logged (virtual s)", f"p50 {percentile(f.logged_seconds, 0.5):.1f}, p95 {percentile(f.logged_seconds, 0.95):.1f}, max {max(f.logged_seconds, default=0):.1f}"],
        ["mirror (org records/differing)", mirror_rows],
        ["ledger = sandbox count", ledger],
        ["drain", f"{f.drain_seconds:.0f} s; whole run {f.wall_seconds:.0f} s"],
    ]  # fmt: skip


def _ledger_words(f: Figures) -> str:
    words = []
    for api in COUNTED:
        ledger, counted, apart = f.ledger[api], f.counted[api], f.calls_apart(api)
        said = f"{api} {ledger:,} {'=' if ledger == counted else 'vs'} {counted:,}"
        if api == "data" and f.refused_unanswered:
            said += f" + {f.refused_unanswered} refused uncounted, answer dropped"
        if apart:
            said += f" (apart by {apart})"
        words.append(said)
    drops = f.injected.get("drop", 0)
    return "; ".join(words) + f"; calls without an answer {f.unanswered_calls} ({drops} dropped)"


def _errors_words(f: Figures) -> str:
    return ", ".join(f"{message} x{n}" for message, n in f.errors.most_common(5))


def _guard_words(f: Figures) -> str:
    g = f.guard
    if g.pushed_at is None or g.back_at is None:
        return "not reached"
    return (
        f"{g.others_percent:.0f}% of the org from {g.pushed_at:.0f} s to {g.back_at:.0f} s; "
        f"quotasync's calls meanwhile, as the org counted them: {g.quotasync_calls}; by the "
        f"ledger: {', '.join(f'{p} {n}' for p, n in sorted(g.by_purpose.items())) or 'none'}"
    )


def headline(f: Figures) -> dict[str, Any]:
    return {
        "minutes": f.options.minutes,
        "speed": f.options.speed,
        "workers": f.options.workers,
        "activities_accepted": f.accepted,
        "duplicate_posts": f.resent,
        "duplicates_acknowledged": f.acknowledged_duplicates,
        "faults_injected": {
            k: f.injected.get(k, 0) for k in (*FAULT_KINDS, "expired_sessions", "drop_not_counted")
        },
        "worker_kills": f.kills,
        "worker_crashes": len(f.died),
        "pauses": dict(f.pauses),
        "duplicates_in_org": f.duplicates_in_org,
        "lost": f.lost,
        "failed": len(f.failed),
        "ledger": f.ledger,
        "sandbox_count": f.counted,
        "passed": f.passed,
    }


def write(f: Figures) -> None:
    body = "\n\n".join(
        [
            "## Fault soak (`python -m benchmarks.soak`)",
            "The web app, worker processes and a PostgreSQL store against a sandbox org that "
            f"answers {f.options.error_rate:.0%} of calls 503, refuses {f.options.lock_rate:.0%} "
            f"of record writes with `UNABLE_TO_LOCK_ROW`, drops {f.options.drop_rate:.0%} of "
            f"connections after carrying the call out, delays each answer "
            f"{f.options.latency_ms:g} ms plus up to {f.options.jitter_ms:g} ms, ends every "
            "session now and then, changes its records, and lets another app past the 90% guard "
            "for a while; a worker process is killed with SIGKILL every "
            f"~{f.options.kill_every:g} s. See docs/RELIABILITY.md for what is checked.",
            report.markdown_table(["figure", "value"], rows(f)),
            "Checks: " + "; ".join(f"{c.name}: {'ok' if c.ok else 'FAILED'}" for c in f.checks),
        ]
    )
    report.write_section("soak", body)


def show(f: Figures) -> None:
    report.show("Fault soak", ["figure", "value"], rows(f))
    report.show(
        "Checks",
        ["check", "result", "detail"],
        [[c.name, "ok" if c.ok else "FAILED", c.detail] for c in f.checks],
    )
    for line in [*f.lost_detail[:20], *f.unexpected_in_org[:20]]:
        print("  ", line)
    for reason, ids in _grouped(f.failed).items():
        print(f"   failed ({len(ids)}): {reason}")
    for message, n in f.errors.most_common(10):
        print(f"   exception x{n}: {message}")


def _grouped(values: dict[str, str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in values.items():
        out.setdefault(value[:120], []).append(key)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", default=DATABASE_URL, help="a PostgreSQL server")
    parser.add_argument(
        "--keep", type=Path, help="keep the org's state, the data dir and the logs here"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="leave BENCHMARKS.md and results/ alone"
    )
    args = parser.parse_args(argv)
    options = Options(minutes=args.minutes, workers=args.workers, seed=args.seed)
    with ExitStack() as stack:
        root = args.keep or Path(stack.enter_context(tempfile.TemporaryDirectory()))
        root.mkdir(parents=True, exist_ok=True)
        url = stack.enter_context(fresh_schema(args.database_url, prefix="soak"))
        figures = run(options, url, root)
    show(figures)
    if not args.no_write:
        write(figures)
        report.save_results("soak", headline(figures))
    print(json.dumps(headline(figures), indent=2))
    return 0 if figures.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
