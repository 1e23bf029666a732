"""Rolling 24-hour usage per API type and per connected app.

Usage is kept in one-second buckets so a call leaves the window exactly 24 hours after it was made.
Background load from other apps is accrued lazily whenever usage is read or spent, spread evenly over
the time that passed (at most the last 24 hours of it), so it needs no thread of its own and follows
a virtual clock.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass, field

WINDOW_SECONDS = 24 * 60 * 60
_MAX_SPREAD = 240  # buckets a long accrual gap is spread over


@dataclass
class Load:
    app: str
    api: str
    calls_per_hour: float
    since: float
    carry: float = 0.0


@dataclass
class UsageWindow:
    allocations: dict[str, int]
    # (api, app) -> deque of [second, calls], oldest first
    buckets: dict[tuple[str, str], deque[list[int]]] = field(default_factory=dict)
    # (api, app) -> second -> the same [second, calls] list the deque holds, to find a bucket fast
    by_second: dict[tuple[str, str], dict[int, list[int]]] = field(default_factory=dict)
    totals: dict[tuple[str, str], int] = field(default_factory=dict)
    loads: dict[tuple[str, str], Load] = field(default_factory=dict)
    # (api, app) -> calls counted since this start of the org, whether or not they are still in
    # the window (a moved clock forgets nothing here); restored buckets are not counted again.
    counted: dict[tuple[str, str], int] = field(default_factory=dict)
    # Buckets changed since the last `drain_changes`, for the state file.
    changed: set[tuple[str, str, int]] = field(default_factory=set)

    def used(self, api: str, now: float) -> int:
        self._tick(now)
        return self._used(api)

    def by_app(self, api: str, now: float) -> dict[str, int]:
        self._tick(now)
        return {app: n for (a, app), n in sorted(self.totals.items()) if a == api and n}

    def counted_by_app(self, api: str, now: float) -> dict[str, int]:
        """Calls of one type counted per app since the org started, in the window or not."""
        self._tick(now)
        return {app: n for (a, app), n in sorted(self.counted.items()) if a == api and n}

    def remaining(self, api: str, now: float) -> int:
        return self.allocations[api] - self.used(api, now)

    def has_room(self, api: str, calls: int, now: float) -> bool:
        return self.used(api, now) + calls <= self.allocations[api]

    def spend(self, api: str, app: str, calls: int, now: float) -> None:
        self._tick(now)
        self._add(api, app, int(now), calls)

    def try_spend(self, api: str, app: str, calls: int, now: float) -> bool:
        """Spend `calls` if the allocation has room for them; False (and nothing spent) if not."""
        self._tick(now)
        if self._used(api) + calls > self.allocations[api]:
            return False
        self._add(api, app, int(now), calls)
        return True

    def set_load(self, app: str, api: str, calls_per_hour: float, now: float) -> None:
        self._tick(now)
        if calls_per_hour <= 0:
            self.loads.pop((app, api), None)
        else:
            self.loads[(app, api)] = Load(app, api, calls_per_hour, since=now)

    def drain_changes(self) -> list[tuple[str, str, int, int]]:
        """(api, app, second, calls) for every bucket touched since the last drain."""
        out = []
        for api, app, second in self.changed:
            bucket = self.by_second.get((api, app), {}).get(second)
            out.append((api, app, second, bucket[1] if bucket else 0))
        self.changed.clear()
        return out

    def restore(self, api: str, app: str, second: int, calls: int) -> None:
        self._add(api, app, second, calls, record=False)

    # ---------------------------------------------------------------- internals

    def _used(self, api: str) -> int:
        return sum(n for (a, _), n in self.totals.items() if a == api)

    def _add(self, api: str, app: str, second: int, calls: int, record: bool = True) -> None:
        key = (api, app)
        queue = self.buckets.setdefault(key, deque())
        index = self.by_second.setdefault(key, {})
        bucket = index.get(second)
        if bucket is not None:
            bucket[1] += calls
        else:
            bucket = index[second] = [second, calls]
            if not queue or queue[-1][0] < second:
                queue.append(bucket)
            else:
                queue.insert(bisect.bisect(queue, bucket), bucket)
        self.totals[key] = self.totals.get(key, 0) + calls
        if record:
            self.changed.add((api, app, second))
            self.counted[key] = self.counted.get(key, 0) + calls

    def _tick(self, now: float) -> None:
        # Expire first, so load accrued now is capped against what the window really holds.
        horizon = int(now) - WINDOW_SECONDS
        for key, queue in self.buckets.items():
            while queue and queue[0][0] <= horizon:
                second, calls = queue.popleft()
                del self.by_second[key][second]
                self.totals[key] -= calls
                self.changed.add((key[0], key[1], second))
        self._accrue_loads(now)

    def _accrue_loads(self, now: float) -> None:
        for load in self.loads.values():
            if now <= load.since:
                continue
            # Calls made more than a window ago would have left it already: accrue only the last
            # window of a long gap, spread over that span.
            start = max(load.since, now - WINDOW_SECONDS)
            due = load.carry + (now - start) * load.calls_per_hour / 3600
            calls = math.floor(due)
            load.carry = due - calls
            load.since = now
            # Other apps are refused at the org's limit too.
            calls = max(0, min(calls, self.allocations[load.api] - self._used(load.api)))
            if calls:
                self._spread(load, calls, start, now)

    def _spread(self, load: Load, calls: int, start: float, end: float) -> None:
        pieces = min(calls, _MAX_SPREAD, max(1, int(end - start)))
        base, extra = divmod(calls, pieces)
        step = (end - start) / pieces
        for i in range(pieces):
            second = int(start + step * (i + 1))
            self._add(load.api, load.app, second, base + (1 if i < extra else 0))
