"""The governor: how many calls of one API type quotasync may send now, or why it must wait.

Everything here is arithmetic on figures passed in (the share, the guard, pauses, rechecks and
the emails' episodes: docs/QUOTAS.md); the store, the Salesforce client and the notifier call
these functions and act on what they return.

The figures, for one workspace and one API type:

- the `CallWindow`: quotasync's own calls in the rolling 24-hour window (the store's ledger's
  entries), each with the time it was reserved. A call counts against the window until exactly
  24 hours after it was reserved, so the governor knows to the second when each one stops
  counting.
- the `OrgFigures`: what Salesforce last said (from `/limits` or `Sforce-Limit-Info`): the org's
  total for the type, how much of it is used, and when that was read.
- the workspace's share of the org total, a whole percentage (`validate_share`).

From those, `room` works out what is left under the two limits, by the quota rule
(`domain/quota.py`: the share, the 90% guard, other apps' use held at the last reading).

`decide` turns that into a `Decision`:

- `Send(calls_allowed)`: at least one batch fits; never more than `calls_allowed` calls may go.
- `Pause(reason, next_check, resume_at, ...)`: not even one batch fits. For `workspace_limit`, the
  resume time is exact: it is when enough of quotasync's own calls have left the window, which
  the ledger knows without spending a call. For `org_guard`, other apps' use is unknown, so the
  governor looks again every recheck interval (sooner if its own expiries alone would make room).
- `Unavailable`: no figures for a type other than Data (the sync user cannot read `/limits`,
  RULES.md: Without View Setup, Data only), or an org without any of that type. Work that needs it
  uses another route.

`step_episode` folds decisions into pause episodes and the events the notifier sends: one when a
pause starts and one when it ends, never more. A backlog that keeps meeting the share (or the
guard) is one episode while calls free up one by one; it ends when the backlog is written or the
room stays comfortable (`COMFORT_CALLS` for `COMFORT_FOR`). `written_by` estimates when such a
backlog will be written; `warning_due` says when the once-per-window warning goes out.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from quotasync.domain import quota
from quotasync.domain.batching import RECORDS_PER_CALL
from quotasync.domain.quota import WINDOW, Room
from quotasync.errors import InvalidInput


class Api(StrEnum):
    DATA = "data"
    BULK = "bulk"
    BULK_QUERY = "bulk_query"
    APEX = "apex"


# The name under which `/limits` reports each type.
LIMIT_NAMES: Mapping[Api, str] = MappingProxyType(
    {
        Api.DATA: "DailyApiRequests",
        Api.BULK: "DailyBulkApiBatches",
        Api.BULK_QUERY: "DailyBulkV2QueryJobs",
        Api.APEX: "DailyAsyncApexExecutions",
    }
)


class Reason(StrEnum):
    WORKSPACE_LIMIT = "workspace_limit"
    ORG_GUARD = "org_guard"
    SALESFORCE_REFUSED = "salesforce_refused"
    NO_API_ACCESS = "no_api_access"
    AUTH = "auth"


# The reasons `decide` finds from figures; the others come from how a call ended (`pause_for`).
FIGURE_REASONS: frozenset[Reason] = frozenset({Reason.WORKSPACE_LIMIT, Reason.ORG_GUARD})

MIN_SHARE, MAX_SHARE = 10, 90
DEFAULT_RECHECK = timedelta(minutes=30)
MIN_RECHECK, MAX_RECHECK = timedelta(minutes=5), WINDOW
WARNING_AT = 0.80
# The soonest a guard pause looks again: a reading that is due but not yet made (the org did not
# answer) must not turn the writer's looks into a busy loop.
MIN_LOOK = timedelta(minutes=1)


# --- Settings (RULES.md: Workspace share) --------------------------------------------------------


class ShareError(InvalidInput):
    """A share an admin asked for that quotasync refuses; the message is for that admin."""


class SettingsError(InvalidInput):
    """A workspace setting outside what quotasync accepts; the message is for the admin."""


def validate_share(percent: object) -> int:
    """The share as an int, or ShareError saying what is accepted.

    Accepts a whole number from 10 to 90, also written as `70.0` or `"70"` (a form field); refuses
    booleans, fractions and anything else rather than rounding what the admin typed.
    """
    value = _whole_number(percent)
    if value is None or not MIN_SHARE <= value <= MAX_SHARE:
        raise ShareError(
            f"The share must be a whole percentage from {MIN_SHARE} to {MAX_SHARE}; got {_shown(percent)}."
        )
    return value


def validate_recheck(interval: timedelta) -> timedelta:
    if not MIN_RECHECK <= interval <= MAX_RECHECK:
        raise SettingsError(
            f"The recheck interval must be from {_minutes(MIN_RECHECK)} to {_minutes(MAX_RECHECK)}; "
            f"got {_minutes(interval)}."
        )
    return interval


def validate_warning_at(fraction: float) -> float:
    if not 0 < fraction <= 1:
        raise SettingsError(
            f"The warning threshold must be above 0% and at most 100% of the share; got {fraction:.0%}."
        )
    return fraction


# How soon an activity must be in Salesforce ("log within"): below 5 seconds a batch seldom
# carries more than one activity, so steady traffic costs a call each; beyond 15 minutes the
# reps, looking for a record they just made, take it for lost.
MIN_LOG_WITHIN, MAX_LOG_WITHIN = 5.0, 900.0
MAX_BATCH_DELAY_CEILING = 3600.0  # an hour: longer, and activities look lost to the reps


def validate_log_within(seconds: float, max_batch_delay: float | None = None) -> float:
    """How soon activities are logged: from 5 seconds to 15 minutes, and (when given) no longer
    than the longest delay pacing may give, which is the ceiling above it."""
    # Written so that NaN fails too.
    if not MIN_LOG_WITHIN <= seconds <= MAX_LOG_WITHIN:
        raise SettingsError(
            f"Activities must be logged within {MIN_LOG_WITHIN:g} seconds to "
            f"{MAX_LOG_WITHIN / 60:g} minutes ({MAX_LOG_WITHIN:g} seconds); got {seconds:g} seconds."
        )
    if max_batch_delay is not None and seconds > max_batch_delay:
        raise SettingsError(
            f"To log activities within {seconds:g} seconds, the longest paced delay (now "
            f"{max_batch_delay:g} seconds) must be at least that long: raise it as well."
        )
    return seconds


def validate_max_batch_delay(seconds: float, log_within: float) -> float:
    """The longest delay pacing may give a batch: from the workspace's `log_within` to an hour."""
    # Written so that NaN fails too.
    if not log_within <= seconds <= MAX_BATCH_DELAY_CEILING:
        raise SettingsError(
            f"The longest paced delay must be from {log_within:g} seconds (the time activities "
            f"are logged within) to {MAX_BATCH_DELAY_CEILING:g} seconds; got {seconds:g} seconds."
        )
    return seconds


