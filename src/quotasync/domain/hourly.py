"""Calls per hour over the last 24 hours, for the charts: quotasync's from its ledger, other apps'
worked out from the org's rolling 24-hour figures.

The org only ever tells a rolling total, never calls per hour. Between two readings other apps'
part of that total grows by the calls they made and shrinks by the calls that left the window, so
the calls they made are the growth plus what left: the calls made 24 hours before, which this
same arithmetic worked out a day earlier (nothing before the first day's readings is known, so
that first day is a lower bound). An hour with no reading has no figure of its own; its calls are
told in the next hour that has one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)
DAY = timedelta(hours=24)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def hours_ending(now: datetime, count: int = 24) -> list[datetime]:
    """The starts of the `count` hours up to and including the one `now` is in, oldest first."""
    last = hour_of(now)
    return [last - HOUR * (count - 1 - i) for i in range(count)]


def per_hour(entries: Iterable[tuple[datetime, float]], starts: Sequence[datetime]) -> list[float]:
    """Sum (moment, amount) pairs into the hours that start at `starts`; others are left out."""
    index = {start: i for i, start in enumerate(starts)}
    sums = [0.0] * len(starts)
    for moment, amount in entries:
        i = index.get(hour_of(moment))
        if i is not None:
            sums[i] += amount
    return sums


def other_apps(readings: Mapping[datetime, int], starts: Sequence[datetime]) -> list[int | None]:
    """Other apps' calls in each hour of `starts`, from their rolling use at the last reading of
    each hour (`readings`, keyed by hour start, reaching back to `since(starts)`).
    None for an hour whose calls cannot be told."""
    if not starts:
        return []
    hour = since(starts)
    made: dict[datetime, int | None] = {}
    previous: tuple[datetime, int] | None = None
    while hour <= starts[-1]:
        made[hour] = None
        value = readings.get(hour)
        if value is not None:
            if previous is not None:
                last, before = previous
                # Calls that left the window since the previous reading were made a day earlier.
                left = sum(made.get(h - DAY) or 0 for h in _hours(last + HOUR, hour))
                made[hour] = max(0, value - before + left)
            previous = (hour, value)
        hour += HOUR
    return [made[start] for start in starts]


def since(starts: Sequence[datetime]) -> datetime:
    """The first hour whose reading `other_apps` uses: the one before the day before `starts`."""
    return starts[0] - DAY - HOUR


def _hours(first: datetime, last: datetime) -> Iterable[datetime]:
    hour = first
    while hour <= last:
        yield hour
        hour += HOUR
