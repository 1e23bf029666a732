"""What the writer's steps mean for pause episodes: the governor folds each decision into the
open episode (`governor.step_episode`, pure), and this module keeps the result in the store.
The notifier reads the episodes from there, so an episode written is an episode told."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from quotasync.domain import governor
from quotasync.errors import Conflict
from quotasync.store import db, episodes, outbox, quota_rows
from quotasync.store.tables import PauseEpisode, Workspace


def record(
    sessions: sessionmaker[Session], workspace_id: str, decision: governor.Decision, now: datetime
) -> tuple[governor.Event, ...]:
    """Step the open episode of the decision's API type with it, in one transaction.

    Two workers may find the same pause at once; the store holds one open episode per API type,
    so the second one's start fails, and stepping again continues the first one's episode.
    """
    try:
        return _record(sessions, workspace_id, decision, now)
    except Conflict:
        return _record(sessions, workspace_id, decision, now)


def _record(
    sessions: sessionmaker[Session], workspace_id: str, decision: governor.Decision, now: datetime
) -> tuple[governor.Event, ...]:
    with db.adding(sessions) as session:
        row = episodes.open_episode(session, workspace_id, decision.api.value)
        return _step(session, workspace_id, row, decision, now, None)


def wrote(
    sessions: sessionmaker[Session],
    workspace_id: str,
    apis: Iterable[governor.Api],
    now: datetime,
) -> set[governor.Api]:
    """A write went through: step the open episodes of these API types with what is left of
    their limits and of the backlog. A refusal's pause ends here; a limit's goes on while a
    backlog keeps meeting it. Returns the types whose episode is still open."""
    still_open: set[governor.Api] = set()
    for api in apis:
        with sessions.begin() as session:
            row = episodes.open_episode(session, workspace_id, api.value)
            if row is None:
                continue
            decision = _after_write(session, workspace_id, api, now)
            backlog = outbox.pending_count(session, workspace_id)
            if not _step(session, workspace_id, row, decision, now, backlog):
                still_open.add(api)
    return still_open


def _after_write(
    session: Session, workspace_id: str, api: governor.Api, now: datetime
) -> governor.Decision:
    """The governor's decision on the figures the write left (its answer brought the org's)."""
    workspace = session.get(Workspace, workspace_id)
    if workspace is not None and api.value in quota_rows.figures(session, workspace_id):
        decision = quota_rows.decision(session, workspace, api.value, now)
        if not isinstance(decision, governor.Unavailable):
            return decision
    # No figures for the type any more: nothing holds a limit on it.
    return governor.Send(api, 0)


def _step(
    session: Session,
    workspace_id: str,
    row: PauseEpisode | None,
    decision: governor.Decision,
    now: datetime,
    backlog: int | None,
) -> tuple[governor.Event, ...]:
    # A write in a limit's episode keeps what its last refusal predicted.
    kept = row.resume_at if row is not None else None
    resume_at = decision.resume_at if isinstance(decision, governor.Pause) else kept
    current = episodes.as_episode(row) if row is not None else None
    step = governor.step_episode(current, decision, now, backlog=backlog)
    for event in step.events:
        if isinstance(event, governor.PauseEnded):
            assert row is not None
            episodes.end(session, row, now)
        else:
            episodes.start(session, workspace_id, event.episode, resume_at)
    if row is not None and not step.events and step.episode is not None:
        episodes.update(session, row, step.episode, resume_at)
    return step.events
