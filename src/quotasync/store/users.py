"""A workspace's people: who they are, their role, their password and their API tokens.

Passwords are kept as argon2id hashes and API tokens as SHA-256 hashes: neither can be read back.
"""

from __future__ import annotations

import base64
import functools
import hmac
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher, extract_parameters, low_level, profiles
from argon2.exceptions import InvalidHashError
from sqlalchemy import select
from sqlalchemy.orm import Session

from quotasync import crypto
from quotasync.domain.roles import Role
from quotasync.errors import InvalidInput, QuotasyncError
from quotasync.store import web_sessions
from quotasync.store.tables import ApiToken, User, Workspace

MIN_PASSWORD = 12
MAX_PASSWORD = 1024  # argon2 takes any length; a bound keeps a hostile form from costing seconds
# No control characters: a NUL in a query is a DataError on PostgreSQL (a 500 at sign-in).
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+$")
# argon2-cffi's default (RFC 9106's low-memory profile: 64 MiB, three passes). The test suite,
# which makes a workspace with an admin password in most of its tests, sets
# QUOTASYNC_INSECURE_FAST_PASSWORD_HASHING=1 for argon2's cheapest parameters: it tests who may
# sign in, not what a guess costs, and each default hash is a fifth of a CPU-second. A hash
# records its own parameters, so either verifies the other's.
FAST_HASHING_VARIABLE = "QUOTASYNC_INSECURE_FAST_PASSWORD_HASHING"
_hasher = (
    PasswordHasher.from_parameters(profiles.CHEAPEST)
    if os.environ.get(FAST_HASHING_VARIABLE) == "1"
    else PasswordHasher()
)
# Verified when nobody has the email, so a wrong email takes as long as a wrong password.


@functools.cache
def _dummy_hash() -> str:
    """A hash to check an unknown email's password against, so that it costs what a known one
    does; made on first need (argon2 at import cost every CLI command a tenth of a second)."""
    return _hasher.hash(secrets.token_urlsafe(16))


class UserError(InvalidInput):
    """A request about users that cannot be carried out, said plainly."""


class Busy(QuotasyncError):
    """Every password check slot is taken: a sign-in is refused at once (503) rather than
    queued behind a flood on the threads that serve every page."""


# Password checks at once, in this process: argon2 takes 64 MiB and a fifth of a CPU-second
# each, so a flood of sign-ins may cost at most this much at any moment. As many as cores, up to
# four; QUOTASYNC_PASSWORD_CHECK_SLOTS sets another number (benchmarks/sign_in_flood.py runs 64
# to stand for the unbounded checks of before).
SLOTS_VARIABLE = "QUOTASYNC_PASSWORD_CHECK_SLOTS"
CHECK_SLOTS = (
    int(os.environ[SLOTS_VARIABLE])
    if os.environ.get(SLOTS_VARIABLE, "").isdigit() and int(os.environ[SLOTS_VARIABLE]) > 0
    # One core is left to serve everything else: checks on every core starved the API.
    else max(1, min(4, (os.cpu_count() or 1) - 1))
)
_slots = threading.BoundedSemaphore(CHECK_SLOTS)


@contextmanager
def check_slot() -> Iterator[None]:
    """Hold one password check slot, or raise Busy at once. Re-entrant within a thread, so the
    sign-in route may take it first (before any store work) and `sign_in` within it."""
    if getattr(_held, "slot", False):
        yield
        return
    if not _slots.acquire(blocking=False):
        raise Busy("every password check is taken; try again in a moment")
    _held.slot = True
    try:
        yield
    finally:
        _held.slot = False
        _slots.release()


_held = threading.local()


@dataclass(frozen=True)
class NewUser:
    user: User
    password: str  # shown once; only its hash is kept


def normal_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned) or len(cleaned) > 254:
        raise UserError(f"{email!r} is not an email address")
    return cleaned


def find(session: Session, workspace_id: str, email: str) -> User | None:
    return session.scalars(
        select(User).where(User.workspace_id == workspace_id, User.email == normal_email(email))
    ).first()


def add(session: Session, workspace: Workspace, email: str, role: str, now: datetime) -> NewUser:
    if role not in tuple(Role):
        raise UserError(f"a role is admin or member, not {role!r}")
    address = normal_email(email)
    if find(session, workspace.id, address) is not None:
        raise UserError(f"{address} is already in workspace {workspace.id}")
    user = User(workspace_id=workspace.id, email=address, role=role, created_at=now)
    password = first_password()
    user.password_hash = _hash(session, address, password)
    session.add(user)
    session.flush()
    return NewUser(user, password)


def first_password() -> str:
    """A random password to hand to a new user: 20 URL-safe characters, about 120 bits."""
    return secrets.token_urlsafe(15)


