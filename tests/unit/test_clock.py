from __future__ import annotations

from datetime import UTC, datetime

import pytest

from quotasync.clock import ManualClock, RealClock, VirtualClock, make_clock, parse_epoch

EPOCH = datetime(2026, 11, 28, tzinfo=UTC)


class FixedReal:
    """Stands in for wall time: the one thing a virtual clock reads."""

    def __init__(self, timestamp: float) -> None:
        self.value = timestamp

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.value, UTC)

    def timestamp(self) -> float:
        return self.value


def test_a_virtual_clock_runs_speed_times_faster_than_wall_time() -> None:
    real = FixedReal(EPOCH.timestamp())
    clock = VirtualClock(epoch=EPOCH, speed=60, _real=real)
    assert clock.now() == EPOCH
    real.value += 10
    assert clock.timestamp() == EPOCH.timestamp() + 600


def test_two_virtual_clocks_with_the_same_settings_agree_whenever_they_started() -> None:
    real = FixedReal(EPOCH.timestamp() + 3600)
    first = VirtualClock(epoch=EPOCH, speed=24, _real=real)
    real.value += 120  # the second process starts two minutes later
    second = VirtualClock(epoch=EPOCH, speed=24, _real=real)
    assert first.now() == second.now()


def test_advancing_a_virtual_clock_moves_it_forward_only() -> None:
    clock = VirtualClock(epoch=EPOCH, speed=0, _real=FixedReal(EPOCH.timestamp()))
    clock.advance(86_400)
    assert clock.now() == datetime(2026, 11, 29, tzinfo=UTC)
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)


def test_a_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(EPOCH)
    assert clock.now() == clock.now() == EPOCH
    clock.advance(1.5)
    assert clock.timestamp() == EPOCH.timestamp() + 1.5


def test_an_epoch_without_offset_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_epoch("2026-11-28T00:00:00")
    assert parse_epoch("2026-11-28T01:00:00+01:00") == EPOCH


def test_the_clock_options_choose_real_or_virtual_time() -> None:
    assert isinstance(make_clock(None, None), RealClock)
    virtual = make_clock(10, "2026-11-28T00:00:00Z")
    assert isinstance(virtual, VirtualClock)
    assert virtual.speed == 10
    assert virtual.epoch == EPOCH
    with pytest.raises(ValueError):
        VirtualClock(epoch=EPOCH, speed=-1)


def test_a_virtual_clock_knows_whether_its_epoch_and_speed_were_chosen() -> None:
    # A sandbox restarted without --epoch reuses the org's own epoch rather than "now".
    anchored = make_clock(10, None)
    assert isinstance(anchored, VirtualClock)
    assert (anchored.epoch_given, anchored.speed_given) == (False, True)
    chosen = make_clock(None, "2026-11-28T00:00:00Z")
    assert isinstance(chosen, VirtualClock)
    assert (chosen.epoch_given, chosen.speed_given) == (True, False)
