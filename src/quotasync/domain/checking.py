"""When to read the org's `/limits` again: often near a threshold, rarely far from every one.

`/limits` is the only source of the Bulk and Apex figures (and of the Data figure between Data
calls). Each reading is one Data API call, ledgered as `limits_check` and counted against the
share like any other, so the interval adapts to how much a fresh figure matters:

- near a threshold (the share line, the 90% guard, the warning line) a figure moves past it in
  minutes: read every `min_interval` (5 minutes by default);
- far from every threshold nothing can happen soon: read every `max_interval` (60 minutes);
- in between, the interval grows with the distance to the nearest threshold.

Whatever the distances, checking spends at most `CHECK_BUDGET` of the Data share over a day, so a
small share is not eaten by checking: with a share of 200 calls a day, 10 readings at most. A pause
that is looking again (RULES.md: Recheck and resume) reads at its own recheck times; this schedule
is for the rest.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from quotasync.domain.governor import WARNING_AT
from quotasync.domain.quota import CHECK_BUDGET, WINDOW, Room

MIN_INTERVAL = timedelta(minutes=5)
MAX_INTERVAL = timedelta(minutes=60)
_MICROSECOND = timedelta(microseconds=1)
NEAR = 0.02  # within 2% of the org total from a threshold: read as often as allowed
FAR = 0.20  # 20% or more away from every threshold: read as rarely as allowed


def distance(room: Room, warning_at: float = WARNING_AT) -> float:
    """How far current use is from the nearest threshold it has not passed, as a fraction of the
    org total (0 when it is at or past one, or when the org has none of this type)."""
    if room.org_max <= 0:
        return 0.0
    warning_line = warning_at * room.share
    gaps: list[float] = [room.by_share, room.by_guard]
    if room.own_used < warning_line:
        gaps.append(warning_line - room.own_used)
    return max(0.0, min(gaps)) / room.org_max


def interval(
    rooms: Iterable[Room],
    *,
    data_share_calls: int,
    warning_at: float = WARNING_AT,
    min_interval: timedelta = MIN_INTERVAL,
    max_interval: timedelta = MAX_INTERVAL,
) -> timedelta:
    """The time until the next `/limits` reading.

    With no figures at all the reading is due at the shortest interval (there is nothing to go
    on); the check budget can stretch any interval beyond `max_interval`.
    """
    if min_interval <= timedelta(0) or max_interval < min_interval:
        raise ValueError(
            f"need 0 < min_interval <= max_interval, got {min_interval}, {max_interval}"
        )
    # A type the org has none of (Max 0) has no threshold to approach: it must not hold the
    # readings at the shortest interval.
    nearest = min((distance(r, warning_at) for r in rooms if r.org_max > 0), default=0.0)
    if nearest <= NEAR:
        chosen = min_interval
    elif nearest >= FAR:
        chosen = max_interval
    else:
        fraction = (nearest - NEAR) / (FAR - NEAR)
        chosen = min_interval + (max_interval - min_interval) * fraction
    return max(chosen, budget_interval(data_share_calls))


def budget_interval(data_share_calls: int) -> timedelta:
    """The shortest interval that keeps a day of readings within `CHECK_BUDGET` of the share."""
    readings = int(data_share_calls * CHECK_BUDGET)
    if readings < 1:
        return WINDOW  # a share too small to spare a call: read once a day at most
    # Rounded up to the microsecond: rounded down, `readings + 1` could fit in one window.
    return timedelta(microseconds=-(-(WINDOW // _MICROSECOND) // readings))


def next_check(
    rooms: Iterable[Room],
    now: datetime,
    *,
    data_share_calls: int,
    warning_at: float = WARNING_AT,
    min_interval: timedelta = MIN_INTERVAL,
    max_interval: timedelta = MAX_INTERVAL,
) -> datetime:
    return now + interval(
        rooms,
        data_share_calls=data_share_calls,
        warning_at=warning_at,
        min_interval=min_interval,
        max_interval=max_interval,
    )
