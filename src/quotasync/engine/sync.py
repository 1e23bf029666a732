"""Following the org into the mirror: the initial load and the interval sync.

One run looks at each mirrored type (User, Account, Contact, Lead, Opportunity):

1. Counting first: `SELECT COUNT()`s for every type in a single composite request (one call).
   A type with no watermark yet (or every type, with `full`) counts everything. The others count,
   through `queryAll` so that deleted records count too, the records changed since their
   watermark less a two-minute lookback (a record committed late carries an earlier
   SystemModstamp), and those changed after the watermark itself. When none is after it and the
   mirror holds as many records of the lookback window as the org, nothing changed: an idle
   interval costs that one call.
2. Fetching what was counted: above the workspace's `bulk_query_threshold` a Bulk API 2.0 query
   job, where the Bulk API is governed (its figures known from `/limits`); else REST pages of
   2,000. An interval run fetches deleted rows too (`queryAll`), which become tombstones.
3. Applying through `mirror.apply` (newer-or-equal SystemModstamp wins, so a repeat changes
   nothing), a page or a chunk per transaction. The watermark moves only for a type fetched and
   applied through; a full load also tombstones what the org no longer has.

Every call goes through the governed session. When the quota has no room (`NoRoom`) or Salesforce
refuses for its limit, the run stops and says the sync is paused; what was applied stays, and
the next run starts again from the watermarks.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quotasync.clock import Clock
from quotasync.domain import outcomes
from quotasync.domain.outcomes import Outcome
from quotasync.engine.bulk_query import BulkJobFailed, BulkQuery
from quotasync.engine.checker import LimitsChecker
from quotasync.salesforce import api
from quotasync.salesforce import limits as org_limits
from quotasync.salesforce.connection import Client, ConnectError, Connector
from quotasync.store import limits, mirror
from quotasync.store.ledger import NoRoom
from quotasync.store.tables import LedgerEntry, Workspace

log = logging.getLogger("quotasync.sync")

INTERVAL = "interval"
REALTIME = "realtime"
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


def select_list(sobject: str) -> str:
    return ", ".join(FIELDS[sobject])


@dataclass
class ObjectReport:
    sobject: str
    full: bool  # a full load (no watermark yet, or asked for)
    counted: int | None = None
    via: str | None = None  # rest | bulk; None when there was nothing to fetch
    fetched: int = 0
    applied: int = 0  # records the mirror changed for
    deleted: int = 0  # of which became tombstones
    done: bool = False  # fetched and applied through: the watermark moved
    error: str | None = None


@dataclass
class Paused:
    reason: str  # workspace_limit | org_guard | salesforce_refused | no_api_access | auth
    message: str


@dataclass
class SyncReport:
    objects: dict[str, ObjectReport] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)  # API type -> calls spent by the run
    paused: Paused | None = None  # the quota (or Salesforce) stopped the run
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


class _Stop(Exception):
    """The run cannot go on: the quota or Salesforce said no, or the connection failed."""

    def __init__(self, paused: Paused | None = None, error: str | None = None) -> None:
        super().__init__(paused.message if paused is not None else error)
        self.paused = paused
        self.error = error


@dataclass
class _Run:
    """One type's part of a run."""

    report: ObjectReport
    watermark: datetime | None  # None: a full load
    since: datetime | None  # fetch changes after this (the watermark less the lookback)
    seen: set[str] = field(default_factory=set)  # ids a full load saw (for the sweep)
    newest: datetime | None = None  # the newest SystemModstamp applied


def next_due(session: Session, workspace: Workspace, now: datetime) -> datetime | None:
    """When the workspace's next sync is due: every `sync_interval_minutes` in Interval mode,
    and every `RECONCILE` while the org pushes changes (Real-Time mode). The org pushes nothing
    while its Apex quota is spent, and a spell too short for any `/limits` reading to see brings
    no rollover: the reconciling sync (one call when nothing changed) catches such changes up."""
    every = (
        timedelta(minutes=workspace.sync_interval_minutes)
        if workspace.sync_mode == INTERVAL
        else RECONCILE
    )
    known = mirror.states(session, workspace.id)
    started = [known[s].last_run_at if s in known else None for s in OBJECTS]
    if any(at is None for at in started):
        return now
    return min(at for at in started if at is not None) + every


