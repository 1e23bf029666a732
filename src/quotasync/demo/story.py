"""The demo's story: the org it plays in, what other apps did there yesterday, and what they do
when, in minutes of the story's virtual clock (at 60x, one minute of story is one real second).

- 0-5: 20 reps' activity is logged into the org; Real-Time Sync keeps the mirror.
- 5-17: Data Loader runs a big import; the org passes 90% of its Data API calls at about 16,
  and at quotasync's next write (16-22) syncing pauses (`org_guard`) and the admins get an
  email. At 17 the import is done, but the org stays past 90%: other apps' calls count for 24
  hours.
- 40: yesterday's Data Loader calls leave the 24-hour window; the pause's recheck, 30 minutes
  after it began (46-52), finds room, the backlog replays and the admins get an email.
- 55: Marketing Cloud spends every async Apex execution left: the org stops pushing, and at
  quotasync's next `/limits` reading (55-60) Real-Time Sync rolls over to Interval Sync.
- 75: yesterday's Marketing Cloud executions leave the window; at the next look, one sync
  interval (30 minutes) after the rollover (85-90), Real-Time Sync is back, with a catch-up.

For the window to roll within minutes, the org gets a yesterday: before the story starts, the
prelude spends other apps' calls and moves the org's clock (and quotasync's) on, so that those
calls leave the window at the minutes above; the story begins at 08:00 the next morning.
Amounts are fractions of the org's allocations, so the story holds for any edition with enough
of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

EDITION = "enterprise"
LICENSES = 20  # 120,000 Data API calls a day; 250,000 async Apex executions
SEED = 300  # Accounts, Contacts, Leads and Opportunities in the org, owned by 20 reps
WINDOW_MINUTES = 24 * 60
STARTS_AT = time(8, 0)  # the story's morning, on the virtual clock (UTC)
STORY_MINUTES = 100  # every chapter has happened by then (the last at 85-90)
LEAD_EVERY = 4.0  # minutes between Leads the reps save in Salesforce (each one a push)
ALL_LEFT = 1.0  # a spend of everything the org has left


@dataclass(frozen=True)
class Spend:
    """Calls another app spends at once: a fraction of the org's allocation of that type."""

    app: str
    api: str  # the control API's name: data, bulk, bulk_query, apex
    fraction: float

    def calls(self, allocation: int) -> int:
        # ALL_LEFT asks for the whole allocation: the org grants what is left of it.
        return max(1, int(allocation * self.fraction))


@dataclass(frozen=True)
class Load:
    """A steady background load from another app, in fractions of the allocation per hour."""

    app: str
    api: str
    fraction_per_hour: float

    def calls_per_hour(self, allocation: int) -> float:
        return allocation * self.fraction_per_hour


@dataclass(frozen=True)
class Yesterday:
    spend: Spend
    leaves_at: float  # the story's minute when these calls leave the 24-hour window


@dataclass(frozen=True)
class Beat:
    """Something another app does to the org at a minute of the story, or sooner once the org's
    use of that API type reaches `or_at` of its total; `says` may name `{calls}` (a spend's size)
    or `{rate}` (a load's calls per hour)."""

    minute: float
    says: str
    spend: Spend | None = None
    load: Load | None = None
    or_at: float | None = None

    @property
    def api(self) -> str:
        acting = self.spend or self.load
        assert acting is not None
        return acting.api

    def due(self, minute: float, org_share: float) -> bool:
        return minute >= self.minute or (self.or_at is not None and org_share >= self.or_at)


YESTERDAY = (
    Yesterday(Spend("Data Loader", "data", 0.30), leaves_at=40),
    Yesterday(Spend("Marketing Cloud", "apex", 0.885), leaves_at=75),
)

BEATS = (
    Beat(
        0,
        "Marketing Cloud syncs in the background: {rate} Data API calls an hour",
        load=Load("Marketing Cloud", "data", 0.01),
    ),
    Beat(
        5,
        "Data Loader starts a big import: {rate} Data API calls an hour",
        load=Load("Data Loader", "data", 3.2),  # 64% of the day's calls in 12 minutes
    ),
    Beat(
        17,
        "Data Loader's import is done: other apps' load drops "
        "(their calls still count until they leave the 24-hour window)",
        load=Load("Data Loader", "data", 0),
        # However late a tick comes, the import never takes the org to its limit.
        or_at=0.93,
    ),
    Beat(
        55,
        "Marketing Cloud spends every async Apex execution the org has left ({calls})",
        spend=Spend("Marketing Cloud", "apex", ALL_LEFT),
    ),
)


def prelude() -> list[tuple[Yesterday, float]]:
    """Yesterday's spends in order, each with the seconds to move the clock on after it: the last
    move ends where the story starts, so each spend leaves the window at its minute."""
    ordered = sorted(YESTERDAY, key=lambda y: y.leaves_at)
    steps = []
    for this, following in zip(ordered, [*ordered[1:], None], strict=True):
        until = following.leaves_at if following is not None else WINDOW_MINUTES
        steps.append((this, (until - this.leaves_at) * 60))
    return steps


def lead_in(now: datetime) -> float:
    """Seconds to move the clock on before yesterday's first spend, so that the story begins at
    `STARTS_AT` on the morning after it."""
    span = timedelta(minutes=WINDOW_MINUTES - min(y.leaves_at for y in YESTERDAY))
    start = datetime.combine(now.date(), STARTS_AT, UTC)
    while start < now + span:
        start += timedelta(days=1)
    return (start - span - now).total_seconds()


def fitted_speed(speed: float, minutes: float | None) -> float:
    """The clock speed that tells the whole story within `minutes` real minutes: `speed`, or
    faster when the story would not fit."""
    if minutes is None:
        return speed
    return max(speed, STORY_MINUTES / minutes)
