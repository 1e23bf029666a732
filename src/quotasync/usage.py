"""The figures every usage view shows: per API type an admin sets a share for (Data, Bulk, Apex),
what quotasync, other apps and the org spent of the rolling 24 hours, the share and the 90% guard
in calls, whether syncing of that type runs or is paused and why, pacing; and per member the Data
calls their activity cost.

The CLI prints a `UsageView`; the web pages and the JSON API are meant to read the same one
(`as_dict()` is its JSON). Nothing here prints or formats for a screen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from quotasync.domain import batching, governor, quota
from quotasync.store import episodes, outbox, quota_rows
from quotasync.store.tables import Connection, OrgFigure, PauseEpisode, Workspace

RUNNING, PAUSED = "running", "paused"
VIEW_SETUP_NEEDED = (
    "the sync user needs the View Setup and Configuration permission for quotasync to read "
    "Bulk and Apex figures"
)
NO_SYNC_USER = (
    "limits need a sync user: connect the org as the user quotasync should act as "
    "(`quotasync connect`, or Connect Salesforce on the Integrations page)"
)
NOT_READ_YET = "quotasync has not read the org's limits yet; the worker reads them on its next run"


class Plain:
    def as_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values: times as ISO-8601 strings."""
        # Every subclass is a dataclass; mypy cannot see that from the mixin.
        plain: dict[str, Any] = _jsonable(dataclasses.asdict(self))  # type: ignore[call-overload]
        return plain


@dataclass(frozen=True)
class Figures(Plain):
    """One API type's 24-hour figures, known once the org has reported them. For Bulk they add
    up ingest batches and query jobs, the two quotas its share governs."""

    org_max: int
    org_used: int  # other apps' use as of the org's last reading, plus quotasync's now
    other_apps_used: int
    left: int
    share_calls: int
    guard_calls: int
    warning_calls: int  # use at which the admins are warned
    observed_at: datetime  # the oldest reading behind these figures


@dataclass(frozen=True)
class Limited(Plain):
    """A backlog meeting a limit (the share or the guard): written as room frees up, in one
    episode. `written_by` is about when the backlog is written if nothing else spends the room:
    what is left now goes at once, then a call each time one of quotasync's own calls leaves the
    24-hour window, `per_call` activities a call (the last 24 hours' average when `measured`,
    else a full call). None when nothing can tell (the guard is held until the org is read)."""

    waiting: int
    written_by: datetime | None
    per_call: float
    measured: bool


@dataclass(frozen=True)
class Pause(Plain):
    """An open pause episode of one ledger API type (Bulk has two: `bulk`, `bulk_query`)."""

    api: str
    reason: str
    started_at: datetime
    next_check: datetime
    resume_at: datetime | None
    # A `workspace_limit` pause resumes exactly then (own calls leave the window); for the others
    # it is a hope that depends on other apps' use.
    resume_predicted: bool
    figures: dict[str, Any]
    limited: Limited | None = None  # a limit's episode: the backlog and when it is written


@dataclass(frozen=True)
class Pacing(Plain):
    on: bool  # activities are held longer than the workspace's log_within
    delay: float  # seconds the oldest activity of a batch may wait now
    avoids_pause: bool
    why: str


@dataclass(frozen=True)
class ApiUsage(Plain):
    api: str  # data | bulk | apex
    share_percent: int
    quotasync_used: int  # from the ledger: known whether or not the org has reported
    available: bool
    unavailable_reason: str | None
    figures: Figures | None  # None until the org reports this type
    state: str  # running | paused
    pauses: tuple[Pause, ...]
    pacing: Pacing | None  # Data only, once its figures are known


@dataclass(frozen=True)
class SettingsView(Plain):
    """A workspace's governor and sync settings as every view shows them."""

    recheck_minutes: int
    warning_percent: int
    log_within: float  # seconds within which activities are logged
    max_batch_delay: float  # how long pacing may hold them when the share would run out
    open_tracking: bool
    sync_interval_minutes: int


@dataclass(frozen=True)
class MemberUsage(Plain):
    email: str
    calls: float  # a call that carried several members' records is split by record count
    share_of_org: float | None  # of the org's Data use, when that is known


@dataclass(frozen=True)
class UsageView(Plain):
    workspace: str
    at: datetime
    limits_readable: bool | None
    # realtime (the org pushes changes) or interval (quotasync queries them every N minutes);
    # the Apex row's pauses are the rollovers from one to the other.
    sync_mode: str
    # The Salesforce user quotasync acts as; None until an org is connected (and then no
    # figures can come: limits need a sync user).
    sync_user: str | None
    settings: SettingsView
    apis: dict[str, ApiUsage]
    members: tuple[MemberUsage, ...]  # most calls first


def view(session: Session, workspace: Workspace, now: datetime) -> UsageView:
    readings = _Readings(
        rooms=quota_rows.rooms(session, workspace, now),
        figures=quota_rows.figures(session, workspace.id),
        own=quota_rows.own_use(session, workspace.id, now),
    )
    apis = {
        api: _api_usage(session, workspace, api, percent, readings, now)
        for api, percent in quota_rows.shares(workspace).items()
    }
    data = apis["data"].figures
    connection = session.get(Connection, workspace.id)
    return UsageView(
        workspace=workspace.id,
        at=now,
        limits_readable=workspace.limits_readable,
        sync_mode=workspace.sync_mode,
        sync_user=connection.username if connection is not None else None,
        settings=_settings(workspace),
        apis=apis,
        members=_members(session, workspace.id, now, data.org_used if data else 0),
    )


@dataclass(frozen=True)
class _Readings:
    """What the store knows for every type at once, read once per view."""

    rooms: dict[str, quota.Room]  # per ledger API type whose org figures are known
    figures: dict[str, OrgFigure]
    own: dict[str, int]


