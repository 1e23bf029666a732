"""Server-side web sessions (docs/SECURITY.md): the browser's cookie carries a random session id,
the store its SHA-256 with the memberships it signed in to and when it expires. Signing out
deletes it, a new password deletes every session of that user, and an expired one is gone: a
copied cookie is worthless from then on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from quotasync import crypto
from quotasync.store.tables import WebSession

LIFETIME = timedelta(hours=12)


def start(session: Session, user_ids: Iterable[int], now: datetime) -> str:
    """A new session for these memberships; its id (for the cookie, never stored as is)."""
    token = crypto.new_token("qss")
    key = crypto.token_hash(token)
    # Expired sessions go as new ones come: the table holds the live ones and a day's at most.
    session.execute(delete(WebSession).where(WebSession.expires_at <= now))
    for user_id in sorted(set(user_ids)):
        session.add(WebSession(id=key, user_id=user_id, created_at=now, expires_at=now + LIFETIME))
    session.flush()
    return token


def user_ids(session: Session, token: str, now: datetime) -> list[int]:
    """The memberships a live session signed in to; [] for an unknown or expired one."""
    return list(
        session.scalars(
            select(WebSession.user_id).where(
                WebSession.id == crypto.token_hash(token), WebSession.expires_at > now
            )
        )
    )


def end(session: Session, token: str) -> None:
    session.execute(delete(WebSession).where(WebSession.id == crypto.token_hash(token)))


def end_for_user(session: Session, user_id: int) -> int:
    """End every session of one membership (a new password); how many there were."""
    ended = session.execute(delete(WebSession).where(WebSession.user_id == user_id))
    return int(getattr(ended, "rowcount", 0) or 0)