def set_password(session: Session, user: User, password: str) -> None:
    """A new password; every web session of this membership ends."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    user.password_hash = _hash(session, user.email, password, other_than=user.id)
    web_sessions.end_for_user(session, user.id)


def reset_password(session: Session, user: User, now: datetime, *, revoke_tokens: bool) -> str:
    """A new random password for `user`, returned once. Their web sessions end; with
    `revoke_tokens`, so do their API tokens (a password that leaked may have made some)."""
    password = first_password()
    user.password_hash = _hash(session, user.email, password, other_than=user.id)
    web_sessions.end_for_user(session, user.id)
    if revoke_tokens:
        for token in tokens_of(session, user.id):
            if token.revoked_at is None:
                token.revoked_at = now
    return password


def _hash(session: Session, email: str, password: str, other_than: int | None = None) -> str:
    """An argon2 hash of `password` with the salt the email's other memberships use (a fresh
    one for a first membership), so that a sign-in checks one hash whatever the number of
    workspaces the email is in."""
    others = session.scalars(
        select(User.password_hash)
        .where(User.email == email, User.password_hash.is_not(None), User.id != (other_than or -1))
        .order_by(User.id)  # the first membership's salt, the one `sign_in` settles on
    ).all()
    for stored in others:
        salt = _salt(stored)
        if salt is not None:
            return _hasher.hash(password, salt=salt)
    return _hasher.hash(password)


def _salt(stored: str | None) -> bytes | None:
    """The salt of an encoded argon2 hash (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`)."""
    parts = (stored or "").split("$")
    if len(parts) != 6:
        return None
    try:
        return base64.b64decode(parts[4] + "=" * (-len(parts[4]) % 4))
    except ValueError:
        return None


def sign_in(session: Session, email: str, password: str) -> list[User]:
    """Every user row (one per workspace) with this email whose password matches; [] if none.

    One argon2 computation per sign-in, whatever the number of workspaces: the email's
    memberships share a salt (`_hash`), so the password is hashed once with it and compared
    with each. Memberships whose salt differs (made before salts were shared) cost one more
    each, until the next right password moves them onto the shared salt. An unknown email
    costs the same one computation. Raises Busy when every check slot is taken."""
    try:
        address = normal_email(email)
    except UserError:
        return []
    if len(password) > MAX_PASSWORD:
        return []
    rows = session.scalars(select(User).where(User.email == address).order_by(User.id)).all()
    with check_slot():
        if not rows:
            _same_setting(_dummy_hash(), password)  # the one computation a known email costs
            return []
        made: dict[str, str] = {}  # a hash's parameters and salt -> the password hashed so
        matched = []
        for row in rows:
            stored = row.password_hash or ""
            setting = stored.rpartition("$")[0]
            if setting not in made:
                made[setting] = _same_setting(stored, password)
            if made[setting] and hmac.compare_digest(made[setting].encode(), stored.encode()):
                matched.append(row)
        shared = _salt(rows[0].password_hash)
        for row in matched:
            if shared is not None and _salt(row.password_hash) != shared:
                row.password_hash = _hasher.hash(password, salt=shared)
    return matched


def _same_setting(stored: str, password: str) -> str:
    """`password` hashed with the parameters and salt of the encoded hash `stored` ("" when
    `stored` is not an argon2 hash)."""
    salt = _salt(stored)
    try:
        parameters = extract_parameters(stored)
    except InvalidHashError:
        return ""
    if salt is None:
        return ""
    made = low_level.hash_secret(
        password.encode(),
        salt,
        time_cost=parameters.time_cost,
        memory_cost=parameters.memory_cost,
        parallelism=parameters.parallelism,
        hash_len=parameters.hash_len,
        type=parameters.type,
        version=parameters.version,
    )
    return made.decode()


TOKEN_DAYS = 90  # a new API token's life unless asked otherwise
MAX_TOKEN_DAYS = 366


def new_api_token(
    session: Session,
    user: User,
    now: datetime,
    *,
    name: str = "",
    days: int | None = TOKEN_DAYS,
) -> str:
    """A new API token for `user` (shown once), named, working for `days` (None: until
    revoked; the CLI only)."""
    label = name.strip()[:100] or f"token made {now:%Y-%m-%d %H:%M}"
    if days is not None and not 1 <= days <= MAX_TOKEN_DAYS:
        raise UserError(f"a token lasts 1 to {MAX_TOKEN_DAYS} days")
    token = crypto.new_token("qsu")
    session.add(
        ApiToken(
            user_id=user.id,
            token_hash=crypto.token_hash(token),
            created_at=now,
            name=label,
            expires_at=now + timedelta(days=days) if days is not None else None,
        )
    )
    session.flush()
    return token


def by_api_token(session: Session, token: str, now: datetime) -> User | None:
    """The user of a live token (not revoked, not expired); its last use is noted."""
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == crypto.token_hash(token))
    ).first()
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    row.last_used_at = now
    return session.get(User, row.user_id)


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id))
    )


def revoke_token(session: Session, user_id: int, token_id: int, now: datetime) -> ApiToken:
    """Revoke one of the user's own tokens; UserError when they have no such token."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user_id:
        raise UserError(f"no token {token_id} of this user")
    if row.revoked_at is None:
        row.revoked_at = now
    return row


def of_workspace(session: Session, workspace_id: str) -> list[User]:
    return list(
        session.scalars(
            select(User).where(User.workspace_id == workspace_id).order_by(User.role, User.email)
        )
    )
