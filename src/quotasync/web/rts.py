"""`POST /rts/{workspace}`: the org's Real-Time Sync pushes, taken into the mirror by
services/pushes.py (verified, applied once, their Apex execution ledgered).

A push not signed with the workspace's RTS secret, or stale, is answered 401 and changes nothing.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from quotasync.domain import realtime
from quotasync.services import pushes
from quotasync.web.state import RuntimeDep

router = APIRouter(tags=["real-time sync"])


class PushResult(BaseModel):
    applied: int = Field(description="Mirror records this push changed.")
    duplicate: bool = Field(description="The same push was taken before: nothing done again.")


@router.post(
    "/rts/{workspace}",
    response_model=PushResult,
    responses={
        401: {"description": "Not signed with the workspace's RTS secret, or stale."},
        413: {"description": "A body over 4 MiB."},
        422: {"description": "Signed, but not a push quotasync can read."},
    },
)
async def take_push(workspace: str, request: Request, runtime: RuntimeDep) -> Any:
    """A push from the org's Real-Time Sync trigger: changes of mirrored records."""
    raw = await request.body()
    try:
        taken = pushes.take(
            runtime.sessions,
            runtime.vault,
            runtime.connector.ledger,
            runtime.clock,
            workspace,
            raw,
            request.headers.get("x-qs-timestamp"),
            request.headers.get("x-qs-signature"),
        )
    except pushes.PushTooLarge as too_large:
        raise HTTPException(413, str(too_large)) from None
    except realtime.PushRefused as refused:
        raise HTTPException(401, f"push refused: {refused}") from None
    except realtime.PushInvalid as invalid:
        raise HTTPException(422, str(invalid)) from None
    return PushResult(applied=taken.applied, duplicate=taken.duplicate)
