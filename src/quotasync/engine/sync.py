"""Following the org into the mirror: the initial load and the interval sync.

One run looks at each mirrored type (User, Account, Contact, Lead, Opportunity), and reads as
many query pages per call as Salesforce allows: a `/composite` request is one API call and
carries up to five query pages (`engine.pages`).

1. The first call: for each type, one query subrequest, five types to a call.
   - A type with no watermark yet (a full load) asks for its records' first page, which also
     says how many there are (totalSize).
   - A type with a watermark asks, through `queryAll` so that deleted records count too, for the
     Ids and SystemModstamps of the records changed since the watermark less a two-minute
     lookback (a record committed late carries an earlier SystemModstamp), newest first, in a
     page of 200: a look, not a fetch. Its totalSize is the org's count of that window, and its
     first rows say what is newer than the watermark. When nothing is newer and the mirror holds
     as many records of the window as the org, nothing changed: an idle interval costs that one
     call for the five types. Otherwise the records from the watermark on are fetched, or the
     whole window when the counts say that a record came in late.
2. Fetching what is left, by whichever costs fewer calls: query pages (five to a call, pages of
   different types side by side and successive pages of one type chained in one call), or a
   Bulk API 2.0 query job (its create and one results page: two calls for 50,000 records),
   where the Bulk API is governed (its figures known from `/limits`) and the type has more than
   the workspace's `bulk_query_threshold` records to fetch. Jobs are created first, so they run
   in the org while the pages are read.
3. Applying through `mirror.apply` (newer-or-equal SystemModstamp wins, so a repeat changes
   nothing), a page or a chunk per transaction. The watermark moves only for a type fetched and
   applied through; a full load also tombstones what the org no longer has.

A full load asked for (`full`) within the workspace's sync interval of the type's last full load
goes on from that load's watermarks instead: `quotasync connect` loads the mirror, and the first
`quotasync sync --full` after it fetches only what changed since.

Every call goes through the governed session. When the quota has no room (`QuotaExhausted`) or Salesforce
refuses for its limit, the run stops and says the sync is paused; what was applied stays, and
the next run starts again from the watermarks. A run the quota stopped does not count as the
types' run: those it did not finish are due again at once, and the worker holds them in the
workspace's pause (`Writer.hold`), whose looks say when they go (RULES.md: Recheck and resume).
A type whose query the org answers with an error (a field it lacks) is reported failed; the
other types go on.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quotasync.clock import Clock
from quotasync.domain import governor, outcomes
from quotasync.domain.outcomes import Outcome
from quotasync.domain.realtime import SyncMode
from quotasync.engine import pages
from quotasync.engine.bulk_query import BulkQuery
from quotasync.engine.checker import LimitsChecker
from quotasync.errors import (
    GrantRefused,
    NotFound,
    QuotaExhausted,
    Refused,
    SessionExpired,
    Unreachable,
)
from quotasync.salesforce import api, org_limits
from quotasync.salesforce.bulk import Job, JobFailed
from quotasync.salesforce.connection import Client, Connector
from quotasync.store import mirror, quota_rows, sync_state
from quotasync.store.tables import LedgerEntry, SyncState, Workspace

log = logging.getLogger("quotasync.sync")

LOOKBACK = timedelta(minutes=2)
RECONCILE = timedelta(hours=1)  # how often Real-Time mode checks that no push was missed
PURPOSE = "mirror_sync"
LOAD_PURPOSE = "mirror_load"  # the load at connect time

# What matching and the sidebar need of each type. User has no IsDeleted: users are deactivated
# (IsActive), never deleted.
FIELDS: dict[str, tuple[str, ...]] = {
    "User": ("Id", "Name", "Email", "Title", "IsActive", "SystemModstamp"),
    "Account": ("Id", "Name", "OwnerId", "IsDeleted", "SystemModstamp"),
    "Contact": (
        "Id", "Name", "Email", "Title", "AccountId", "OwnerId", "IsDeleted", "SystemModstamp",
    ),
    "Lead": (
        "Id", "Name", "Email", "Title", "Company", "OwnerId", "IsConverted", "IsDeleted",
        "SystemModstamp",
    ),
    "Opportunity": (
        "Id", "Name", "AccountId", "OwnerId", "StageName", "Amount", "CloseDate", "IsClosed",
        "IsDeleted", "SystemModstamp",
    ),
}  # fmt: skip
OBJECTS = tuple(FIELDS)
_BOOLEANS = frozenset({"IsActive", "IsConverted", "IsClosed", "IsDeleted"})
_NUMBERS = frozenset({"Amount"})
_DATETIMES = frozenset({"SystemModstamp"})

PROBE_PAGE = api.MIN_BATCH_SIZE  # Ids and SystemModstamps an interval's first look reads
BULK_JOB_CALLS = 2  # a Bulk query job that fits one results page: its create and that page
BULK_APIS = ("bulk", "bulk_query")


def select_list(sobject: str) -> str:
    return ", ".join(FIELDS[sobject])


@dataclass
class ObjectReport:
    sobject: str
    full: bool  # a full load (no watermark yet, or asked for)
    counted: int | None = None  # records to fetch, as the org counted them (None: not known)
    via: str | None = None  # rest | bulk; None when there was nothing to fetch
    fetched: int = 0
    applied: int = 0  # records the mirror changed for
    deleted: int = 0  # of which became tombstones
    done: bool = False  # fetched and applied through: the watermark moved
    error: str | None = None


@dataclass
class Paused:
    reason: governor.Reason
    message: str


@dataclass
class SyncReport:
    objects: dict[str, ObjectReport] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # API type -> calls spent by the run
    paused: Paused | None = None  # the quota (or Salesforce) stopped the run
    # The governor's decision on the cap that stopped it, which the worker's pause records.
    held: governor.Decision | None = None
    error: str | None = None  # the run stopped on a failure that a later run may not meet

    @property
    def complete(self) -> bool:
        return all(o.done for o in self.objects.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "objects": {name: asdict(o) for name, o in self.objects.items()},
            "calls": self.calls,
            "paused": asdict(self.paused) if self.paused is not None else None,
            "error": self.error,
            "complete": self.complete,
        }


Progress = Callable[[ObjectReport], None]


@dataclass(eq=False)
class _Run:
    """One type's part of a run."""

    report: ObjectReport
    watermark: datetime | None  # None: a full load
    since: datetime | None  # fetch changes after this (the watermark less the lookback)
    seen: set[str] = field(default_factory=set)  # ids a full load saw (for the sweep)
    newest: datetime | None = None  # the newest SystemModstamp applied
    look: pages.Paged | None = None  # an interval's first look (Ids and SystemModstamps)
    fetch: pages.Paged | None = None  # the query that reads its records by pages
    soql: str = ""  # the same query, for a Bulk job
    job: Job | None = None  # the Bulk job reading its records instead


