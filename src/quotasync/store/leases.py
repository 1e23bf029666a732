"""Worker leases: which worker steps which connected workspace, and when each is due again.

Any number of worker processes, on any hosts, share one store. Each takes a due workspace with
`take` (PostgreSQL's `FOR UPDATE SKIP LOCKED`, so workers never queue behind each other's
choices), steps it, and hands it back with `give_back` and the time it is next due. A lease has an
expiry, renewed while the step runs (`renew`); a worker that dies holding one loses it when it runs
out, and the workspace is due to the others again: a crash costs one lease of delay, never the
workspace.

Due workspaces are taken earliest-due first. A workspace with a big backlog is due again at once
after each batch, but behind every workspace that became due while that batch was sent: none waits
more than one turn of the others.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    CursorResult,
    Update,
    and_,
    case,
    delete,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from quotasync.store.tables import Connection, UTCDateTime, WorkerLease


def ensure(session: Session, now: datetime) -> int:
    """A lease row for every connected workspace that has none (due now); returns how many were
    added. Rows of workspaces no longer connected are dropped."""
    missing = list(
        session.scalars(
            select(Connection.workspace_id).where(
                ~select(WorkerLease.workspace_id)
                .where(WorkerLease.workspace_id == Connection.workspace_id)
                .exists()
            )
        )
    )
    if missing:
        # Workers starting together may add the same rows: the second adds nothing.
        dialect = session.get_bind().dialect.name
        insert_ = sqlite_insert if dialect == "sqlite" else postgresql_insert
        session.execute(
            insert_(WorkerLease).on_conflict_do_nothing(index_elements=["workspace_id"]),
            [{"workspace_id": w, "due_at": now} for w in missing],
        )
    session.execute(
        delete(WorkerLease).where(
            ~select(Connection.workspace_id)
            .where(Connection.workspace_id == WorkerLease.workspace_id)
            .exists()
        )
    )
    return len(missing)


def _changed(session: Session, statement: Update) -> int:
    """Rows an UPDATE changed."""
    result = session.execute(statement)
    return int(cast(CursorResult[Any], result).rowcount or 0)


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(WorkerLease.expires_at.is_(None), WorkerLease.expires_at <= now)


def take(
    session: Session,
    holder: str,
    now: datetime,
    lease: timedelta,
    *,
    skip: Iterable[str] = (),
) -> str | None:
    """The earliest-due workspace no live lease holds, now leased to `holder` until `now + lease`;
    None when nothing is due. Call in its own short transaction and commit at once.

    PostgreSQL skips rows another worker is choosing at the same moment; SQLite serialises
    writers. Either way the conditional update below is what makes the lease one holder's: it
    only succeeds while the lease is still free."""
    skipped = list(skip)
    query = (
        select(WorkerLease.workspace_id)
        .where(WorkerLease.due_at <= now, _free(now))
        .order_by(WorkerLease.due_at, WorkerLease.workspace_id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if skipped:
        query = query.where(WorkerLease.workspace_id.not_in(skipped))
    workspace_id = session.scalars(query).first()
    if workspace_id is None:
        return None
    taken = _changed(
        session,
        update(WorkerLease)
        .where(WorkerLease.workspace_id == workspace_id, _free(now))
        .values(holder=holder, expires_at=now + lease, woken_at=None),
    )
    return workspace_id if taken == 1 else None


def renew(
    session: Session, holder: str, workspace_ids: Iterable[str], now: datetime, lease: timedelta
) -> int:
    """Extend the leases `holder` still holds among `workspace_ids`; returns how many it held."""
    wanted = list(workspace_ids)
    if not wanted:
        return 0
    return _changed(
        session,
        update(WorkerLease)
        .where(WorkerLease.workspace_id.in_(wanted), WorkerLease.holder == holder)
        .values(expires_at=now + lease),
    )


def give_back(
    session: Session, holder: str, workspace_id: str, now: datetime, due_at: datetime
) -> None:
    """End `holder`'s lease on a workspace it has stepped, due again at `due_at`, or when it was
    woken during the step if that is sooner. If the lease ran out and another worker took it
    meanwhile, that worker's lease is left alone."""
    session.execute(
        update(WorkerLease)
        .where(WorkerLease.workspace_id == workspace_id, WorkerLease.holder == holder)
        .values(
            holder=None,
            expires_at=None,
            due_at=case(
                (WorkerLease.woken_at < due_at, WorkerLease.woken_at),
                else_=literal(due_at, UTCDateTime()),
            ),
            stepped_at=now,
            woken_at=None,
        )
    )


def release_all(session: Session, holder: str) -> int:
    """Give back every lease `holder` has (a worker stopping), due as they were."""
    return _changed(
        session,
        update(WorkerLease)
        .where(WorkerLease.holder == holder)
        .values(holder=None, expires_at=None),
    )


def wake(session: Session, workspace_id: str, at: datetime) -> None:
    """Make a workspace due no later than `at` (new activities arrived, failed ones queued
    again), so the next free worker looks at it instead of at its old due time. A worker may be
    stepping it right now, having looked before they arrived: the wake is kept for when it gives
    the workspace back."""
    session.execute(
        update(WorkerLease)
        .where(WorkerLease.workspace_id == workspace_id, WorkerLease.due_at > at)
        .values(due_at=at)
    )
    session.execute(
        update(WorkerLease)
        .where(
            WorkerLease.workspace_id == workspace_id,
            WorkerLease.holder.is_not(None),
            or_(WorkerLease.woken_at.is_(None), WorkerLease.woken_at > at),
        )
        .values(woken_at=at)
    )


def next_due(session: Session, excluding: Collection[str] = ()) -> datetime | None:
    """When the earliest-due workspace (of those not `excluding`) is due (None: none is)."""
    query = select(func.min(WorkerLease.due_at))
    if excluding:
        query = query.where(WorkerLease.workspace_id.not_in(list(excluding)))
    due: datetime | None = session.scalar(query)
    return due


def holders(session: Session, now: datetime) -> dict[str, str]:
    """Workspace id -> holder, for every live lease."""
    rows = session.execute(
        select(WorkerLease.workspace_id, WorkerLease.holder).where(
            and_(WorkerLease.holder.is_not(None), WorkerLease.expires_at > now)
        )
    )
    return {workspace_id: holder for workspace_id, holder in rows if holder is not None}
