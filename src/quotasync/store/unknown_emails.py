"""The cache of emails the org does not know: a recipient looked up and not found is not looked
up again until its entry is older than the matcher's time to live; a Lead created for one
forgets it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from quotasync.store.mirror import CHUNK
from quotasync.store.tables import EmailLookup


def recently_unknown(
    session: Session, workspace_id: str, emails: Iterable[str], now: datetime, ttl: timedelta
) -> set[str]:
    wanted = sorted(set(emails))
    known: set[str] = set()
    for start in range(0, len(wanted), CHUNK):
        known |= set(
            session.scalars(
                select(EmailLookup.email).where(
                    EmailLookup.workspace_id == workspace_id,
                    EmailLookup.email.in_(wanted[start : start + CHUNK]),
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
