"""The quota rule (`domain/quota.py`): the share, the 90% guard, other apps' use, the probe and
the writer's budget, on figures passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.quota import (
    CHECK_BUDGET,
    PACING_MARGIN,
    WINDOW,
    Room,
    guard_calls,
    guard_reached,
    others_used,
    probe_due,
    room,
    share_calls,
    writer_budget,
)

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

maxima = st.integers(0, 20_000)
shares = st.integers(10, 90)


@st.composite
def rooms(draw: st.DrawFn) -> Room:
    """A room as the store builds it: an org reading, a share, quotasync's own calls now."""
    org_max = draw(maxima)
    used = draw(st.integers(0, 2 * org_max + 10))
    own_at_reading = draw(st.integers(0, used))
    own_now = draw(st.integers(0, org_max + 10))
    return room(org_max, used, draw(shares), own_now, others_used(used, own_at_reading))


def test_share_and_guard_round_down_so_neither_is_passed() -> None:
    assert share_calls(15_000, 70) == 10_500
    assert share_calls(999, 70) == 699
    assert guard_calls(15_000) == 13_500
    assert guard_calls(15) == 13


def test_other_apps_use_is_the_org_use_less_quotasyncs_own_at_the_reading_never_negative() -> None:
    assert others_used(400, 100) == 300
    assert others_used(10, 100) == 0


def test_the_cap_is_the_lower_of_the_share_and_what_the_guard_leaves_after_other_apps() -> None:
    # Share 700; the guard leaves 900 - 300 others = 600 own calls.
    assert room(1000, 400, 70, 100, 300).cap() == 600
    # Share 200 binds.
    assert room(1000, 400, 20, 100, 300).cap() == 200
    assert room(1000, 400, 20, 100, 300).calls_allowed == 100


def test_a_reading_at_the_guard_leaves_no_room_whatever_own_calls_left_since() -> None:
    # The reading showed 900 of 1,000 (the guard); 50 of quotasync's calls have left since.
    held = room(1000, 900, 70, 50, 800)
    assert held.guard_held and guard_reached(900, 1000)
    assert held.cap() == 50 and held.calls_allowed == 0
    # A probe on figures a recheck old may go one past it; a write may not.
    assert held.cap(probe=True) == 51
    assert probe_due(NOW - timedelta(minutes=30), NOW, timedelta(minutes=30))
    assert not probe_due(NOW - timedelta(minutes=29), NOW, timedelta(minutes=30))


def test_the_probe_never_passes_the_share() -> None:
    spent = room(1000, 500, 10, 100, 400)
    assert spent.cap(probe=True) == 100


def test_the_writers_budget_leaves_the_readings_and_the_interval_syncs_their_part() -> None:
    figures = room(10_000, 1_000, 70, 0, 1_000)  # share 7,000; the guard leaves 8,000
    readings = int(7_000 * CHECK_BUDGET)
    syncs = int(WINDOW / timedelta(minutes=30))
    assert writer_budget(figures, None) == int((7_000 - readings) * PACING_MARGIN)
    assert writer_budget(figures, timedelta(minutes=30)) == int(
        (7_000 - readings - syncs) * PACING_MARGIN
    )
    assert writer_budget(room(100, 0, 10, 0, 0), timedelta(minutes=5)) == 0  # never negative


@given(rooms())
def test_calls_never_pass_the_share_or_the_guard(figures: Room) -> None:
    cap = figures.cap()
    assert 0 <= cap <= figures.share
    assert figures.calls_allowed == max(0, cap - figures.own_used)
    if figures.calls_allowed:
        assert figures.own_used + figures.calls_allowed <= figures.share
        assert figures.org_used + figures.calls_allowed <= figures.guard
        assert not figures.guard_held


@given(rooms())
def test_a_probe_adds_at_most_one_call_and_only_past_the_guard(figures: Room) -> None:
    write, probe = figures.cap(), figures.cap(probe=True)
    assert write <= probe <= max(write, min(figures.share, figures.own_used + 1))
    assert probe <= figures.share


@given(rooms(), st.sampled_from([None, 5, 30, 60]))
def test_the_writers_budget_stays_within_the_cap(figures: Room, minutes: int | None) -> None:
    interval = timedelta(minutes=minutes) if minutes else None
    assert 0 <= writer_budget(figures, interval) <= figures.cap()
