"""The writer: outbox rows → Salesforce records, one batch per step.

A batch goes when a call's worth of records is pending or the oldest has waited the workspace's
`log_within` (longer only when pacing holds it so the day's share lasts). It is claimed by
record: every ready activity of a record goes with it, so a Task is written once with all the
opens, clicks and replies waiting for it. Up to `bulk_threshold` pending records go as
`/composite` requests of five sObject Collections subrequests (1,000 records, one API call each);
a bigger backlog goes as one Bulk API 2.0 upsert job where the Bulk API is governed. Every write
is an upsert by `QS_Activity_Id__c` (carrying the workspace's prefix, so workspaces sharing an org
keep apart), so a retry after a timeout or a crash never makes a second record.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from quotasync import metrics
from quotasync.clock import Clock
from quotasync.domain import batching, governor
from quotasync.domain.mapping import Unmatched
from quotasync.domain.pacing import Pacing
from quotasync.engine import bulk_upsert, leads, settling
from quotasync.engine import plan as planning
from quotasync.engine.composites import Composites
from quotasync.engine.hold import Hold, Pacer, trouble
from quotasync.engine.matching import Matcher
from quotasync.errors import NotConnected, QuotaExhausted, QuotasyncError, SalesforceError
from quotasync.salesforce import api
from quotasync.salesforce.connection import Client, Connector
from quotasync.store import outbox, quota_rows
from quotasync.store.tables import Workspace

BULK_APIS = ("bulk", "bulk_query")
BULK_CLAIM = timedelta(minutes=15)
TROUBLE_RETRY = timedelta(seconds=30)  # a failed lookup before a batch is tried again after this


@dataclass(frozen=True)
class Shape:
    """How much one step claims and one call carries. The default is all Salesforce allows: a
    call's worth of records claimed whole, five collections subrequests in every composite."""

    records: int = api.RECORDS_PER_CALL  # records (or, without `fold`, activities) per claim
    per_call: int = api.MAX_HEAVY  # collections or query subrequests per call
    fold: bool = True  # claim every ready activity of a record with it


# The path before composite requests, kept for the logging benchmark's side-by-side: 200
# activities a claim, one collections request a call, follow-ups written batch by batch.
COLLECTIONS_ONLY = Shape(records=batching.COLLECTION_SIZE, per_call=1, fold=False)


@dataclass
class Result:
    """What one step did, for the worker's schedule and the summary."""

    wrote: int = 0  # activities settled (logged, failed, skipped)
    calls: int = 0
    next_due: datetime | None = None
    paused_until: datetime | None = None
    reason: governor.Reason | None = None


class Paused(QuotasyncError):
    """Salesforce refused a batch in a way that pauses the workspace; `reason` says which."""

    def __init__(self, reason: governor.Reason) -> None:
        super().__init__(reason.value)
        self.reason = reason


