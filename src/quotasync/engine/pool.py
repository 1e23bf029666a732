"""The scheduler: a worker process's threads, taking due workspaces from the store by lease.

`run` is how a process serves (`quotasync worker`, the demo). Each of `concurrency` threads
loops: take the earliest-due workspace nobody holds (a lease, see `store/leases.py`), step it
with the shared `Worker`, give it back with its next due time. A heartbeat thread renews the
leases the threads hold while their steps run, so a long batch keeps its workspace; a process
that dies stops renewing, and its workspaces are the others' once their leases run out.
Stopping (SIGTERM) lets each thread finish the step in flight, then every lease is given back
at once.

`turn` is the same scheduling in the calling thread, one pass at a time, for tests and benchmarks
that move an injected clock themselves: each workspace due is taken by lease, stepped and given
back, as a thread of `run` does.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from quotasync import metrics
from quotasync.clock import Clock
from quotasync.engine.worker import Progress, Worker
from quotasync.store import leases, retrying
from quotasync.store.tables import Connection, Workspace

log = logging.getLogger("quotasync.pool")

POLL = 0.2  # real seconds an idle thread waits before looking for a due workspace again
ENSURE_EVERY = 5.0  # real seconds between looks for newly connected workspaces
IDLE_LOOK = timedelta(seconds=60)  # a workspace with nothing due is still looked at this often
STORE_TROUBLE_RETRY = timedelta(seconds=5)  # a step the store failed is tried again after this


def holder_name() -> str:
    """Who holds a lease: host and process, plus a nonce (a restarted process may reuse a pid)."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass
class Options:
    concurrency: int = 1
    lease: timedelta = timedelta(seconds=60)
    until_idle: bool = False


