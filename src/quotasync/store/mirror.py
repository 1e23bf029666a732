"""The local mirror of the org's people and deals (Users, Contacts, Leads, Accounts,
Opportunities): its rows. How far it has followed the org is in `store/sync_state.py`, the
cache of emails the org does not know in `store/unknown_emails.py`.

`apply` is the one way rows reach the mirror, whatever brought them (an initial load, an interval
sync, a push from the org): a row wins over the stored record when its SystemModstamp is newer or
equal, so a late or repeated row never takes the mirror back in time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import String, Table, and_, any_, bindparam, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from quotasync.domain import org_values
from quotasync.store.tables import MirrorRecord

log = logging.getLogger("quotasync.mirror")

CHUNK = 500  # ids per statement: well inside SQLite's and PostgreSQL's parameter limits
_TABLE = cast(Table, MirrorRecord.__table__)
_KEY = ("workspace_id", "sobject", "salesforce_id")


@dataclass(frozen=True)
class _Stored:
    modstamp: datetime | None
    is_deleted: bool
    fields: dict[str, Any]


def apply(
    session: Session, workspace_id: str, sobject: str, rows: Iterable[Mapping[str, Any]]
) -> int:
    """Bring Salesforce rows (Id, SystemModstamp, IsDeleted and fields) into the mirror; returns
    how many records changed.

    A row replaces the fields it carries when its SystemModstamp is newer than or equal to the
    stored one; an older row is ignored. `IsDeleted` rows become tombstones, which keep their
    fields and modstamp and which matching ignores. A row without a SystemModstamp (a record
    Salesforce has not described yet) only fills a gap: it never overwrites a described record.
    Rows equal to what is stored change nothing and are not counted.
    """
    newest = _newest_by_id(_checked(workspace_id, sobject, rows))
    ids = sorted(newest)
    changed = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        stored = _stored(session, workspace_id, sobject, chunk)
        writes = []
        for record_id in chunk:
            write = _write(workspace_id, sobject, newest[record_id], stored.get(record_id))
            if write is not None:
                writes.append(write)
        if writes:
            session.execute(_upsert(session), writes)
            changed += len(writes)
    return changed


def put(
    session: Session,
    workspace_id: str,
    sobject: str,
    records: Iterable[Mapping[str, Any]],
    now: datetime,
) -> int:
    """Rows from a lookup or a record quotasync created: `apply` (the time is not used)."""
    return apply(session, workspace_id, sobject, records)


def sweep(
    session: Session, workspace_id: str, sobject: str, seen: set[str], up_to: datetime | None
) -> int:
    """After a full load: tombstone the live records the load did not see, except those newer
    than it (`up_to`, the newest SystemModstamp it saw), which came in while it ran."""
    rows = session.execute(
        select(MirrorRecord.salesforce_id, MirrorRecord.modstamp).where(
            MirrorRecord.workspace_id == workspace_id,
            MirrorRecord.sobject == sobject,
            MirrorRecord.is_deleted.is_(False),
        )
    ).all()
    gone = [
        record_id
        for record_id, modstamp in rows
        if record_id not in seen and (modstamp is None or up_to is None or modstamp <= up_to)
    ]
    for start in range(0, len(gone), CHUNK):
        session.execute(
            update(MirrorRecord)
            .where(
                MirrorRecord.workspace_id == workspace_id,
                MirrorRecord.sobject == sobject,
                MirrorRecord.salesforce_id.in_(gone[start : start + CHUNK]),
            )
            .values(is_deleted=True)
        )
    return len(gone)


def modstamp(value: Any) -> datetime | None:
    """A SystemModstamp as Salesforce writes it (2026-11-28T12:00:00.000+0000 in JSON,
    2026-11-28T12:00:00.000Z in CSV), or a datetime, as an aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        text = str(value).strip().replace("Z", "+00:00")
        if len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
            text = f"{text[:-2]}:{text[-2:]}"
        moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _checked(
    workspace_id: str, sobject: str, rows: Iterable[Mapping[str, Any]]
) -> Iterator[Mapping[str, Any]]:
    """The org's rows as the mirror may take them (domain/org_values.py): a row whose id or
    SystemModstamp Salesforce could not have sent is left out, a field likewise is dropped from
    its row; each is logged by name, never by value (the values are the untrusted part)."""
    for row in rows:
        checked = org_values.check(row)
        record = checked.row
        if record is not None:
            try:
                modstamp(record.get("SystemModstamp"))
            except (TypeError, ValueError, OverflowError):
                record = None
        if record is None:
            log.warning(
                "workspace %s: a %s row from the org is not a record Salesforce sends "
                "(its Id or SystemModstamp): left out",
                workspace_id,
                sobject,
            )
            continue
        if checked.dropped:
            log.warning(
                "workspace %s: %s %s from the org: left out %s (not a value Salesforce sends)",
                workspace_id,
                sobject,
                record["Id"],
                ", ".join(checked.dropped[:20]),
            )
        yield record


