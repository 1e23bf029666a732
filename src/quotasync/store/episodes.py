"""Pause episodes: one row per pause of one API type of a workspace, from start to end."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from quotasync.domain import governor, quota
from quotasync.store.tables import PauseEpisode


def open_episode(session: Session, workspace_id: str, api: str) -> PauseEpisode | None:
    """The episode of this (workspace, API type) that has not ended, if any."""
    return session.scalars(
        select(PauseEpisode)
        .where(
            PauseEpisode.workspace_id == workspace_id,
            PauseEpisode.api == api,
            PauseEpisode.ended_at.is_(None),
        )
        .order_by(PauseEpisode.id)
    ).first()


def start(
    session: Session,
    workspace_id: str,
    episode: governor.Episode,
    resume_at: datetime | None,
) -> PauseEpisode:
    row = PauseEpisode(
        workspace_id=workspace_id,
        api=episode.api.value,
        reason=episode.reason.value,
        started_at=episode.started_at,
        next_check=episode.next_check,
        resume_at=resume_at,
        figures=figures_of(episode.figures),
        room_since=episode.room_since,
    )
    session.add(row)
    session.flush()
    return row


def update(
    session: Session, row: PauseEpisode, episode: governor.Episode, resume_at: datetime | None
) -> None:
    """The same pause, looked at again (or a write in it): when to look next, why, the figures
    it saw, and since when the room has been comfortable."""
    row.reason = episode.reason.value
    row.next_check = episode.next_check
    row.resume_at = resume_at
    row.room_since = episode.room_since
    if episode.figures is not None:
        row.figures = figures_of(episode.figures)
    session.flush()


def end(session: Session, row: PauseEpisode, ended_at: datetime) -> None:
    row.ended_at = ended_at
    session.flush()


def as_episode(row: PauseEpisode) -> governor.Episode:
    """The row as the governor's pure `Episode` (its figures stay in the row)."""
    return governor.Episode(
        api=governor.Api(row.api),
        reason=governor.Reason(row.reason),
        started_at=row.started_at,
        next_check=row.next_check,
        ended_at=row.ended_at,
        room_since=row.room_since,
    )


def figures_of(room: quota.Room | None) -> dict[str, Any]:
    if room is None:
        return {}
    return {
        "own_used": room.own_used,
        "share_calls": room.share,
        "org_used": room.org_used,
        "org_max": room.org_max,
    }


def recent(session: Session, workspace_id: str, limit: int = 10) -> list[PauseEpisode]:
    """The latest episodes of every API type, newest first, open or ended."""
    return list(
        session.scalars(
            select(PauseEpisode)
            .where(PauseEpisode.workspace_id == workspace_id)
            .order_by(PauseEpisode.started_at.desc(), PauseEpisode.id.desc())
            .limit(limit)
        )
    )