class Pool:
    def __init__(
        self,
        worker: Worker,
        clock: Clock,
        options: Options | None = None,
        holder: str | None = None,
    ) -> None:
        options = options or Options()
        if options.concurrency < 1:
            raise ValueError("a worker needs at least one thread")
        self.worker = worker
        self.sessions = worker.connector.sessions
        self.clock = clock
        self.options = options
        self.holder = holder or holder_name()
        self._busy: set[str] = set()  # workspaces this process's threads are stepping
        self._busy_lock = threading.Lock()

    # ---------------------------------------------------------------- one turn

    def turn(self, progress: Progress) -> datetime | None:
        """Step each workspace that is due now once, in the calling thread: taken by lease,
        stepped, given back with its next due time, as `run`'s threads do. Returns when work is
        next due (None: nothing is scheduled): the earliest of what the stepped workspaces said
        they are due for, and the leases of the others. Nothing here waits on the wall: the
        injected clock says what is due.

        A stepped workspace's lease also carries the idle look (a minute at most), the threads'
        safety net for work that arrives without waking it; a caller moving a manual clock may
        jump past those looks, as nothing arrives between its turns but what it brings."""
        self._ensure()
        stepped: set[str] = set()
        wanted: list[datetime] = []
        # A workspace given back due at once (a batch went, more wait behind it) is not taken
        # again in this turn: each due workspace gets one step, as in a thread's pass.
        while (workspace_id := self._take(skip=stepped)) is not None:
            stepped.add(workspace_id)
            due = self._step(workspace_id, progress)
            if due is not None:
                wanted.append(due)
        with self.sessions() as session:
            others = leases.next_due(session, excluding=stepped)
        if others is not None:
            wanted.append(others)
        return min(wanted, default=None)

    # ---------------------------------------------------------------- running

    def run(
        self,
        stop: threading.Event,
        on_step: Callable[[Progress], None] | None = None,
    ) -> Progress:
        """Run until `stop` is set (or, with `until_idle`, nothing is left to do); every lease
        this process holds is given back before it returns."""
        progress = Progress()
        done = threading.Event()  # stop, or idle with until_idle: the threads end their loops
        self._ensure()
        threads = [
            threading.Thread(
                target=self._loop,
                args=(stop, done, progress, on_step),
                name=f"quotasync-worker-{n}",
                daemon=True,
            )
            for n in range(self.options.concurrency)
        ]
        # The heartbeat outlives the threads: a step finishing after SIGTERM keeps its lease.
        beating = threading.Event()
        heartbeat = threading.Thread(
            target=self._heartbeat, args=(beating,), name="quotasync-leases", daemon=True
        )
        for thread in [*threads, heartbeat]:
            thread.start()
        try:
            # Real seconds, not the injected clock's: how often this loop looks is the process's
            # own pacing, and a virtual clock may run at 600x or stand still.
            ensured = time.monotonic()
            while not done.is_set() and not stop.is_set():
                done.wait(POLL)
                if time.monotonic() - ensured >= ENSURE_EVERY:
                    self._ensure()
                    ensured = time.monotonic()
        finally:
            done.set()
            for thread in threads:
                thread.join()
            beating.set()
            heartbeat.join()
            retrying.transaction(
                self.sessions, lambda session: leases.release_all(session, self.holder)
            )
            metrics.LEASES_HELD.set(0)
        return progress

    def _loop(
        self,
        stop: threading.Event,
        done: threading.Event,
        progress: Progress,
        on_step: Callable[[Progress], None] | None,
    ) -> None:
        while not done.is_set() and not stop.is_set():
            # Whatever fails (the store gone for longer than a transaction's retries, say), the
            # thread lives on and looks again: a worker never quietly loses a thread.
            try:
                workspace_id = self._take()
                if workspace_id is None:
                    if self.options.until_idle and self.idle(progress):
                        done.set()
                        return
                    done.wait(POLL)
                    continue
                self._step(workspace_id, progress)
            except Exception:
                log.exception("the worker thread's turn failed; looking again")
                done.wait(POLL)
                continue
            if on_step is not None:
                on_step(progress)

    def _take(self, skip: set[str] | frozenset[str] = frozenset()) -> str | None:
        with self._busy_lock:
            busy = self._busy | skip
        # Not under the lock: the heartbeat must go on renewing while the store is slow. The
        # conditional update in `take` keeps a lease one thread's.
        workspace_id = retrying.transaction(
            self.sessions,
            lambda session: leases.take(
                session, self.holder, self.clock.now(), self.options.lease, skip=busy
            ),
        )
        if workspace_id is not None:
            with self._busy_lock:
                self._busy.add(workspace_id)
                metrics.LEASES_HELD.set(len(self._busy))
        return workspace_id

    def _step(self, workspace_id: str, progress: Progress) -> datetime | None:
        """Step one taken workspace and give its lease back; when it said it is next due."""
        due: datetime | None = None
        try:
            with self.sessions() as session:
                workspace = session.get(Workspace, workspace_id)
                connected = session.get(Connection, workspace_id) is not None
            if workspace is not None and connected:
                due = self.worker.step(workspace, progress)
                metrics.STEPS.inc()
        except Exception as error:
            # One workspace's trouble must not stop the others: it is looked at again later,
            # soon if the store failed for a moment.
            log.exception("workspace %s: the step failed", workspace_id)
            # Looked at again soon if the store failed for a moment, else at the idle look:
            # either way a time the caller of `turn` must hear, not "nothing scheduled".
            passing = retrying.passing(error)
            due = self.clock.now() + (STORE_TROUBLE_RETRY if passing else IDLE_LOOK)
        finally:
            now = self.clock.now()
            later = now + IDLE_LOOK
            try:
                retrying.transaction(
                    self.sessions,
                    lambda session: leases.give_back(
                        session, self.holder, workspace_id, now, min(due or later, later)
                    ),
                )
            finally:
                with self._busy_lock:
                    self._busy.discard(workspace_id)
                    metrics.LEASES_HELD.set(len(self._busy))
        return due

    # ---------------------------------------------------------------- leases

    def _heartbeat(self, done: threading.Event) -> None:
        """Renew this process's leases every third of a lease (in real seconds), so a long step
        keeps its workspace."""
        speed = getattr(self.clock, "speed", 1.0) or 1.0
        every = min(5.0, self.options.lease.total_seconds() / 3 / speed)
        while not done.wait(every):
            with self._busy_lock:
                busy = set(self._busy)
            if not busy:
                continue
            try:
                with self.sessions.begin() as session:
                    held = leases.renew(
                        session, self.holder, busy, self.clock.now(), self.options.lease
                    )
                if held < len(busy):
                    # A lease ran out under a running step (a stalled process, a skewed clock):
                    # another worker may be stepping the workspace too. Batches stay claimed
                    # and upserts idempotent, but it should not happen: say so.
                    log.warning(
                        "%d of %d leases ran out while their steps ran", len(busy) - held, len(busy)
                    )
            except Exception:
                log.exception("renewing leases failed; trying again")

    def _ensure(self) -> None:
        try:
            with self.sessions.begin() as session:
                leases.ensure(session, self.clock.now())
        except Exception:
            log.exception("looking for newly connected workspaces failed")

    # ---------------------------------------------------------------- until idle

    def idle(self, progress: Progress) -> bool:
        """Nothing pending for any connected workspace, none paused, and no thread of this
        process in a step (one may be about to leave work behind it)."""
        with self._busy_lock:
            if self._busy:
                return False
        with progress.lock:
            if progress.paused:
                return False
        return self.worker.idle(progress)