class Writer:
    def __init__(
        self,
        connector: Connector,
        workspace: Workspace,
        clock: Clock,
        claim: timedelta = outbox.CLAIM,
        shape: Shape = Shape(),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connector = connector
        self.sleep = sleep  # while a Bulk job runs
        self.claim = claim  # how long a batch is held before another writer may take it
        self.shape = shape
        self._claimed_until = clock.now()
        self.sessions = connector.sessions
        self.workspace = workspace
        self.clock = clock
        self.matcher = Matcher(self.sessions, workspace.id, clock)
        self._hold = Hold(self.sessions, workspace.id)
        self._pacer = Pacer(workspace.id)
        self._client: Client | None = None
        self._random = random.Random()

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = self.connector.client(self.workspace.id)
        return self._client

    def close(self) -> None:
        """Let go of the Salesforce connection (a worker forgetting this workspace for now)."""
        if self._client is not None:
            self._client.http.close()
            self._client = None

    def step(self) -> Result:
        now = self.clock.now()
        if self.holding(now):
            return Result(paused_until=self.paused_until, reason=self.pause_reason)
        with self.sessions() as session:
            count, oldest = outbox.backlog(session, self.workspace.id, now)
            retry_at = outbox.next_retry(session, self.workspace.id)
            bulk_governed = self._bulk_governed(session)
            delay = (
                self._pacer.delay(session, self.workspace, now, self.shape.records)
                if count
                else self.workspace.log_within
            )
        if count == 0:
            return Result(next_due=retry_at)
        age = (now - oldest).total_seconds() if oldest else 0.0
        if not batching.batch_due(count, age, batch_size=self.shape.records, log_within=delay):
            assert oldest is not None
            return Result(next_due=oldest + timedelta(seconds=batching.send_after(delay)))
        bulk = (
            bulk_governed
            and batching.channel(count, bulk_threshold=self.workspace.bulk_threshold) == "bulk"
        )
        api_type = governor.Api.BULK if bulk else governor.Api.DATA
        recheck = quota_rows.recheck(self.workspace)
        try:
            try:
                result = self._write(
                    now, bulk_upsert.JOB_LIMIT if bulk else self.shape.records, bulk
                )
            except QuotaExhausted as no_room:
                if not (bulk and no_room.api in BULK_APIS):
                    raise
                # The Bulk share or guard is spent, not the Data one: the backlog goes on
                # through composite requests rather than waiting.
                api_type = governor.Api.DATA
                result = self._write(now, self.shape.records, False)
        except Paused as pause:
            decision: governor.Decision = governor.pause_for(pause.reason, api_type, now, recheck)
        except QuotaExhausted as no_room:
            decision = self._until_room(no_room, now)
            if isinstance(decision, governor.Send):
                # Room came back between the refusal and the second look (another worker's
                # calls left the window): not a pause, just go again.
                return Result(next_due=now)
        except (NotConnected, SalesforceError) as error:
            # Trouble before any record went (matching recipients, creating Leads): the batch
            # stays pending; some troubles are a pause, the rest a retry a little later.
            reason = trouble(error)
            if reason is None:
                return Result(next_due=now + TROUBLE_RETRY)
            decision = governor.pause_for(reason, api_type, now, recheck)
        else:
            self._hold.resumed(now, api_type)
            return result
        self._hold.paused(decision, now)
        return Result(paused_until=self.paused_until, reason=self.pause_reason)

    # ---------------------------------------------------------------- pauses

    @property
    def paused_until(self) -> datetime | None:
        """When the workspace's pause is looked at again; None when it is not paused."""
        return self._hold.paused_until

    @property
    def pause_reason(self) -> governor.Reason | None:
        return self._hold.reason

    @property
    def resume_at(self) -> datetime | None:
        """When room returns, where the governor can tell."""
        return self._hold.resume_at

    @property
    def pacing(self) -> Pacing | None:
        """The last batch delay pacing chose, and why."""
        return self._pacer.pacing

    def holding(self, now: datetime) -> bool:
        """Whether the workspace's pause holds its work now: its next look has not come, and no
        reading has come since an org-guard pause. The mirror sync waits on it as a batch does
        (RULES.md: Pause, don't drop)."""
        return self._hold.holding(now)

    def hold(self, decision: governor.Decision) -> Result:
        """The workspace's other work (the mirror sync) was refused by a cap, and the governor
        decided on it (`quota_rows.until_room`): the same pause and episode as a batch that meets it,
        so the recheck, the looks and the emails apply to it (RULES.md: Recheck and resume, Tell
        the admins). With room again by the governor's look (another worker's calls left the
        window), not a pause: due again now."""
        now = self.clock.now()
        if isinstance(decision, governor.Send):
            return Result(next_due=now)
        if isinstance(decision, governor.Unavailable):
            return Result()  # the org has none of the type: nothing to hold or tell
        self._hold.paused(decision, now)
        return Result(paused_until=self.paused_until, reason=self.pause_reason)

    def went(self, api_type: governor.Api) -> None:
        """The workspace's other work went through (a sync's calls were sent): the pause is over
        as after a batch written, and its episodes are stepped the same way."""
        self._hold.clear()
        self._hold.resumed(self.clock.now(), api_type)

    def _bulk_governed(self, session: Session) -> bool:
        """Whether the Bulk API may be used: only with its figures from `/limits`, so that it is
        governed by the share and the guard like the Data API. Without View Setup the sync user
        cannot read them (RULES.md: Without View Setup, Data only), and the backlog goes through
        sObject Collections."""
        workspace = session.get(Workspace, self.workspace.id)
        return (
            workspace is not None
            and workspace.limits_readable is True
            and "bulk" in quota_rows.figures(session, self.workspace.id)
        )

    def _until_room(self, no_room: QuotaExhausted, now: datetime) -> governor.Decision:
        """A cap was reached: the governor says why and when to look again (`quota_rows.until_room`)."""
        with self.sessions() as session:
            return quota_rows.until_room(session, self.workspace.id, no_room, now)

    # ---------------------------------------------------------------- one batch

    def _write(self, now: datetime, limit: int, bulk: bool) -> Result:
        self._hold.clear()
        # A Bulk job may take minutes; a collections call a second. The claim must outlast either.
        until = now + (max(self.claim, BULK_CLAIM) if bulk else self.claim)
        self._claimed_until = until
        claim = outbox.claim_records if self.shape.fold else outbox.claim
        with self.sessions.begin() as session:
            batch = claim(session, self.workspace.id, now, limit, until)
        try:
            return self._write_claimed(now, batch, bulk)
        except BaseException:
            # Whatever stopped the batch before it was settled, its activities are due again
            # now rather than when the claim runs out.
            with self.sessions.begin() as session:
                outbox.release(session, self.workspace.id, [row.id for row in batch], until)
            raise

    def _write_claimed(self, now: datetime, batch: Sequence[Any], bulk: bool) -> Result:
        with self.sessions() as session:
            keys = {(r.record_type, r.record_key) for r in batch}
            stored = outbox.of_records(session, self.workspace.id, keys)
        parsed = {row.id: outbox.from_row(row) for row in stored}
        groups = planning.group(batch, stored)
        people_emails, reps = planning.recipients(groups, parsed)
        matches = self.matcher.match(self.client, people_emails, reps)
        composites = Composites(self.client, self.shape.per_call)
        people = dict(matches.people)
        if Unmatched(self.workspace.unmatched) is Unmatched.CREATE_LEAD:
            unknown = planning.first_unmatched(groups, parsed, people)
            people.update(
                leads.create(
                    composites, self.sessions, self.workspace.id, self.clock, unknown, matches.users
                )
            )
        plan = planning.build(
            groups,
            parsed,
            people,
            matches.users,
            open_tracking=self.workspace.open_tracking,
            unmatched=Unmatched(self.workspace.unmatched),
            prefix=self.workspace.external_id_prefix,
        )
        if batch:
            metrics.observe_batch("bulk" if bulk else "data", len(batch))
        results = (
            bulk_upsert.send(composites, plan.writes, self.clock, self.sleep)
            if bulk
            else composites.send(plan.writes)
        )
        settling.settle(
            self.sessions,
            self.workspace.id,
            now,
            batch,
            plan,
            results,
            done_at=self.clock.now(),  # when the records are known to be in Salesforce
            jitter=self._random.random(),
            claimed_until=self._claimed_until,
        )
        if results.no_room is not None:
            raise results.no_room
        if results.pause:
            raise Paused(results.pause_reason or governor.Reason.SALESFORCE_REFUSED)
        unsettled = len(results.retry) + len(plan.waiting) + len(results.deferred)
        return Result(wrote=len(batch) - unsettled)
