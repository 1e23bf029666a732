"""The quota rule: how many calls of one API type quotasync may have in the rolling 24-hour
window, and how much of that the writer may pace its batches against (RULES.md: Workspace share,
Global guard, No overshoot). Arithmetic on figures passed in; the one place the rule is said.

For one workspace and one API type:

- **the share**: `floor(org max * share%)` calls;
- **the guard**: `floor(org max * 90%)` calls of the whole org's use. Salesforce tells the org's
  use only when asked, so other apps' part of it is the org's figure less quotasync's own calls
  at that reading, held until the next reading. A reading at or over the guard leaves no room
  under it until the next reading, whatever quotasync's own expiries free (`guard_reached`);
- **the cap** (`Room.cap`): the most calls quotasync may have in the window, the lower of the
  two. The ledger refuses a call that would pass it. A **probe** (a call that only reads the
  org's figures, as a paused guard's recheck) may pass the guard by one call once the figures
  are a recheck interval old (`probe_due`): without it a guard pause could never look again.
  Writes never do: a write past the guard is what the guard is for;
- **the writer's budget** (`writer_budget`): the cap, less the part of the Data share `/limits`
  readings may take (`CHECK_BUDGET`) and a call per interval sync, aimed a little below:
  what pacing spreads the day's batches over.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(hours=24)  # Salesforce counts each type's use over a rolling day
GUARD_PERCENT = 90
GUARD = GUARD_PERCENT / 100
CHECK_BUDGET = 0.05  # at most this fraction of the Data share goes on `/limits` readings
# Arrivals come in bursts and pacing plans on the last hour's rate: it aims this far below the
# budget's line.
PACING_MARGIN = 0.9


def share_calls(org_max: int, share_percent: int) -> int:
    """The calls a share allows: floor, so the share is never passed."""
    return org_max * share_percent // 100


def guard_calls(org_max: int) -> int:
    """The org total quotasync never pushes use past: floor of 90%."""
    return org_max * GUARD_PERCENT // 100


def guard_reached(org_used: int, org_max: int) -> bool:
    """Whether a reading shows the org at or over the guard.

    Such a reading holds the guard shut until the next one. Holding other apps' use at its last
    value is fair while it stands still; an org at 90% is more often one where another app is
    surging, and its use then grows while quotasync's own calls leave the window. Counting
    those expiries as room would let calls go past the guard on a figure that is already out
    of date: a worker went on writing, syncing and probing past 90% that way, a call for each
    of its own that left the window. The call whose answer showed the guard reached is the only
    one past it; a reading at the recheck interval (`/limits`, or one probe call) is what may
    open it again.
    """
    return org_max > 0 and org_used >= guard_calls(org_max)


def others_used(org_used: int, own_at_reading: int) -> int:
    """Other apps' calls in a reading: the org's use less quotasync's own calls it counted."""
    return max(0, org_used - own_at_reading)


@dataclass(frozen=True)
class Room:
    """What is used and what is left of one API type now; the figures a pause reports."""

    org_max: int
    share: int  # calls the workspace's share allows
    guard: int  # the 90% line in calls
    own_used: int  # quotasync's calls in the window
    others_used: int  # other apps' calls, as of the last org reading
    org_used: int  # estimate: others_used + own_used
    # The last reading showed the org at or over the guard: no room under it until a reading
    # shows otherwise, whatever quotasync's own expiries free (`guard_reached`).
    guard_held: bool = False

    @property
    def by_share(self) -> int:
        return self.share - self.own_used

    @property
    def by_guard(self) -> int:
        left = self.guard - self.org_used
        return min(left, 0) if self.guard_held else left

    def cap(self, *, probe: bool = False) -> int:
        """The most calls quotasync may have in the window: the share, and what the guard
        leaves after other apps' use. A `probe` whose figures are a recheck interval old
        (`probe_due`) may go one call past the guard; the share still holds."""
        by_guard = self.own_used + self.by_guard  # the most own calls the guard leaves
        if probe:
            by_guard = max(by_guard, self.own_used + 1)
        return max(0, min(self.share, by_guard))

    @property
    def calls_allowed(self) -> int:
        """Calls that may still go now, under the cap."""
        return max(0, self.cap() - self.own_used)


def room(org_max: int, org_used: int, share_percent: int, own_used: int, others: int) -> Room:
    """The room of one API type from the org's last reading (`org_used` of `org_max`, `others`
    of it other apps'), the workspace's share and quotasync's own calls in the window now."""
    return Room(
        org_max=org_max,
        share=share_calls(org_max, share_percent),
        guard=guard_calls(org_max),
        own_used=own_used,
        others_used=others,
        org_used=others + own_used,
        guard_held=guard_reached(org_used, org_max),
    )


def probe_due(observed_at: datetime, now: datetime, recheck: timedelta) -> bool:
    """Whether a probe may pass the guard: the figures are a recheck interval old."""
    return now - observed_at >= recheck


def writer_budget(room: Room, interval_sync: timedelta | None) -> int:
    """The Data calls the writer may spend over the window, which pacing spreads its batches
    over: the cap (never passing the guard), less the part of the share that `/limits`
    readings may take and, with Interval Sync every `interval_sync`, a call per sync (one
    composite call when nothing changed): those are not the writer's to pace. Aimed
    `PACING_MARGIN` below, as arrivals come in bursts."""
    budget = room.cap() - int(room.share * CHECK_BUDGET)
    if interval_sync is not None:
        budget -= int(WINDOW / interval_sync)
    return max(0, int(budget * PACING_MARGIN))
