"""The writer: outbox rows → Salesforce records, one batch per step.

A batch goes when a call's worth of records is pending or the oldest has waited the workspace's
`log_within` (longer only when pacing holds it so the day's share lasts). It is claimed by
record: every ready activity of a record goes with it, so a Task is written once with all the
opens, clicks and replies waiting for it. Up to `bulk_threshold` pending records go as
`/composite` requests of five sObject Collections subrequests (1,000 records, one API call each);
a bigger backlog goes as one Bulk API 2.0 upsert job where the Bulk API is governed. Every write
is an upsert by `QS_Activity_Id__c`, so a retry after a timeout or a crash never makes a second
record.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from simple_salesforce import format_soql
from sqlalchemy.orm import Session

from quotasync import metrics
from quotasync.clock import Clock
from quotasync.domain import batching, governor, mapping, outcomes
from quotasync.domain.mapping import Unmatched
from quotasync.domain.outcomes import Outcome
from quotasync.domain.pacing import Pacing
from quotasync.engine import episodes as engine_episodes
from quotasync.engine import plan as planning
from quotasync.engine.matching import Matcher
from quotasync.errors import (
    GrantRefused,
    NotConnected,
    QuotaExhausted,
    QuotasyncError,
    Refused,
    SalesforceError,
    SessionExpired,
    Unreachable,
)
from quotasync.salesforce import api, bulk
from quotasync.salesforce.connection import Client, Connector
from quotasync.store import limits, mirror, outbox, retrying
from quotasync.store.outbox import FAILED, LOGGED, PENDING, SKIPPED
from quotasync.store.tables import Workspace

BULK_JOB_LIMIT = 10_000  # activities in one Bulk job: one DailyBulkApiBatches unit
WAIT_FOR_EMAIL = timedelta(minutes=10)  # a follow-up whose email never arrives fails after this
WAIT_RECHECK = timedelta(seconds=30)  # how often such a follow-up looks for its email again
BULK_APIS = ("bulk", "bulk_query")
PACING_EVERY = timedelta(minutes=1)
BULK_CLAIM = timedelta(minutes=15)
# How long the writer waits on a Bulk job before aborting it: well within the claim, so that no
# other writer takes its records while it runs; they are written again later.
BULK_WAIT = timedelta(minutes=10)
TROUBLE_RETRY = timedelta(seconds=30)  # a failed lookup before a batch is tried again after this
PAUSING_APIS = (governor.Api.DATA, governor.Api.BULK, governor.Api.BULK_QUERY)  # a writer's pauses
AUTH = governor.Reason.AUTH
_V = TypeVar("_V")


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


@dataclass(frozen=True)
class _Part:
    """One subrequest of a composite, and the writes whose outcome its answer tells."""

    sub: api.Subrequest
    writes: Sequence[planning.Write] = ()
    deleting: bool = False


@dataclass
class Result:
    """What one step did, for the worker's schedule and the summary."""

    wrote: int = 0  # activities settled (logged, failed, skipped)
    calls: int = 0
    next_due: datetime | None = None
    paused_until: datetime | None = None
    reason: governor.Reason | None = None


