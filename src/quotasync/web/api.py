"""The JSON API for people (a user's API token, or the signed-in session): usage, limits and
settings, activities, pause episodes, doctor results. The figures are the pages' figures: both
read `usage.view`, `timeline` and the outbox.

Admins may read and change everything of their workspace; a member reads their own usage and
activities. Every body is validated whole before anything is stored: a refusal changes nothing.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from quotasync import doctor, timeline, usage
from quotasync.domain import governor
from quotasync.services import activities as activity_service
from quotasync.services import shares
from quotasync.services.workspace import NoSuchWorkspace
from quotasync.store import outbox, quota_rows, users
from quotasync.store.tables import Activity, Workspace
from quotasync.web import auth
from quotasync.web.state import RuntimeDep

Share = Annotated[int, Field(ge=10, le=90, description="Percent of the org's quota, 10 to 90.")]
# `domain.activities.State`'s values, spelled out so the 422 answers and the schema stay as they were.
StateName = Literal["pending", "logged", "failed", "skipped"]
KindName = Literal[
    "email_sent",
    "email_opened",
    "link_clicked",
    "email_replied",
    "meeting_booked",
    "meeting_updated",
    "meeting_canceled",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SharesIn(Strict):
    data: Share | None = None
    bulk: Share | None = None
    apex: Share | None = None


class SharesOut(BaseModel):
    data: int
    bulk: int
    apex: int


class SettingsIn(Strict):
    recheck_minutes: int | None = Field(default=None, ge=5, le=1440)
    warning_percent: int | None = Field(default=None, ge=1, le=100)
    log_within: float | None = Field(
        default=None,
        ge=governor.MIN_LOG_WITHIN,
        le=governor.MAX_LOG_WITHIN,
        allow_inf_nan=False,
        description="Seconds within which activities are logged, 5 to 900.",
    )
    max_batch_delay: float | None = Field(default=None, gt=0, le=3600, allow_inf_nan=False)
    open_tracking: bool | None = None


class ActivityOut(BaseModel):
    id: str
    kind: str
    user_email: str
    occurred_at: str
    received_at: str
    state: str
    record_type: str
    salesforce_id: str | None
    error: str | None = Field(description="Salesforce's message for a failed one, or why skipped.")


class ActivitiesOut(BaseModel):
    counts: dict[str, int]
    activities: list[ActivityOut]


class RetryIn(Strict):
    # No NUL: no activity id holds one, and PostgreSQL cannot be asked about it.
    ids: list[Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\x00]+$")]] = Field(
        min_length=1, max_length=1000
    )


class RetryOut(BaseModel):
    retried: list[str] = Field(description="The ids queued again (only failed ones move).")


router = APIRouter(prefix="/api/v1/workspaces/{workspace}", tags=["workspace"])


def caller(
    request: Request,
    workspace: str,
    runtime: RuntimeDep,
    authorization: Annotated[str | None, Header()] = None,
) -> auth.Caller:
    with runtime.sessions.begin() as session:
        return auth.api_caller(session, request, workspace, runtime.clock, authorization)


Caller = Annotated[auth.Caller, Depends(caller)]


def _ws(session: Session, workspace_id: str) -> Workspace:
    found = session.get(Workspace, workspace_id)
    if found is None:
        raise HTTPException(404, "no such workspace")
    return found


@router.get("/usage", summary="Usage per API type (admin)")
def get_usage(who: Caller, runtime: RuntimeDep) -> dict[str, Any]:
    """quotasync's use, other apps' use and what is left per API type, the share and the
    guard in calls, pauses, pacing and each member's calls: `quotasync usage --json`."""
    auth.admin(who)
    with runtime.sessions() as session:
        view = usage.view(session, _ws(session, who.workspace_id), runtime.clock.now())
    return view.as_dict()


@router.get("/usage/hourly", summary="Calls per hour, last 24 hours (admin)")
def get_hourly(who: Caller, runtime: RuntimeDep) -> dict[str, Any]:
    auth.admin(who)
    with runtime.sessions() as session:
        return timeline.timeline(session, who.workspace_id, runtime.clock.now()).as_dict()


@router.get("/me/usage", summary="Your own calls in the past 24 hours")
def get_my_usage(who: Caller, runtime: RuntimeDep) -> dict[str, Any]:
    viewer = auth.person(who)
    with runtime.sessions() as session:
        ws = _ws(session, who.workspace_id)
        return timeline.member(session, ws, viewer.email, runtime.clock.now()).as_dict()


@router.get("/limits", response_model=SharesOut, summary="quotasync's shares (admin)")
def get_limits(who: Caller, runtime: RuntimeDep) -> Any:
    auth.admin(who)
    with runtime.sessions() as session:
        return quota_rows.shares(_ws(session, who.workspace_id))


