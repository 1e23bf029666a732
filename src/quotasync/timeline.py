"""What the usage pages show beside the current figures: calls per hour over the last 24 hours
per API type (quotasync's and other apps'), the latest pauses and sync-mode switches, and one
member's own calls. Like `usage`, nothing here formats for a screen; `as_dict()` is the JSON."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from quotasync import usage
from quotasync.domain import hourly
from quotasync.store import episodes, history, quota_rows
from quotasync.store.tables import PauseEpisode, Workspace
from quotasync.usage import Plain

APEX = "apex"  # Apex episodes are Real-Time Sync rolled over to Interval sync and back


@dataclass(frozen=True)
class Hour(Plain):
    start: datetime
    quotasync: int
    other_apps: int | None  # None: the org gave no figure that hour


@dataclass(frozen=True)
class Episode(Plain):
    id: int
    api: str
    reason: str
    started_at: datetime
    ended_at: datetime | None
    # An Apex episode is a sync-mode switch: Real-Time to Interval at its start, back at its end.
    mode_switch: bool


@dataclass(frozen=True)
class Timeline(Plain):
    workspace: str
    at: datetime
    hours: dict[str, tuple[Hour, ...]]  # per API type: data | bulk | apex
    episodes: tuple[Episode, ...]  # newest first


@dataclass(frozen=True)
class MemberView(Plain):
    """ "Your Salesforce API usage": the Data API calls one member's activity cost."""

    workspace: str
    email: str
    at: datetime
    calls: float  # in the 24 hours before `at`; a shared call split by record count
    org_calls: int | None  # the org's Data API use in the same window, once it has been read
    share_of_org: float | None
    per_hour: tuple[float, ...]  # the 24 hours ending with the current one, oldest first
    hours: tuple[datetime, ...]


def timeline(
    session: Session, workspace_id: str, now: datetime, episode_count: int = 10
) -> Timeline:
    starts = hourly.hours_ending(now)
    hours = {}
    for api, ledger_apis in quota_rows.LEDGER_APIS.items():
        own = history.own_per_hour(session, workspace_id, ledger_apis, starts)
        others = history.other_apps_per_hour(session, workspace_id, ledger_apis, starts)
        hours[api] = tuple(
            Hour(start, mine, theirs)
            for start, mine, theirs in zip(starts, own, others, strict=True)
        )
    return Timeline(
        workspace=workspace_id,
        at=now,
        hours=hours,
        episodes=tuple(
            _episode(row) for row in episodes.recent(session, workspace_id, episode_count)
        ),
    )


def member(session: Session, workspace: Workspace, email: str, now: datetime) -> MemberView:
    """One member's calls, as the usage view counts them (the same figures as the admin's)."""
    view = usage.view(session, workspace, now)
    row = next((m for m in view.members if m.email == email), None)
    data = view.apis["data"].figures
    starts = hourly.hours_ending(now)
    return MemberView(
        workspace=workspace.id,
        email=email,
        at=now,
        calls=row.calls if row is not None else 0.0,
        org_calls=data.org_used if data is not None else None,
        share_of_org=row.share_of_org if row is not None else (0.0 if data else None),
        per_hour=tuple(history.member_per_hour(session, workspace.id, email, starts)),
        hours=tuple(starts),
    )


def _episode(row: PauseEpisode) -> Episode:
    return Episode(
        id=row.id,
        api=row.api,
        reason=row.reason,
        started_at=row.started_at,
        ended_at=row.ended_at,
        mode_switch=row.api == APEX,
    )