def _newest_by_id(rows: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """One row per record: the newest when a batch carries a record twice."""
    newest: dict[str, Mapping[str, Any]] = {}
    for row in rows:
        record_id = str(row["Id"])
        kept = newest.get(record_id)
        if kept is None or _wins(modstamp(row.get("SystemModstamp")), kept.get("SystemModstamp")):
            newest[record_id] = row
    return newest


def _wins(new: datetime | None, old: Any) -> bool:
    old_stamp = modstamp(old) if not isinstance(old, datetime) else old
    if old_stamp is None:
        return True
    return new is not None and new >= old_stamp


def _stored(
    session: Session, workspace_id: str, sobject: str, ids: Sequence[str]
) -> dict[str, _Stored]:
    rows = session.execute(
        select(
            MirrorRecord.salesforce_id,
            MirrorRecord.modstamp,
            MirrorRecord.is_deleted,
            MirrorRecord.fields,
        ).where(
            MirrorRecord.workspace_id == workspace_id,
            MirrorRecord.sobject == sobject,
            _among(session, MirrorRecord.salesforce_id, ids),
        )
    ).all()
    return {r[0]: _Stored(r[1], bool(r[2]), dict(r[3] or {})) for r in rows}


def _among(session: Session, column: Any, values: Sequence[str]) -> Any:
    """`column IN values` (values sorted), with the range they span.

    The range keeps the lookup cheap whatever plan the database picks: right after a big load
    PostgreSQL's statistics still see an empty table, and a prepared statement's generic plan
    then walks every record of the type through the (workspace, type, email) index, testing
    each against the whole list. With the range tested first (byte order, as Python sorts),
    a record outside it costs two comparisons. On PostgreSQL the list is one array parameter.
    """
    low, high = values[0], values[-1]
    if session.get_bind().dialect.name == "postgresql":
        ordered = column.collate("C")
        listed = column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
        return and_(ordered >= low, ordered <= high, listed)
    return and_(column >= low, column <= high, column.in_(values))


def _write(
    workspace_id: str, sobject: str, row: Mapping[str, Any], old: _Stored | None
) -> dict[str, Any] | None:
    """The values to store for one row, or None when it must not (or need not) change a thing."""
    stamp = modstamp(row.get("SystemModstamp"))
    deleted = _truthy(row.get("IsDeleted"))
    fields = {k: _json_value(v) for k, v in row.items() if k != "attributes"}
    if old is not None:
        if not _wins(stamp, old.modstamp):
            return None  # older than what the mirror has: a late or repeated row
        fields = {**old.fields, **fields}
        if stamp == old.modstamp and deleted == old.is_deleted and fields == old.fields:
            return None
    email = fields.get("Email")
    account = fields.get("AccountId")
    return {
        "workspace_id": workspace_id,
        "sobject": sobject,
        "salesforce_id": str(row["Id"]),
        "email": email.lower() if isinstance(email, str) and email else None,
        "account_id": account if isinstance(account, str) and account else None,
        "fields": fields,
        "is_deleted": deleted,
        "modstamp": stamp,
    }


def salesforce_datetime(moment: datetime) -> str:
    """A datetime as Salesforce's JSON writes it: 2026-11-28T12:00:00.000+0000."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}+0000"


def _json_value(value: Any) -> Any:
    """Field values as a REST row holds them, whoever built the row."""
    if isinstance(value, datetime):
        return salesforce_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def _upsert(session: Session) -> Any:
    """INSERT ... ON CONFLICT DO UPDATE, guarded by the modstamp in the statement itself, so two
    writers racing on one record (a sync and a push) still leave the newer row."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(_TABLE)
    new, old = statement.excluded, _TABLE.c
    return statement.on_conflict_do_update(
        index_elements=[old[k] for k in _KEY],
        set_={k: new[k] for k in ("email", "account_id", "fields", "is_deleted", "modstamp")},
        where=or_(
            old.modstamp.is_(None),
            and_(new.modstamp.is_not(None), new.modstamp >= old.modstamp),
        ),
    )


# ---------------------------------------------------------------- reading the mirror


def ids_by_email(
    session: Session, workspace_id: str, sobject: str, emails: Iterable[str]
) -> dict[str, str]:
    """email -> record id for the live mirrored records of one type (the oldest id when several)."""
    wanted = sorted({e.lower() for e in emails})
    found: dict[str, str] = {}
    for start in range(0, len(wanted), CHUNK):
        rows = session.execute(
            select(MirrorRecord.email, MirrorRecord.salesforce_id)
            .where(
                MirrorRecord.workspace_id == workspace_id,
                MirrorRecord.sobject == sobject,
                MirrorRecord.is_deleted.is_(False),
                MirrorRecord.email.in_(wanted[start : start + CHUNK]),
            )
            .order_by(MirrorRecord.salesforce_id)
        ).all()
        for email, record_id in rows:
            if email is not None:
                found.setdefault(email, record_id)
    return found


def count(
    session: Session,
    workspace_id: str,
    sobject: str,
    *,
    live: bool = False,
    since: datetime | None = None,
) -> int:
    """Mirrored records of one type; with `live`, tombstones left out; with `since`, only those
    whose SystemModstamp is later."""
    query = select(func.count()).where(
        MirrorRecord.workspace_id == workspace_id, MirrorRecord.sobject == sobject
    )
    if live:
        query = query.where(MirrorRecord.is_deleted.is_(False))
    if since is not None:
        query = query.where(MirrorRecord.modstamp > since)
    return int(session.scalar(query) or 0)


def modstamps(
    session: Session, workspace_id: str, sobject: str, ids: Iterable[str]
) -> dict[str, datetime | None]:
    """Record id -> the SystemModstamp the mirror holds, for those of `ids` it holds (tombstones
    included)."""
    wanted = sorted(set(ids))
    found: dict[str, datetime | None] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        rows = session.execute(
            select(MirrorRecord.salesforce_id, MirrorRecord.modstamp).where(
                MirrorRecord.workspace_id == workspace_id,
                MirrorRecord.sobject == sobject,
                _among(session, MirrorRecord.salesforce_id, chunk),
            )
        ).all()
        found.update({record_id: stamp for record_id, stamp in rows})
    return found


def records(
    session: Session, workspace_id: str, sobject: str, *, live: bool = True
) -> dict[str, MirrorRecord]:
    """Record id -> mirrored record of one type (tests, the sidebar)."""
    query = select(MirrorRecord).where(
        MirrorRecord.workspace_id == workspace_id, MirrorRecord.sobject == sobject
    )
    if live:
        query = query.where(MirrorRecord.is_deleted.is_(False))
    return {r.salesforce_id: r for r in session.scalars(query)}


def person(session: Session, workspace_id: str, email: str) -> MirrorRecord | None:
    """The live Contact with this email, else the live Lead (the oldest when several)."""
    for sobject in ("Contact", "Lead"):
        found = session.scalars(
            select(MirrorRecord)
            .where(
                MirrorRecord.workspace_id == workspace_id,
                MirrorRecord.sobject == sobject,
                MirrorRecord.email == email.lower(),
                MirrorRecord.is_deleted.is_(False),
            )
            .order_by(MirrorRecord.salesforce_id)
        ).first()
        if found is not None:
            return found
    return None


def record(
    session: Session, workspace_id: str, sobject: str, record_id: str
) -> MirrorRecord | None:
    found = session.get(MirrorRecord, (workspace_id, sobject, record_id))
    return found if found is not None and not found.is_deleted else None


def open_opportunities(session: Session, workspace_id: str, account_id: str) -> list[MirrorRecord]:
    """The account's live opportunities that are not closed, soonest close date first."""
    rows = session.scalars(
        select(MirrorRecord).where(
            MirrorRecord.workspace_id == workspace_id,
            MirrorRecord.sobject == "Opportunity",
            MirrorRecord.account_id == account_id,
            MirrorRecord.is_deleted.is_(False),
        )
    ).all()
    open_ones = [r for r in rows if not _truthy(r.fields.get("IsClosed"))]
    return sorted(
        open_ones, key=lambda r: (str(r.fields.get("CloseDate") or "9999"), r.salesforce_id)
    )
