"""Retrying failed activities: the Activities page's button and the JSON API's retry."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.store import outbox


def retry(
    sessions: sessionmaker[Session],
    clock: Clock,
    workspace_id: str,
    ids: Iterable[str],
    *,
    user_email: str | None = None,
) -> list[str]:
    """Queue the failed ones of these activities again (the others stay as they are): only
    `user_email`'s own when given (a member retries their own). Returns the ids that moved."""
    # No activity id holds a NUL (the ingest refuses one), and PostgreSQL cannot be asked.
    asked = [i for i in ids if "\x00" not in i]
    with sessions.begin() as session:
        return outbox.retry(session, workspace_id, asked, clock.now(), user_email=user_email)