@dataclass
class _Outcomes:
    logged: dict[str, str] = field(default_factory=dict)  # activity id -> Salesforce id
    failed: dict[str, str] = field(default_factory=dict)
    retry: list[str] = field(default_factory=list)
    pause: bool = False
    pause_reason: governor.Reason | None = None
    no_room: QuotaExhausted | None = (
        None  # a cap stopped the batch part-way: the rest stays pending
    )
    deferred: list[str] = field(default_factory=list)  # left for the next step's call


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
        self.paused_until: datetime | None = None  # when to look again
        self.pause_reason: governor.Reason | None = None
        self.resume_at: datetime | None = None  # when room returns, where the governor can tell
        # An org-guard pause: its API type and when the figure it paused on was read. A newer
        # reading (the recheck's, made by the checker just before) ends the wait at once.
        self._guard_reading: tuple[str, datetime] | None = None
        self._client: Client | None = None
        self._random = random.Random()
        # API types with an episode this writer opened; None until it knows (after a restart).
        self._open_episodes: set[governor.Api] | None = None
        self.pacing: Pacing | None = None  # the last batch delay pacing chose, and why
        self._pacing_at: datetime | None = None

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
            delay = self._batch_delay(session, now) if count else self.workspace.log_within
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
        recheck = limits.recheck(self.workspace)
        try:
            try:
                result = self._write(now, BULK_JOB_LIMIT if bulk else self.shape.records, bulk)
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
            reason = self._trouble(error)
            if reason is None:
                return Result(next_due=now + TROUBLE_RETRY)
            decision = governor.pause_for(reason, api_type, now, recheck)
        else:
            self._resumed(now, api_type)
            return result
        self._paused(decision, now)
        return Result(paused_until=self.paused_until, reason=self.pause_reason)

    # ---------------------------------------------------------------- pauses and episodes

    def holding(self, now: datetime) -> bool:
        """Whether the workspace's pause holds its work now: its next look has not come, and no
        reading has come since an org-guard pause (`_read_since`). The mirror sync waits on it
        as a batch does (RULES.md: Pause, don't drop)."""
        return self.paused_until is not None and now < self.paused_until and not self._read_since()

    def hold(self, decision: governor.Decision) -> Result:
        """The workspace's other work (the mirror sync) was refused by a cap, and the governor
        decided on it (`limits.until_room`): the same pause and episode as a batch that meets it,
        so the recheck, the looks and the emails apply to it (RULES.md: Recheck and resume, Tell
        the admins). With room again by the governor's look (another worker's calls left the
        window), not a pause: due again now."""
        now = self.clock.now()
        if isinstance(decision, governor.Send):
            return Result(next_due=now)
        if isinstance(decision, governor.Unavailable):
            return Result()  # the org has none of the type: nothing to hold or tell
        self._paused(decision, now)
        return Result(paused_until=self.paused_until, reason=self.pause_reason)

    def went(self, api_type: governor.Api) -> None:
        """The workspace's other work went through (a sync's calls were sent): the pause is over
        as after a batch written, and its episodes are stepped the same way."""
        self.paused_until = self.pause_reason = self.resume_at = self._guard_reading = None
        self._resumed(self.clock.now(), api_type)

    def _paused(self, decision: governor.Decision, now: datetime) -> None:
        """Hold the writer until the decision's next check, and keep the pause's episode."""
        if not isinstance(decision, governor.Pause):
            return  # Unavailable: the work takes another route; nothing to hold or tell
        self.paused_until, self.pause_reason = decision.next_check, decision.reason
        self.resume_at = decision.resume_at if decision.predicted else None
        self._guard_reading = None
        if decision.reason is governor.Reason.ORG_GUARD:
            with self.sessions() as session:
                figure = limits.figures(session, self.workspace.id).get(decision.api.value)
            if figure is not None:
                self._guard_reading = (decision.api.value, figure.observed_at)
        engine_episodes.record(self.sessions, self.workspace.id, decision, now)
        self._open_episodes = {*(self._open_episodes or ()), decision.api}

    def _read_since(self) -> bool:
        """Whether the org-guard pause's figure has been read again since it paused: the
        recheck it waits for has come, whoever's look set it (another worker's writer may have
        set it a little before this one's own look was due)."""
        if self._guard_reading is None:
            return False
        api_type, paused_on = self._guard_reading
        with self.sessions() as session:
            figure = limits.figures(session, self.workspace.id).get(api_type)
        return figure is not None and figure.observed_at > paused_on

    def _resumed(self, now: datetime, api_type: governor.Api) -> None:
        """A write went through: step the pauses this writer had (after a restart, any it may
        have had). A refusal's ends, which the notifier tells as "syncing resumed"; a limit's
        ends only once the backlog is written or the room stays comfortable (one episode, one
        email each way, however many calls free up meanwhile)."""
        # The API just written to is open again whoever paused it: another worker process,
        # killed since, may have opened its episode.
        apis = PAUSING_APIS if self._open_episodes is None else {*self._open_episodes, api_type}
        self._open_episodes = engine_episodes.wrote(self.sessions, self.workspace.id, apis, now)

    def _trouble(self, error: NotConnected | SalesforceError) -> governor.Reason | None:
        """The pause a call's failure means, or None when trying again soon may do."""
        if isinstance(error, NotConnected | SessionExpired | GrantRefused):
            return governor.Reason.AUTH  # the grant is gone: an admin must connect again
        if isinstance(error, Refused):
            outcome = outcomes.classify_response(error.status, error.fault.code)
            if outcome is Outcome.NO_API:
                return governor.Reason.NO_API_ACCESS
            if outcome is Outcome.PAUSE:
                return governor.Reason.SALESFORCE_REFUSED
        return None

    def _batch_delay(self, session: Session, now: datetime) -> float:
        """The workspace's `log_within`, stretched by pacing on a day that would otherwise spend
        the share early. Worked out again at most once a minute: it moves with the hour's rate."""
        if self._pacing_at is None or now - self._pacing_at >= PACING_EVERY:
            workspace = session.get(Workspace, self.workspace.id) or self.workspace
            self.pacing = limits.pacing(session, workspace, now, self.shape.records)
            self._pacing_at = now
        return self.pacing.delay if self.pacing is not None else self.workspace.log_within

    def _bulk_governed(self, session: Session) -> bool:
        """Whether the Bulk API may be used: only with its figures from `/limits`, so that it is
        governed by the share and the guard like the Data API. Without View Setup the sync user
        cannot read them (RULES.md: Without View Setup, Data only), and the backlog goes through
        sObject Collections."""
        workspace = session.get(Workspace, self.workspace.id)
        return (
            workspace is not None
            and workspace.limits_readable is True
            and "bulk" in limits.figures(session, self.workspace.id)
        )

    def _until_room(self, no_room: QuotaExhausted, now: datetime) -> governor.Decision:
        """A cap was reached: the governor says why and when to look again (`limits.until_room`)."""
        with self.sessions() as session:
            return limits.until_room(session, self.workspace.id, no_room, now)

    # ---------------------------------------------------------------- one batch

    def _write(self, now: datetime, limit: int, bulk: bool) -> Result:
        self.paused_until = self.pause_reason = self.resume_at = self._guard_reading = None
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
        people = dict(matches.people)
        if Unmatched(self.workspace.unmatched) is Unmatched.CREATE_LEAD:
            people.update(
                self._create_leads(planning.first_unmatched(groups, parsed, people), matches.users)
            )
        plan = planning.build(
            groups,
            parsed,
            people,
            matches.users,
            open_tracking=self.workspace.open_tracking,
            unmatched=Unmatched(self.workspace.unmatched),
        )
        if batch:
            metrics.observe_batch("bulk" if bulk else "data", len(batch))
        results = self._send_bulk(plan.writes) if bulk else self._send_collections(plan.writes)
        self._settle(now, batch, plan, results)
        if results.no_room is not None:
            raise results.no_room
        if results.pause:
            raise Paused(results.pause_reason or governor.Reason.SALESFORCE_REFUSED)
        unsettled = len(results.retry) + len(plan.waiting) + len(results.deferred)
        return Result(wrote=len(batch) - unsettled)

    def _settle(
        self, now: datetime, batch: Sequence[Any], plan: planning.Plan, results: _Outcomes
    ) -> None:
        """Record what happened to each activity of the batch, in one transaction.

        Rows are updated in groups that share their new values (one statement per record id,
        per message, per retry count), so a 10,000-activity Bulk batch is not 10,000 updates.
        """
        attempts = {row.id: row.attempts for row in batch}
        received = {row.id: row.received_at for row in batch}
        done_at = self.clock.now()  # when the records are known to be in Salesforce
        ws = self.workspace.id
        jitter = self._random.random()

        def record(session: Session) -> None:
            outbox.mark_logged(session, ws, results.logged, done_at)
            for why, ids in _grouped({**plan.failed, **results.failed}).items():
                outbox.mark(session, ws, ids, state=FAILED, last_error=why[:2000])
            for why, ids in _grouped(plan.skipped).items():
                outbox.mark(session, ws, ids, state=SKIPPED, last_error=why)
            outbox.mark(session, ws, plan.done, state=LOGGED, logged_at=done_at)
            tries = {i: attempts[i] + 1 for i in results.retry}
            for attempt, ids in _grouped(tries).items():
                delay = outcomes.backoff(attempt, jitter=jitter)
                outbox.mark(
                    session,
                    ws,
                    ids,
                    state=PENDING,
                    attempts=attempt,
                    next_attempt_at=now + timedelta(seconds=delay),
                )
            overdue = [i for i in plan.waiting if now - received[i] > WAIT_FOR_EMAIL]
            outbox.mark(
                session,
                ws,
                overdue,
                state=FAILED,
                last_error="the email or meeting it belongs to never arrived",
            )
            later = [i for i in plan.waiting if i not in set(overdue)]
            outbox.mark(session, ws, later, next_attempt_at=now + WAIT_RECHECK)
            # What did not go (a cap stopped the batch part-way) is due again at once.
            outbox.release(session, ws, [row.id for row in batch], self._claimed_until)

        # Salesforce has the records: a store that fails for a moment must not make them go again.
        retrying.transaction(self.sessions, record)
        logged = [*results.logged, *plan.done]
        metrics.observe_logged((done_at - received[i]).total_seconds() for i in logged)

    # ---------------------------------------------------------------- composite requests

    def _send_collections(
        self, writes: Sequence[planning.Write], results: _Outcomes | None = None
    ) -> _Outcomes:
        """Upserts and deletes as sObject Collections subrequests of 200 records, five to a
        `/composite` call (one API call for up to 1,000 records)."""
        results = results if results is not None else _Outcomes()
        for write in writes:
            if write.fields is None and not write.salesforce_id and not write.look_up:
                _apply(results, write, Outcome.DONE, "")  # never written: nothing to delete
        deletes = [w for w in writes if w.fields is None and (w.salesforce_id or w.look_up)]
        parts = [
            _Part(
                api.upsert_collection(
                    sobject, mapping.EXTERNAL_ID, [w.fields or {} for w in chunk]
                ),
                chunk,
            )
            for sobject, items in _upserts_by_object(writes).items()
            for chunk in batching.chunks(items)
        ]
        parts += [
            _Part(
                api.delete_collection([w.salesforce_id or "" for w in chunk]),
                chunk,
                deleting=True,
            )
            for chunk in batching.chunks(self._found(deletes, results))
        ]
        # One call a step, its fullest subrequests first: what does not fit waits for the next
        # step, where it joins the next claim's records, so every call goes out as full as the
        # backlog allows instead of a thin last call per step.
        parts.sort(key=lambda part: len(part.writes), reverse=True)
        first, *rest = self._calls(parts) or [[]]
        results.deferred += [
            i for call in rest for part in call for w in part.writes for i in w.activity_ids
        ]
        for part, answer in self._composites(first, results):
            if answer.ok and isinstance(answer.body, list):
                self._record_results(part.writes, answer.body, results, deleting=part.deleting)
            else:
                self._sub_refused(part, answer, results)
        return results

    def _found(self, deletes: Sequence[planning.Write], results: _Outcomes) -> list[planning.Write]:
        """The deletes with the ids their records have now. Those whose id is in doubt (a write
        went unanswered) are looked up by external id, 200 to a query subrequest; one the org
        does not have is done (nothing to delete), one the query could not tell about is sorted
        like any failed call."""
        found = [w for w in deletes if not w.look_up]
        parts = [
            _Part(
                api.query(
                    format_soql(
                        f"SELECT Id, {mapping.EXTERNAL_ID} FROM {chunk[0].sobject} "
                        f"WHERE {mapping.EXTERNAL_ID} IN {{}}",
                        [w.key for w in chunk],
                    )
                ),
                chunk,
            )
            for chunk in batching.chunks([w for w in deletes if w.look_up])
        ]
        for part, answer in self._composites(parts, results):
            records = answer.body.get("records") if isinstance(answer.body, dict) else None
            if not answer.ok or not isinstance(records, list):
                self._sub_refused(part, answer, results)
                continue
            ids = {
                str(r.get(mapping.EXTERNAL_ID)): str(r.get("Id"))
                for r in records
                if isinstance(r, dict)
            }
            for write in part.writes:
                if write.key in ids:
                    found.append(replace(write, salesforce_id=ids[write.key], look_up=False))
                else:
                    _apply(results, write, Outcome.DONE, "")  # never written after all
        return found

    def _composites(
        self, parts: Sequence[_Part], results: _Outcomes
    ) -> Iterator[tuple[_Part, api.Answer]]:
        """Each part with its answer, the parts sent as few composites as the shape allows. A
        composite refused whole sorts all its writes; one the ledger has no room for stops the
        rest, which stay pending, untouched."""
        for call in self._calls(parts):
            if results.no_room is not None:
                return
            writes = [w for part in call for w in part.writes]
            try:
                with self.client.http.purpose("log_activity", _shares(writes)):
                    answers = api.composite(self.client, [part.sub for part in call])
            except SessionExpired as error:
                self._whole_chunk(writes, Outcome.PAUSE, f"auth: {error}", results, AUTH)
            except Refused as refused:
                self._refused(writes, refused.status, refused.fault, results)
            except Unreachable as error:
                self._whole_chunk(writes, Outcome.RETRY, str(error), results)
            except QuotaExhausted as no_room:
                results.no_room = no_room  # not sent
                return
            else:
                yield from zip(call, answers, strict=True)

    def _calls(self, parts: Sequence[_Part]) -> list[Sequence[_Part]]:
        calls: list[Sequence[_Part]] = []
        for call in api.pack([part.sub for part in parts], max_heavy=self.shape.per_call):
            start = sum(len(c) for c in calls)
            calls.append(parts[start : start + len(call)])
        return calls

    def _sub_refused(self, part: _Part, answer: api.Answer, results: _Outcomes) -> None:
        """A subrequest answered with an error (or with nothing a client can read)."""
        if answer.ok:
            self._whole_chunk(part.writes, Outcome.RETRY, "an unreadable answer", results)
            return
        self._refused(part.writes, answer.status, answer.fault, results)

    def _whole_chunk(
        self,
        chunk: Sequence[planning.Write],
        outcome: Outcome,
        why: str,
        results: _Outcomes,
        reason: governor.Reason | None = None,
    ) -> None:
        for write in chunk:
            _apply(results, write, outcome, why, reason=reason)

    def _refused(
        self, chunk: Sequence[planning.Write], status: int, why: api.Fault, results: _Outcomes
    ) -> None:
        """A request (or subrequest) was refused whole: sort Salesforce's answer into an outcome
        for each of its writes."""
        outcome = outcomes.classify_response(status, why.code)
        self._whole_chunk(chunk, outcome, str(why), results)

    def _record_results(
        self,
        chunk: Sequence[planning.Write],
        answer: Sequence[Any],
        results: _Outcomes,
        deleting: bool = False,
    ) -> None:
        for write, item in zip(chunk, answer, strict=False):
            saved = api.saved(item)
            if saved is None:
                _apply(results, write, Outcome.RETRY, "an unreadable answer")
            elif deleting and (saved.fault is None or saved.fault.code == "ENTITY_IS_DELETED"):
                _apply(results, write, Outcome.DONE, "")  # gone, or already gone: what it wanted
            else:
                _saved(results, write, saved)

    # ---------------------------------------------------------------- Bulk API 2.0

    def _send_bulk(self, writes: Sequence[planning.Write]) -> _Outcomes:
        results = _Outcomes()
        for sobject, items in _upserts_by_object(writes).items():
            self._bulk_job(sobject, items, results)
        deletes = [w for w in writes if w.fields is None]
        if deletes:  # a handful at most: canceled meetings go the collections way
            self._send_collections(deletes, results)
        return results

    def _bulk_job(self, sobject: str, items: Sequence[planning.Write], results: _Outcomes) -> None:
        try:
            with self.client.http.purpose("log_activity", _shares(items)):
                saved = bulk.upsert(
                    self.client,
                    sobject,
                    mapping.EXTERNAL_ID,
                    [w.fields or {} for w in items],
                    clock=self.clock,
                    sleep=self.sleep,
                    give_up_after=BULK_WAIT.total_seconds(),
                )
        except SessionExpired as error:
            self._whole_chunk(items, Outcome.PAUSE, f"auth: {error}", results, AUTH)
            return
        except Refused as refused:
            self._refused(items, refused.status, refused.fault, results)
            return
        except QuotaExhausted as no_room:
            results.no_room = no_room
            return
        except (Unreachable, bulk.JobFailed) as error:
            # No answer, or a job that failed or ran too long: the whole job is tried again later.
            self._whole_chunk(items, Outcome.RETRY, f"Bulk job did not finish: {error}", results)
            return
        for write in items:
            if write.key in saved:
                _saved(results, write, saved[write.key])
            else:  # the job did not process it
                _apply(results, write, Outcome.RETRY, "not in the Bulk job's results")

    # ---------------------------------------------------------------- unmatched recipients

    def _create_leads(self, unknown: Mapping[str, str], users: Mapping[str, str]) -> dict[str, str]:
        """Create a Lead per unknown recipient (collections creates, five to a composite);
        email -> Lead id. A call refused whole raises: the batch waits and is tried again."""
        created: dict[str, str] = {}
        chunks = batching.chunks(sorted(unknown))
        parts = [
            _Part(
                api.create_collection(
                    "Lead",
                    [mapping.lead_fields(e, unknown[e], users.get(unknown[e])) for e in chunk],
                )
            )
            for chunk in chunks
        ]
        done = 0
        for call in self._calls(parts):
            emails = [e for chunk in chunks[done : done + len(call)] for e in chunk]
            shares = Counter(unknown[e] for e in emails)
            with self.client.http.purpose(
                "create_lead", {u: n / len(emails) for u, n in shares.items()}
            ):
                answers = api.composite(self.client, [part.sub for part in call])
            for chunk, answer in zip(chunks[done : done + len(call)], answers, strict=True):
                for email, item in zip(chunk, _listed(answer), strict=False):
                    saved = api.saved(item)
                    if saved is not None and saved.ok and saved.record_id:
                        created[email] = saved.record_id
            done += len(call)
        if created:
            with self.sessions.begin() as session:
                mirror.put(
                    session,
                    self.workspace.id,
                    "Lead",
                    [{"Id": i, "Email": e} for e, i in created.items()],
                    self.clock.now(),
                )
                mirror.forget_unknown(session, self.workspace.id, list(created))
        return created


