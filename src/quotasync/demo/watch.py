"""What the demo sees happen: a snapshot of the store and the org each tick, and the chapters
told by what changed between two snapshots (read-only: the product does everything itself)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from quotasync.domain.activities import State
from quotasync.domain.governor import Reason
from quotasync.engine import notices, notifier
from quotasync.store import outbox
from quotasync.store.tables import Notification, PauseEpisode, Workspace

GUARD = 0.90
ROLL = 0.05  # a fall of the org's use by this share of its total in one tick: the window rolled
LIMIT_NAMES = {"data": "DailyApiRequests", "apex": "DailyAsyncApexExecutions"}
API_WORDS = {"data": "Data API calls", "apex": "async Apex executions"}
API_TITLES = {"data": "Data API", "bulk": "Bulk API", "bulk_query": "Bulk API queries"}
REASONS: dict[str, str] = {  # by governor.Reason; the store's strings equal them
    Reason.WORKSPACE_LIMIT: "quotasync's share is spent",
    Reason.ORG_GUARD: "the org as a whole is past 90% of its limit",
    Reason.SALESFORCE_REFUSED: "Salesforce refused calls (REQUEST_LIMIT_EXCEEDED)",
    Reason.NO_API_ACCESS: "the sync user lost API access",
    Reason.AUTH: "Salesforce no longer accepts quotasync's login",
}
MILESTONES = ("synced", "paused", "resumed", "rolled over", "rolled back")


@dataclass(frozen=True)
class Episode:
    id: int
    api: str
    reason: str
    started_at: datetime
    ended_at: datetime | None
    figures: dict[str, Any]


@dataclass(frozen=True)
class Email:
    id: int
    kind: str  # started | ended | warning
    api: str
    subject: str
    sent_at: datetime
    recipients: int


@dataclass(frozen=True)
class Snapshot:
    at: datetime
    states: dict[str, int]
    mode: str
    interval_minutes: int
    episodes: dict[int, Episode]
    emails: dict[int, Email]
    usage: dict[str, tuple[int, int]]  # api -> (the org's use, its total), from the org

    @property
    def pending(self) -> int:
        return self.states.get(State.PENDING, 0)

    @property
    def logged(self) -> int:
        return self.states.get(State.LOGGED, 0)

    def paused(self) -> list[Episode]:
        """The open pauses of writing (Real-Time Sync's rollover is not one)."""
        return [e for e in self.episodes.values() if e.api != "apex" and e.ended_at is None]

    def share(self, api: str) -> float:
        used, total = self.usage.get(api, (0, 0))
        return used / total if total else 0.0


def take(
    sessions: sessionmaker[Session], workspace_id: str, org_usage: dict[str, Any], at: datetime
) -> Snapshot:
    with sessions() as session:
        workspace = session.get(Workspace, workspace_id)
        assert workspace is not None
        return Snapshot(
            at=at,
            states=outbox.counts(session, workspace_id),
            mode=workspace.sync_mode,
            interval_minutes=workspace.sync_interval_minutes,
            episodes=episodes(session, workspace_id),
            emails=emails(session, workspace),
            usage={
                api: (int(org_usage[name]["used"]), int(org_usage[name]["max"]))
                for api, name in LIMIT_NAMES.items()
                if name in org_usage
            },
        )


def episodes(session: Session, workspace_id: str) -> dict[int, Episode]:
    """Every pause of the workspace, and every switch to Interval Sync (an Apex "pause")."""
    rows = session.scalars(select(PauseEpisode).where(PauseEpisode.workspace_id == workspace_id))
    return {
        row.id: Episode(row.id, row.api, row.reason, row.started_at, row.ended_at, row.figures)
        for row in rows
    }


def emails(session: Session, workspace: Workspace) -> dict[int, Email]:
    """The notices sent to the workspace's admins, with the subjects they had."""
    sent = session.scalars(
        select(Notification).where(
            Notification.workspace_id == workspace.id, Notification.sent_at.is_not(None)
        )
    )
    return {
        n.id: _email(
            workspace, n, session.get(PauseEpisode, n.episode_id) if n.episode_id else None
        )
        for n in sent
    }


def _email(workspace: Workspace, row: Notification, episode: PauseEpisode | None) -> Email:
    if episode is None:
        subject = f"quotasync has used {workspace.warning_percent}% of its {row.api} share"
    elif row.kind == notifier.STARTED:
        subject = notices.pause_started(workspace, episode).subject
    else:
        subject = notices.pause_ended(workspace, episode).subject
    assert row.sent_at is not None
    return Email(row.id, row.kind, row.api, subject, row.sent_at, row.recipients)


@dataclass
class Chapters:
    """Tells what changed since the last snapshot, each thing once; and `finale` once every
    milestone has been seen."""

    finale: str = "Every chapter has happened"
    previous: Snapshot | None = None
    seen: set[str] = field(default_factory=set)
    replay: tuple[int, int] | None = None  # (logged, pending) when writing resumed
    finished: bool = False

    @property
    def complete(self) -> bool:
        return all(m in self.seen for m in MILESTONES)

    def news(self, now: Snapshot) -> list[str]:
        before = self.previous
        self.previous = now
        if before is None:
            return []
        told = self._logging(before, now)
        told += self._org(before, now)
        for episode in now.episodes.values():
            told += self._episode(before, episode, now)
        told += [
            f"Email to {e.recipients} admin{'s' if e.recipients != 1 else ''}: “{e.subject}”"
            for e in now.emails.values()
            if e.id not in before.emails
        ]
        if self.complete and not self.finished:
            self.finished = True
            told.append(self.finale)
        return told

    def _logging(self, before: Snapshot, now: Snapshot) -> list[str]:
        told = []
        if before.logged == 0 < now.logged:
            self.seen.add("synced")
            told.append(
                "Activity syncs: the reps' emails, opens, clicks, replies and meetings become "
                "Tasks and Events in the org as they happen"
            )
        if self.replay is not None:
            logged, pending = self.replay
            if now.logged - logged >= pending:
                self.replay = None
                told.append(
                    f"The backlog is replayed: the {pending:,} waiting activities are in the org"
                )
        return told

    def _org(self, before: Snapshot, now: Snapshot) -> list[str]:
        told = []
        for api, words in API_WORDS.items():
            if api not in now.usage or api not in before.usage:
                continue
            used, total = now.usage[api]
            if before.share(api) < GUARD <= now.share(api):
                told.append(
                    f"Other apps push the org past 90% of its {words}: {used:,} of {total:,}"
                )
            fell = before.usage[api][0] - used
            if total and fell >= ROLL * total:
                told.append(
                    f"The 24-hour window rolls: {fell:,} of yesterday's {words} leave it; "
                    f"the org is at {used / total:.0%}"
                )
        return told

    def _episode(self, earlier: Snapshot, episode: Episode, now: Snapshot) -> list[str]:
        before = earlier.episodes.get(episode.id)
        started = before is None
        ended = episode.ended_at is not None and (before is None or before.ended_at is None)
        told = []
        if started and episode.api == "apex":
            self.seen.add("rolled over")
            told.append(
                f"Real-Time Sync → Interval Sync: no room for async Apex executions "
                f"({episode.reason}: {_reason(episode.reason)}); the org stops pushing and "
                f"quotasync queries its changes every {now.interval_minutes} minutes"
            )
        elif started:
            self.seen.add("paused")
            org = _figures(episode.figures)
            told.append(
                f"Syncing pauses ({API_TITLES.get(episode.api, episode.api)}, "
                f"{episode.reason}: {_reason(episode.reason)}{org}); activities are still "
                "accepted and kept"
            )
        if ended and episode.api == "apex":
            self.seen.add("rolled back")
            told.append(
                f"Interval Sync → Real-Time Sync after {_lasted(episode)}: Apex room is back, "
                "pushing is on again and a catch-up query closed the gap"
            )
        elif ended:
            self.seen.add("resumed")
            # The write that ended the pause may be in `now` already: the backlog is as it was.
            self.replay = (earlier.logged, earlier.pending)
            told.append(
                f"Syncing resumes ({API_TITLES.get(episode.api, episode.api)}) after "
                f"{_lasted(episode)}: the {earlier.pending:,} waiting activities go first, "
                "oldest first"
            )
        return told


def _reason(reason: str) -> str:
    return REASONS.get(reason, reason.replace("_", " "))


def _figures(figures: dict[str, Any]) -> str:
    used, total = figures.get("org_used"), figures.get("org_max")
    return f"; the org at {used:,} of {total:,}" if used is not None and total else ""


def _lasted(episode: Episode) -> str:
    assert episode.ended_at is not None
    return _minutes(episode.ended_at - episode.started_at)


def _minutes(span: timedelta) -> str:
    whole = int(span.total_seconds() // 60)
    hours, rest = divmod(whole, 60)
    return f"{hours} h {rest} min" if hours else f"{rest} min"
