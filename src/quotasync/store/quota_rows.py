"""Quota settings and figures: each workspace's shares, what the org last reported, and what
quotasync itself spent (in all, and per member) over the rolling 24 hours. The rule these
figures feed (the share, the guard, the probe, the writer's budget) is `domain/quota.py`'s:
this module loads the rows it needs and saves what the org tells."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quotasync.domain import batching, governor, quota
from quotasync.domain import pacing as pace
from quotasync.domain.realtime import SyncMode
from quotasync.errors import QuotaExhausted
from quotasync.store import history, ledger, outbox
from quotasync.store.tables import LedgerEntry, LedgerShare, OrgFigure, Workspace

WINDOW = quota.WINDOW
# The admin's slider has three settings; the Bulk one governs ingest batches and query jobs alike.
SHARE_COLUMNS = {"data": "share_data", "bulk": "share_bulk", "apex": "share_apex"}
LEDGER_APIS = {"data": ("data",), "bulk": ("bulk", "bulk_query"), "apex": ("apex",)}
SHARE_OF = {ledger_api: share for share, apis in LEDGER_APIS.items() for ledger_api in apis}


def shares(workspace: Workspace) -> dict[str, int]:
    return {api: int(getattr(workspace, column)) for api, column in SHARE_COLUMNS.items()}


def set_share(session: Session, workspace: Workspace, api: str, percent: object) -> int:
    """Set one share; anything outside 10-90% is refused with governor.ShareError."""
    if api not in SHARE_COLUMNS:
        raise governor.ShareError(
            f"The API type must be one of {', '.join(SHARE_COLUMNS)}; got {api!r}."
        )
    value = governor.validate_share(percent)
    stored = session.get(Workspace, workspace.id)
    assert stored is not None
    setattr(stored, SHARE_COLUMNS[api], value)
    session.flush()
    return value


def set_settings(
    session: Session,
    workspace: Workspace,
    *,
    recheck_minutes: int | None = None,
    warning_percent: int | None = None,
    log_within: float | None = None,
    max_batch_delay: float | None = None,
    open_tracking: bool | None = None,
) -> dict[str, object]:
    """Change the governor's settings of a workspace: the one place the pages, the JSON API and
    the CLI save them. Each is checked before any is stored (governor.SettingsError says what is
    accepted). Returns what changed, by column."""
    stored = session.get(Workspace, workspace.id)
    assert stored is not None
    changes: dict[str, object] = {}
    if recheck_minutes is not None:
        governor.validate_recheck(timedelta(minutes=recheck_minutes))
        changes["recheck_minutes"] = recheck_minutes
    if warning_percent is not None:
        governor.validate_warning_at(warning_percent / 100)
        changes["warning_percent"] = warning_percent
    if log_within is not None:
        # Against the ceiling as it stands unless this change sets a new one (checked below).
        ceiling = stored.max_batch_delay if max_batch_delay is None else None
        changes["log_within"] = governor.validate_log_within(log_within, ceiling)
    if max_batch_delay is not None:
        changes["max_batch_delay"] = governor.validate_max_batch_delay(
            max_batch_delay, stored.log_within if log_within is None else log_within
        )
    if open_tracking is not None:
        changes["open_tracking"] = open_tracking
    for column, value in changes.items():
        setattr(stored, column, value)
    session.flush()
    return changes


def observe(
    session: Session,
    workspace_id: str,
    api: str,
    used: int,
    maximum: int,
    at: datetime,
    *,
    own_in_answer: int = 0,
    answer_ids: Iterable[int] = (),
) -> None:
    """Keep the newest figure the org gave for one API type.

    `at` is when the request that brought it was sent, and `own_in_answer` how many of that
    request's own calls of this type the figure includes. Of two answers, the one to the later
    request wins, whichever came back last.
    """
    current = session.get(OrgFigure, (workspace_id, api))
    if current is not None and current.observed_at > at:
        return
    # The request's own rows are in `own_in_answer`; on a clock that stands still they would
    # also look answered by `at`, and be subtracted twice.
    counted = ledger.answered_by(session, workspace_id, api, at, excluding=answer_ids)
    counted += own_in_answer
    others = quota.others_used(used, counted)
    history.sample(session, workspace_id, api, at, used, others)
    if current is None:
        session.add(
            OrgFigure(
                workspace_id=workspace_id,
                api=api,
                max=maximum,
                used=used,
                observed_at=at,
                others_used=others,
            )
        )
    else:
        current.max, current.used, current.observed_at = maximum, used, at
        current.others_used = others


def figures(session: Session, workspace_id: str) -> dict[str, OrgFigure]:
    rows = session.scalars(select(OrgFigure).where(OrgFigure.workspace_id == workspace_id))
    return {row.api: row for row in rows}


def own_use(session: Session, workspace_id: str, now: datetime) -> dict[str, int]:
    """Calls quotasync spent per ledger API type in the 24 hours before `now`."""
    rows = session.execute(
        select(LedgerEntry.api, func.sum(LedgerEntry.calls))
        .where(LedgerEntry.workspace_id == workspace_id, LedgerEntry.at > now - WINDOW)
        .group_by(LedgerEntry.api)
    ).all()
    return {api: int(calls or 0) for api, calls in rows}


def member_use(session: Session, workspace_id: str, now: datetime) -> dict[str, float]:
    """Data API calls per member in the past 24 hours; a batched call is split by record count."""
    rows = session.execute(
        select(LedgerShare.user_email, func.sum(LedgerEntry.calls * LedgerShare.share))
        .join(LedgerEntry, LedgerEntry.id == LedgerShare.ledger_id)
        .where(
            LedgerEntry.workspace_id == workspace_id,
            LedgerEntry.api == "data",
            LedgerEntry.at > now - WINDOW,
        )
        .group_by(LedgerShare.user_email)
    ).all()
    return {email: float(calls or 0.0) for email, calls in rows}


def recheck(workspace: Workspace) -> timedelta:
    """How often a pause of this workspace looks again (RULES.md: Recheck and resume)."""
    return timedelta(minutes=workspace.recheck_minutes)


def warning_at(workspace: Workspace) -> float:
    """The fraction of a share past which the admins are warned."""
    return workspace.warning_percent / 100


def rooms(session: Session, workspace: Workspace, now: datetime) -> dict[str, quota.Room]:
    """Per ledger API type whose org figures are known: what is used and left under the share
    and the guard (`quota.room`, without the ledger's timing)."""
    percents = shares(workspace)
    own_now = own_use(session, workspace.id, now)
    return {
        api: quota.room(
            figure.max,
            figure.used,
            percents[SHARE_OF.get(api, "data")],
            own_now.get(api, 0),
            figure.others_used,
        )
        for api, figure in figures(session, workspace.id).items()
    }


def decision(
    session: Session, workspace: Workspace, api: str, now: datetime, *, batch_cost: int = 1
) -> governor.Decision:
    """The governor's decision for one ledger API type of a workspace now, from the store's
    figures, the ledger and the workspace's share and recheck interval."""
    figure = figures(session, workspace.id).get(api)
    org = (
        governor.OrgFigures(figure.max, figure.used, figure.observed_at, figure.others_used)
        if figure is not None
        else None
    )
    entries = governor.CallWindow(tuple(ledger.entries_in_window(session, workspace.id, api, now)))
    return governor.decide(
        governor.Api(api),
        entries,
        org,
        shares(workspace)[SHARE_OF[api]],
        now,
        batch_cost=batch_cost,
        recheck=recheck(workspace),
    )


def until_room(
    session: Session, workspace_id: str, no_room: QuotaExhausted, now: datetime
) -> governor.Decision:
    """Why a reservation was refused (`QuotaExhausted`) and when to look again, whatever the call
    for (a batch, the mirror sync): the governor's decision on the refused type. For the
    workspace's own share that is exactly when enough of its calls leave the window, with no
    check call. Without the type's figures (or the workspace), the share's pause at the recheck."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None or no_room.api not in figures(session, workspace_id):
        return governor.Pause(
            governor.Api(no_room.api),
            governor.Reason.WORKSPACE_LIMIT,
            next_check=now + (recheck(workspace) if workspace else governor.DEFAULT_RECHECK),
        )
    return decision(session, workspace, no_room.api, now, batch_cost=no_room.cost)


def activities_per_call(session: Session, workspace_id: str, now: datetime) -> tuple[float, bool]:
    """Activities one logging call carried, on average over the last 24 hours, and whether that
    is measured (False: no logging call yet, so a full call's `governor.FULL_CALL_RECORDS`)."""
    calls = session.scalar(
        select(func.coalesce(func.sum(LedgerEntry.calls), 0)).where(
            LedgerEntry.workspace_id == workspace_id,
            LedgerEntry.api == "data",
            LedgerEntry.purpose == "log_activity",
            LedgerEntry.at > now - WINDOW,
        )
    )
    logged = outbox.logged_since(session, workspace_id, now - WINDOW)
    if not calls or not logged:
        return float(governor.FULL_CALL_RECORDS), False
    return logged / int(calls), True


def written_by(
    session: Session, workspace: Workspace, api: str, waiting: int, per_call: float, now: datetime
) -> datetime | None:
    """About when `waiting` activities are written under one ledger API type's limits
    (`governor.written_by`); None when nothing can tell (no figures, the guard held)."""
    room = rooms(session, workspace, now).get(api)
    if room is None:
        return None
    entries = governor.CallWindow(tuple(ledger.entries_in_window(session, workspace.id, api, now)))
    return governor.written_by(entries, room, waiting, per_call, now)


RATE_WINDOW = timedelta(hours=1)  # the arrival rate pacing plans for is the last hour's


def pacing(
    session: Session,
    workspace: Workspace,
    now: datetime,
    batch_size: int = batching.RECORDS_PER_CALL,
) -> pace.Pacing | None:
    """How long a batch waits: the workspace's `log_within`, stretched (up to its
    `max_batch_delay`) only when that would spend the Data share (or the guard's room) before the
    window frees it, at the last hour's arrival rate, for calls of up to `batch_size` records;
    never while the guard is held (`pace.paced_delay`). None until the org's Data figure is
    known."""
    room = rooms(session, workspace, now).get("data")
    if room is None:
        return None
    interval_sync = (
        timedelta(minutes=workspace.sync_interval_minutes)
        if workspace.sync_mode == SyncMode.INTERVAL
        else None
    )
    entries = governor.CallWindow(
        tuple(ledger.entries_in_window(session, workspace.id, "data", now))
    )
    arrived = outbox.received_since(session, workspace.id, now - RATE_WINDOW)
    return pace.paced_delay(
        entries,
        quota.writer_budget(room, interval_sync),
        now,
        arrived / RATE_WINDOW.total_seconds(),
        batch_size=batch_size,
        base_delay=workspace.log_within,
        max_delay=max(workspace.log_within, workspace.max_batch_delay),
        guard_held=room.guard_held,
    )


def caps(
    session: Session, workspace_id: str, now: datetime, *, probe: bool = False
) -> dict[str, int]:
    """The most calls quotasync may have in the window, per ledger API type whose org figures are
    known: `quota.Room.cap` on the store's figures (RULES.md: Workspace share, Global guard).
    A `probe` (a call that only reads the org's figures, as a paused guard's recheck) may pass
    the guard by one call once the type's figures are a recheck interval old
    (`quota.probe_due`)."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        return {}
    every = recheck(workspace)
    known = figures(session, workspace_id)
    return {
        api: room.cap(probe=probe and quota.probe_due(known[api].observed_at, now, every))
        for api, room in rooms(session, workspace, now).items()
    }