def due(session: Session, workspace: Workspace, now: datetime) -> bool:
    at = next_due(session, workspace, now)
    return at is not None and at <= now


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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.connector = connector
        self.sessions = connector.sessions
        self.workspace_id = workspace_id
        self.clock = clock
        self.purpose = purpose
        self.objects = tuple(objects)
        self.sleep = sleep  # between looks at a Bulk job's state
        self._client = client
        self._bulk_allowed: bool | None = None
        self._purposes = {purpose}

    @property
    def client(self) -> Client:
        """The workspace's client; ConnectError when it is not connected."""
        if self._client is None:
            self._client = self.connector.client(self.workspace_id)
        return self._client

    def run(
        self, full: bool = False, on_progress: Progress | None = None, *, due_only: bool = False
    ) -> SyncReport:
        """Sync each type once. With `due_only` (the worker), only the types whose interval has
        passed, each taken by this run alone."""
        self._bulk_allowed = None
        client = self.client  # not connected: ConnectError, before anything is noted
        now = self.clock.now()
        with self.sessions.begin() as session:
            workspace = session.get(Workspace, self.workspace_id)
            if workspace is None:
                raise ConnectError(f"workspace {self.workspace_id} does not exist")
            every = timedelta(minutes=workspace.sync_interval_minutes) if due_only else None
            taken = mirror.start_runs(session, self.workspace_id, self.objects, now, every)
            known = mirror.states(session, self.workspace_id)
            threshold = workspace.bulk_query_threshold
            first_entry = session.scalar(select(func.max(LedgerEntry.id))) or 0
        runs = []
        for sobject in taken:
            watermark = None if full else known[sobject].watermark
            since = watermark - LOOKBACK if watermark is not None else None
            runs.append(_Run(ObjectReport(sobject, full=since is None), watermark, since))
        report = SyncReport({r.report.sobject: r.report for r in runs})
        progress = on_progress or (lambda _: None)
        try:
            with client.http.purpose(self.purpose):
                self._count(runs)
                for run in runs:
                    progress(run.report)
                    self._sync(run, threshold, progress)
        except NoRoom as no_room:
            report.paused = self._paused(no_room)
        except SalesforceError as error:
            outcome = outcomes.classify_response(error.status, _code(error.content))
            report.paused, report.error = _stopped(error, outcome)
        except _Stop as stop:
            report.paused, report.error = stop.paused, stop.error
        except ConnectError as error:  # a refresh the org refused, in the middle of a Bulk job
            report.paused = Paused("auth", str(error))
        except requests.RequestException as error:
            report.error = f"no answer from Salesforce: {error}"
        if report.paused is not None or report.error is not None:
            log.info(
                "workspace %s: sync stopped: %s", self.workspace_id, report.paused or report.error
            )
        report.calls = self._spent(first_entry)
        return report

    # ---------------------------------------------------------------- 1. counting

    def _count(self, runs: Sequence[_Run]) -> None:
        """Every type's COUNT()s in one composite request."""
        if not runs:
            return
        version = self.client.connection.api_version
        subrequests = []
        for run in runs:
            sobject = run.report.sobject
            subrequests.append(_count_request(version, sobject, run.since, sobject))
            if run.watermark is not None:
                subrequests.append(
                    _count_request(version, sobject, run.watermark, f"{sobject}_new")
                )
        answers: list[Any] = []
        # Salesforce takes at most five query subrequests in one composite.
        for start in range(0, len(subrequests), api.MAX_HEAVY):
            body = json.dumps(
                {
                    "allOrNone": False,
                    "compositeRequest": subrequests[start : start + api.MAX_HEAVY],
                }
            )
            answer = self._call(functools.partial(self._composite, body))
            answers += (answer or {}).get("compositeResponse", [])
        by_name = {run.report.sobject: run.report for run in runs}
        counts: dict[str, int] = {}
        for item in answers:
            reference = str(item.get("referenceId"))
            if item.get("httpStatusCode") == 200 and isinstance(item.get("body"), dict):
                counts[reference] = int(item["body"].get("totalSize", 0))
            elif reference.removesuffix("_new") in by_name:
                failed = by_name[reference.removesuffix("_new")]
                failed.error = _message(item.get("body")) or "not counted"
        for run in runs:
            sobject = run.report.sobject
            if run.report.error is None and sobject in counts:
                run.report.counted = counts[sobject]
                if run.watermark is not None and counts.get(f"{sobject}_new") == 0:
                    self._skip_if_unchanged(run)

    def _composite(self, body: str) -> Any:
        return self.client.sf.restful("composite", method="POST", data=body)

    def _skip_if_unchanged(self, run: _Run) -> None:
        """Nothing is newer than the watermark: if the mirror holds as many records of the
        lookback window as the org does, no record came in late either, and none is fetched."""
        with self.sessions() as session:
            here = mirror.count(session, self.workspace_id, run.report.sobject, since=run.since)
        if here == run.report.counted:
            run.report.counted = 0

    # ---------------------------------------------------------------- 2. and 3. one type

    def _sync(self, run: _Run, threshold: int, progress: Progress) -> None:
        report = run.report
        if report.counted is None:
            return  # its count failed: told in the report, tried again next run
        try:
            if report.counted > threshold and self._bulk_governed():
                try:
                    self._fetch_bulk(run, progress)
                except NoRoom as no_room:
                    if no_room.api not in ("bulk", "bulk_query") or report.fetched:
                        raise
                    # The Bulk share or guard is spent, not the Data one: REST pages will do.
                    self._fetch_rest(run, progress)
            elif report.counted > 0:
                self._fetch_rest(run, progress)
        except BulkJobFailed as failed:
            report.error = str(failed)
            return
        except SalesforceError as error:
            if outcomes.classify_response(error.status, _code(error.content)) is not Outcome.FAILED:
                raise  # the limit, no API access, a 5xx: the whole run stops
            report.error = f"{_code(error.content)}: {_message(error.content)}"
            return
        self._finish(run)
        progress(report)

    def _fetch_rest(self, run: _Run, progress: Progress) -> None:
        run.report.via = "rest"
        soql = _soql(run.report.sobject, select_list(run.report.sobject), run.since)
        deleted_too = run.since is not None
        page = self._call(lambda: self.client.sf.query(soql, include_deleted=deleted_too))
        while True:
            self._take(run, page.get("records") or [])
            progress(run.report)
            next_url = page.get("nextRecordsUrl")
            if page.get("done", True) or not next_url:
                return
            page = self._call(functools.partial(self._more, str(next_url)))

    def _more(self, next_url: str) -> Any:
        return self.client.sf.query_more(next_url, identifier_is_url=True)

    def _fetch_bulk(self, run: _Run, progress: Progress) -> None:
        run.report.via = "bulk"
        soql = _soql(run.report.sobject, select_list(run.report.sobject), run.since)
        query = BulkQuery(self.client, sleep=self.sleep)
        for chunk in query.rows(soql, include_deleted=run.since is not None):
            self._take(run, [_typed(row) for row in chunk])
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

    def _finish(self, run: _Run) -> None:
        report = run.report
        with self.sessions.begin() as session:
            if report.full:
                swept = mirror.sweep(
                    session, self.workspace_id, report.sobject, run.seen, run.newest
                )
                report.applied += swept
                report.deleted += swept
            mirror.finish_run(
                session,
                self.workspace_id,
                report.sobject,
                run.newest,
                self.clock.now() if report.full else None,
            )
        report.done = True

    # ---------------------------------------------------------------- governance

    def _bulk_governed(self) -> bool:
        """Whether a Bulk query job may go: only with the Bulk figures known (from `/limits`), so
        that it is governed by the share and the guard like Data calls. Without View Setup the
        sync user cannot read them (rule 8), and big fetches go as REST pages."""
        if self._bulk_allowed is None:
            self._purposes.add(org_limits.PURPOSE)
            LimitsChecker(self.sessions, self.workspace_id, self.clock, lambda: self.client).step()
            with self.sessions() as session:
                workspace = session.get(Workspace, self.workspace_id)
                self._bulk_allowed = (
                    workspace is not None
                    and workspace.limits_readable is True
                    and "bulk_query" in limits.figures(session, self.workspace_id)
                )
        return self._bulk_allowed

    def _paused(self, no_room: NoRoom) -> Paused:
        """Why a cap stopped the run: the workspace's share, or the org's 90% guard."""
        now = self.clock.now()
        with self.sessions() as session:
            workspace = session.get(Workspace, self.workspace_id)
            room = limits.rooms(session, workspace, now).get(no_room.api) if workspace else None
        share = room.share if room is not None else no_room.cap
        reason = "workspace_limit" if no_room.used + no_room.cost > share else "org_guard"
        return Paused(
            reason,
            f"sync paused by the quota: {no_room.api} has no room "
            f"({no_room.used:,} of {no_room.cap:,} calls quotasync may make are spent); "
            "the next interval tries again",
        )

    def _call(self, request: Callable[[], Any]) -> Any:
        """One REST request; an expired session is refreshed once. Connection failures and a
        grant that cannot be refreshed stop the run."""
        for attempt in range(2):
            try:
                return request()
            except SalesforceExpiredSession:
                if attempt:
                    raise _Stop(
                        Paused("auth", "the session expired again after a refresh")
                    ) from None
                try:
                    self.client.refresh()
                except ConnectError as error:
                    raise _Stop(Paused("auth", str(error))) from None
            except requests.RequestException as error:
                raise _Stop(error=f"no answer from Salesforce: {error}") from None
        raise AssertionError("unreachable")  # pragma: no cover

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


