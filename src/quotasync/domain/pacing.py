"""Pacing: on a busy day, wait a little longer to fill each batch, so the share lasts.

The writer sends a batch when it is full or its oldest write has waited the workspace's
`log_within` seconds (`batching.batch_due`), which is `base_delay` here. At a steady `rate` of arriving activities, a batch carries about
`rate * delay` of them (at least 1, at most `batch_size`), so it spends

    calls per second ≈ rate / activities per call

The share, in turn, can bear a certain rate without running out. Over the next `H` seconds the
calls available are what is left of the share now plus quotasync's own calls that leave the
window within `H`:

    bearable over H = (share - own_used + calls expiring within H) / H

and the rate that never runs out is the smallest of those over every `H` up to the horizon (the
window by default). Only a few `H` need trying: just before each expiry, and the horizon itself.

Only when the writer's rate at `base_delay` is above the bearable rate does the delay stretch,
to `1 / bearable` seconds (one call per that many seconds, each carrying what arrived meanwhile),
up to `max_delay` (the workspace's `max_batch_delay`). On any other day activities are logged
within `log_within`, as the admin chose. Beyond the point where batches are full a longer wait saves nothing; then
`avoids_pause` is False and the usage view says a pause is likely whatever the batching.

Never while the guard is held (a reading showed the org at 90%): then no rate is bearable, and
stretching the delay would only keep the next batch from meeting the guard. Nothing but that
batch's pause rechecks the room (RULES.md: Recheck and resume), so a held batch outlasted other
apps' calls by up to `max_delay` (measured: 13 minutes where a 5-minute recheck was due). The batch
goes at `base_delay`, meets the guard, and its pause looks again every recheck interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from quotasync.domain.batching import COLLECTION_SIZE, LOG_WITHIN
from quotasync.domain.governor import WINDOW, CallWindow

MAX_BATCH_DELAY = 900.0  # a new workspace's ceiling: the longest `log_within` allowed


@dataclass(frozen=True)
class Pacing:
    """The batch delay to use, and the figures behind it for the usage view."""

    delay: float  # seconds the oldest write of a batch may wait
    paced: bool  # the delay was stretched beyond base_delay
    avoids_pause: bool  # at this delay the share lasts through the horizon
    calls_per_second: float  # what the writer would spend at base_delay
    bearable_per_second: float  # what the share can bear without running out
    why: str


def calls_per_second(rate: float, delay: float, batch_size: int = COLLECTION_SIZE) -> float:
    """Calls the writer spends per second at `rate` activities per second and this delay."""
    if rate <= 0:
        return 0.0
    per_call = min(float(batch_size), max(1.0, rate * delay))
    return rate / per_call


def bearable_rate(
    ledger: CallWindow, share: int, now: datetime, horizon: timedelta = WINDOW
) -> float:
    """The highest steady calls per second that never exhausts the share within `horizon`.

    At each moment a counted call leaves the window, the room is what is left now plus what has
    left by then; the bearable rate is the least of those rooms over their spans. The calls are
    walked once in the order they leave (a ledger of a busy day holds thousands)."""
    left = max(0, share - ledger.used(now))
    end = now + horizon
    leaving = sorted(
        (at + WINDOW, calls) for at, calls in ledger.entries if now - WINDOW < at <= now
    )
    expiries = sorted({at + WINDOW for at, _ in ledger.entries if now < at + WINDOW < end})
    candidates: list[tuple[int, timedelta]] = []
    freed, next_out = 0, 0

    def free_until(until: datetime) -> None:
        nonlocal freed, next_out
        while next_out < len(leaving) and leaving[next_out][0] <= until:
            freed += leaving[next_out][1]
            next_out += 1

    for moment in expiries:
        # Just before an expiry its calls are not back yet; hence a hair earlier.
        free_until(moment - _TICK)
        candidates.append((left + freed, moment - now))
    free_until(end)
    candidates.append((left + freed, horizon))
    return min(calls / span.total_seconds() for calls, span in candidates)


_TICK = timedelta(microseconds=1)


def paced_delay(
    ledger: CallWindow,
    share: int,
    now: datetime,
    rate: float,
    *,
    batch_size: int = COLLECTION_SIZE,
    base_delay: float = LOG_WITHIN,
    max_delay: float = MAX_BATCH_DELAY,
    horizon: timedelta = WINDOW,
    guard_held: bool = False,
) -> Pacing:
    """The batch delay for a writer receiving `rate` activities per second (see module doc);
    `guard_held`: the last reading showed the org at the guard."""
    if base_delay < 0 or max_delay < base_delay:
        raise ValueError(f"need 0 <= base_delay <= max_delay, got {base_delay}, {max_delay}")
    if horizon <= timedelta(0):
        raise ValueError(f"horizon must be positive, got {horizon}")
    spend = calls_per_second(rate, base_delay, batch_size)
    if guard_held:
        why = (
            "the org is at the 90% guard: batches are not held longer, their pause rechecks "
            "for room"
        )
        return Pacing(base_delay, False, spend == 0, spend, 0.0, why)
    bearable = bearable_rate(ledger, share, now, horizon)
    if spend <= bearable:
        why = f"{spend:.3g} calls/s fits the {bearable:.3g} calls/s the share can bear"
        return Pacing(base_delay, False, True, spend, bearable, why)
    wanted = math.inf if bearable == 0 else 1 / bearable
    delay = min(max_delay, max(base_delay, wanted))
    avoids = calls_per_second(rate, delay, batch_size) <= bearable
    why = (
        f"{spend:.3g} calls/s at {base_delay:g} s batches would exhaust the share, which bears "
        f"{bearable:.3g} calls/s; batches wait {delay:g} s"
        + ("" if avoids else ", and a pause is still likely")
    )
    return Pacing(delay, delay > base_delay, avoids, spend, bearable, why)
