"""What holds a workspace's writes back: its pause (the governor's decision, the episode it
opens, the org-guard reading it waits on) and its pacing (how long a batch may wait so that the
day's share lasts)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from quotasync.domain import governor, outcomes
from quotasync.domain.outcomes import Outcome
from quotasync.domain.pacing import Pacing
from quotasync.engine import episode_steps
from quotasync.errors import GrantRefused, NotConnected, Refused, SalesforceError, SessionExpired
from quotasync.store import quota_rows
from quotasync.store.tables import Workspace

PACING_EVERY = timedelta(minutes=1)
PAUSING_APIS = (governor.Api.DATA, governor.Api.BULK, governor.Api.BULK_QUERY)  # a writer's pauses


class Hold:
    """One workspace's pause, as its writer knows it: until when, why, and the episodes it
    keeps in the store for the notifier."""

    def __init__(self, sessions: sessionmaker[Session], workspace_id: str) -> None:
        self.sessions = sessions
        self.workspace_id = workspace_id
        self.paused_until: datetime | None = None  # when to look again
        self.reason: governor.Reason | None = None
        self.resume_at: datetime | None = None  # when room returns, where the governor can tell
        # An org-guard pause: its API type and when the figure it paused on was read. A newer
        # reading (the recheck's, made by the checker just before) ends the wait at once.
        self._guard_reading: tuple[str, datetime] | None = None
        # API types with an episode this writer opened; None until it knows (after a restart).
        self._open_episodes: set[governor.Api] | None = None

    def holding(self, now: datetime) -> bool:
        """Whether the pause holds the workspace's work now: its next look has not come, and no
        reading has come since an org-guard pause (`_read_since`)."""
        return self.paused_until is not None and now < self.paused_until and not self._read_since()

    def clear(self) -> None:
        """The work goes ahead: no pause holds it (its episodes end only with `resumed`)."""
        self.paused_until = self.reason = self.resume_at = self._guard_reading = None

    def paused(self, decision: governor.Decision, now: datetime) -> None:
        """Hold the work until the decision's next check, and keep the pause's episode."""
        if not isinstance(decision, governor.Pause):
            return  # Unavailable: the work takes another route; nothing to hold or tell
        self.paused_until, self.reason = decision.next_check, decision.reason
        self.resume_at = decision.resume_at if decision.predicted else None
        self._guard_reading = None
        if decision.reason is governor.Reason.ORG_GUARD:
            with self.sessions() as session:
                figure = quota_rows.figures(session, self.workspace_id).get(decision.api.value)
            if figure is not None:
                self._guard_reading = (decision.api.value, figure.observed_at)
        episode_steps.record(self.sessions, self.workspace_id, decision, now)
        self._open_episodes = {*(self._open_episodes or ()), decision.api}

    def resumed(self, now: datetime, api_type: governor.Api) -> None:
        """A write went through: step the pauses this writer had (after a restart, any it may
        have had). A refusal's ends, which the notifier tells as "syncing resumed"; a limit's
        ends only once the backlog is written or the room stays comfortable (one episode, one
        email each way, however many calls free up meanwhile)."""
        # The API just written to is open again whoever paused it: another worker process,
        # killed since, may have opened its episode.
        apis = PAUSING_APIS if self._open_episodes is None else {*self._open_episodes, api_type}
        self._open_episodes = episode_steps.wrote(self.sessions, self.workspace_id, apis, now)

    def _read_since(self) -> bool:
        """Whether the org-guard pause's figure has been read again since it paused: the
        recheck it waits for has come, whoever's look set it (another worker's writer may have
        set it a little before this one's own look was due)."""
        if self._guard_reading is None:
            return False
        api_type, paused_on = self._guard_reading
        with self.sessions() as session:
            figure = quota_rows.figures(session, self.workspace_id).get(api_type)
        return figure is not None and figure.observed_at > paused_on


class Pacer:
    """How long a batch may wait: the workspace's `log_within`, stretched by pacing on a day
    that would otherwise spend the share early."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self.pacing: Pacing | None = None  # the last batch delay pacing chose, and why
        self._at: datetime | None = None

    def delay(
        self, session: Session, workspace: Workspace, now: datetime, batch_size: int
    ) -> float:
        """Worked out again at most once a minute: it moves with the hour's rate. `workspace`
        is the writer's copy, used when the store has none newer."""
        if self._at is None or now - self._at >= PACING_EVERY:
            stored = session.get(Workspace, self.workspace_id) or workspace
            self.pacing = quota_rows.pacing(session, stored, now, batch_size)
            self._at = now
        return self.pacing.delay if self.pacing is not None else workspace.log_within


def trouble(error: NotConnected | SalesforceError) -> governor.Reason | None:
    """The pause a call's failure means, or None when trying again soon may do."""
    if isinstance(error, NotConnected | SessionExpired | GrantRefused):
        return governor.Reason.AUTH  # the grant is gone: an admin must connect again
    if isinstance(error, Refused):
        outcome = outcomes.classify_response(error.status, error.fault.code)
        if outcome is Outcome.NO_API:
            return governor.Reason.NO_API_ACCESS
        if outcome is Outcome.PAUSE:
            return governor.Reason.SALESFORCE_REFUSED
    return None
