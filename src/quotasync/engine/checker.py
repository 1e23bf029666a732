"""The `/limits` reader of one workspace: when it is due, one reading, and what it tells.

Due at the adaptive time `domain.checking` chose after the last reading (5 to 60 minutes), and at
every recheck of an `org_guard` pause (RULES.md: Recheck and resume), so the pause decides on fresh
figures. The worker steps it before the writer, so a batch never goes on figures older than the
reading that was due.

A sync user without View Setup cannot read `/limits` (RULES.md: Without View Setup, Data only): the
workspace is marked so, only the Data API is governed (from `Sforce-Limit-Info`), and the
permission is asked about again every `checking.MAX_INTERVAL`, which costs nothing (the org does
not count that refusal). Such a workspace's guard recheck is one cheap Data call whose answer
carries the Data figure.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.domain import checking
from quotasync.domain.governor import Reason
from quotasync.errors import NotConnected, QuotaExhausted, SalesforceError
from quotasync.salesforce import org_limits
from quotasync.salesforce.connection import Client
from quotasync.store import quota_rows
from quotasync.store.tables import OrgFigure, PauseEpisode, Workspace

log = logging.getLogger("quotasync.checker")


@dataclass(frozen=True)
class Checked:
    """What one due reading did."""

    readable: bool | None  # whether `/limits` answered (None: it could not be asked)
    next_check: datetime
    figures: dict[str, org_limits.Figure]


class LimitsChecker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        workspace_id: str,
        clock: Clock,
        client: Callable[[], Client],
    ) -> None:
        self.sessions = sessions
        self.workspace_id = workspace_id
        self.clock = clock
        self.client = client  # opened only when a reading is due

    def scheduled_at(self) -> datetime | None:
        """When the next scheduled reading is due (None: at once, none made yet)."""
        with self.sessions() as session:
            workspace = session.get(Workspace, self.workspace_id)
            return workspace.limits_next_check if workspace is not None else None

    def step(self) -> Checked | None:
        """Read `/limits` if a reading is due; None when it is not."""
        now = self.clock.now()
        with self.sessions() as session:
            workspace = session.get(Workspace, self.workspace_id)
            due = _due(session, workspace, now) if workspace is not None else None
            closed = workspace is not None and workspace.limits_readable is False
        if due is None:
            return None
        try:
            if due is RECHECK and closed:
                # `/limits` is closed to this sync user: one cheap Data call reads the Data
                # figure the guard waits on (a write would land past the guard).
                org_limits.probe(self.client())
                return Checked(False, now, {})
            client = self.client()
            figures = org_limits.read(client)
        except org_limits.LimitsClosed:
            return self._closed(now)
        except QuotaExhausted:
            # Not even one call fits: a pause is on, and its own recheck brings this back.
            return self._later(None, now, checking.MIN_INTERVAL)
        except (SalesforceError, NotConnected) as error:
            # The writer meets the same trouble and pauses with the reason; try again soon.
            log.warning("workspace %s: /limits could not be read: %s", self.workspace_id, error)
            return self._later(None, now, checking.MIN_INTERVAL)
        usage = client.http.org_usage  # the reading's own answer: its ledger rows
        return self._kept(figures, now, usage.own_ids if usage is not None else ())

    def _kept(
        self, figures: dict[str, org_limits.Figure], sent_at: datetime, own_ids: tuple[int, ...]
    ) -> Checked:
        at = self.clock.now()
        with self.sessions.begin() as session:
            for api, figure in figures.items():
                # The Data figure includes the reading itself: one Data call.
                quota_rows.observe(
                    session,
                    self.workspace_id,
                    api,
                    figure.used,
                    figure.max,
                    sent_at,
                    own_in_answer=1 if api == "data" else 0,
                    answer_ids=own_ids,
                )
            session.flush()
            workspace = session.get(Workspace, self.workspace_id)
            assert workspace is not None
            rooms = quota_rows.rooms(session, workspace, at)
            data = rooms.get("data")
            next_check = checking.next_check(
                rooms.values(),
                at,
                data_share_calls=data.share if data is not None else 0,
                warning_at=quota_rows.warning_at(workspace),
            )
            workspace.limits_readable = True
            workspace.limits_next_check = next_check
        return Checked(True, next_check, figures)

    def _closed(self, now: datetime) -> Checked:
        with self.sessions.begin() as session:
            workspace = session.get(Workspace, self.workspace_id)
            assert workspace is not None
            if workspace.limits_readable is not False:
                log.info(
                    "workspace %s: the sync user lacks View Setup; governing the Data API only",
                    self.workspace_id,
                )
            workspace.limits_readable = False
            workspace.limits_next_check = now + checking.MAX_INTERVAL
            # Bulk and Apex figures read before the permission was taken away would go stale
            # unseen; without them those types are unavailable, as RULES.md's "Without View Setup,
            # Data only" says.
            for row in session.scalars(
                select(OrgFigure).where(
                    OrgFigure.workspace_id == self.workspace_id, OrgFigure.api != "data"
                )
            ):
                session.delete(row)
        return Checked(False, now + checking.MAX_INTERVAL, {})

    def _later(self, readable: bool | None, now: datetime, wait: timedelta) -> Checked:
        with self.sessions.begin() as session:
            workspace = session.get(Workspace, self.workspace_id)
            assert workspace is not None
            workspace.limits_next_check = now + wait
        return Checked(readable, now + wait, {})

    def recheck_at(self) -> datetime | None:
        """When an org-guard pause next wants a fresh reading (`_recheck_at`), if any. The worker
        is looked at then whatever its own writer's pause says: another worker's writer may have
        set that recheck, a moment before this one's own look ends."""
        with self.sessions() as session:
            workspace = session.get(Workspace, self.workspace_id)
            return _recheck_at(session, workspace) if workspace is not None else None


SCHEDULED, RECHECK = "scheduled", "recheck"


def _due(session: Session, workspace: Workspace, now: datetime) -> str | None:
    """Why a reading is due now, if it is: the scheduled time has come (SCHEDULED), or an
    org-guard pause has reached its recheck and its figure is older than that (RECHECK)."""
    scheduled = workspace.limits_next_check
    if scheduled is None or scheduled <= now:
        return SCHEDULED
    # Even before a first reading has told whether `/limits` is open (it failed: the org did
    # not answer): the recheck then reads `/limits`, which tells that too. Left to the schedule,
    # the guard's recheck waited for the next scheduled reading, which the guard itself puts
    # off (measured in the fault soak: 4 minutes past the recheck).
    recheck = _recheck_at(session, workspace)
    return RECHECK if recheck is not None and recheck <= now else None


def _recheck_at(session: Session, workspace: Workspace) -> datetime | None:
    """The earliest recheck of an open org-guard pause whose figure is older than that recheck:
    when that pause wants a fresh reading (None: no such pause)."""
    known = quota_rows.figures(session, workspace.id)
    due = [
        episode.next_check
        for episode in session.scalars(
            select(PauseEpisode).where(
                PauseEpisode.workspace_id == workspace.id,
                PauseEpisode.ended_at.is_(None),
                PauseEpisode.reason == Reason.ORG_GUARD,
            )
        )
        if (figure := known.get(episode.api)) is None or figure.observed_at < episode.next_check
    ]
    return min(due, default=None)
