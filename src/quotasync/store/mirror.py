"""The local mirror of the org's people (Users, Contacts, Leads), used to match emails to records
without spending a call per email, and the cache of emails the org does not know."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from quotasync.store.tables import EmailLookup, MirrorRecord


def put(
    session: Session,
    workspace_id: str,
    sobject: str,
    records: Iterable[Mapping[str, Any]],
    now: datetime,
) -> int:
    """Add or refresh mirrored records (Salesforce query rows with at least Id and Email)."""
    count = 0
    for record in records:
        email = record.get("Email")
        fields = {k: v for k, v in record.items() if k != "attributes"}
        session.merge(
            MirrorRecord(
                workspace_id=workspace_id,
                sobject=sobject,
                salesforce_id=record["Id"],
                email=email.lower() if isinstance(email, str) else None,
                fields=fields,
                is_deleted=bool(record.get("IsDeleted", False)),
                modstamp=now,
            )
        )
        count += 1
    session.flush()
    return count


def ids_by_email(
    session: Session, workspace_id: str, sobject: str, emails: Iterable[str]
) -> dict[str, str]:
    """email -> record id for the live mirrored records of one type (the oldest id when several)."""
    wanted = sorted({e.lower() for e in emails})
    found: dict[str, str] = {}
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(MirrorRecord.email, MirrorRecord.salesforce_id)
            .where(
                MirrorRecord.workspace_id == workspace_id,
                MirrorRecord.sobject == sobject,
                MirrorRecord.is_deleted.is_(False),
                MirrorRecord.email.in_(wanted[start : start + 500]),
            )
            .order_by(MirrorRecord.salesforce_id)
        ).all()
        for email, record_id in rows:
            if email is not None:
                found.setdefault(email, record_id)
    return found


def count(session: Session, workspace_id: str, sobject: str) -> int:
    rows = session.scalars(
        select(MirrorRecord.salesforce_id).where(
            MirrorRecord.workspace_id == workspace_id, MirrorRecord.sobject == sobject
        )
    ).all()
    return len(rows)


def recently_unknown(
    session: Session, workspace_id: str, emails: Iterable[str], now: datetime, ttl: timedelta
) -> set[str]:
    wanted = sorted(set(emails))
    known: set[str] = set()
    for start in range(0, len(wanted), 500):
        known |= set(
            session.scalars(
                select(EmailLookup.email).where(
                    EmailLookup.workspace_id == workspace_id,
                    EmailLookup.email.in_(wanted[start : start + 500]),
                    EmailLookup.looked_up_at > now - ttl,
                )
            )
        )
    return known


def remember_unknown(
    session: Session, workspace_id: str, emails: Iterable[str], now: datetime
) -> None:
    for email in set(emails):
        session.merge(EmailLookup(workspace_id=workspace_id, email=email, looked_up_at=now))


def forget_unknown(session: Session, workspace_id: str, emails: Iterable[str]) -> None:
    emails = list(emails)
    if emails:
        session.execute(
            delete(EmailLookup).where(
                EmailLookup.workspace_id == workspace_id, EmailLookup.email.in_(emails)
            )
        )
