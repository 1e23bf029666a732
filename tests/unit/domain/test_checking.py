from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.checking import (
    MAX_INTERVAL,
    MIN_INTERVAL,
    budget_interval,
    distance,
    interval,
    next_check,
)
from quotasync.domain.quota import CHECK_BUDGET, WINDOW, Room, guard_calls, share_calls

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
LARGE_SHARE = 100_000  # a Data share whose check budget never stretches a 5-minute interval


def figures(org_max: int = 1000, own: int = 0, others: int = 0, percent: int = 70) -> Room:
    """The room of one type: a share of `percent`, the 90% guard, and the use so far."""
    return Room(
        org_max=org_max,
        share=share_calls(org_max, percent),
        guard=guard_calls(org_max),
        own_used=own,
        others_used=others,
        org_used=own + others,
    )


def readings_a_day(every: timedelta) -> Fraction:
    """24 hours / `every`, exactly: how many readings that interval fits into a day."""
    microsecond = timedelta(microseconds=1)
    return Fraction(WINDOW // microsecond, every // microsecond)


def gap(fraction: float) -> Room:
    """A room whose nearest threshold (the warning line, at 5,600 of 10,000) is `fraction` of
    the org total away."""
    return figures(10_000, own=5600 - round(fraction * 10_000))


# --- Distance -------------------------------------------------------------------------------


def test_distance_is_the_gap_to_the_share_line_once_the_warning_is_passed() -> None:
    # Share 700, own 650: past the warning line (560); 50 calls to the share, 250 to the guard.
    assert distance(figures(own=650)) == pytest.approx(0.05)


def test_distance_is_the_gap_to_the_guard_when_other_apps_are_closer_to_it() -> None:
    # Org use 850 of a 900 guard; own 100 is far from both the warning line and the share.
    assert distance(figures(own=100, others=750)) == pytest.approx(0.05)


def test_distance_is_the_gap_to_the_warning_line_before_it_is_passed() -> None:
    # Warning at 80% of 700 = 560; own 500 is 60 calls short of it.
    assert distance(figures(own=500)) == pytest.approx(0.06)


def test_distance_follows_the_workspaces_warning_threshold() -> None:
    assert distance(figures(own=500), warning_at=0.75) == pytest.approx(0.025)


def test_at_the_warning_line_the_share_line_is_the_next_threshold() -> None:
    assert distance(figures(own=560)) == pytest.approx(0.14)


@pytest.mark.parametrize(
    "room",
    [
        figures(own=700),  # at the share line
        figures(own=750),  # past it
        figures(own=100, others=800),  # at the guard
        figures(own=100, others=950),  # past it
    ],
)
def test_distance_is_zero_at_or_past_a_limit(room: Room) -> None:
    assert distance(room) == 0.0


def test_distance_is_zero_for_a_type_the_org_has_none_of() -> None:
    assert distance(figures(org_max=0)) == 0.0


# --- Interval -------------------------------------------------------------------------------


def test_near_a_threshold_the_org_is_read_every_5_minutes() -> None:
    assert interval([figures(own=690)], data_share_calls=LARGE_SHARE) == timedelta(minutes=5)


def test_far_from_every_threshold_the_org_is_read_every_hour() -> None:
    assert interval([figures()], data_share_calls=LARGE_SHARE) == timedelta(minutes=60)


def test_2_percent_away_is_near_and_20_percent_away_is_far() -> None:
    assert interval([gap(0.02)], data_share_calls=LARGE_SHARE) == MIN_INTERVAL
    assert interval([gap(0.20)], data_share_calls=LARGE_SHARE) == MAX_INTERVAL


def test_halfway_between_near_and_far_the_interval_is_halfway_too() -> None:
    halfway = interval([gap(0.11)], data_share_calls=LARGE_SHARE)
    assert abs(halfway - timedelta(minutes=32, seconds=30)) < timedelta(seconds=1)


def test_the_nearest_of_several_types_sets_the_interval() -> None:
    far, near = figures(), figures(own=690)
    assert interval([far, near], data_share_calls=LARGE_SHARE) == MIN_INTERVAL
    assert interval([near, far], data_share_calls=LARGE_SHARE) == MIN_INTERVAL


def test_with_no_figures_at_all_the_org_is_read_as_soon_as_allowed() -> None:
    assert interval([], data_share_calls=LARGE_SHARE) == MIN_INTERVAL
    ten = timedelta(minutes=10)
    assert interval([], data_share_calls=LARGE_SHARE, min_interval=ten) == ten


def test_the_workspace_can_narrow_the_range_of_intervals() -> None:
    low, high = timedelta(minutes=2), timedelta(minutes=30)

    def read_every(room: Room) -> timedelta:
        return interval([room], data_share_calls=LARGE_SHARE, min_interval=low, max_interval=high)

    assert read_every(figures(own=690)) == low
    assert read_every(figures()) == high


def test_the_next_check_is_now_plus_the_interval() -> None:
    rooms = [figures(own=690)]
    assert next_check(rooms, NOW, data_share_calls=LARGE_SHARE) == NOW + MIN_INTERVAL


@pytest.mark.parametrize(
    ("low", "high"),
    [
        (timedelta(0), timedelta(minutes=60)),
        (timedelta(minutes=-5), timedelta(minutes=60)),
        (timedelta(minutes=30), timedelta(minutes=10)),
    ],
)
def test_an_interval_range_that_is_not_0_lt_min_le_max_is_refused(
    low: timedelta, high: timedelta
) -> None:
    with pytest.raises(ValueError, match="min_interval"):
        interval([figures()], data_share_calls=LARGE_SHARE, min_interval=low, max_interval=high)


def test_equal_min_and_max_intervals_are_accepted() -> None:
    five = timedelta(minutes=5)
    rooms = [figures()]
    assert interval(rooms, data_share_calls=LARGE_SHARE, min_interval=five, max_interval=five) == (
        five
    )


rooms_ = st.builds(
    figures,
    org_max=st.integers(0, 20_000),
    own=st.integers(0, 20_000),
    others=st.integers(0, 20_000),
    percent=st.integers(10, 90),
)


@given(rooms_, rooms_, st.integers(0, 10**6))
def test_more_distance_never_gives_a_shorter_interval(
    one: Room, other: Room, data_share: int
) -> None:
    nearer, farther = sorted([one, other], key=distance)
    assert interval([nearer], data_share_calls=data_share) <= interval(
        [farther], data_share_calls=data_share
    )


@given(st.lists(rooms_, max_size=4), st.integers(0, 10**6))
def test_the_interval_stays_between_the_minimum_and_the_budget_or_the_maximum(
    rooms: list[Room], data_share: int
) -> None:
    chosen = interval(rooms, data_share_calls=data_share)
    assert MIN_INTERVAL <= chosen <= max(MAX_INTERVAL, budget_interval(data_share))


# --- Budget ---------------------------------------------------------------------------------


def test_a_share_of_200_calls_allows_at_most_10_readings_a_day() -> None:
    assert budget_interval(200) == timedelta(hours=2.4)
    assert readings_a_day(budget_interval(200)) == 10
    assert interval([figures(own=690)], data_share_calls=200) == timedelta(hours=2.4)
    assert interval([figures()], data_share_calls=200) == timedelta(hours=2.4)


def test_a_share_too_small_to_spare_a_call_reads_once_a_day() -> None:
    assert interval([figures(own=690)], data_share_calls=0) == WINDOW
    assert interval([], data_share_calls=19) == WINDOW


def test_thirteen_readings_a_day_are_spaced_at_least_a_thirteenth_of_a_day() -> None:
    # A share of 260 calls spares 13 readings; 13 intervals must cover the whole window, or a
    # 14th reading lands inside the same 24 hours.
    assert budget_interval(260) * 13 >= WINDOW


@given(st.integers(20, 10**7))
def test_the_budget_interval_never_fits_more_than_5_percent_of_the_share_into_a_day(
    data_share: int,
) -> None:
    assert readings_a_day(budget_interval(data_share)) <= Fraction(CHECK_BUDGET) * data_share


# Below about 6,000 calls the budget, not the distance, sets the interval: sample there as well.
data_shares = st.integers(20, 6_000) | st.integers(20, 10**7)


@given(st.lists(rooms_, max_size=4), data_shares)
def test_readings_never_spend_more_than_5_percent_of_the_data_share(
    rooms: list[Room], data_share: int
) -> None:
    chosen = interval(rooms, data_share_calls=data_share)
    assert readings_a_day(chosen) <= Fraction(CHECK_BUDGET) * data_share


def test_a_type_the_org_has_none_of_does_not_hold_readings_at_five_minutes() -> None:
    far = figures(own=0)
    assert interval([far, figures(org_max=0)], data_share_calls=LARGE_SHARE) == MAX_INTERVAL
