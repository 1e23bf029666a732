"""Rolling 24-hour usage per API type and per connected app.

Usage is kept in one-second buckets so a call leaves the window exactly 24 hours after it was made.
Background load from other apps is accrued lazily whenever usage is read or spent, spread evenly over
the time that passed, so it needs no thread of its own and follows a virtual clock.
"""

from __future__ import annotations

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
    # (api, app) -> deque of [second, calls]
    buckets: dict[tuple[str, str], deque[list[int]]] = field(default_factory=dict)
    totals: dict[tuple[str, str], int] = field(default_factory=dict)
    loads: dict[tuple[str, str], Load] = field(default_factory=dict)
    # Buckets changed since the last `drain_changes`, for the state file.
    changed: set[tuple[str, str, int]] = field(default_factory=set)

    def used(self, api: str, now: float) -> int:
        self._tick(now)
        return sum(n for (a, _), n in self.totals.items() if a == api)

    def by_app(self, api: str, now: float) -> dict[str, int]:
        self._tick(now)
        return {app: n for (a, app), n in sorted(self.totals.items()) if a == api and n}

    def remaining(self, api: str, now: float) -> int:
        return self.allocations[api] - self.used(api, now)

    def has_room(self, api: str, calls: int, now: float) -> bool:
        return self.used(api, now) + calls <= self.allocations[api]

    def spend(self, api: str, app: str, calls: int, now: float) -> None:
        self._tick(now)
        self._add(api, app, int(now), calls)

    def set_load(self, app: str, api: str, calls_per_hour: float, now: float) -> None:
        self._tick(now)
        if calls_per_hour <= 0:
            self.loads.pop((app, api), None)
        else:
            self.loads[(app, api)] = Load(app, api, calls_per_hour, since=now)

    def oldest_second(self, api: str, app: str) -> int | None:
        queue = self.buckets.get((api, app))
        return queue[0][0] if queue else None

    def drain_changes(self) -> list[tuple[str, str, int, int]]:
        """(api, app, second, calls) for every bucket touched since the last drain."""
        out = []
        for api, app, second in self.changed:
            calls = 0
            for bucket_second, n in self.buckets.get((api, app), ()):
                if bucket_second == second:
                    calls = n
            out.append((api, app, second, calls))
        self.changed.clear()
        return out

    def restore(self, api: str, app: str, second: int, calls: int) -> None:
        self._add(api, app, second, calls, record=False)

    # ---------------------------------------------------------------- internals

    def _add(self, api: str, app: str, second: int, calls: int, record: bool = True) -> None:
        key = (api, app)
        queue = self.buckets.setdefault(key, deque())
        if queue and queue[-1][0] == second:
            queue[-1][1] += calls
        elif not queue or queue[-1][0] < second:
            queue.append([second, calls])
        else:
            self._insert_sorted(queue, second, calls)
        self.totals[key] = self.totals.get(key, 0) + calls
        if record:
            self.changed.add((api, app, second))

    @staticmethod
    def _insert_sorted(queue: deque[list[int]], second: int, calls: int) -> None:
        items = list(queue)
        for item in items:
            if item[0] == second:
                item[1] += calls
                return
        items.append([second, calls])
        items.sort()
        queue.clear()
        queue.extend(items)

    def _tick(self, now: float) -> None:
        self._accrue_loads(now)
        horizon = int(now) - WINDOW_SECONDS
        for key, queue in self.buckets.items():
            while queue and queue[0][0] <= horizon:
                second, calls = queue.popleft()
                self.totals[key] -= calls
                self.changed.add((key[0], key[1], second))

    def _accrue_loads(self, now: float) -> None:
        for load in self.loads.values():
            elapsed = now - load.since
            if elapsed <= 0:
                continue
            due = load.carry + elapsed * load.calls_per_hour / 3600
            calls = math.floor(due)
            load.carry = due - calls
            start = load.since
            load.since = now
            # Other apps are refused at the org's limit too.
            room = self.allocations[load.api] - sum(
                n for (a, _), n in self.totals.items() if a == load.api
            )
            calls = max(0, min(calls, room))
            if calls:
                self._spread(load, calls, start, now)

    def _spread(self, load: Load, calls: int, start: float, end: float) -> None:
        pieces = min(calls, _MAX_SPREAD, max(1, int(end - start)))
        base, extra = divmod(calls, pieces)
        step = (end - start) / pieces
        for i in range(pieces):
            second = int(start + step * (i + 1))
            self._add(load.api, load.app, second, base + (1 if i < extra else 0))
