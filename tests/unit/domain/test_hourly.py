"""Calls per hour for the 24-hour chart, other apps' worked out from rolling figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quotasync.domain import hourly

H = timedelta(hours=1)
NOW = datetime(2026, 11, 28, 14, 35, tzinfo=UTC)


def test_the_24_hours_end_with_the_current_one() -> None:
    starts = hourly.hours_ending(NOW)
    assert len(starts) == 24
    assert starts[-1] == datetime(2026, 11, 28, 14, tzinfo=UTC)
    assert starts[0] == datetime(2026, 11, 27, 15, tzinfo=UTC)


def test_calls_are_summed_into_their_hour_and_older_ones_left_out() -> None:
    starts = hourly.hours_ending(NOW, 3)
    entries = [(NOW, 2.0), (NOW - H, 1.5), (NOW - H, 0.5), (NOW - 5 * H, 9.0)]
    assert hourly.per_hour(entries, starts) == [0.0, 2.0, 2.0]


def test_other_apps_calls_are_the_growth_of_their_rolling_use() -> None:
    starts = hourly.hours_ending(NOW, 3)
    readings = {starts[0] - H: 100, starts[0]: 130, starts[1]: 130, starts[2]: 180}
    assert hourly.other_apps(readings, starts) == [30, 0, 50]


def test_calls_leaving_the_window_are_added_back() -> None:
    # 40 calls made a day ago leave the window this hour while 10 new ones come in: the rolling
    # figure drops by 30, yet other apps made 10 calls, not zero.
    day_ago = hourly.hours_ending(NOW, 1)[0] - hourly.DAY
    starts = hourly.hours_ending(NOW, 1)
    readings = {day_ago - H: 0, day_ago: 40, starts[0] - H: 40, starts[0]: 10}
    assert hourly.other_apps(readings, starts) == [10]


def test_an_hour_without_a_reading_is_unknown_and_the_next_one_tells_its_calls() -> None:
    starts = hourly.hours_ending(NOW, 3)
    readings = {starts[0]: 10, starts[2]: 25}
    # The first hour has nothing before it to compare with.
    assert hourly.other_apps(readings, starts) == [None, None, 15]
