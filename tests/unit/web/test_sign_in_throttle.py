"""Wrong passwords are counted per email over a sliding window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quotasync.clock import ManualClock
from quotasync.web.auth import SignInThrottle

START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def test_the_tenth_wrong_password_locks_until_the_first_ages_out() -> None:
    clock = ManualClock(START)
    throttle = SignInThrottle(clock, limit=10, window=timedelta(minutes=15))
    for _ in range(9):
        throttle.failed("Rep@Acme.io")
        clock.advance(60)
    assert throttle.blocked_until("rep@acme.io") is None
    throttle.failed("rep@acme.io")
    assert throttle.blocked_until("rep@acme.io") == START + timedelta(minutes=15)
    assert throttle.blocked_until("other@acme.io") is None
    clock.advance(6 * 60)  # 15 minutes after the first failure: one has aged out
    assert throttle.blocked_until("rep@acme.io") is None


def test_a_right_password_clears_the_count() -> None:
    throttle = SignInThrottle(ManualClock(START), limit=2)
    throttle.failed("rep@acme.io")
    throttle.succeeded("rep@acme.io")
    throttle.failed("rep@acme.io")
    assert throttle.blocked_until("rep@acme.io") is None
