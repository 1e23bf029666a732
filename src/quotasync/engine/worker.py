"""The per-workspace stepper the scheduler (`engine/pool.py`) calls: one workspace's `/limits`
reading when due, its interval sync when due (Interval mode), then its writer."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select

from quotasync.clock import Clock
from quotasync.domain import governor
from quotasync.engine import sync
from quotasync.engine.checker import LimitsChecker
from quotasync.engine.notifier import Notifier
from quotasync.engine.realtime import RealTime
from quotasync.engine.writer import Shape, Writer
from quotasync.salesforce.connection import Connector
from quotasync.store import outbox
from quotasync.store.tables import Connection, Workspace

KEEP_WORKSPACES = 200  # workspaces whose writer and Salesforce connection a worker keeps

log = logging.getLogger("quotasync.worker")


@dataclass
class Progress:
    steps: int = 0
    settled: int = 0
    paused: dict[str, str] = field(default_factory=dict)  # workspace id -> reason
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


class Worker:
    def __init__(
        self,
        connector: Connector,
        clock: Clock,
        notifier: Notifier | None = None,
        claim: timedelta = outbox.CLAIM,
        shape: Shape = Shape(),
    ) -> None:
        self.connector = connector
        self.claim = claim  # how long a writer holds a batch (a crashed worker's comes back then)
        self.shape = shape  # what a writer's step claims and a call carries
        self.clock = clock
        self.notifier = notifier  # None: pauses are recorded, nobody is emailed
        # Per-workspace state, least recently stepped first; past `keep` workspaces the oldest
        # is dropped (its Salesforce connection closed): a worker serving thousands of
        # workspaces holds only the recent ones. Nothing dropped is lost: pauses and episodes are
        # in the store, and the workspace's lease carries when it is due.
        self.writers: OrderedDict[str, Writer] = OrderedDict()
        self.keep = KEEP_WORKSPACES
        self._stepping: set[str] = set()
        self._lock = threading.Lock()
        self.checkers: dict[str, LimitsChecker] = {}
        self.realtimes: dict[str, RealTime] = {}
        self.sync_failed_until: dict[str, datetime] = {}  # a sync that raised waits an interval

    def workspaces(self) -> list[Workspace]:
        with self.connector.sessions() as session:
            return list(
                session.scalars(
                    select(Workspace).join(Connection, Connection.workspace_id == Workspace.id)
                )
            )

    def step(self, workspace: Workspace, progress: Progress) -> datetime | None:
        """One turn of one workspace: its `/limits` reading and Real-Time Sync switch when due,
        its interval sync when due, then one batch; returns when it is next due (None: only when
        something new arrives)."""
        with self._lock:
            writer = self.writers.get(workspace.id)
            if writer is None:
                writer = self.writers[workspace.id] = Writer(
                    self.connector, workspace, self.clock, self.claim, self.shape
                )
            else:
                writer.workspace = workspace  # settings may have changed
                self.writers.move_to_end(workspace.id)
            self._stepping.add(workspace.id)
        try:
            return self._step(writer, progress)
        finally:
            with self._lock:
                self._stepping.discard(workspace.id)
                self._forget_oldest()

    def _step(self, writer: Writer, progress: Progress) -> datetime | None:
        workspace = writer.workspace
        self._check_limits(writer)
        self._realtime(writer)
        due: list[datetime] = []
        sync_due = self._sync(writer)
        if sync_due is not None:
            due.append(sync_due)
        result = writer.step()
        if self.notifier is not None:
            self.notifier.tell(workspace.id)
        with progress.lock:
            progress.steps += 1
            progress.settled += result.wrote
            if result.paused_until is not None:
                progress.paused[workspace.id] = result.reason or "paused"
            else:
                progress.paused.pop(workspace.id, None)
        if result.paused_until is not None:
            due.append(result.paused_until)
        checker = self.checkers.get(workspace.id)
        if result.reason is governor.Reason.ORG_GUARD and checker is not None:
            # The guard's recheck may come before this writer's own look (another worker's
            # writer set it): the workspace is looked at then, and the reading wakes the writer.
            recheck = checker.recheck_at()
            if recheck is not None and recheck > self.clock.now():
                due.append(recheck)
        if checker is not None:
            # The scheduler steps the workspace when its next reading is due, not at a later
            # look: a reading put off that way could land on a guard pause's recheck and be
            # made in its place (a scheduled `/limits` reading goes first).
            reading = checker.scheduled_at()
            if reading is not None and reading > self.clock.now():
                due.append(reading)
        if result.wrote:
            due.append(self.clock.now())  # more may be waiting right behind this batch
        elif result.next_due is not None:
            due.append(result.next_due)
        return min(due) if due else None

    def _forget_oldest(self) -> None:
        """Drop the least recently stepped workspaces' state past `keep` (call holding the lock)."""
        for workspace_id in list(self.writers):
            if len(self.writers) <= self.keep:
                return
            if workspace_id in self._stepping:
                continue
            writer = self.writers.pop(workspace_id)
            self.checkers.pop(workspace_id, None)
            self.realtimes.pop(workspace_id, None)
            self.sync_failed_until.pop(workspace_id, None)
            writer.close()

    def _check_limits(self, writer: Writer) -> None:
        """Read the org's `/limits` first when a reading is due, so the batch goes on them."""
        checker = self.checkers.get(writer.workspace.id)
        if checker is None:
            checker = self.checkers[writer.workspace.id] = LimitsChecker(
                self.connector.sessions, writer.workspace.id, self.clock, lambda: writer.client
            )
        checker.step()

    def _realtime(self, writer: Writer) -> None:
        """Roll Real-Time Sync over to intervals, or back, when the Apex room says so (on fresh
        figures: the checker has just run)."""
        realtime = self.realtimes.get(writer.workspace.id)
        if realtime is None:
            realtime = self.realtimes[writer.workspace.id] = RealTime(
                self.connector, writer.workspace.id, self.clock, lambda: writer.client
            )
        try:
            realtime.step()
        except Exception:
            log.exception("workspace %s: the Real-Time Sync step failed", writer.workspace.id)

    def _sync(self, writer: Writer) -> datetime | None:
        """Run the mirror sync when it is due (hourly in Real-Time mode, to catch pushes the org
        could not send); returns when it is due next. While the workspace is paused, the sync
        waits for the pause's look as a batch does; a sync a cap refuses opens (or goes on with)
        that pause, through the writer's path (RULES.md: Pause, don't drop, Recheck and resume,
        Tell the admins). A failure is logged, never raised: the next interval tries again."""
        workspace = writer.workspace
        now = self.clock.now()
        with self.connector.sessions() as session:
            next_due = sync.next_due(session, workspace, now)
        failed_until = self.sync_failed_until.get(workspace.id)
        if next_due is not None and failed_until is not None and failed_until > next_due:
            next_due = failed_until
        if next_due is None or next_due > now:
            return next_due
        if writer.holding(now):
            return writer.paused_until  # its calls would be refused (or pass the guard) now
        try:
            report = sync.Syncer(
                self.connector, workspace.id, self.clock, client=writer.client
            ).run(due_only=True)
        except Exception:
            log.exception("workspace %s: the interval sync failed", workspace.id)
            # Whatever it was, it is not tried again in a tight loop.
            return self._sync_later(workspace, now)
        if report.paused is not None:
            log.info("workspace %s: %s", workspace.id, report.paused.message)
        for failed in (o for o in report.objects.values() if o.error):
            log.warning(
                "workspace %s: %s not synced: %s", workspace.id, failed.sobject, failed.error
            )
        if report.held is not None:
            # The types it did not finish are due again: the pause's look says when they go.
            held = writer.hold(report.held)
            if held.paused_until is None and held.next_due is None:
                return self._sync_later(workspace, now)  # no pause to wait on: an interval
            return held.paused_until or held.next_due
        if report.paused is None and report.calls:
            writer.went(governor.Api.DATA)  # its calls went: a pause of the type is over
        with self.connector.sessions() as session:
            return sync.next_due(session, workspace, self.clock.now())

    def _sync_later(self, workspace: Workspace, now: datetime) -> datetime:
        self.sync_failed_until[workspace.id] = now + timedelta(
            minutes=workspace.sync_interval_minutes
        )
        return self.sync_failed_until[workspace.id]

    def idle(self, progress: Progress) -> bool:
        """Nothing pending for any connected workspace, and none paused.

        A workspace that is not connected cannot be written, so its backlog does not count.
        """
        if progress.paused:
            return False
        with self.connector.sessions() as session:
            return all(outbox.pending_count(session, ws.id) == 0 for ws in self.workspaces())