# --- Figures ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrgFigures:
    """What Salesforce last said about one API type: its total, its use, and when it said so;
    with `others`, other apps' part of `used` as the store worked it out when it was told
    (otherwise `room` takes quotasync's own calls up to `observed_at` from the ledger)."""

    max: int
    used: int
    observed_at: datetime
    others: int | None = None

    def __post_init__(self) -> None:
        if self.max < 0 or self.used < 0:
            raise ValueError(f"org figures must not be negative, got {self.used}/{self.max}")
        _require_aware(self.observed_at, "OrgFigures.observed_at")


@dataclass(frozen=True)
class CallWindow:
    """quotasync's own calls of one API type in the rolling window: (reserved at, calls) pairs,
    oldest first (the store's `Ledger` keeps them; this is their arithmetic).

    The store passes the entries of the last 24 hours; older ones change nothing. A call reserved
    at `t` counts while `now < t + WINDOW`, the same bound the store's own query uses.
    """

    entries: tuple[tuple[datetime, int], ...] = ()

    def __post_init__(self) -> None:
        times = [at for at, _ in self.entries]
        if times != sorted(times):
            raise ValueError("ledger entries must be sorted by time, oldest first")
        for at, calls in self.entries:
            _require_aware(at, "Ledger entry time")
            if calls < 0:
                raise ValueError(f"a ledger entry cannot hold {calls} calls")

    @classmethod
    def of(cls, entries: Iterable[tuple[datetime, int]]) -> CallWindow:
        """A ledger from entries in any order."""
        return cls(tuple(sorted(entries, key=lambda entry: entry[0])))

    def used(self, now: datetime) -> int:
        """Calls reserved in the 24 hours up to and including `now`."""
        return sum(calls for at, calls in self._counting(now))

    def falls_to(self, target: int, now: datetime) -> datetime | None:
        """The first moment from `now` on when `used` is at most `target`, if no call is added.

        It is `now` when use is already that low, the expiry time of the call that brings it
        down otherwise, and None when `target` is negative (no expiry can get there).
        """
        if target < 0:
            return None
        remaining = self.used(now)
        if remaining <= target:
            return now
        for at, calls in self._counting(now):
            remaining -= calls
            if remaining <= target:
                return at + WINDOW
        raise AssertionError("every counted call expires")  # pragma: no cover

    def expiring(self, now: datetime, until: datetime) -> int:
        """Calls counted at `now` that leave the window at or before `until`."""
        return sum(calls for at, calls in self._counting(now) if at + WINDOW <= until)

    def _counting(self, now: datetime) -> Iterable[tuple[datetime, int]]:
        return ((at, calls) for at, calls in self.entries if now - WINDOW < at <= now)


