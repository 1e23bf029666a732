"""How far the mirror's sync has come with each type: its watermark (the newest SystemModstamp
synced through), its last full load, and when its last run started (which a worker takes by a
conditional UPDATE, so two workers never sync the same type at once)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Table, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from quotasync.store.tables import SyncState

_STATE = cast(Table, SyncState.__table__)


def states(session: Session, workspace_id: str) -> dict[str, SyncState]:
    rows = session.scalars(select(SyncState).where(SyncState.workspace_id == workspace_id))
    return {row.sobject: row for row in rows}


def last_runs(session: Session, workspace_id: str) -> dict[str, datetime | None]:
    """When each type's last sync started (the values only: the states stay unloaded)."""
    rows = session.execute(
        select(SyncState.sobject, SyncState.last_run_at).where(
            SyncState.workspace_id == workspace_id
        )
    )
    return {sobject: at for sobject, at in rows}


def start_runs(
    session: Session,
    workspace_id: str,
    sobjects: Sequence[str],
    now: datetime,
    every: timedelta | None = None,
) -> list[str]:
    """Note that a sync of these types starts now; returns those it may sync.

    With `every`, only types whose last run started at least that long ago are taken, each by a
    conditional UPDATE: of two workers looking at once, one gets a type and the other skips it.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(_STATE)
        .values([{"workspace_id": workspace_id, "sobject": s} for s in sobjects])
        .on_conflict_do_nothing(index_elements=["workspace_id", "sobject"])
    )
    taken = []
    for sobject in sobjects:
        query = update(SyncState).where(
            SyncState.workspace_id == workspace_id, SyncState.sobject == sobject
        )
        if every is not None:
            query = query.where(
                or_(SyncState.last_run_at.is_(None), SyncState.last_run_at <= now - every)
            )
        if session.execute(query.values(last_run_at=now)).rowcount == 1:  # type: ignore[attr-defined]
            taken.append(sobject)
    return taken


def withdraw_runs(
    session: Session,
    workspace_id: str,
    before: Mapping[str, datetime | None],
    started: datetime,
) -> None:
    """A run that started at `started` stopped before these types were through (the quota had
    no room): each one's start mark goes back to `before` (its last run's start), so the type is
    due as it was, and the pause that stopped the run says when it goes again rather than the
    sync interval. A type another run has started since keeps that run's mark."""
    for sobject, last_run_at in before.items():
        session.execute(
            update(SyncState)
            .where(
                SyncState.workspace_id == workspace_id,
                SyncState.sobject == sobject,
                SyncState.last_run_at == started,
            )
            .values(last_run_at=last_run_at)
        )


def finish_run(
    session: Session,
    workspace_id: str,
    sobject: str,
    watermark: datetime | None,
    full_at: datetime | None,
) -> None:
    """A type was synced through: its watermark moves up (never down); a full load is noted."""
    state = session.get(SyncState, (workspace_id, sobject))
    if state is None:
        state = SyncState(workspace_id=workspace_id, sobject=sobject)
        session.add(state)
    if watermark is not None and (state.watermark is None or watermark > state.watermark):
        state.watermark = watermark
    if full_at is not None:
        state.last_full_at = full_at


def forget_runs(session: Session, workspace_id: str) -> None:
    """Forget how far the sync has come (another org): the next sync loads every type in full."""
    session.execute(
        update(SyncState)
        .where(SyncState.workspace_id == workspace_id)
        .values(watermark=None, last_full_at=None)
    )