def _soql(sobject: str, what: str, after: datetime | None) -> str:
    soql = f"SELECT {what} FROM {sobject}"
    if after is not None:
        # SystemModstamp is shown to the millisecond: "after t" is "at t + 1 ms or later", which
        # holds even where the org keeps finer time than it shows.
        start = after + timedelta(milliseconds=1)
        literal = start.strftime("%Y-%m-%dT%H:%M:%S.") + f"{start.microsecond // 1000:03d}Z"
        soql += f" WHERE SystemModstamp >= {literal}"
    return soql


def _count_request(
    version: str, sobject: str, after: datetime | None, reference: str
) -> dict[str, str]:
    """A composite subrequest counting one type's records; with `after`, deleted ones too."""
    resource = "query" if after is None else "queryAll"
    query = urlencode({"q": _soql(sobject, "COUNT()", after)})
    return {
        "method": "GET",
        "url": f"/services/data/v{version}/{resource}?{query}",
        "referenceId": reference,
    }


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


def _stopped(error: SalesforceError, outcome: Outcome) -> tuple[Paused | None, str | None]:
    code, message = _code(error.content), _message(error.content)
    if outcome is Outcome.PAUSE:
        return Paused("salesforce_refused", f"Salesforce refused: {code}: {message}"), None
    if outcome is Outcome.NO_API:
        return Paused("no_api_access", f"{code}: {message}"), None
    if outcome is Outcome.REAUTH:
        return Paused("auth", f"{code}: {message}"), None
    return None, f"{code}: {message}"  # a 5xx or a timeout: the next run may fare better


def _code(content: Any) -> str:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        return str(content[0].get("errorCode", "UNKNOWN_EXCEPTION"))
    return "UNKNOWN_EXCEPTION"


def _message(content: Any) -> str:
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        return str(first.get("message", "")) or str(first.get("errorCode", ""))
    return "" if content is None else str(content)[:500]


def live_counts(session: Session, workspace_id: str, sobjects: Iterable[str]) -> dict[str, int]:
    """Live mirrored records per type."""
    return {s: mirror.count(session, workspace_id, s, live=True) for s in sobjects}