def room(ledger: CallWindow, org: OrgFigures, share_percent: int, now: datetime) -> Room:
    """The quota rule's room (`quota.room`) from the ledger and the org's last reading."""
    # Other apps' use is only known at the moment Salesforce was asked; quotasync's calls since
    # then are in the ledger, theirs are not, so theirs are held at that reading.
    others = (
        org.others
        if org.others is not None
        else quota.others_used(org.used, ledger.used(org.observed_at))
    )
    return quota.room(org.max, org.used, share_percent, ledger.used(now), others)


def binding(figures: Room) -> Reason:
    """The limit with less room left. On a tie, the share: quotasync's own expiries free both
    limits alike, so the share's exact resume time holds for the guard as well; except while
    the guard is held, which only a fresh reading lifts."""
    if figures.by_guard < figures.by_share or (
        figures.guard_held and figures.by_guard <= figures.by_share
    ):
        return Reason.ORG_GUARD
    return Reason.WORKSPACE_LIMIT


def resume_ok(figures: Room, batch_cost: int = 1) -> bool:
    """Whether there is room for at least one batch: the only condition to send or resume on."""
    return figures.calls_allowed >= batch_cost


# --- Decisions --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Up to `calls_allowed` calls may go; `refresh_figures` asks for a fresh org reading."""

    api: Api
    calls_allowed: int
    room: Room | None = None  # None while Data has no figures yet
    refresh_figures: bool = False


@dataclass(frozen=True)
class Pause:
    """No batch may go. Look again at `next_check`.

    `resume_at` is when the governor expects room again (None when it cannot tell);
    `predicted` says that expectation is exact (own calls leaving the window), so reaching
    `next_check == resume_at` resumes without a check call.
    """

    api: Api
    reason: Reason
    next_check: datetime
    resume_at: datetime | None = None
    predicted: bool = False
    room: Room | None = None
    refresh_figures: bool = False


@dataclass(frozen=True)
class Unavailable:
    """No figures for this type (RULES.md: Without View Setup, Data only), or the org has none of
    it: use another route."""

    api: Api


Decision = Send | Pause | Unavailable


def decide(
    api: Api,
    ledger: CallWindow,
    org: OrgFigures | None,
    share_percent: int,
    now: datetime,
    *,
    batch_cost: int = 1,
    recheck: timedelta = DEFAULT_RECHECK,
) -> Decision:
    """Send, pause or unavailable for one API type of one workspace, now."""
    if batch_cost < 1:
        raise ValueError(f"batch_cost must be at least 1, got {batch_cost}")
    if org is None:
        # Data figures come back on every response (Sforce-Limit-Info): one call learns them.
        return Send(api, 1, refresh_figures=True) if api is Api.DATA else Unavailable(api)
    if org.max == 0:
        return Unavailable(api)
    figures = room(ledger, org, share_percent, now)
    stale = now - org.observed_at >= recheck
    if resume_ok(figures, batch_cost):
        return Send(api, figures.calls_allowed, figures, refresh_figures=stale)
    if binding(figures) is Reason.WORKSPACE_LIMIT:
        return _share_pause(api, ledger, figures, now, batch_cost, recheck)
    return _guard_pause(api, ledger, figures, now, batch_cost, recheck, stale, org.observed_at)


def _own_room_at(
    ledger: CallWindow, figures: Room, now: datetime, batch_cost: int
) -> datetime | None:
    """When quotasync's own expiries alone make room for one batch under both limits."""
    target = figures.own_used + min(figures.by_share, figures.by_guard) - batch_cost
    return ledger.falls_to(target, now)


def _next_check(resume_at: datetime | None, now: datetime, recheck: timedelta) -> datetime:
    """When a pause looks again: at the predicted room, and at least every recheck interval."""
    return now + recheck if resume_at is None else min(resume_at, now + recheck)


