"""The workspace a service acts on, read in the service's own transaction."""

from __future__ import annotations

from sqlalchemy.orm import Session

from quotasync.errors import NotFound
from quotasync.store.tables import Workspace


class NoSuchWorkspace(NotFound):
    """The workspace is not there (deleted since the caller found it, or never was)."""


def stored(session: Session, workspace_id: str) -> Workspace:
    # An id with a NUL is no workspace's, and PostgreSQL cannot be asked about it.
    found = session.get(Workspace, workspace_id) if "\x00" not in workspace_id else None
    if found is None:
        raise NoSuchWorkspace(f"no workspace {workspace_id!r}")
    return found
