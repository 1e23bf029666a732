"""Pause episodes on a virtual timeline: one episode, one email each way, per sustained limit
(RULES.md: Tell the admins). Each test feeds `step_episode` the decisions a writer meets, with time
passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest

from quotasync.domain.governor import (
    COMFORT_CALLS,
    COMFORT_FOR,
    WINDOW,
    Api,
    CallWindow,
    Episode,
    Event,
    OrgFigures,
    Pause,
    PauseEnded,
    PauseStarted,
    Reason,
    Send,
    decide,
    room,
    step_episode,
    warning_due,
    written_by,
)
from quotasync.domain.quota import Room

NOW = datetime(2026, 11, 28, 8, 0, tzinfo=UTC)
PER_CALL = 200  # activities one logging call carries


def figures(calls_allowed: int) -> Room:
    """A Data room with `calls_allowed` calls left under a 50-call share."""
    return Room(
        org_max=500,
        share=50,
        guard=450,
        own_used=50 - calls_allowed,
        others_used=0,
        org_used=50 - calls_allowed,
    )


def share_pause(at: datetime) -> Pause:
    return Pause(Api.DATA, Reason.WORKSPACE_LIMIT, next_check=at + timedelta(minutes=30))


def sent(calls_allowed: int) -> Send:
    """What the governor says after a write: the room left."""
    return Send(Api.DATA, calls_allowed, figures(calls_allowed))


@dataclass
class Timeline:
    """A writer's view of one API type: the open episode and every event it told."""

    episode: Episode | None = None
    events: list[Event] = field(default_factory=list)

    def pause(self, at: datetime) -> None:
        self._step(share_pause(at), at, None)

    def wrote(self, at: datetime, calls_allowed: int, backlog: int) -> None:
        """A batch went; the writer steps the open episode (if any) with what is left."""
        if self.episode is not None:
            decision = sent(calls_allowed) if calls_allowed else share_pause(at)
            self._step(decision, at, backlog)

    def _step(self, decision: Send | Pause, at: datetime, backlog: int | None) -> None:
        step = step_episode(self.episode, decision, at, backlog=backlog)
        self.episode = step.episode
        self.events.extend(step.events)

    @property
    def kinds(self) -> list[str]:
        return ["started" if isinstance(e, PauseStarted) else "ended" for e in self.events]


def test_a_backlog_that_keeps_meeting_the_share_is_one_episode() -> None:
    # Pause, a call frees and goes (nothing left), pause again... for ten hours: one episode.
    line, at, backlog = Timeline(), NOW, 20_000
    for _ in range(20):
        line.pause(at)
        at += timedelta(minutes=30)
        backlog -= PER_CALL
        line.wrote(at, calls_allowed=0, backlog=backlog)
        at += timedelta(seconds=2)
    assert line.kinds == ["started"]
    assert line.episode is not None and line.episode.started_at == NOW


def test_a_few_calls_left_for_a_moment_do_not_end_it() -> None:
    # Calls sent together a day before leave the window together: the room after a write is
    # several calls for a few minutes, then the backlog has taken them.
    line, at = Timeline(), NOW
    line.pause(at)
    for left in (5, 4, 3, 2, 1, 0):
        at += timedelta(minutes=2)
        line.wrote(at, calls_allowed=left, backlog=10_000)
    line.pause(at + timedelta(seconds=1))
    assert line.kinds == ["started"]


def test_the_episode_ends_when_the_backlog_is_written() -> None:
    line = Timeline()
    line.pause(NOW)
    line.wrote(NOW + timedelta(hours=3), calls_allowed=0, backlog=150)
    line.wrote(NOW + timedelta(hours=4), calls_allowed=0, backlog=0)
    assert line.kinds == ["started", "ended"]
    [_, ended] = line.events
    assert isinstance(ended, PauseEnded)
    assert ended.episode.ended_at == NOW + timedelta(hours=4)
    assert line.episode is None


def test_the_episode_ends_once_the_room_stays_comfortable_for_a_while() -> None:
    line, at = Timeline(), NOW
    line.pause(at)
    # Arrivals slow down: after each write, COMFORT_CALLS calls or more are left.
    at += timedelta(hours=1)
    line.wrote(at, calls_allowed=COMFORT_CALLS, backlog=40)
    line.wrote(at + COMFORT_FOR / 2, calls_allowed=COMFORT_CALLS + 2, backlog=30)
    assert line.kinds == ["started"]
    line.wrote(at + COMFORT_FOR, calls_allowed=COMFORT_CALLS + 4, backlog=20)
    assert line.kinds == ["started", "ended"]


def test_meeting_the_limit_again_starts_the_comfort_over() -> None:
    line, at = Timeline(), NOW
    line.pause(at)
    line.wrote(at + timedelta(minutes=1), calls_allowed=COMFORT_CALLS, backlog=40)
    line.pause(at + timedelta(minutes=20))  # the limit again
    line.wrote(at + timedelta(minutes=25), calls_allowed=COMFORT_CALLS, backlog=40)
    line.wrote(at + timedelta(minutes=40), calls_allowed=COMFORT_CALLS, backlog=40)
    assert line.kinds == ["started"]  # 15 minutes of comfort, not 39
    line.wrote(at + timedelta(minutes=25) + COMFORT_FOR, calls_allowed=COMFORT_CALLS, backlog=40)
    assert line.kinds == ["started", "ended"]