def _share_pause(
    api: Api, ledger: CallWindow, figures: Room, now: datetime, batch_cost: int, recheck: timedelta
) -> Pause:
    resume_at = _own_room_at(ledger, figures, now, batch_cost)
    # RULES.md, Recheck and resume: looked at again at least every recheck interval (the admin may
    # raise the share), which costs nothing: the check is this function again, not a call to
    # Salesforce.
    next_check = _next_check(resume_at, now, recheck)
    return Pause(
        api,
        Reason.WORKSPACE_LIMIT,
        next_check=next_check,
        resume_at=resume_at,
        # With the guard held as well, the share's time is only when to look again.
        predicted=resume_at is not None and not figures.guard_held,
        room=figures,
    )


def _guard_pause(
    api: Api,
    ledger: CallWindow,
    figures: Room,
    now: datetime,
    batch_cost: int,
    recheck: timedelta,
    stale: bool,
    observed_at: datetime,
) -> Pause:
    # Other apps' calls expire too, but when is unknown: only a fresh reading can tell. It is
    # due a recheck interval after the last reading, not after this look: with several
    # workers looking a moment apart, each look would otherwise push the recheck further on.
    # While the reading showed the guard reached, quotasync's own expiries open nothing either.
    resume_at = None if figures.guard_held else _own_room_at(ledger, figures, now, batch_cost)
    fresh_look = max(observed_at + recheck, now + MIN_LOOK)
    next_check = fresh_look if resume_at is None else min(resume_at, fresh_look)
    return Pause(
        api,
        Reason.ORG_GUARD,
        next_check=next_check,
        resume_at=resume_at,
        predicted=False,
        room=figures,
        refresh_figures=stale,
    )


def pause_for(
    reason: Reason, api: Api, now: datetime, recheck: timedelta = DEFAULT_RECHECK
) -> Pause:
    """The pause for a call that ended badly (refused, no API access, auth): look again after
    the recheck interval; nothing predicts these."""
    if reason in FIGURE_REASONS:
        raise ValueError(f"{reason} pauses come from decide(), which has the figures")
    return Pause(api, reason, next_check=now + recheck, refresh_figures=True)


# --- Episodes and notices (RULES.md: Recheck and resume, Tell the admins) ------------------------


# When an episode of a limit (the share or the guard) ends: when the backlog is written, or when
# after a write the room left has stayed at `COMFORT_CALLS` full calls or more for `COMFORT_FOR`.
# While a backlog keeps meeting the limit, every call that frees is spent at once and the room
# after a write is 0 or 1; a cluster of expiries (calls sent together a day before) can leave a
# few more for a moment, but the writer spends them within minutes. Three calls kept for half an
# hour mean the backlog no longer takes what frees: the limit has stopped holding anything back.
COMFORT_CALLS = 3
COMFORT_FOR = timedelta(minutes=30)


@dataclass(frozen=True)
class Episode:
    """One pause of one API type, from its start to its end, with the figures it started on
    (updated while it lasts). For the share and the guard, an episode also covers the time the
    backlog is sent as calls free up; `room_since` is when the room after a write last became
    comfortable (None while it is not)."""

    api: Api
    reason: Reason
    started_at: datetime
    next_check: datetime
    figures: Room | None = None
    ended_at: datetime | None = None
    room_since: datetime | None = None


@dataclass(frozen=True)
class PauseStarted:
    episode: Episode


@dataclass(frozen=True)
class PauseEnded:
    episode: Episode


Event = PauseStarted | PauseEnded


@dataclass(frozen=True)
class Step:
    episode: Episode | None  # the open episode after this decision, if any
    events: tuple[Event, ...] = field(default=())


