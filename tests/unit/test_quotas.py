from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quotasync.sandbox.editions import (
    DAILY_API_REQUESTS,
    DAILY_ASYNC_APEX_EXECUTIONS,
    DAILY_BULK_API_BATCHES,
    EDITIONS,
)
from quotasync.sandbox.quotas import WINDOW_SECONDS, UsageWindow

T0 = 1_795_000_000.0


def window(data: int = 100) -> UsageWindow:
    return UsageWindow(EDITIONS["enterprise"].allocations(20, data))


def test_calls_leave_the_window_exactly_24_hours_after_they_were_made() -> None:
    usage = window()
    usage.spend(DAILY_API_REQUESTS, "quotasync", 3, T0)
    usage.spend(DAILY_API_REQUESTS, "quotasync", 2, T0 + 3600)
    assert usage.used(DAILY_API_REQUESTS, T0 + WINDOW_SECONDS - 1) == 5
    assert usage.used(DAILY_API_REQUESTS, T0 + WINDOW_SECONDS) == 2
    assert usage.used(DAILY_API_REQUESTS, T0 + WINDOW_SECONDS + 3600) == 0


def test_usage_is_counted_per_app_and_per_api_type() -> None:
    usage = window()
    usage.spend(DAILY_API_REQUESTS, "quotasync", 4, T0)
    usage.spend(DAILY_API_REQUESTS, "Marketing Cloud", 6, T0)
    usage.spend(DAILY_BULK_API_BATCHES, "quotasync", 1, T0)
    assert usage.used(DAILY_API_REQUESTS, T0) == 10
    assert usage.by_app(DAILY_API_REQUESTS, T0) == {"Marketing Cloud": 6, "quotasync": 4}
    assert usage.remaining(DAILY_BULK_API_BATCHES, T0) == 14_999


def test_room_is_refused_once_the_allocation_would_be_passed() -> None:
    usage = window(data=10)
    usage.spend(DAILY_API_REQUESTS, "quotasync", 9, T0)
    assert usage.has_room(DAILY_API_REQUESTS, 1, T0)
    assert not usage.has_room(DAILY_API_REQUESTS, 2, T0)


def test_a_background_load_accrues_spread_over_the_time_that_passed() -> None:
    usage = window(data=100_000)
    usage.set_load("Marketing Cloud", DAILY_API_REQUESTS, 3600, T0)
    assert usage.used(DAILY_API_REQUESTS, T0 + 7200) == 7200
    usage.set_load("Marketing Cloud", DAILY_API_REQUESTS, 0, T0 + 7200)
    assert usage.used(DAILY_API_REQUESTS, T0 + 9000) == 7200
    # Spread out, so the load leaves the window gradually rather than all at once.
    assert 0 < usage.used(DAILY_API_REQUESTS, T0 + WINDOW_SECONDS + 3600) < 7200


def test_a_background_load_stops_at_the_orgs_limit() -> None:
    usage = window(data=50)
    usage.set_load("Data Loader", DAILY_API_REQUESTS, 1000, T0)
    assert usage.used(DAILY_API_REQUESTS, T0 + 3600) == 50


def test_allocations_follow_edition_and_licenses() -> None:
    assert EDITIONS["enterprise"].allocations(20)[DAILY_API_REQUESTS] == 120_000
    assert EDITIONS["unlimited"].allocations(20)[DAILY_API_REQUESTS] == 200_000
    assert EDITIONS["developer"].allocations(2)[DAILY_API_REQUESTS] == 15_000
    assert EDITIONS["enterprise"].allocations(20, 777)[DAILY_API_REQUESTS] == 777
    assert EDITIONS["enterprise"].allocations(2000)[DAILY_ASYNC_APEX_EXECUTIONS] == 400_000
    assert not EDITIONS["professional"].api_access
    assert EDITIONS["professional-api"].api_access


def test_changed_buckets_are_reported_once_for_the_state_file() -> None:
    usage = window()
    usage.spend(DAILY_API_REQUESTS, "quotasync", 2, T0)
    usage.spend(DAILY_API_REQUESTS, "quotasync", 1, T0)
    assert usage.drain_changes() == [(DAILY_API_REQUESTS, "quotasync", int(T0), 3)]
    assert usage.drain_changes() == []
    usage.used(DAILY_API_REQUESTS, T0 + WINDOW_SECONDS)  # expiry is a change too
    assert usage.drain_changes() == [(DAILY_API_REQUESTS, "quotasync", int(T0), 0)]


@given(st.lists(st.tuples(st.integers(0, 2 * WINDOW_SECONDS), st.integers(1, 5)), max_size=40))
def test_used_always_equals_the_calls_made_in_the_last_24_hours(
    calls: list[tuple[int, int]],
) -> None:
    usage = window(data=10_000)
    calls.sort()
    for offset, n in calls:
        usage.spend(DAILY_API_REQUESTS, "quotasync", n, T0 + offset)
    now = T0 + (calls[-1][0] if calls else 0)
    expected = sum(n for offset, n in calls if T0 + offset > now - WINDOW_SECONDS)
    assert usage.used(DAILY_API_REQUESTS, now) == expected


def test_a_long_gap_accrues_a_full_window_of_background_load_not_a_thinned_one() -> None:
    usage = window(data=500_000)
    usage.set_load("Marketing Cloud", DAILY_API_REQUESTS, 3600, T0)
    # Three days pass unobserved (a restart, a clock advance): the last 24 hours hold a day's load.
    assert usage.used(DAILY_API_REQUESTS, T0 + 3 * WINDOW_SECONDS) == 86_400


def test_old_usage_leaves_before_new_background_load_is_capped_at_the_limit() -> None:
    usage = window(data=1000)
    usage.spend(DAILY_API_REQUESTS, "quotasync", 1000, T0)
    usage.set_load("Data Loader", DAILY_API_REQUESTS, 36_000, T0)
    # A day and an hour later our calls have left the window: the load fills the room they left.
    assert usage.used(DAILY_API_REQUESTS, T0 + WINDOW_SECONDS + 3600) == 1000
    assert usage.by_app(DAILY_API_REQUESTS, T0 + WINDOW_SECONDS + 3600) == {"Data Loader": 1000}


def test_after_a_full_day_of_buckets_each_drain_reports_only_the_new_change() -> None:
    usage = window(data=1_000_000)
    for second in range(WINDOW_SECONDS):
        usage.spend(DAILY_API_REQUESTS, "quotasync", 1, T0 + second)
    usage.drain_changes()
    now = T0 + WINDOW_SECONDS - 1
    for calls in range(2, 102):
        usage.spend(DAILY_API_REQUESTS, "quotasync", 1, now)
        assert usage.drain_changes() == [(DAILY_API_REQUESTS, "quotasync", int(now), calls)]


def test_a_bucket_out_of_order_is_found_and_drained() -> None:
    usage = window()
    usage.spend(DAILY_API_REQUESTS, "quotasync", 1, T0 + 10)
    usage.restore(DAILY_API_REQUESTS, "quotasync", int(T0 + 5), 2)
    usage.spend(DAILY_API_REQUESTS, "quotasync", 3, T0 + 5)
    assert sorted(usage.drain_changes()) == [
        (DAILY_API_REQUESTS, "quotasync", int(T0 + 5), 5),
        (DAILY_API_REQUESTS, "quotasync", int(T0 + 10), 1),
    ]
    assert usage.used(DAILY_API_REQUESTS, T0 + WINDOW_SECONDS + 6) == 1
