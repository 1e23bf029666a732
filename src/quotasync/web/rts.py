"""`POST /rts/{workspace}`: the org's Real-Time Sync pushes, taken into the mirror.

Only a push signed with the workspace's RTS secret and fresh (domain/realtime.py) is applied;
anything else is answered 401 and logged, and changes nothing. Each push the org sends spends one
of its async Apex executions, which the ledger records (purpose `rts_push`) so quotasync's Apex
use is known to the second; the same push delivered twice is acknowledged and neither applied
nor counted again (the org spent one execution).
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field
from sqlalchemy import delete

from quotasync import errors
from quotasync.domain import realtime
from quotasync.runtime import Runtime
from quotasync.store import db, mirror
from quotasync.store.ledger import Call
from quotasync.store.tables import Connection, RtsReceipt, Workspace

log = logging.getLogger("quotasync.rts")

MAX_PUSH_BYTES = 4 * 1024 * 1024  # 200 records of every field, with room to spare
RECEIPTS_KEPT = 2 * realtime.TOLERANCE  # a push older than the tolerance is refused anyway


class PushResult(BaseModel):
    applied: int = Field(description="Mirror records this push changed.")
    duplicate: bool = Field(description="The same push was taken before: nothing done again.")


def rts_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(tags=["real-time sync"])

    @router.post(
        "/rts/{workspace}",
        response_model=PushResult,
        responses={
            401: {"description": "Not signed with the workspace's RTS secret, or stale."},
            413: {"description": "A body over 4 MiB."},
            422: {"description": "Signed, but not a push quotasync can read."},
        },
    )
    async def take_push(workspace: str, request: Request) -> Any:
        """A push from the org's Real-Time Sync trigger: changes of mirrored records."""
        raw = await request.body()
        if len(raw) > MAX_PUSH_BYTES:
            raise HTTPException(413, "the push is over 4 MiB")
        now = runtime.clock.now()
        with runtime.sessions() as session:
            # An id with a NUL is no workspace's, and PostgreSQL cannot be asked about it.
            found = session.get(Workspace, workspace) if "\x00" not in workspace else None
            sealed = found.rts_secret_sealed if found is not None else None
            connection = session.get(Connection, workspace) if found is not None else None
        timestamp = request.headers.get("x-qs-timestamp")
        signature = request.headers.get("x-qs-signature")
        # Without a secret (no such workspace, or no Real-Time Sync) the push is checked against
        # one nobody holds: the answer is a forged push's, so a stranger learns nothing about
        # workspaces.
        secret = runtime.vault.open(sealed) if sealed is not None else secrets.token_urlsafe(32)
        try:
            realtime.verify(secret, timestamp, signature, raw, now)
            if connection is None:
                raise realtime.PushRefused("the workspace is not connected to an org")
            push = realtime.parse(raw)
        except realtime.PushRefused as refused:
            log.warning("refused a push for workspace %r: %s", workspace, refused)
            raise HTTPException(401, f"push refused: {refused}") from None
        except realtime.PushInvalid as invalid:
            raise HTTPException(422, str(invalid)) from None
        if push.organization_id[:15] != connection.org_id[:15]:
            raise HTTPException(422, "the push comes from another org than the workspace's")
        assert signature is not None
        return _apply(runtime, workspace, push, signature.strip(), now)

    return router


def _apply(
    runtime: Runtime, workspace: str, push: realtime.Push, signature: str, now: datetime
) -> PushResult:
    try:
        with db.adding(runtime.sessions) as session:
            session.execute(
                delete(RtsReceipt).where(
                    RtsReceipt.workspace_id == workspace,
                    RtsReceipt.received_at < now - RECEIPTS_KEPT,
                )
            )
            session.add(RtsReceipt(workspace_id=workspace, signature=signature, received_at=now))
            session.flush()  # a second delivery of this push stops here
            applied = sum(
                mirror.apply(session, workspace, sobject, rows)
                for sobject, rows in realtime.rows(push).items()
            )
    except errors.Conflict:
        return PushResult(applied=0, duplicate=True)
    # The org spent one async Apex execution on this push; the ledger keeps it (no cap: it is
    # already spent, and the rollover acts on it).
    ledger = runtime.connector.ledger
    ids = ledger.reserve(
        [Call(workspace, "apex", "rts_push", 1, now, "POST", f"/rts/{workspace}", {})], {}
    )
    ledger.settle(ids, 200, at=now)
    return PushResult(applied=applied, duplicate=False)
