"""Wrong passwords, counted in the store (docs/SECURITY.md): by email, so a guesser gets ten
tries at one account in a quarter of an hour, and by client address, so one client cannot try a
thousand accounts. Shared by every web process and never evicted by other keys: a flood of junk
sign-ins cannot free a locked account. Emails are kept hashed (a stranger's typing is not
stored as typed)."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from quotasync.store.tables import SignInFailure

WINDOW = timedelta(minutes=15)
PER_EMAIL = 10
PER_CLIENT = 50  # an office behind one address signs in many people


@dataclass(frozen=True)
class Keys:
    email: str
    client: str


def keys(email: str, client: str) -> Keys:
    typed = email.strip().lower().encode("utf-8", "replace")
    return Keys("email:" + hashlib.sha256(typed).hexdigest(), "client:" + _network(client)[:60])


def _network(client: str) -> str:
    """An IPv6 client by its /64 (one subscriber's addresses: rotating within it is free)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def blocked_until(session: Session, found: Keys, now: datetime) -> datetime | None:
    """When the email or the client may try again, if either is past its limit now."""
    since = now - WINDOW
    until = None
    for key, limit in ((found.email, PER_EMAIL), (found.client, PER_CLIENT)):
        recent = select(SignInFailure.at).where(SignInFailure.key == key, SignInFailure.at > since)
        count = session.scalar(select(func.count()).select_from(recent.subquery())) or 0
        if count >= limit:
            # The oldest failure that keeps it at the limit ages out first.
            oldest = session.scalars(
                recent.order_by(SignInFailure.at.desc()).offset(limit - 1).limit(1)
            ).first()
            if oldest is not None:
                candidate = oldest + WINDOW
                until = candidate if until is None else max(until, candidate)
    return until


def record(session: Session, found: Keys, now: datetime) -> None:
    """Count a try as failed (before its password is checked: parallel guesses cannot slip past
    the limit); `clear` takes the email's back when it turns out right."""
    session.execute(delete(SignInFailure).where(SignInFailure.at <= now - WINDOW))
    session.add_all(
        [SignInFailure(key=found.email, at=now), SignInFailure(key=found.client, at=now)]
    )


def clear(session: Session, found: Keys, now: datetime) -> None:
    """A right password: the email's failures all go, and this try's count against the client."""
    session.execute(delete(SignInFailure).where(SignInFailure.key == found.email))
    latest = session.scalars(
        select(SignInFailure)
        .where(SignInFailure.key == found.client, SignInFailure.at == now)
        .order_by(SignInFailure.id.desc())
        .limit(1)
    ).first()
    if latest is not None:
        session.delete(latest)
