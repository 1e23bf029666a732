"""Workspaces and their users."""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quotasync import crypto
from quotasync.domain import batching, mapping
from quotasync.domain.roles import Role
from quotasync.errors import InvalidInput
from quotasync.store import users
from quotasync.store.tables import User, Workspace

_PREFIX_ALPHABET = string.digits + string.ascii_lowercase
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class WorkspaceError(InvalidInput):
    """A request about workspaces that cannot be carried out, said plainly."""


@dataclass(frozen=True)
class NewWorkspace:
    workspace: Workspace
    admin: User
    ingest_token: str  # shown once; only its hash is kept
    admin_password: str  # the admin's first password, shown once


def create(session: Session, name: str, admin_email: str, now: datetime) -> NewWorkspace:
    name = name.strip()
    email = admin_email.strip().lower()
    if not name or len(name) > 200:
        raise WorkspaceError("a workspace name is 1 to 200 characters")
    if not _EMAIL.match(email) or len(email) > 254:
        raise WorkspaceError(f"{admin_email!r} is not an email address")
    # A name stands for its workspace wherever an id is asked for (`--workspace Acme`): two of
    # one name would make it stand for neither.
    taken = session.scalars(
        select(Workspace.id).where(func.lower(Workspace.name) == name.lower())
    ).first()
    if taken is not None:
        raise WorkspaceError(
            f"a workspace named {name!r} exists already ({taken}); choose another name"
        )
    token = crypto.new_token("qsi")
    workspace = Workspace(
        id="ws_" + secrets.token_hex(8),
        name=name,
        created_at=now,
        ingest_token_hash=crypto.token_hash(token),
        open_tracking=True,
        unmatched="skip",
        log_within=batching.LOG_WITHIN,
        bulk_threshold=2000,
        synced_before_limits=False,
        external_id_prefix=new_external_id_prefix(),
    )
    session.add(workspace)
    session.flush()  # the users row refers to it
    admin = User(workspace_id=workspace.id, email=email, role=Role.ADMIN, created_at=now)
    session.add(admin)
    session.flush()  # its id, which the password's salt lookup leaves out
    password = users.reset_password(session, admin, now, revoke_tokens=False)
    return NewWorkspace(workspace, admin, token, password)


def new_external_id_prefix() -> str:
    """A prefix for a new workspace's external ids (`mapping.external_id`): 36^8 of them, so two
    workspaces drawing the same one is left to the unique constraint to refuse."""
    return "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(mapping.PREFIX_LENGTH))


def find(session: Session, reference: str) -> Workspace:
    """A workspace by id, or by name when the name is unique."""
    found = session.get(Workspace, reference)
    if found is not None:
        return found
    named = session.scalars(select(Workspace).where(Workspace.name == reference)).all()
    if len(named) == 1:
        return named[0]
    if named:
        raise WorkspaceError(f"{len(named)} workspaces are named {reference!r}; use the id")
    raise WorkspaceError(f"no workspace {reference!r}")


def by_ingest_token(session: Session, token: str) -> Workspace | None:
    return session.scalars(
        select(Workspace).where(Workspace.ingest_token_hash == crypto.token_hash(token))
    ).first()