def _api_usage(
    session: Session,
    workspace: Workspace,
    api: str,
    percent: int,
    readings: _Readings,
    now: datetime,
) -> ApiUsage:
    ledger_apis = quota_rows.LEDGER_APIS[api]
    reason = unavailable_reason(workspace, api)
    pauses = _pauses(session, workspace, ledger_apis, now)
    known = [a for a in ledger_apis if a in readings.rooms]
    figures = None
    if reason is None and known:
        figures = _figures(
            [readings.rooms[a] for a in known],
            min(readings.figures[a].observed_at for a in known),
            workspace.warning_percent,
        )
    return ApiUsage(
        api=api,
        share_percent=percent,
        quotasync_used=sum(readings.own.get(a, 0) for a in ledger_apis),
        available=reason is None,
        unavailable_reason=reason,
        figures=figures,
        state=PAUSED if pauses else RUNNING,
        pauses=pauses,
        pacing=_pacing(session, workspace, now) if api == "data" else None,
    )


def unavailable_reason(workspace: Workspace, api: str) -> str | None:
    """Why an API type's figures cannot be shown; None when they can.

    Data figures come with every Data response, so Data is always available. Bulk and Apex figures
    only come from `/limits`, which needs View Setup (RULES.md: Without View Setup, Data only).
    """
    if api == "data" or workspace.limits_readable is True:
        return None
    return NOT_READ_YET if workspace.limits_readable is None else VIEW_SETUP_NEEDED


def share_refusal(workspace: Workspace, api: str) -> str | None:
    """Why an admin may not set this type's share; None when they may.

    Without View Setup only the Data share can be set (RULES.md: Without View Setup, Data only).
    Before quotasync has asked whether `/limits` answers, nothing is refused: the admin may be
    setting up ahead of it.
    """
    if (
        api not in quota_rows.SHARE_COLUMNS
        or unavailable_reason(workspace, api) != VIEW_SETUP_NEEDED
    ):
        return None  # an unknown type is refused, with the types named, when it is set
    return (
        f"The {api} share cannot be set: {VIEW_SETUP_NEEDED}. Until it has it, only the data "
        "share can be set."
    )


def _figures(rooms: list[quota.Room], observed_at: datetime, warning_percent: int) -> Figures:
    org_max = sum(r.org_max for r in rooms)
    org_used = sum(r.org_used for r in rooms)
    share = sum(r.share for r in rooms)
    return Figures(
        org_max=org_max,
        org_used=org_used,
        other_apps_used=sum(r.others_used for r in rooms),
        left=max(0, org_max - org_used),
        share_calls=share,
        guard_calls=sum(r.guard for r in rooms),
        # The warning goes out once use reaches this fraction of the share: round up.
        warning_calls=-(-share * warning_percent // 100),
        observed_at=observed_at,
    )


def _pauses(
    session: Session, workspace: Workspace, ledger_apis: Iterable[str], now: datetime
) -> tuple[Pause, ...]:
    rows = (episodes.open_episode(session, workspace.id, api) for api in ledger_apis)
    return tuple(
        _pause(row, _limited(session, workspace, row, now)) for row in rows if row is not None
    )


# The ledger API types a backlog of activities is written with, and what one call carries when
# it is not measured: a Bulk ingest batch is 10,000 records.
_BACKLOG_CALL = {"data": None, "bulk": float(batching.BULK_RECORDS_PER_BATCH)}


def _limited(
    session: Session, workspace: Workspace, row: PauseEpisode, now: datetime
) -> Limited | None:
    if row.reason not in LIMIT_REASONS or row.api not in _BACKLOG_CALL:
        return None
    waiting = outbox.pending_count(session, workspace.id)
    full = _BACKLOG_CALL[row.api]
    per_call, measured = (
        (full, False) if full else quota_rows.activities_per_call(session, workspace.id, now)
    )
    return Limited(
        waiting=waiting,
        written_by=quota_rows.written_by(session, workspace, row.api, waiting, per_call, now),
        per_call=round(per_call, 1),
        measured=measured,
    )


LIMIT_REASONS = frozenset(reason.value for reason in governor.FIGURE_REASONS)


def _pause(row: PauseEpisode, limited: Limited | None = None) -> Pause:
    return Pause(
        api=row.api,
        reason=row.reason,
        started_at=row.started_at,
        next_check=row.next_check,
        resume_at=row.resume_at,
        resume_predicted=row.resume_at is not None
        and row.reason == governor.Reason.WORKSPACE_LIMIT.value,
        figures=dict(row.figures or {}),
        limited=limited,
    )


def _pacing(session: Session, workspace: Workspace, now: datetime) -> Pacing | None:
    paced = quota_rows.pacing(session, workspace, now)
    if paced is None:
        return None
    return Pacing(on=paced.paced, delay=paced.delay, avoids_pause=paced.avoids_pause, why=paced.why)


def _settings(workspace: Workspace) -> SettingsView:
    return SettingsView(
        recheck_minutes=workspace.recheck_minutes,
        warning_percent=workspace.warning_percent,
        log_within=workspace.log_within,
        max_batch_delay=workspace.max_batch_delay,
        open_tracking=workspace.open_tracking,
        sync_interval_minutes=workspace.sync_interval_minutes,
    )


def _members(
    session: Session, workspace_id: str, now: datetime, org_data_used: int
) -> tuple[MemberUsage, ...]:
    used = quota_rows.member_use(session, workspace_id, now)
    return tuple(
        MemberUsage(
            email=email,
            calls=round(calls, 2),
            share_of_org=round(calls / org_data_used, 6) if org_data_used else None,
        )
        for email, calls in sorted(used.items(), key=lambda kv: (-kv[1], kv[0]))
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    return value
