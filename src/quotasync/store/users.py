"""A workspace's people: who they are, their role, their password and their API tokens.

Passwords are kept as argon2id hashes and API tokens as SHA-256 hashes: neither can be read back.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from quotasync import crypto
from quotasync.domain.roles import Role
from quotasync.errors import InvalidInput
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
    session.add(user)
    password = first_password()
    user.password_hash = _hasher.hash(password)
    session.flush()
    return NewUser(user, password)


def first_password() -> str:
    """A random password to hand to a new user: 20 URL-safe characters, about 120 bits."""
    return secrets.token_urlsafe(15)


def set_password(user: User, password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise UserError(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    user.password_hash = _hasher.hash(password)


def reset_password(user: User) -> str:
    """A new random password for `user`, returned once."""
    password = first_password()
    user.password_hash = _hasher.hash(password)
    return password


def sign_in(session: Session, email: str, password: str) -> list[User]:
    """Every user row (one per workspace) with this email whose password matches; [] if none."""
    try:
        address = normal_email(email)
    except UserError:
        return []
    if len(password) > MAX_PASSWORD:
        return []
    rows = session.scalars(select(User).where(User.email == address).order_by(User.id)).all()
    matched = [row for row in rows if _verifies(row.password_hash, password)]
    if not rows:
        _verifies(_dummy_hash(), password)
    return matched


def _verifies(stored: str | None, password: str) -> bool:
    if stored is None:
        return False
    try:
        return _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def new_api_token(session: Session, user: User, now: datetime) -> str:
    token = crypto.new_token("qsu")
    session.add(ApiToken(user_id=user.id, token_hash=crypto.token_hash(token), created_at=now))
    session.flush()
    return token


def by_api_token(session: Session, token: str, now: datetime) -> User | None:
    row = session.scalars(
        select(ApiToken).where(ApiToken.token_hash == crypto.token_hash(token))
    ).first()
    if row is None:
        return None
    row.last_used_at = now
    return session.get(User, row.user_id)


def of_workspace(session: Session, workspace_id: str) -> list[User]:
    return list(
        session.scalars(
            select(User).where(User.workspace_id == workspace_id).order_by(User.role, User.email)
        )
    )
