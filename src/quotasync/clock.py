"""The one clock every component reads.

Quota windows are 24 hours long; nobody wants to wait that long in a demo or a test. A virtual clock
runs `speed` virtual seconds per real second, anchored so that virtual time equals real time at
`epoch`: two processes given the same `--speed` and `--epoch` agree on the time without talking to
each other. `advance()` moves a clock forward by an offset (tests, `/__sandbox/clock`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...

    def timestamp(self) -> float:
        """The current time as POSIX seconds."""
        ...


class RealClock:
    """Wall time."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def timestamp(self) -> float:
        return time.time()

    def __repr__(self) -> str:
        return "RealClock()"


@dataclass
class VirtualClock:
    """`speed` virtual seconds per real second; equal to real time at `epoch`, plus any advance."""

    epoch: datetime
    speed: float = 1.0
    offset_seconds: float = 0.0
    # Whether the epoch and speed were chosen (`--epoch`, `--speed`) or are defaults: a sandbox
    # org restarted without them carries on with the ones it first ran with.
    epoch_given: bool = True
    speed_given: bool = True
    _real: Clock = field(default_factory=RealClock, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.epoch.tzinfo is None:
            raise ValueError("the clock epoch needs a UTC offset, e.g. 2026-11-28T00:00:00Z")
        if self.speed < 0:
            raise ValueError("the clock speed cannot be negative")
        self.epoch = self.epoch.astimezone(UTC)

    def timestamp(self) -> float:
        anchor = self.epoch.timestamp()
        return anchor + (self._real.timestamp() - anchor) * self.speed + self.offset_seconds

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp(), UTC)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._lock:
            self.offset_seconds += seconds


@dataclass
class ManualClock:
    """Stands still until told to move: the clock tests drive by hand."""

    current: datetime

    def now(self) -> datetime:
        return self.current

    def timestamp(self) -> float:
        return self.current.timestamp()

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        self.current += timedelta(seconds=seconds)


def parse_epoch(text: str) -> datetime:
    """Parse an ISO-8601 instant that carries its offset (`Z` accepted)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset; write it like 2026-11-28T00:00:00Z")
    return moment.astimezone(UTC)


def make_clock(speed: float | None, epoch: str | None) -> Clock:
    """The clock CLI options ask for: real unless `--speed` or `--epoch` is given."""
    if speed is None and epoch is None:
        return RealClock()
    start = parse_epoch(epoch) if epoch else datetime.now(UTC)
    return VirtualClock(
        epoch=start,
        speed=1.0 if speed is None else speed,
        epoch_given=epoch is not None,
        speed_given=speed is not None,
    )
