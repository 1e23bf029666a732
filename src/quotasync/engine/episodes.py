"""What the writer's steps mean for pause episodes: the governor folds each decision into the
open episode (`governor.step_episode`, pure), and this module keeps the result in the store.
The notifier reads the episodes from there, so an episode written is an episode told."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from quotasync.domain import governor
from quotasync.store import episodes


def record(
    sessions: sessionmaker[Session], workspace_id: str, decision: governor.Decision, now: datetime
) -> tuple[governor.Event, ...]:
    """Step the open episode of the decision's API type with it, in one transaction.

    Two workers may find the same pause at once; the store holds one open episode per API type,
    so the second one's start fails, and stepping again continues the first one's episode.
    """
    try:
        return _record(sessions, workspace_id, decision, now)
    except IntegrityError:
        return _record(sessions, workspace_id, decision, now)


def _record(
    sessions: sessionmaker[Session], workspace_id: str, decision: governor.Decision, now: datetime
) -> tuple[governor.Event, ...]:
    resume_at = decision.resume_at if isinstance(decision, governor.Pause) else None
    with sessions.begin() as session:
        row = episodes.open_episode(session, workspace_id, decision.api.value)
        current = episodes.as_episode(row) if row is not None else None
        step = governor.step_episode(current, decision, now)
        for event in step.events:
            if isinstance(event, governor.PauseEnded):
                assert row is not None
                episodes.end(session, row, now)
            else:
                episodes.start(session, workspace_id, event.episode, resume_at)
        if row is not None and not step.events and step.episode is not None:
            episodes.update(session, row, step.episode, resume_at)
    return step.events


def resumed(
    sessions: sessionmaker[Session],
    workspace_id: str,
    apis: Iterable[governor.Api],
    now: datetime,
) -> tuple[governor.Event, ...]:
    """A write went through: the pauses of these API types are over."""
    events: list[governor.Event] = []
    for api in apis:
        events.extend(record(sessions, workspace_id, governor.Send(api, 0), now))
    return tuple(events)
