"""Worker processes sharing a PostgreSQL store by lease: one killed with SIGKILL hands its
workspaces to the other within one lease, and nothing is written twice or lost."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from quotasync.clock import ManualClock, RealClock
from quotasync.engine.pool import IDLE_LOOK, Options, Pool
from quotasync.engine.worker import Progress, Worker
from quotasync.salesforce import api
from quotasync.store.tables import Activity as Row
from quotasync.store.tables import WorkerLease
from tests.databases import postgres_url
from tests.integration.logging_support import CLI, Setup, connect, people, stream
from tests.integration.test_logging import assert_each_in_org_once, call_in_flight, wait_for
from tests.processes import finish, spawn
from tests.sandbox_process import SandboxOrg

LEASE_SECONDS = 4.0
pytestmark = pytest.mark.timeout(240)


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from postgres_url()


def lease_rows(setup: Setup) -> dict[str, WorkerLease]:
    with setup.runtime.sessions() as session:
        return {row.workspace_id: row for row in session.scalars(select(WorkerLease))}


def held_by(setup: Setup, prefix: str) -> set[str]:
    now = datetime.now(UTC)
    return {
        ws
        for ws, row in lease_rows(setup).items()
        if row.holder is not None
        and row.holder.startswith(prefix)
        and row.expires_at is not None
        and row.expires_at > now
    }


def worker(setup: Setup, *args: str) -> subprocess.Popen[str]:
    env = {
        **setup.cli_env(),
        "QUOTASYNC_LEASE_SECONDS": str(LEASE_SECONDS),
        "QUOTASYNC_CLAIM_SECONDS": str(LEASE_SECONDS),
    }
    return spawn([*CLI, "worker", *args], env)


def test_a_killed_worker_process_hands_its_workspaces_to_the_other_within_one_lease(
    new_org: Callable[..., SandboxOrg], postgres: str, tmp_path: Path
) -> None:
    org = new_org("--seed", "60", "--session-timeout-minutes", "0")
    # Three workspaces in one store and data dir (one secret key), on one org.
    setups = [connect(org, tmp_path, postgres, RealClock()) for _ in range(3)]
    try:
        run_and_kill(org, setups)
    finally:
        for setup in setups:
            setup.close()


def run_and_kill(org: SandboxOrg, setups: list[Setup]) -> None:
    known = people(org)
    everything = []
    for n, setup in enumerate(setups):
        activities = stream(known, 2400, seed=100 + n)
        setup.settings(log_within=0)
        assert setup.ingest(activities).accepted == 2400
        everything += activities
    # Slow calls keep batches in flight, so the kill lands mid-step with leases held.
    org.control("POST", "faults", {"latency_ms": 500})
    first = setups[0]
    doomed = worker(first, "--concurrency", "3")
    survivor: subprocess.Popen[str] | None = None
    try:
        wait_for(lambda: len(held_by(first, "")) == 3, 60, "the first worker to lease all three")
        # The other process starts; a lease lasts one step, so between the first's batches it
        # may take a workspace too. Whatever the first holds when it is killed must move.
        survivor = worker(first, "--concurrency", "3")
        survivor_pid = f":{survivor.pid}:"
        doomed_holder = f"{socket.gethostname()[:60]}:{doomed.pid}:"
        wait_for(lambda: bool(held_by(first, doomed_holder)), 60, "a lease held by the first")
        doomed.send_signal(signal.SIGKILL)
        doomed.wait(timeout=10)
        killed_at = datetime.now(UTC)
        # What the killed worker held, and until when: it renewed every third of a lease, so
        # each runs out within one lease of its death, whatever the machine's speed.
        rows = lease_rows(first)
        held = {
            ws for ws, row in rows.items() if row.holder and row.holder.startswith(doomed_holder)
        }
        assert held, rows
        expiries = [rows[ws].expires_at for ws in held]
        assert all(
            e is not None and e <= killed_at + timedelta(seconds=LEASE_SECONDS) for e in expiries
        )

        def all_moved() -> bool:
            # Taken by the survivor: held by it now, or given back by it since the kill (a
            # step with little left to do may begin and end between two looks).
            return all(
                (row.holder is not None and survivor_pid in row.holder)
                or (row.stepped_at is not None and row.stepped_at > killed_at)
                for ws, row in lease_rows(first).items()
                if ws in held
            )

        wait_for(all_moved, 120, "the survivor to take the killed worker's workspaces")
        org.control("POST", "faults", {"latency_ms": 0})
        wait_for(
            lambda: all(s.states() == {"logged": 2400} for s in setups),
            120,
            "every activity to be logged",
        )
    finally:
        for process in (doomed, survivor):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
        outputs = [finish(p) for p in (doomed, survivor) if p is not None]
    assert survivor is not None and survivor.returncode == 0, outputs
    assert_each_in_org_once(org, everything, *setups)
    # The survivor stopped gracefully: it gave every lease back.
    assert not held_by(first, "")
    assert all(row.stepped_at is not None for row in lease_rows(first).values())


def claimed(setup: Setup) -> int:
    """Pending activities held by a worker's claim (not a retry's backoff: those have tries)."""
    with setup.runtime.sessions() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Row)
                .where(
                    Row.workspace_id == setup.workspace_id,
                    Row.state == "pending",
                    Row.attempts == 0,
                    Row.next_attempt_at > datetime.now(UTC),
                )
            )
            or 0
        )


def test_sigterm_finishes_the_batch_in_flight_and_gives_the_lease_back(
    new_org: Callable[..., SandboxOrg], tmp_path: Path
) -> None:
    org = new_org("--seed", "60", "--session-timeout-minutes", "0")
    setup = connect(org, tmp_path, None, RealClock())
    try:
        activities = [a for a in stream(people(org), 3000, seed=7) if a["kind"] == "email_sent"]
        setup.settings(log_within=0)
        setup.ingest(activities)
        org.control("POST", "faults", {"latency_ms": 1500})
        process = worker(setup)
        wait_for(lambda: call_in_flight(setup), 60, "a write to be in flight")
        batch = api.RECORDS_PER_CALL  # one email, one record: a call's worth
        assert len(activities) > batch
        assert claimed(setup) == batch  # one batch claimed and on its way
        process.send_signal(signal.SIGTERM)
        out, err = finish(process)
        assert process.returncode == 0, err
        assert f"worker stopped: {batch:,} activities settled" in out
        # The batch went through and was recorded; nothing is left claimed or leased.
        assert setup.states() == {"logged": batch, "pending": len(activities) - batch}
        assert claimed(setup) == 0
        assert not held_by(setup, "")
        org.control("POST", "faults", {"latency_ms": 0})
        done = setup.cli("worker", "--until-idle")
        assert done.returncode == 0, done.stderr
        assert setup.states() == {"logged": len(activities)}
        assert_each_in_org_once(org, activities, setup)
    finally:
        setup.close()


def test_a_big_backlog_does_not_keep_a_small_workspace_waiting(
    new_org: Callable[..., SandboxOrg], tmp_path: Path
) -> None:
    """One worker thread, one workspace with 10,000 emails queued (ten calls of 1,000), another
    that receives ten later: the ten go at the next turn, long before the backlog is through."""
    org = new_org("--seed", "60", "--session-timeout-minutes", "0")
    big, small = (connect(org, tmp_path, None, RealClock()) for _ in range(2))
    try:
        emails = [a for a in stream(people(org), 25000, seed=3) if a["kind"] == "email_sent"]
        for setup in (big, small):
            setup.settings(log_within=0)
        big.ingest(emails[:10000])
        org.control("POST", "faults", {"latency_ms": 300})
        stop = threading.Event()
        worker = Worker(big.runtime.connector, big.clock)
        # Keeping one workspace's state, the worker forgets and rebuilds a writer at each turn
        # between the two: that must cost nothing but the rebuilding.
        worker.keep = 1
        pool = Pool(worker, big.clock, Options(concurrency=1))
        runner = threading.Thread(target=pool.run, args=(stop,))
        runner.start()
        try:
            wait_for(lambda: big.states().get("logged", 0) >= 1000, 60, "the backlog to start")
            small.ingest(emails[10000:10010])
            wait_for(lambda: small.states() == {"logged": 10}, 30, "the small workspace's ten")
            behind = big.states().get("pending", 0)
        finally:
            stop.set()
            runner.join(timeout=30)
        # The ten waited for at most the batch in flight and one more, not for ten batches.
        assert behind >= 10000 - 1000 - 3 * 1000, behind
        assert len(worker.writers) == 1  # only the last stepped workspace is kept
    finally:
        big.close()
        small.close()


def test_a_turn_steps_each_due_workspace_once_by_lease_and_gives_every_lease_back(
    new_org: Callable[..., SandboxOrg], tmp_path: Path
) -> None:
    """`Pool.turn`, the scheduler tests and benchmarks drive by hand: each workspace due is
    taken, stepped once and given back due again when its step says (at once after a batch,
    within `IDLE_LOOK` with nothing to do); one not due is left alone."""
    org = new_org("--seed", "60", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC))
    busy, quiet = (connect(org, tmp_path, None, clock) for _ in range(2))
    try:
        busy.settings(log_within=0)
        emails = [a for a in stream(people(org), 200, seed=5) if a["kind"] == "email_sent"]
        busy.ingest(emails[:10])
        pool, progress = busy.new_pool(), Progress()

        # Both are due when first seen: each is stepped once, though the busy one wrote.
        assert pool.turn(progress) == clock.now()  # the busy one may have more behind its batch
        assert (progress.steps, progress.settled) == (2, 10)
        # Now only the busy one is due; with nothing left it is looked at again in a minute.
        assert pool.turn(progress) == clock.now() + IDLE_LOOK
        assert progress.steps == 3
        assert pool.turn(progress) == clock.now() + IDLE_LOOK
        assert progress.steps == 3
        clock.advance(IDLE_LOOK.total_seconds())
        pool.turn(progress)
        assert progress.steps == 5
        assert all(row.holder is None for row in lease_rows(busy).values())
    finally:
        busy.close()
        quiet.close()