def test_a_new_limit_hours_later_is_a_second_episode() -> None:
    line = Timeline()
    line.pause(NOW)
    line.wrote(NOW + timedelta(hours=20), calls_allowed=0, backlog=0)
    later = NOW + timedelta(hours=30)
    line.pause(later)
    assert line.kinds == ["started", "ended", "started"]
    assert line.episode is not None and line.episode.started_at == later


@pytest.mark.parametrize("reason", [Reason.SALESFORCE_REFUSED, Reason.NO_API_ACCESS, Reason.AUTH])
def test_a_pause_for_a_refusal_or_lost_access_ends_with_the_first_call_through(
    reason: Reason,
) -> None:
    episode = Episode(Api.DATA, reason, NOW, NOW + timedelta(minutes=30))
    step = step_episode(episode, sent(0), NOW + timedelta(minutes=30), backlog=10_000)
    assert step.episode is None and isinstance(step.events[0], PauseEnded)


def test_work_without_a_backlog_ends_its_episode_when_room_returns() -> None:
    # Real-Time Sync's Apex room: no backlog waits on it.
    episode = Episode(Api.APEX, Reason.WORKSPACE_LIMIT, NOW, NOW)
    step = step_episode(episode, Send(Api.APEX, 1, figures(1)), NOW + timedelta(hours=1))
    assert step.episode is None and len(step.events) == 1


def test_the_governors_own_decisions_over_two_days_make_one_episode() -> None:
    """An org of 500 Data calls, a 10% share (50), 20,000 activities of 200 a call: the first 50
    calls go at once, the other 50 as those leave the window a day later. One episode, from the
    51st call to the last."""
    ledger, backlog, at = CallWindow(), 20_000, NOW
    line = Timeline()
    writes = 0
    while backlog > 0 and at < NOW + 2 * WINDOW:
        org = OrgFigures(500, ledger.used(at), at)
        decision = decide(Api.DATA, ledger, org, 10, at)
        if isinstance(decision, Pause):
            line._step(decision, at, None)
            at = decision.next_check
            continue
        ledger = CallWindow((*ledger.entries, (at, 1)))
        backlog -= PER_CALL
        writes += 1
        after = decide(Api.DATA, ledger, OrgFigures(500, ledger.used(at), at), 10, at)
        assert isinstance(after, Send | Pause)
        if line.episode is not None:
            line._step(after, at, backlog)
        at += timedelta(seconds=20)  # the first burst: a call every 20 seconds
    assert backlog == 0 and writes == 100
    assert line.kinds == ["started", "ended"]
    [started, ended] = line.events
    assert started.episode.started_at < NOW + timedelta(hours=1)
    assert ended.episode.ended_at is not None
    assert ended.episode.ended_at > NOW + WINDOW


# --- How long a backlog takes ---------------------------------------------------------------


def test_a_backlog_is_written_as_the_calls_in_the_window_leave_it() -> None:
    # 50 calls in the window (share 50), the oldest leaving in an hour, one every 10 minutes.
    ledger = CallWindow.of(
        (NOW - WINDOW + timedelta(hours=1) + timedelta(minutes=10 * i), 1) for i in range(50)
    )
    org = OrgFigures(500, 50, NOW)
    left = room(ledger, org, 10, NOW)
    assert written_by(ledger, left, 0, PER_CALL, NOW) == NOW
    # 3 calls: when the third of the window's calls has left it.
    at = written_by(ledger, left, 3 * PER_CALL - 50, PER_CALL, NOW)
    assert at == NOW + timedelta(hours=1, minutes=20)
    # 120 calls: the window clears in about 9 hours, then two more windows' worth of room.
    far = written_by(ledger, left, 120 * PER_CALL, PER_CALL, NOW)
    assert far == NOW + timedelta(hours=1, minutes=490) + 2 * WINDOW


def test_no_estimate_while_the_guard_is_held_or_there_is_no_room_at_all() -> None:
    ledger = CallWindow.of([(NOW - timedelta(hours=1), 10)])
    held = room(ledger, OrgFigures(1000, 900, NOW), 70, NOW)
    assert held.guard_held and written_by(ledger, held, 500, PER_CALL, NOW) is None
    none = room(CallWindow(), OrgFigures(5, 0, NOW), 10, NOW)  # a share of 0 calls
    assert written_by(CallWindow(), none, 500, PER_CALL, NOW) is None


# --- The warning ----------------------------------------------------------------------------


def test_no_warning_while_the_admins_know_the_limit_is_reached() -> None:
    assert warning_due(45, 50, None, NOW)
    assert not warning_due(45, 50, None, NOW, limited=True)