def _apply(
    results: _Outcomes,
    write: planning.Write,
    outcome: Outcome,
    why: str,
    record_id: str | None = None,
    reason: governor.Reason | None = None,
) -> None:
    """Sort the write's activities by the outcome; a pause's reason is `reason` when the caller
    knows it (an expired session), else the outcome's."""
    for activity_id in write.activity_ids:
        if outcome is Outcome.DONE:
            results.logged[activity_id] = record_id or write.salesforce_id or ""
        elif outcome is Outcome.FAILED:
            results.failed[activity_id] = why
        elif outcome is Outcome.PAUSE or outcome is Outcome.NO_API:
            results.retry.append(activity_id)
            results.pause = True
            results.pause_reason = (
                governor.Reason.NO_API_ACCESS
                if outcome is Outcome.NO_API
                else (reason or governor.Reason.SALESFORCE_REFUSED)
            )
        else:  # retry, reauth that did not help
            results.retry.append(activity_id)


def _saved(results: _Outcomes, write: planning.Write, saved: api.Saved) -> None:
    """A record's own result, from a collections answer or a Bulk job's."""
    if saved.fault is None:
        _apply(results, write, Outcome.DONE, "", saved.record_id)
    else:
        outcome = outcomes.classify_record_error(saved.fault.code)
        _apply(results, write, outcome, str(saved.fault))


def _grouped(values: Mapping[str, _V]) -> dict[_V, list[str]]:
    """activity id -> value, turned into value -> activity ids."""
    groups: dict[_V, list[str]] = {}
    for activity_id, value in values.items():
        groups.setdefault(value, []).append(activity_id)
    return groups


def _upserts_by_object(writes: Sequence[planning.Write]) -> dict[str, list[planning.Write]]:
    grouped: dict[str, list[planning.Write]] = {}
    for write in writes:
        if write.fields is not None:
            grouped.setdefault(write.sobject, []).append(write)
    return grouped


def _shares(writes: Sequence[planning.Write]) -> dict[str, float]:
    """A batched call is split across the reps whose records it carries."""
    counts = Counter(w.user_email for w in writes)
    total = sum(counts.values()) or 1
    return {user: n / total for user, n in counts.items()}


def _listed(answer: api.Answer) -> list[Any]:
    return answer.body if answer.ok and isinstance(answer.body, list) else []