def step_episode(
    current: Episode | None, decision: Decision, now: datetime, *, backlog: int | None = None
) -> Step:
    """The open episode after `decision`, and the events to notify.

    `backlog` is the activities still waiting after a write (None: the decision is not about a
    backlog, as Real-Time Sync's Apex room).

    - no episode + Pause: a new episode starts (one PauseStarted);
    - open episode + Pause: it goes on, with fresh figures and the decision's reason; no event
      (a pause whose reason changes, say from the org refusing to the guard, has not ended:
      telling the admins it had would be false). Its next check is the decision's once the
      episode's own has come; before that, the earlier of the two: several workers look at one
      pause, each with a writer of its own, and one's look must not put off the check another
      is due for (with looks less than `MIN_LOOK` apart they would put it off for good);
    - open episode + Send: for a refusal, lost access or a lost login, it ends (one PauseEnded):
      a call that goes through is all those wait for. For the share or the guard, only a call
      that freed up went: the episode goes on while a backlog waits, and ends (one PauseEnded)
      when the backlog is written (after any decision: the last call may take the last room),
      or when the room has stayed at `COMFORT_CALLS` or more for `COMFORT_FOR`
      (`_limit_lifted`);
    - Unavailable changes nothing: it is not a pause, the work takes another route.
    """
    if current is not None and current.ended_at is not None:
        raise ValueError("the current episode has already ended")
    if current is not None and current.api is not decision.api:
        raise ValueError(f"a {decision.api} decision cannot step a {current.api} episode")
    if isinstance(decision, Unavailable):
        return Step(current)
    if backlog == 0 and current is not None and current.reason in FIGURE_REASONS:
        # Written: whether the last call took the last room or not, nothing waits on the limit.
        return _end(current, now)
    if isinstance(decision, Send):
        if current is None or current.reason not in FIGURE_REASONS:
            return _end(current, now)
        return _limit_lifted(current, decision, now, backlog)
    if current is not None:
        due = current.next_check
        next_check = decision.next_check if due <= now else min(due, decision.next_check)
        kept = replace(
            current,
            reason=decision.reason,
            next_check=next_check,
            figures=decision.room,
            room_since=None,  # the limit was met again: comfort starts over
        )
        return Step(kept)
    started = Episode(decision.api, decision.reason, now, decision.next_check, decision.room)
    return Step(started, (PauseStarted(started),))


def _limit_lifted(current: Episode, decision: Send, now: datetime, backlog: int | None) -> Step:
    """A Send in an episode of the share or the guard: the end, or one more call that freed."""
    if backlog is None or decision.room is None:
        # The work has no backlog, or no figures hold a limit any more.
        return _end(current, now)
    # The episode keeps the figures of its last refusal: what the limit was when it held.
    if decision.room.calls_allowed < COMFORT_CALLS:
        return Step(replace(current, room_since=None))
    since = current.room_since or now
    if now - since >= COMFORT_FOR:
        return _end(current, now)
    return Step(replace(current, room_since=since))


def _end(current: Episode | None, now: datetime) -> Step:
    if current is None:
        return Step(None)
    return Step(None, (PauseEnded(replace(current, ended_at=now)),))


# The records one full call carries when quotasync has sent none lately to measure it by.
FULL_CALL_RECORDS = RECORDS_PER_CALL


def written_by(
    ledger: CallWindow, figures: Room, waiting: int, per_call: float, now: datetime
) -> datetime | None:
    """About when a backlog of `waiting` activities is written, `per_call` a call, if nothing
    else spends the room: what is left now goes at once, and then a call each time one of
    quotasync's own calls leaves the window (the ledger knows when: `CallWindow.falls_to`).

    The calls sent meanwhile stay in the window for a day; a backlog of more than a day's room
    takes a whole window for each day's room more. None when nothing can tell: the guard is
    held (other apps' use must be read first) or the limit leaves no room at all.
    """
    if waiting <= 0:
        return now
    if figures.guard_held or per_call <= 0:
        return None
    calls = math.ceil(waiting / per_call)
    cap = figures.own_used + min(figures.by_share, figures.by_guard)  # own calls allowed
    if cap <= 0:
        return None
    if calls <= cap:
        # Sent once enough of what is in the window now has left it.
        return ledger.falls_to(cap - calls, now)
    # More than the window holds: all of today's calls leave, then a window per cap more.
    cleared = ledger.falls_to(0, now)
    assert cleared is not None
    return cleared + WINDOW * math.ceil((calls - cap) / cap)


def warning_due(
    own_used: int,
    share: int,
    last_warned_at: datetime | None,
    now: datetime,
    *,
    warning_at: float = WARNING_AT,
    limited: bool = False,
) -> bool:
    """Whether to warn the admins that use has passed `warning_at` of the share (in calls).

    Once per rolling window: not again within 24 hours of the last warning. Never while an
    episode of the type is open (`limited`): its email said the limit was reached; the caller
    passes the start or end of the last episode as `last_warned_at` when it is the later, so
    that the warning does not follow a "resumed" email either.
    """
    if limited or share <= 0 or own_used < warning_at * share:
        return False
    return last_warned_at is None or now - last_warned_at >= WINDOW


# --- Helpers ----------------------------------------------------------------------------------


def _whole_number(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return int(text)
    return None


def _shown(value: object) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    text = repr(value)
    return text if len(text) <= 40 else text[:39] + "…"


def _minutes(interval: timedelta) -> str:
    return f"{interval.total_seconds() / 60:g} minutes"


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
