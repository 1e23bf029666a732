"""The activity outbox: accepting activities durably, and the state each one is in.

States: `pending` (waiting to be written; `next_attempt_at` may hold a retry), `logged` (in
Salesforce, with the record's id), `failed` (Salesforce refused it for good; `last_error` says why),
`skipped` (deliberately not written: no Contact or Lead, or open tracking off; `last_error` says why).
An activity is stored in the same JSON shape the email product posted, so one parser reads both.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, func, or_, select, update
from sqlalchemy.orm import Session

from quotasync.domain.activities import Activity, State, parse_activity
from quotasync.domain.mapping import record_key
from quotasync.store import leases
from quotasync.store.tables import Activity as Row
from quotasync.store.tables import Workspace


def to_json(activity: Activity) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": activity.id,
        "kind": activity.kind.value,
        "occurred_at": activity.occurred_at.isoformat(),
        "user_email": activity.user_email,
        "to": list(activity.to),
        "cc": list(activity.cc),
    }
    for name in ("subject", "body", "email_id", "url", "meeting_id"):
        value = getattr(activity, name)
        if value is not None:
            out[name] = value
    if activity.meeting is not None:
        out["meeting"] = {
            "start": activity.meeting.start.isoformat(),
            "end": activity.meeting.end.isoformat(),
            "location": activity.meeting.location,
            "attendees": list(activity.meeting.attendees),
        }
    return out


def from_row(row: Row) -> Activity:
    return parse_activity(row.payload)


@dataclass(frozen=True)
class Accepted:
    stored: int
    duplicates: int


def accept(
    session: Session, workspace_id: str, activities: Sequence[Activity], now: datetime
) -> Accepted:
    """Store new activities; an id the workspace already has is acknowledged, not stored again."""
    if not activities:
        return Accepted(0, 0)
    ids = [a.id for a in activities]
    known = set(
        session.scalars(select(Row.id).where(Row.workspace_id == workspace_id, Row.id.in_(ids)))
    )
    fresh: dict[str, Activity] = {}
    for activity in activities:
        if activity.id not in known and activity.id not in fresh:
            fresh[activity.id] = activity
    for activity in fresh.values():
        record_type, key = record_key(activity)
        session.add(
            Row(
                workspace_id=workspace_id,
                id=activity.id,
                kind=activity.kind.value,
                occurred_at=activity.occurred_at,
                received_at=now,
                user_email=activity.user_email,
                record_type=record_type,
                record_key=key,
                payload=to_json(activity),
                state=State.PENDING,
                attempts=0,
            )
        )
    if fresh:
        leases.wake(session, workspace_id, now)
    session.flush()
    return Accepted(len(fresh), len(activities) - len(fresh))


# A claimed batch goes back to the pool after this if it is never settled (a crashed writer).
CLAIM = timedelta(seconds=60)


def claim(
    session: Session, workspace_id: str, now: datetime, limit: int, until: datetime
) -> list[Row]:
    """Pending activities ready to go now, oldest first, claimed for this writer: they are not
    due to any other writer until `until` (a crashed writer's batch comes back then), or until
    `release`d or settled.

    Call inside a transaction. The workspace's row is locked first (SQLite's write lock,
    PostgreSQL's row lock), so two writers never claim the same activities; without a claim,
    each of them would send the same batch and spend the share on repeats.
    """
    _lock_workspace(session, workspace_id)
    rows = list(
        session.scalars(
            select(Row).where(*_ready(workspace_id, now)).order_by(*_OLDEST).limit(limit)
        )
    )
    _hold(session, workspace_id, rows, until)
    return rows


def claim_records(
    session: Session, workspace_id: str, now: datetime, records: int, until: datetime
) -> list[Row]:
    """Like `claim`, but by record: the `records` records whose oldest ready activity is oldest,
    with every ready activity of each. A Task written once then carries all the opens, clicks and
    replies waiting for it, however many batches they arrived in, instead of being written again
    for each batch that holds one of them."""
    _lock_workspace(session, workspace_id)
    first = func.min(Row.received_at)
    keys = session.execute(
        select(Row.record_type, Row.record_key)
        .where(*_ready(workspace_id, now))
        .group_by(Row.record_type, Row.record_key)
        .order_by(first, func.min(Row.id))
        .limit(records)
    ).all()
    wanted = {(record_type, key) for record_type, key in keys}
    rows: list[Row] = []
    keys_only = sorted({key for _, key in wanted})
    for start in range(0, len(keys_only), 500):
        rows += [
            row
            for row in session.scalars(
                select(Row).where(
                    *_ready(workspace_id, now),
                    Row.record_key.in_(keys_only[start : start + 500]),
                )
            )
            if (row.record_type, row.record_key) in wanted
        ]
    rows.sort(key=lambda row: (row.received_at, row.id))
    _hold(session, workspace_id, rows, until)
    return rows


_OLDEST = (Row.received_at, Row.id)


def _ready(workspace_id: str, now: datetime) -> tuple[Any, ...]:
    return (
        Row.workspace_id == workspace_id,
        Row.state == State.PENDING,
        or_(Row.next_attempt_at.is_(None), Row.next_attempt_at <= now),
    )


def _lock_workspace(session: Session, workspace_id: str) -> None:
    """The workspace's row locked first (SQLite's write lock, PostgreSQL's row lock): two writers
    never claim the same activities."""
    session.execute(
        update(Workspace).where(Workspace.id == workspace_id).values(name=Workspace.name)
    )


def _hold(session: Session, workspace_id: str, rows: Sequence[Row], until: datetime) -> None:
    # One statement per 500 rows; the loaded rows keep the time they were claimed at
    # (nothing reads it from them).
    for start in range(0, len(rows), 500):
        session.execute(
            update(Row)
            .where(
                Row.workspace_id == workspace_id,
                Row.id.in_([row.id for row in rows[start : start + 500]]),
            )
            .values(next_attempt_at=until)
            .execution_options(synchronize_session=False)
        )


def release(session: Session, workspace_id: str, ids: Iterable[str], until: datetime) -> None:
    """Activities claimed `until` a time that are still as the claim left them (not settled,
    not given a retry time): due again now. Those settled meanwhile keep what they were given."""
    wanted = list(ids)
    for start in range(0, len(wanted), 500):
        session.execute(
            update(Row)
            .where(
                Row.workspace_id == workspace_id,
                Row.id.in_(wanted[start : start + 500]),
                Row.state == State.PENDING,
                Row.next_attempt_at == until,
            )
            .values(next_attempt_at=None)
        )


def backlog(session: Session, workspace_id: str, now: datetime) -> tuple[int, datetime | None]:
    """How many records have activities ready to go, and when the oldest of those arrived.
    (A record's key is the id of the activity that made it, so keys do not repeat across types.)"""
    count, oldest = session.execute(
        select(func.count(func.distinct(Row.record_key)), func.min(Row.received_at)).where(
            *_ready(workspace_id, now)
        )
    ).one()
    return int(count), oldest


def next_retry(session: Session, workspace_id: str) -> datetime | None:
    return session.scalar(
        select(func.min(Row.next_attempt_at)).where(
            Row.workspace_id == workspace_id,
            Row.state == State.PENDING,
            Row.next_attempt_at.is_not(None),
        )
    )


def received_since(session: Session, workspace_id: str, since: datetime) -> int:
    """Activities accepted since a time, whatever became of them: the arrival rate's count."""
    return int(
        session.scalar(
            select(func.count()).where(Row.workspace_id == workspace_id, Row.received_at > since)
        )
        or 0
    )


def logged_since(session: Session, workspace_id: str, since: datetime) -> int:
    """Activities logged in Salesforce since a time (a batch's per-call average counts them)."""
    return int(
        session.scalar(
            select(func.count()).where(
                Row.workspace_id == workspace_id, Row.state == State.LOGGED, Row.logged_at > since
            )
        )
        or 0
    )


def pending_count(session: Session, workspace_id: str | None = None) -> int:
    query = select(func.count()).where(Row.state == State.PENDING)
    if workspace_id is not None:
        query = query.where(Row.workspace_id == workspace_id)
    return int(session.scalar(query) or 0)


def of_records(session: Session, workspace_id: str, keys: Iterable[tuple[str, str]]) -> list[Row]:
    """Every stored activity (any state) that writes to one of these records."""
    by_type: dict[str, list[str]] = {}
    for record_type, key in dict.fromkeys(keys):
        by_type.setdefault(record_type, []).append(key)
    rows: list[Row] = []
    # One `IN` per record type and 500 keys, on the (workspace, type, key) index: a long OR of
    # pairs costs more to build and compile than to run.
    for record_type, record_keys in by_type.items():
        for start in range(0, len(record_keys), 500):
            rows += session.scalars(
                select(Row).where(
                    Row.workspace_id == workspace_id,
                    Row.record_type == record_type,
                    Row.record_key.in_(record_keys[start : start + 500]),
                )
            ).all()
    return rows


def mark(session: Session, workspace_id: str, ids: Iterable[str], **values: Any) -> None:
    ids = list(ids)
    for start in range(0, len(ids), 500):
        session.execute(
            update(Row)
            .where(Row.workspace_id == workspace_id, Row.id.in_(ids[start : start + 500]))
            .values(**values)
        )


def mark_logged(
    session: Session, workspace_id: str, salesforce_ids: Mapping[str, str], at: datetime
) -> None:
    """Activities logged as the given records (activity id -> Salesforce id), in one statement
    run for all of them: each has its own record id, so they cannot share one UPDATE."""
    if not salesforce_ids:
        return
    table = cast(Table, Row.__table__)
    session.connection().execute(
        update(table)
        .where(table.c.workspace_id == bindparam("ws"), table.c.id == bindparam("activity"))
        .values(
            state=State.LOGGED,
            logged_at=bindparam("at"),
            salesforce_id=bindparam("sf"),
            last_error=None,
        ),
        [
            {"ws": workspace_id, "activity": activity_id, "sf": record_id, "at": at}
            for activity_id, record_id in salesforce_ids.items()
        ],
    )


UNMATCHED_PREFIXES = ("no Contact or Lead has the email", "no Lead could be created for")
OPEN_TRACKING_OFF = "open tracking is off"


def skipped_reasons(session: Session, workspace_id: str) -> dict[str, int]:
    """Skipped activities by why: `unmatched` recipients, `open_tracking_off`, `other`."""
    rows = session.execute(
        select(Row.last_error, func.count())
        .where(Row.workspace_id == workspace_id, Row.state == State.SKIPPED)
        .group_by(Row.last_error)
    ).all()
    out: dict[str, int] = {}
    for reason, n in rows:
        text = reason or ""
        # A follow-up of a skipped email carries its email's reason inside its own.
        if any(prefix in text for prefix in UNMATCHED_PREFIXES):
            key = "unmatched"
        elif OPEN_TRACKING_OFF in text:
            key = "open_tracking_off"
        else:
            key = "other"
        out[key] = out.get(key, 0) + int(n)
    return out


def counts(session: Session, workspace_id: str, user_email: str | None = None) -> dict[str, int]:
    query = select(Row.state, func.count()).where(Row.workspace_id == workspace_id)
    if user_email is not None:
        query = query.where(Row.user_email == user_email)
    rows = session.execute(query.group_by(Row.state)).all()
    return {state: int(n) for state, n in rows}


def recent(
    session: Session,
    workspace_id: str,
    *,
    state: str | None = None,
    user_email: str | None = None,
    kind: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Row]:
    """The most recently received activities, newest first, narrowed by the filters given;
    `offset` skips that many (a page further on)."""
    query = _narrowed(select(Row), workspace_id, state, user_email, kind)
    ordered = query.order_by(Row.received_at.desc(), Row.id)
    return list(session.scalars(ordered.offset(offset).limit(limit)))


def matching(
    session: Session,
    workspace_id: str,
    *,
    state: str | None = None,
    user_email: str | None = None,
    kind: str | None = None,
) -> int:
    """How many activities the same filters as `recent` find, on every page."""
    query = _narrowed(select(func.count()).select_from(Row), workspace_id, state, user_email, kind)
    return int(session.scalar(query) or 0)


def _narrowed(
    query: Any, workspace_id: str, state: str | None, user_email: str | None, kind: str | None
) -> Any:
    query = query.where(Row.workspace_id == workspace_id)
    if state is not None:
        query = query.where(Row.state == state)
    if user_email is not None:
        query = query.where(Row.user_email == user_email)
    if kind is not None:
        query = query.where(Row.kind == kind)
    return query


def retry(
    session: Session,
    workspace_id: str,
    ids: Iterable[str],
    now: datetime,
    *,
    user_email: str | None = None,
) -> list[str]:
    """Put failed activities back in the queue to be written again; returns the ids that were.
    Only `failed` ones move (a logged one is done, a pending one is already queued); with
    `user_email`, only that member's own."""
    wanted = list(dict.fromkeys(ids))
    moved: list[str] = []
    for start in range(0, len(wanted), 500):
        query = select(Row.id).where(
            Row.workspace_id == workspace_id,
            Row.id.in_(wanted[start : start + 500]),
            Row.state == State.FAILED,
        )
        if user_email is not None:
            query = query.where(Row.user_email == user_email)
        chunk = list(session.scalars(query))
        mark(
            session,
            workspace_id,
            chunk,
            state=State.PENDING,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
        )
        moved += chunk
    if moved:
        leases.wake(session, workspace_id, now)
    return moved
