"""Taking a Real-Time Sync push from the org into the mirror (`POST /rts/{workspace}`).

Only a push signed with the workspace's RTS secret and fresh (domain/realtime.py) is applied;
anything else is refused, logged, and changes nothing. Each push the org sends spends one of its
async Apex executions, which the ledger records (purpose `rts_push`) so quotasync's Apex use is
known to the second; the same push delivered twice is acknowledged and neither applied nor
counted again (the org spent one execution).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.crypto import Vault
from quotasync.domain import realtime
from quotasync.errors import Conflict, InvalidInput
from quotasync.store import db, mirror
from quotasync.store.ledger import Call, Ledger
from quotasync.store.tables import Connection, RtsReceipt, Workspace

log = logging.getLogger("quotasync.rts")

MAX_PUSH_BYTES = 4 * 1024 * 1024  # 200 records of every field, with room to spare
RECEIPTS_KEPT = 2 * realtime.TOLERANCE  # a push older than the tolerance is refused anyway


class PushTooLarge(InvalidInput):
    """A body over MAX_PUSH_BYTES: no push the org sends is that big (413, where a
    PushInvalid is 422)."""


@dataclass(frozen=True)
class Taken:
    applied: int  # mirror records the push changed
    duplicate: bool  # the same push was taken before: nothing done again


def admit(
    sessions: sessionmaker[Session], workspace_id: str, timestamp: str | None, signature: str | None
) -> None:
    """Before a push's body is read: raise realtime.PushRefused for what cannot be a push for
    this workspace (headers missing or malformed; no such workspace, no Real-Time Sync secret, no
    connection). A workspace that cannot take pushes is refused in the words a forged push gets,
    so a stranger learns nothing about which workspaces exist."""
    realtime.check_headers(timestamp, signature)
    with sessions() as session:
        found = session.get(Workspace, workspace_id) if "\x00" not in workspace_id else None
        ready = (
            found is not None
            and found.rts_secret_sealed is not None
            and session.get(Connection, workspace_id) is not None
        )
    if not ready:
        log.warning("refused a push for workspace %r: it takes no pushes", workspace_id)
        raise realtime.PushRefused(realtime.NOT_SIGNED_BY_SECRET)


def take(
    sessions: sessionmaker[Session],
    vault: Vault,
    ledger: Ledger,
    clock: Clock,
    workspace_id: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
) -> Taken:
    """Verify a push (its `X-QS-Timestamp` and `X-QS-Signature`), apply it to the mirror once,
    and ledger the Apex execution it cost.

    Raises PushTooLarge; realtime.PushRefused when it is not signed with the workspace's secret,
    stale, or for a workspace not connected (logged); realtime.PushInvalid when it is signed but
    not a push quotasync can read, or comes from another org than the workspace's.
    """
    if len(body) > MAX_PUSH_BYTES:
        raise PushTooLarge("the push is over 4 MiB")
    now = clock.now()
    with sessions() as session:
        # An id with a NUL is no workspace's, and PostgreSQL cannot be asked about it.
        found = session.get(Workspace, workspace_id) if "\x00" not in workspace_id else None
        sealed = found.rts_secret_sealed if found is not None else None
        connection = session.get(Connection, workspace_id) if found is not None else None
    # Without a secret (no such workspace, or no Real-Time Sync) the push is checked against one
    # nobody holds: the answer is a forged push's, so a stranger learns nothing about workspaces.
    secret = vault.open(sealed) if sealed is not None else secrets.token_urlsafe(32)
    try:
        realtime.verify(secret, timestamp, signature, body, now)
        if connection is None:
            raise realtime.PushRefused("the workspace is not connected to an org")
        push = realtime.parse(body)
    except realtime.PushRefused as refused:
        log.warning("refused a push for workspace %r: %s", workspace_id, refused)
        raise
    if push.organization_id[:15] != connection.org_id[:15]:
        raise realtime.PushInvalid("the push comes from another org than the workspace's")
    assert signature is not None  # verified
    return _apply(sessions, ledger, workspace_id, push, signature.strip(), now)


def _apply(
    sessions: sessionmaker[Session],
    ledger: Ledger,
    workspace_id: str,
    push: realtime.Push,
    signature: str,
    now: datetime,
) -> Taken:
    try:
        with db.adding(sessions) as session:
            session.execute(
                delete(RtsReceipt).where(
                    RtsReceipt.workspace_id == workspace_id,
                    RtsReceipt.received_at < now - RECEIPTS_KEPT,
                )
            )
            session.add(RtsReceipt(workspace_id=workspace_id, signature=signature, received_at=now))
            session.flush()  # a second delivery of this push stops here
            applied = sum(
                mirror.apply(session, workspace_id, sobject, rows)
                for sobject, rows in realtime.rows(push).items()
            )
    except Conflict:  # the receipt's unique key: this push was taken before
        return Taken(applied=0, duplicate=True)
    # The org spent one async Apex execution on this push; the ledger keeps it (no cap: it is
    # already spent, and the rollover acts on it).
    ids = ledger.reserve(
        [Call(workspace_id, "apex", "rts_push", 1, now, "POST", f"/rts/{workspace_id}", {})], {}
    )
    ledger.settle(ids, 200, at=now)
    return Taken(applied=applied, duplicate=False)