def next_due(session: Session, workspace: Workspace, now: datetime) -> datetime | None:
    """When the workspace's next sync is due: every `sync_interval_minutes` in Interval mode,
    and every `RECONCILE` while the org pushes changes (Real-Time mode). The org pushes nothing
    while its Apex quota is spent, and a spell too short for any `/limits` reading to see brings
    no rollover: the reconciling sync (one call when nothing changed) catches such changes up."""
    every = (
        timedelta(minutes=workspace.sync_interval_minutes)
        if workspace.sync_mode == SyncMode.INTERVAL
        else RECONCILE
    )
    known = sync_state.states(session, workspace.id)
    started = [known[s].last_run_at if s in known else None for s in OBJECTS]
    if any(at is None for at in started):
        return now
    return min(at for at in started if at is not None) + every


def due(session: Session, workspace: Workspace, now: datetime) -> bool:
    at = next_due(session, workspace, now)
    return at is not None and at <= now


def loaded_lately(state: SyncState, now: datetime, within: timedelta) -> bool:
    """Whether the type's last full load finished less than `within` ago: a full load asked for
    now would fetch the same records again, so the sync goes on from its watermark instead."""
    return (
        state.watermark is not None
        and state.last_full_at is not None
        and now - state.last_full_at < within
    )


class Syncer:
    def __init__(
        self,
        connector: Connector,
        workspace_id: str,
        clock: Clock,
        *,
        client: Client | None = None,
        purpose: str = PURPOSE,
        objects: Sequence[str] = OBJECTS,
        fields: Mapping[str, Sequence[str]] = FIELDS,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connector = connector
        self.sessions = connector.sessions
        self.workspace_id = workspace_id
        self.clock = clock
        self.purpose = purpose
        self.objects = tuple(objects)
        self.fields = fields  # what each type is read with
        self.sleep = sleep  # while a Bulk job runs
        self._client = client
        self._bulk_allowed: bool | None = None
        self._purposes = {purpose}

    @property
    def client(self) -> Client:
        """The workspace's client; NotConnected when it is not connected."""
        if self._client is None:
            self._client = self.connector.client(self.workspace_id)
        return self._client

    def run(
        self, full: bool = False, on_progress: Progress | None = None, *, due_only: bool = False
    ) -> SyncReport:
        """Sync each type once: in full with `full` (unless it was loaded in full within the
        sync interval), from its watermark otherwise. With `due_only` (the worker), only the
        types whose interval has passed, each taken by this run alone."""
        self._bulk_allowed = None
        client = self.client  # not connected: NotConnected, before anything is noted
        now = self.clock.now()
        with self.sessions.begin() as session:
            workspace = session.get(Workspace, self.workspace_id)
            if workspace is None:
                raise NotFound(f"workspace {self.workspace_id} does not exist")
            interval = timedelta(minutes=workspace.sync_interval_minutes)
            before = sync_state.last_runs(session, self.workspace_id)  # given back if stopped
            taken = sync_state.start_runs(
                session, self.workspace_id, self.objects, now, interval if due_only else None
            )
            known = sync_state.states(session, self.workspace_id)
            threshold = workspace.bulk_query_threshold
            first_entry = session.scalar(select(func.max(LedgerEntry.id))) or 0
        runs = []
        for sobject in taken:
            state = known[sobject]
            again = full and not loaded_lately(state, now, interval)
            watermark = None if again else state.watermark
            since = watermark - LOOKBACK if watermark is not None else None
            runs.append(_Run(ObjectReport(sobject, full=since is None), watermark, since))
        report = SyncReport({r.report.sobject: r.report for r in runs})
        progress = on_progress or (lambda _: None)
        try:
            with client.http.purpose(self.purpose):
                for run in runs:
                    progress(run.report)
                self._first_look(runs, progress)
                self._fetch(runs, threshold, progress)
        except QuotaExhausted as no_room:
            report.paused, report.held = self._paused(no_room)
            unfinished = {
                r.report.sobject: before.get(r.report.sobject) for r in runs if not r.report.done
            }
            with self.sessions.begin() as session:
                sync_state.withdraw_runs(session, self.workspace_id, unfinished, now)
        except Refused as refused:
            report.paused, report.error = _stopped(refused.status, refused.fault)
        except (SessionExpired, GrantRefused) as error:  # a grant the org no longer honours
            report.paused = Paused(governor.Reason.AUTH, str(error))
        except Unreachable as error:
            report.error = f"no answer from Salesforce: {error}"
        if report.paused is not None or report.error is not None:
            log.info(
                "workspace %s: sync stopped: %s", self.workspace_id, report.paused or report.error
            )
        report.calls = self._spent(first_entry)
        return report

    # ---------------------------------------------------------------- 1. the first call

    def _first_look(self, runs: Sequence[_Run], progress: Progress) -> None:
        """A full load's first page, an interval's look at what changed: one subrequest each,
        five to a call."""
        queries: dict[pages.Paged, _Run] = {}
        for run in runs:
            sobject = run.report.sobject
            if run.report.full:
                run.soql = _soql(sobject, self._select_list(sobject), None)
                run.fetch = pages.Paged(api.query(run.soql), eager=True)
                queries[run.fetch] = run
            else:
                look = api.query(
                    _look_soql(sobject, run.since), all_rows=True, batch_size=PROBE_PAGE
                )
                run.look = pages.Paged(look)
                queries[run.look] = run

        def take(query: pages.Paged, page: api.Page) -> None:
            run = queries[query]
            if query is run.look:
                query.done = True  # one page is the whole look
                self._judge(run, page)
            else:
                self._take_page(run, page, progress)

        while pages.step(self.client, [q for q in queries if q.total is None], take):
            pass
        for query, run in queries.items():
            if query.fault is not None:
                run.report.error = str(query.fault)

    def _judge(self, run: _Run, look: api.Page) -> None:
        """What an interval fetches, from its look at the window: nothing, the records changed
        since the watermark, or (a record came in late) the whole window."""
        watermark, since = run.watermark, run.since
        assert watermark is not None and since is not None
        sobject = run.report.sobject
        rows = [(str(r.get("Id")), mirror.modstamp(r.get("SystemModstamp"))) for r in look.records]
        stamps = [at for _, at in rows if at is not None]
        newer = [record_id for record_id, at in rows if at is not None and at > watermark]
        # Newest first, a page that reaches the watermark holds every record newer than it.
        whole = look.done or (
            len(stamps) == len(rows) > 0
            and all(a >= b for a, b in itertools.pairwise(stamps))
            and stamps[-1] <= watermark
        )
        with self.sessions() as session:
            here = mirror.count(session, self.workspace_id, sobject, since=since)
            held = mirror.modstamps(session, self.workspace_id, sobject, newer)
        # A newer record the mirror holds outside the window moves into it; one it does not hold
        # joins it. If the org's window holds more than that, a record came in late.
        joined = sum(1 for i in newer if (held.get(i) or since) <= since)
        if not whole or look.total != here + joined:
            run.report.counted = look.total
            self._fetch_after(run, since)
        elif newer:
            # From the watermark's own millisecond on: a record written again within the
            # millisecond the mirror last saw keeps its SystemModstamp, and only this finds it.
            at_least = [at for at in stamps if at >= watermark]
            all_seen = look.done or stamps[-1] < watermark
            run.report.counted = len(at_least) if all_seen else look.total
            self._fetch_after(run, watermark - timedelta(milliseconds=1))
        else:
            run.report.counted = 0

    def _fetch_after(self, run: _Run, after: datetime) -> None:
        sobject = run.report.sobject
        run.soql = _soql(sobject, self._select_list(sobject), after)
        counted = run.report.counted or 0
        run.fetch = pages.Paged(api.query(run.soql, all_rows=True), eager=counted > api.QUERY_PAGE)

    def _select_list(self, sobject: str) -> str:
        return ", ".join(self.fields[sobject])

    # ---------------------------------------------------------------- 2. and 3. the records

    def _fetch(self, runs: Sequence[_Run], threshold: int, progress: Progress) -> None:
        """Bulk jobs for the types they read in fewer calls, started first; then the pages of
        the others, five to a call; then the jobs' results."""
        going: list[_Run] = []
        for run in runs:
            if run.report.error is not None:
                continue  # its first call failed: told in the report, tried again next run
            if run.fetch is None or run.fetch.done:
                self._finish(run, progress)
            else:
                going.append(run)
        for run in going:
            if self._by_bulk(run, threshold):
                self._start_job(run)
        paged = {run.fetch: run for run in going if run.job is None and run.fetch is not None}

        def take(query: pages.Paged, page: api.Page) -> None:
            run = paged[query]
            self._take_page(run, page, progress)
            if query.done:
                self._finish(run, progress)

        while pages.step(self.client, list(paged), take):
            pass
        for query, run in paged.items():
            if query.fault is not None:
                run.report.error = str(query.fault)
        for run in going:
            if run.job is not None:
                self._read_job(run, progress)

    def _by_bulk(self, run: _Run, threshold: int) -> bool:
        """Whether a Bulk query job reads the type's records in fewer calls than pages would."""
        assert run.fetch is not None
        query = run.fetch
        counted = run.report.counted or 0
        left = counted - query.taken if query.total is None else query.total - query.taken
        calls_by_pages = math.ceil(math.ceil(left / api.QUERY_PAGE) / api.MAX_HEAVY)
        return counted > threshold and calls_by_pages > BULK_JOB_CALLS and self._bulk_governed()

    def _start_job(self, run: _Run) -> None:
        try:
            run.job = self._bulk().start(run.soql, include_deleted=not run.report.full)
        except QuotaExhausted as no_room:
            if no_room.api not in BULK_APIS:
                raise
            return  # the Bulk share or guard is spent, not the Data one: pages will do
        except (JobFailed, Refused) as error:
            self._failed(run, error)
            return
        run.report.via = "bulk"

    def _read_job(self, run: _Run, progress: Progress) -> None:
        assert run.job is not None
        try:
            for chunk in self._bulk().rows(run.job):
                self._take(run, [_typed(row) for row in chunk])
                progress(run.report)
        except (JobFailed, Refused) as error:
            self._failed(run, error)
            return
        self._finish(run, progress)

    def _bulk(self) -> BulkQuery:
        return BulkQuery(self.client, clock=self.clock, sleep=self.sleep)

    def _failed(self, run: _Run, error: JobFailed | Refused) -> None:
        """A Bulk job's failure or request's error: the type's own (a job that failed, a query
        the org cannot run), else the run's (the limit, no API access, a 5xx)."""
        if isinstance(error, JobFailed):
            run.report.error = str(error)
            return
        if outcomes.classify_response(error.status, error.fault.code) is not Outcome.FAILED:
            raise error
        run.report.error = str(error.fault)

    def _take_page(self, run: _Run, page: api.Page, progress: Progress) -> None:
        if page.total and run.report.via is None:
            run.report.via = "rest"
        if run.report.full:
            run.report.counted = page.total
        self._take(run, page.records)
        progress(run.report)

    def _take(self, run: _Run, rows: Sequence[Mapping[str, Any]]) -> None:
        """Apply one page or chunk, in a transaction of its own."""
        report = run.report
        live = [r for r in rows if not _deleted(r)]
        gone = [r for r in rows if _deleted(r)]
        with self.sessions.begin() as session:
            report.applied += mirror.apply(session, self.workspace_id, report.sobject, live)
            tombstones = mirror.apply(session, self.workspace_id, report.sobject, gone)
        report.applied += tombstones
        report.deleted += tombstones
        report.fetched += len(rows)
        if report.full:
            run.seen.update(str(r["Id"]) for r in rows)
        for row in rows:
            stamp = mirror.modstamp(row.get("SystemModstamp"))
            if stamp is not None and (run.newest is None or stamp > run.newest):
                run.newest = stamp

    def _finish(self, run: _Run, progress: Progress) -> None:
        report = run.report
        with self.sessions.begin() as session:
            if report.full:
                swept = mirror.sweep(
                    session, self.workspace_id, report.sobject, run.seen, run.newest
                )
                report.applied += swept
                report.deleted += swept
            sync_state.finish_run(
                session,
                self.workspace_id,
                report.sobject,
                run.newest,
                self.clock.now() if report.full else None,
            )
        report.done = True
        progress(report)

    # ---------------------------------------------------------------- governance

    def _bulk_governed(self) -> bool:
        """Whether a Bulk query job may go: only with the Bulk figures known (from `/limits`), so
        that it is governed by the share and the guard like Data calls. Without View Setup the sync
        user cannot read them (RULES.md: Without View Setup, Data only), and big fetches go as
        query pages."""
        if self._bulk_allowed is None:
            self._purposes.add(org_limits.PURPOSE)
            LimitsChecker(self.sessions, self.workspace_id, self.clock, lambda: self.client).step()
            with self.sessions() as session:
                workspace = session.get(Workspace, self.workspace_id)
                self._bulk_allowed = (
                    workspace is not None
                    and workspace.limits_readable is True
                    and "bulk_query" in quota_rows.figures(session, self.workspace_id)
                )
        return self._bulk_allowed

    def _paused(self, no_room: QuotaExhausted) -> tuple[Paused, governor.Decision]:
        """Why a cap stopped the run: the workspace's share, or the org's 90% guard, as the
        governor tells it; and that decision, which the worker's pause records."""
        with self.sessions() as session:
            decision = quota_rows.until_room(session, self.workspace_id, no_room, self.clock.now())
        reason = (
            decision.reason
            if isinstance(decision, governor.Pause)
            # Room again by the time it looks (calls left the window meanwhile): quotasync's
            # own calls leaving is what frees the share, the likelier of the two.
            else governor.Reason.WORKSPACE_LIMIT
        )
        paused = Paused(
            reason,
            f"sync paused by the quota: {no_room.api} has no room "
            f"({no_room.used:,} of {no_room.cap:,} calls quotasync may make are spent); "
            "the worker runs it again when the pause finds room",
        )
        return paused, decision

    def _spent(self, after_entry: int) -> dict[str, int]:
        """The calls this run's requests cost, by API type, from the ledger."""
        with self.sessions() as session:
            rows = session.execute(
                select(LedgerEntry.api, func.coalesce(func.sum(LedgerEntry.calls), 0))
                .where(
                    LedgerEntry.workspace_id == self.workspace_id,
                    LedgerEntry.id > after_entry,
                    LedgerEntry.purpose.in_(sorted(self._purposes)),
                    LedgerEntry.api != "auth",
                )
                .group_by(LedgerEntry.api)
            ).all()
        return {api: int(calls) for api, calls in rows if calls}


def _soql(sobject: str, what: str, after: datetime | None, *, newest_first: bool = False) -> str:
    soql = f"SELECT {what} FROM {sobject}"
    if after is not None:
        # SystemModstamp is shown to the millisecond: "after t" is "at t + 1 ms or later", which
        # holds even where the org keeps finer time than it shows.
        start = after + timedelta(milliseconds=1)
        literal = start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
        soql += f" WHERE SystemModstamp >= {literal}"
    if newest_first:
        soql += " ORDER BY SystemModstamp DESC"
    return soql


def _look_soql(sobject: str, since: datetime | None) -> str:
    """An interval's look at a type's window: Ids and SystemModstamps, newest first."""
    return _soql(sobject, "Id, SystemModstamp", since, newest_first=True)


def _typed(row: Mapping[str, str]) -> dict[str, Any]:
    """A Bulk CSV row with the values REST would give: null, booleans, numbers, and datetimes
    written as in JSON (2026-11-28T12:00:00.000+0000), so both paths store the same fields."""
    out: dict[str, Any] = {}
    for name, cell in row.items():
        if cell == "":
            out[name] = None
        elif name in _BOOLEANS:
            out[name] = cell.lower() == "true"
        elif name in _NUMBERS:
            out[name] = float(cell)
        elif name in _DATETIMES:
            stamp = mirror.modstamp(cell)
            out[name] = mirror.salesforce_datetime(stamp) if stamp is not None else None
        else:
            out[name] = cell
    return out


def _deleted(row: Mapping[str, Any]) -> bool:
    value = row.get("IsDeleted")
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _stopped(status: int, why: api.Fault) -> tuple[Paused | None, str | None]:
    """What a refusal of a whole request means for the run: a pause, or an error."""
    outcome = outcomes.classify_response(status, why.code)
    if outcome is Outcome.PAUSE:
        return Paused(governor.Reason.SALESFORCE_REFUSED, f"Salesforce refused: {why}"), None
    if outcome is Outcome.NO_API:
        return Paused(governor.Reason.NO_API_ACCESS, str(why)), None
    if outcome is Outcome.REAUTH:
        return Paused(governor.Reason.AUTH, str(why)), None
    return None, str(why)  # a 5xx or a timeout: the next run may fare better


def live_counts(session: Session, workspace_id: str, sobjects: Iterable[str]) -> dict[str, int]:
    """Live mirrored records per type."""
    return {s: mirror.count(session, workspace_id, s, live=True) for s in sobjects}