@router.patch(
    "/limits",
    response_model=SharesOut,
    summary="Set shares (admin)",
    responses={422: {"description": "Out of 10-90%, an unknown type, or not settable."}},
)
def patch_limits(body: SharesIn, who: Caller, runtime: RuntimeDep) -> Any:
    """Set one or more shares at once; they apply at once. Without View Setup on the sync
    user only the Data share can be set."""
    admin = auth.admin(who)
    wanted = body.model_dump(exclude_none=True)
    if not wanted:
        raise HTTPException(422, "give at least one share: data, bulk or apex")
    try:
        changed = shares.change(
            runtime.sessions,
            who.workspace_id,
            shares=wanted,
            by=f"{admin.email} (API)",
            now=runtime.clock.now(),
        )
    except governor.ShareError as exc:
        raise HTTPException(422, str(exc)) from None
    except NoSuchWorkspace:
        raise HTTPException(404, "no such workspace") from None
    return changed.shares


@router.get("/settings", summary="Governor and logging settings (admin)")
def get_settings(who: Caller, runtime: RuntimeDep) -> dict[str, Any]:
    auth.admin(who)
    with runtime.sessions() as session:
        view = usage.view(session, _ws(session, who.workspace_id), runtime.clock.now())
    return view.settings.as_dict()


@router.patch("/settings", summary="Change settings (admin)")
def patch_settings(body: SettingsIn, who: Caller, runtime: RuntimeDep) -> dict[str, Any]:
    admin = auth.admin(who)
    wanted = body.model_dump(exclude_none=True)
    if not wanted:
        raise HTTPException(422, "give at least one setting to change")
    try:
        shares.change(
            runtime.sessions,
            who.workspace_id,
            settings=shares.SettingsChange(**wanted),
            by=f"{admin.email} (API)",
            now=runtime.clock.now(),
        )
    except governor.SettingsError as exc:
        raise HTTPException(422, str(exc)) from None
    except NoSuchWorkspace:
        raise HTTPException(404, "no such workspace") from None
    with runtime.sessions() as session:
        view = usage.view(session, _ws(session, who.workspace_id), runtime.clock.now())
    return view.settings.as_dict()


@router.get("/activities", response_model=ActivitiesOut, summary="Recent activities")
def get_activities(
    who: Caller,
    runtime: RuntimeDep,
    state: StateName | None = None,
    kind: KindName | None = None,
    user: Annotated[str | None, Query(max_length=254)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """Newest first. A member sees their own only; an admin may narrow to one `user`."""
    viewer = auth.person(who)
    email = _email(user) if viewer.is_admin else viewer.email
    with runtime.sessions() as session:
        rows = outbox.recent(
            session, who.workspace_id, state=state, kind=kind, user_email=email, limit=limit
        )
        counts = outbox.counts(session, who.workspace_id, user_email=email)
    return ActivitiesOut(counts=counts, activities=[_activity(row) for row in rows])


@router.post("/activities/retry", response_model=RetryOut, summary="Retry failed activities")
def post_retry(body: RetryIn, who: Caller, runtime: RuntimeDep) -> Any:
    viewer = auth.person(who)
    own = None if viewer.is_admin else viewer.email
    moved = activity_service.retry(
        runtime.sessions, runtime.clock, who.workspace_id, body.ids, user_email=own
    )
    return RetryOut(retried=moved)


@router.get("/episodes", summary="Pauses and sync-mode switches (admin)")
def get_episodes(
    who: Caller, runtime: RuntimeDep, limit: Annotated[int, Query(ge=1, le=500)] = 50
) -> list[dict[str, Any]]:
    auth.admin(who)
    with runtime.sessions() as session:
        found = timeline.timeline(session, who.workspace_id, runtime.clock.now(), limit)
    return [episode.as_dict() for episode in found.episodes]


# POST: a run spends a call, which a GET replayed from any page must not.
@router.post("/doctor", summary="Run the doctor: what stands in the way of syncing (admin)")
def get_doctor(request: Request, who: Caller, runtime: RuntimeDep) -> dict[str, Any]:
    """The doctor's checks, each pass, warn, fail or skip with its fix: `quotasync doctor
    --json`. It asks the org in one Data API call (ledgered as `doctor`), never writes."""
    auth.admin(who)
    with runtime.sessions() as session:
        _ws(session, who.workspace_id)
    push_url = f"{str(request.base_url).rstrip('/')}/rts/{who.workspace_id}"
    return doctor.run(runtime.connector, who.workspace_id, push_url).as_dict()


def _email(user: str | None) -> str | None:
    if not user:
        return None
    try:
        return users.normal_email(user)
    except users.UserError as exc:
        raise HTTPException(422, str(exc)) from None


def _activity(row: Activity) -> ActivityOut:
    return ActivityOut(
        id=row.id,
        kind=row.kind,
        user_email=row.user_email,
        occurred_at=row.occurred_at.isoformat(),
        received_at=row.received_at.isoformat(),
        state=row.state,
        record_type=row.record_type,
        salesforce_id=row.salesforce_id,
        error=row.last_error,
    )
