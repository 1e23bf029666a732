from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.batching import LOG_WITHIN
from quotasync.domain.governor import (
    DEFAULT_RECHECK,
    LIMIT_NAMES,
    MAX_LOG_WITHIN,
    MIN_LOG_WITHIN,
    WINDOW,
    Api,
    CallWindow,
    Decision,
    Episode,
    OrgFigures,
    Pause,
    PauseEnded,
    PauseStarted,
    Reason,
    Send,
    SettingsError,
    ShareError,
    Unavailable,
    decide,
    pause_for,
    room,
    step_episode,
    validate_log_within,
    validate_max_batch_delay,
    validate_recheck,
    validate_share,
    warning_due,
)
from quotasync.domain.pacing import MAX_BATCH_DELAY, bearable_rate, paced_delay
from quotasync.domain.quota import guard_calls, share_calls

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def hours_ago(hours: float) -> datetime:
    return NOW - timedelta(hours=hours)


def org(max: int = 1000, used: int = 0, at: datetime = NOW) -> OrgFigures:
    return OrgFigures(max=max, used=used, observed_at=at)


def spread(calls: int, *, from_hours_ago: float = 23, to_hours_ago: float = 1) -> CallWindow:
    """`calls` single calls evenly spread over a stretch of the past."""
    step = (from_hours_ago - to_hours_ago) / max(1, calls - 1)
    return CallWindow.of((hours_ago(from_hours_ago - i * step), 1) for i in range(calls))


# --- Settings -----------------------------------------------------------------------------


@pytest.mark.parametrize("percent", [10, 70, 90, 70.0, "55"])
def test_a_share_from_10_to_90_is_accepted(percent: object) -> None:
    assert validate_share(percent) == int(float(str(percent)))


def test_a_share_above_90_is_refused_with_a_clear_message() -> None:
    with pytest.raises(ShareError) as refused:
        validate_share(95)
    assert str(refused.value) == "The share must be a whole percentage from 10 to 90; got 95."


@pytest.mark.parametrize("percent", [9, 91, 0, -10, 100, 70.5, True, None, "seventy", "70%"])
def test_anything_but_a_whole_percentage_from_10_to_90_is_refused(percent: object) -> None:
    with pytest.raises(ShareError, match="whole percentage from 10 to 90"):
        validate_share(percent)


@pytest.mark.parametrize("minutes", [4, 0, 24 * 60 + 1])
def test_a_recheck_interval_out_of_range_is_refused(minutes: int) -> None:
    with pytest.raises(SettingsError, match="recheck interval"):
        validate_recheck(timedelta(minutes=minutes))
    assert validate_recheck(timedelta(minutes=5)) == timedelta(minutes=5)


@pytest.mark.parametrize("seconds", [5, 5.0, 60, 7.5, 900])
def test_activities_may_be_logged_within_5_seconds_to_15_minutes(seconds: float) -> None:
    assert validate_log_within(seconds) == seconds
    assert (MIN_LOG_WITHIN, MAX_LOG_WITHIN) == (5.0, 900.0)


@pytest.mark.parametrize("seconds", [4, 4.99, 0, -60, 900.5, 3600, float("nan"), float("inf")])
def test_a_log_within_outside_5_seconds_to_15_minutes_is_refused_naming_the_range(
    seconds: float,
) -> None:
    with pytest.raises(SettingsError) as refused:
        validate_log_within(seconds)
    assert str(refused.value).startswith(
        "Activities must be logged within 5 seconds to 15 minutes (900 seconds); got "
    )


def test_log_within_is_never_beyond_the_longest_paced_delay() -> None:
    assert validate_log_within(300, max_batch_delay=300) == 300
    with pytest.raises(SettingsError, match=r"longest paced delay \(now 300 seconds\)"):
        validate_log_within(600, max_batch_delay=300)
    assert validate_max_batch_delay(600, log_within=600) == 600
    with pytest.raises(SettingsError, match=r"from 600 seconds .* to 3600 seconds; got 300"):
        validate_max_batch_delay(300, log_within=600)
    with pytest.raises(SettingsError, match="got nan"):
        validate_max_batch_delay(float("nan"), log_within=60)


def test_each_type_is_read_from_its_salesforce_limit() -> None:
    assert LIMIT_NAMES[Api.DATA] == "DailyApiRequests"
    assert LIMIT_NAMES[Api.BULK] == "DailyBulkApiBatches"
    assert LIMIT_NAMES[Api.BULK_QUERY] == "DailyBulkV2QueryJobs"
    assert LIMIT_NAMES[Api.APEX] == "DailyAsyncApexExecutions"


# --- Room ---------------------------------------------------------------------------------


def test_other_apps_use_is_the_org_use_less_quotasyncs_own_at_the_reading() -> None:
    ledger = spread(100)
    figures = room(ledger, org(1000, used=400), 70, NOW)
    assert figures.own_used == 100
    assert figures.others_used == 300
    assert figures.org_used == 400


def test_own_calls_after_the_reading_add_to_the_org_estimate() -> None:
    ledger = CallWindow.of([(hours_ago(3), 50), (hours_ago(1), 20)])
    figures = room(ledger, org(1000, used=250, at=hours_ago(2)), 70, NOW)
    assert figures.others_used == 200
    assert figures.org_used == 270
    assert figures.calls_allowed == min(700 - 70, 900 - 270)


def test_other_apps_use_is_never_negative() -> None:
    figures = room(spread(100), org(1000, used=10), 70, NOW)
    assert figures.others_used == 0


ledgers = st.lists(st.tuples(st.integers(0, 24 * 60 - 1), st.integers(0, 50)), max_size=40).map(
    lambda pairs: CallWindow.of((NOW - timedelta(minutes=m), c) for m, c in pairs)
)


@given(
    ledgers, st.integers(0, 20_000), st.integers(0, 20_000), st.integers(10, 90), st.integers(0, 48)
)
def test_calls_allowed_never_exceed_the_share_or_the_guard(
    ledger: CallWindow, org_max: int, org_used: int, share: int, reading_hours_ago: int
) -> None:
    figures = room(ledger, org(org_max, org_used, hours_ago(reading_hours_ago)), share, NOW)
    assert figures.calls_allowed >= 0
    assert figures.own_used + figures.calls_allowed <= share_calls(org_max, share) or (
        figures.calls_allowed == 0
    )
    assert figures.org_used + figures.calls_allowed <= guard_calls(org_max) or (
        figures.calls_allowed == 0
    )


# --- Decisions ----------------------------------------------------------------------------


def test_with_room_under_both_limits_calls_go() -> None:
    decision = decide(Api.DATA, spread(100), org(1000, used=300), 70, NOW)
    # Share 700 - own 100 = 600; guard 900 - org 300 = 600.
    assert isinstance(decision, Send)
    assert decision.calls_allowed == 600
    assert not decision.refresh_figures


def test_a_spent_share_pauses_until_the_oldest_own_call_leaves_the_window() -> None:
    ledger = CallWindow.of([(hours_ago(20), 400), (hours_ago(2), 300)])
    decision = decide(Api.DATA, ledger, org(1000, used=700), 70, NOW)
    assert isinstance(decision, Pause)
    assert decision.reason is Reason.WORKSPACE_LIMIT
    assert decision.resume_at == hours_ago(20) + WINDOW
    assert decision.predicted
    # Four hours away: it is looked at again within the recheck interval, at no cost.
    assert decision.next_check == NOW + DEFAULT_RECHECK


def test_a_workspace_limit_pause_resumes_exactly_when_enough_own_calls_expire() -> None:
    ledger = CallWindow.of([(hours_ago(24) + timedelta(minutes=10), 700)])
    decision = decide(Api.DATA, ledger, org(1000, used=700), 70, NOW)
    assert isinstance(decision, Pause)
    assert decision.next_check == decision.resume_at == NOW + timedelta(minutes=10)
    assert not decision.refresh_figures  # no check call: the ledger knows
    assert isinstance(decide(Api.DATA, ledger, org(1000, 700), 70, decision.next_check), Send)
    just_before = decision.next_check - timedelta(microseconds=1)
    assert isinstance(decide(Api.DATA, ledger, org(1000, 700), 70, just_before), Pause)


def test_a_bulk_job_waits_until_its_whole_cost_fits() -> None:
    ledger = CallWindow.of([(hours_ago(23), 2), (hours_ago(22), 3), (hours_ago(1), 5)])
    decision = decide(Api.BULK, ledger, org(14, used=10), 71, NOW, batch_cost=4)
    assert isinstance(decision, Pause)
    # Share 9, own 10: 5 must leave before 4 fit, i.e. both older entries.
    assert decision.resume_at == hours_ago(22) + WINDOW


def test_the_org_guard_pauses_when_other_apps_bring_the_org_to_90_percent() -> None:
    decision = decide(Api.DATA, spread(100), org(1000, used=900), 70, NOW)
    assert isinstance(decision, Pause)
    assert decision.reason is Reason.ORG_GUARD
    assert not decision.predicted
    assert decision.next_check == NOW + DEFAULT_RECHECK
    assert decision.room is not None and decision.room.others_used == 800


def test_an_org_guard_pause_looks_sooner_when_own_expiries_alone_make_room() -> None:
    # The org read 890 ten minutes ago; quotasync's 10 calls since bring it to the guard.
    ledger = CallWindow.of(
        [(hours_ago(24) + timedelta(minutes=5), 10), (NOW - timedelta(minutes=5), 10)]
    )
    decision = decide(Api.DATA, ledger, org(1000, 890, NOW - timedelta(minutes=10)), 70, NOW)
    assert isinstance(decision, Pause) and decision.reason is Reason.ORG_GUARD
    assert decision.next_check == NOW + timedelta(minutes=5)
    assert not decision.predicted


def test_a_reading_at_the_guard_holds_it_until_a_fresh_reading_whatever_expires() -> None:
    # Other apps surging: the answer that showed the org at 90% is the last call. quotasync's
    # own expiries are not room, since other apps' use goes on growing unseen.
    ledger = CallWindow.of([(hours_ago(24) + timedelta(minutes=5), 10)])
    decision = decide(Api.DATA, ledger, org(1000, used=900), 70, NOW)
    assert isinstance(decision, Pause) and decision.reason is Reason.ORG_GUARD
    assert decision.resume_at is None and decision.next_check == NOW + DEFAULT_RECHECK
    assert decision.room is not None and decision.room.guard_held
    after_expiries = NOW + timedelta(minutes=10)
    held = decide(Api.DATA, ledger, org(1000, used=900), 70, after_expiries)
    assert isinstance(held, Pause) and held.room is not None and held.room.calls_allowed == 0
    # A reading below the guard opens it again (it costs the recheck's one call).
    fresh = decide(Api.DATA, ledger, org(1000, 880, at=after_expiries), 70, after_expiries)
    assert isinstance(fresh, Send) and fresh.calls_allowed == 20


def test_with_the_guard_held_a_share_pause_looks_again_but_predicts_nothing() -> None:
    # A 90% share spent by quotasync alone: the reading shows the org at the guard too.
    ledger = CallWindow.of([(hours_ago(24) + timedelta(minutes=5), 900)])
    decision = decide(Api.DATA, ledger, org(1000, used=900), 90, NOW)
    assert isinstance(decision, Pause) and decision.reason is Reason.ORG_GUARD
    assert not decision.predicted


def test_a_guard_pause_looks_again_a_recheck_after_the_reading_not_after_each_look() -> None:
    # Four workers look a few seconds apart on the same reading: they agree on one recheck time,
    # so none of their looks pushes the org's next reading further on.
    read_at = NOW - timedelta(minutes=10)
    looks = [
        decide(Api.DATA, spread(10), org(1000, 900, at=read_at), 70, NOW + timedelta(seconds=s))
        for s in (0, 3, 7, 12)
    ]
    assert {look.next_check for look in looks if isinstance(look, Pause)} == {
        read_at + DEFAULT_RECHECK
    }
    # A reading that is due but not made yet: looked at again in a minute, not in a busy loop.
    overdue = decide(Api.DATA, spread(10), org(1000, 900, at=NOW - 2 * DEFAULT_RECHECK), 70, NOW)
    assert isinstance(overdue, Pause) and overdue.next_check == NOW + timedelta(minutes=1)


def test_a_guard_pause_asks_for_fresh_figures_once_they_are_a_recheck_old() -> None:
    ledger = spread(10)
    fresh = decide(Api.DATA, ledger, org(1000, 900, at=NOW), 70, NOW)
    stale = decide(Api.DATA, ledger, org(1000, 900, at=NOW - DEFAULT_RECHECK), 70, NOW)
    assert isinstance(fresh, Pause) and not fresh.refresh_figures
    assert isinstance(stale, Pause) and stale.refresh_figures


def test_stale_figures_still_let_calls_go_but_ask_for_a_refresh() -> None:
    decision = decide(Api.BULK, CallWindow(), org(15_000, 0, at=hours_ago(2)), 70, NOW)
    assert isinstance(decision, Send) and decision.refresh_figures


def test_data_without_figures_sends_one_call_to_learn_them() -> None:
    assert decide(Api.DATA, CallWindow(), None, 70, NOW) == Send(Api.DATA, 1, refresh_figures=True)


@pytest.mark.parametrize("api", [Api.BULK, Api.BULK_QUERY, Api.APEX])
def test_other_types_without_figures_are_unavailable(api: Api) -> None:
    assert decide(api, CallWindow(), None, 70, NOW) == Unavailable(api)


def test_a_type_the_org_has_none_of_is_unavailable() -> None:
    assert decide(Api.APEX, CallWindow(), org(0, 0), 70, NOW) == Unavailable(Api.APEX)


def test_a_batch_bigger_than_the_whole_share_rechecks_without_a_prediction() -> None:
    decision = decide(Api.BULK, CallWindow(), org(20, 0), 10, NOW, batch_cost=5)
    assert isinstance(decision, Pause)
    assert decision.resume_at is None and not decision.predicted
    assert decision.next_check == NOW + DEFAULT_RECHECK


@given(ledgers, st.integers(1, 3000), st.integers(10, 90), st.integers(1, 5))
def test_a_predicted_resume_time_is_exact(
    ledger: CallWindow, org_max: int, share: int, batch_cost: int
) -> None:
    used = ledger.used(NOW)
    decision = decide(Api.DATA, ledger, org(org_max, used), share, NOW, batch_cost=batch_cost)
    if not (isinstance(decision, Pause) and decision.predicted):
        return
    assert decision.resume_at is not None
    figures = org(org_max, used)
    later = decide(Api.DATA, ledger, figures, share, decision.resume_at, batch_cost=batch_cost)
    assert isinstance(later, Send) and later.calls_allowed >= batch_cost
    earlier = decision.resume_at - timedelta(microseconds=1)
    assert isinstance(
        decide(Api.DATA, ledger, figures, share, earlier, batch_cost=batch_cost), Pause
    )


@given(ledgers, st.integers(0, 3000), st.integers(0, 3000), st.integers(10, 90), st.integers(1, 5))
def test_calls_go_only_when_at_least_one_batch_fits(
    ledger: CallWindow, org_max: int, org_used: int, share: int, batch_cost: int
) -> None:
    decision = decide(Api.DATA, ledger, org(org_max, org_used), share, NOW, batch_cost=batch_cost)
    if isinstance(decision, Send):
        assert decision.calls_allowed >= batch_cost
    if isinstance(decision, Pause):
        assert decision.room is not None and decision.room.calls_allowed < batch_cost
        assert NOW < decision.next_check <= NOW + DEFAULT_RECHECK


def test_outcome_pauses_recheck_after_the_interval() -> None:
    pause = pause_for(Reason.SALESFORCE_REFUSED, Api.DATA, NOW, timedelta(minutes=10))
    assert pause.reason is Reason.SALESFORCE_REFUSED
    assert pause.next_check == NOW + timedelta(minutes=10)
    with pytest.raises(ValueError, match="decide"):
        pause_for(Reason.ORG_GUARD, Api.DATA, NOW)


# --- Episodes -----------------------------------------------------------------------------


def share_pause(at: datetime = NOW) -> Pause:
    return Pause(Api.DATA, Reason.WORKSPACE_LIMIT, next_check=at + timedelta(minutes=5))


def test_a_pause_starts_one_episode_and_a_send_ends_it() -> None:
    started = step_episode(None, share_pause(), NOW)
    assert started.episode is not None and started.episode.started_at == NOW
    assert started.events == (PauseStarted(started.episode),)
    ended = step_episode(started.episode, Send(Api.DATA, 5), NOW + timedelta(hours=1))
    assert ended.episode is None
    [event] = ended.events
    assert isinstance(event, PauseEnded)
    assert event.episode.ended_at == NOW + timedelta(hours=1)


def test_pausing_again_for_the_same_reason_sends_nothing_new() -> None:
    episode = step_episode(None, share_pause(), NOW).episode
    later = NOW + timedelta(minutes=5)
    again = step_episode(episode, share_pause(later), later)
    assert again.events == ()
    assert again.episode is not None and again.episode.started_at == NOW
    assert again.episode.next_check == later + timedelta(minutes=5)


def test_a_look_before_the_check_is_due_never_puts_the_check_off() -> None:
    # Two workers look at one pause: the second's look, a minute after the first, must not
    # move the check the first set; once that check has come, the next look sets the next one.
    guard = Pause(Api.DATA, Reason.ORG_GUARD, next_check=NOW + timedelta(minutes=5))
    episode = step_episode(None, guard, NOW).episode
    later = Pause(Api.DATA, Reason.ORG_GUARD, next_check=NOW + timedelta(minutes=6))
    kept = step_episode(episode, later, NOW + timedelta(minutes=4, seconds=50)).episode
    assert kept is not None and kept.next_check == NOW + timedelta(minutes=5)
    sooner = Pause(Api.DATA, Reason.ORG_GUARD, next_check=NOW + timedelta(minutes=4))
    moved = step_episode(kept, sooner, NOW + timedelta(minutes=3)).episode
    assert moved is not None and moved.next_check == NOW + timedelta(minutes=4)
    after = Pause(Api.DATA, Reason.ORG_GUARD, next_check=NOW + timedelta(minutes=11))
    due = step_episode(moved, after, NOW + timedelta(minutes=6)).episode
    assert due is not None and due.next_check == NOW + timedelta(minutes=11)


def test_a_change_of_reason_goes_on_with_the_same_episode_and_tells_nobody() -> None:
    # Syncing has not resumed in between: a "resumed" email would be false, a second
    # "paused" one noise. The episode keeps its start and now names the current reason.
    episode = step_episode(None, share_pause(), NOW).episode
    guard = Pause(Api.DATA, Reason.ORG_GUARD, next_check=NOW + DEFAULT_RECHECK)
    step = step_episode(episode, guard, NOW + timedelta(minutes=1))
    assert step.events == ()
    assert step.episode is not None and step.episode.reason is Reason.ORG_GUARD
    assert step.episode.started_at == NOW


def test_an_unavailable_type_is_not_a_pause() -> None:
    assert step_episode(None, Unavailable(Api.APEX), NOW).events == ()


def test_a_decision_for_another_type_cannot_step_an_episode() -> None:
    episode = Episode(Api.DATA, Reason.AUTH, NOW, NOW)
    with pytest.raises(ValueError, match="bulk"):
        step_episode(episode, Send(Api.BULK, 1), NOW)


decisions = st.lists(
    st.one_of(
        st.builds(lambda: Send(Api.DATA, 1)),
        st.sampled_from(list(Reason)).map(lambda r: Pause(Api.DATA, r, next_check=NOW)),
        st.just(Unavailable(Api.DATA)),
    ),
    max_size=30,
)


@given(decisions)
def test_episodes_emit_one_start_and_one_end_each_alternating(steps: list[Decision]) -> None:
    episode: Episode | None = None
    events: list[PauseStarted | PauseEnded] = []
    for minute, decision in enumerate(steps):
        step = step_episode(episode, decision, NOW + timedelta(minutes=minute))
        episode = step.episode
        events.extend(step.events)
    kinds = [type(event) for event in events]
    assert kinds[::2] == [PauseStarted] * len(kinds[::2])
    assert kinds[1::2] == [PauseEnded] * len(kinds[1::2])
    starts = [e.episode.started_at for e in events if isinstance(e, PauseStarted)]
    assert len(starts) == len(set(starts))
    assert (episode is not None) == (len(kinds) % 2 == 1)


# --- Warning ------------------------------------------------------------------------------


def test_a_warning_goes_once_when_use_passes_80_percent_of_the_share() -> None:
    assert not warning_due(559, 700, None, NOW)
    assert warning_due(560, 700, None, NOW)
    assert not warning_due(600, 700, hours_ago(23), NOW)
    assert warning_due(600, 700, hours_ago(24), NOW)


def test_no_warning_without_a_share() -> None:
    assert not warning_due(0, 0, None, NOW)


# --- Pacing -------------------------------------------------------------------------------


# These take the old 2-second delay and 300-second ceiling as the workspace's settings: the
# arithmetic is the same for any `log_within`.
SHORT_DELAY, SHORT_CEILING = 2.0, 300.0


def test_a_quiet_workspace_keeps_the_short_delay() -> None:
    # 0.005 activities/s is 432 calls a day at worst: well inside a share of 700.
    pacing = paced_delay(
        spread(100), 700, NOW, rate=0.005, base_delay=SHORT_DELAY, max_delay=SHORT_CEILING
    )
    assert pacing.delay == 2.0
    assert not pacing.paced


def test_a_busy_day_fills_batches_so_the_share_lasts() -> None:
    # 2 activities/s at 2 s batches would spend 0.5 calls/s; 8,640 calls a day bear 0.1 calls/s.
    pacing = paced_delay(
        CallWindow(), 8_640, NOW, rate=2.0, base_delay=SHORT_DELAY, max_delay=SHORT_CEILING
    )
    assert pacing.paced and pacing.avoids_pause
    assert pacing.delay == pytest.approx(10.0)
    assert "batches wait 10 s" in pacing.why


def test_pacing_stops_at_the_maximum_delay_and_says_a_pause_is_likely() -> None:
    pacing = paced_delay(
        spread(690), 700, NOW, rate=0.5, base_delay=SHORT_DELAY, max_delay=SHORT_CEILING
    )
    assert pacing.delay == 300.0
    assert not pacing.avoids_pause
    assert "pause is still likely" in pacing.why


def test_by_default_activities_are_logged_within_a_minute_and_held_longer_only_to_last_the_day() -> (
    None
):
    # 0.5 activities/s in batches of 30 (a minute's worth) spend 0.0167 calls/s, which a share
    # of 8,640 a day (0.1 calls/s) bears: no pacing.
    calm = paced_delay(CallWindow(), 8_640, NOW, rate=0.5)
    assert (calm.delay, calm.paced) == (LOG_WITHIN, False) == (60.0, False)
    # A share of 864 a day bears 0.01 calls/s: batches wait 100 s, past the minute.
    tight = paced_delay(CallWindow(), 864, NOW, rate=0.5)
    assert tight.paced and tight.avoids_pause
    assert tight.delay == pytest.approx(100.0)
    # Nothing left at all: held as long as the ceiling allows, 15 minutes for a new workspace.
    spent = paced_delay(spread(700), 700, NOW, rate=0.5)
    assert spent.delay == MAX_BATCH_DELAY == 900.0


def test_a_held_guard_is_not_paced_the_batch_meets_it_and_its_pause_rechecks() -> None:
    # The same busy day as above would wait the whole ceiling; with the guard held, the delay
    # the admin chose, so the batch meets the guard and opens the pause that looks again.
    held = paced_delay(spread(700), 700, NOW, rate=0.5, guard_held=True)
    assert (held.delay, held.paced, held.avoids_pause) == (LOG_WITHIN, False, False)
    assert "guard" in held.why
    # Nothing arriving: nothing to pause, nothing said to be likely.
    assert paced_delay(CallWindow(), 700, NOW, rate=0.0, guard_held=True).avoids_pause


def test_expiring_own_calls_count_toward_what_the_share_bears() -> None:
    recent = CallWindow.of([(hours_ago(1), 600)])
    old = CallWindow.of([(hours_ago(23), 600)])
    two_hours = timedelta(hours=2)
    assert bearable_rate(old, 700, NOW, two_hours) > bearable_rate(recent, 700, NOW, two_hours)
    # Just before the old calls expire (in one hour), only 100 calls are left for that hour.
    assert bearable_rate(old, 700, NOW, two_hours) == pytest.approx(100 / 3600, rel=1e-6)


def test_over_the_whole_window_the_share_bears_its_daily_average() -> None:
    # Whatever has been spent, every call counted now is back within 24 hours.
    assert bearable_rate(CallWindow.of([(hours_ago(23), 600)]), 864, NOW) == pytest.approx(0.01)


def _bearable_by_definition(
    ledger: CallWindow, share: int, now: datetime, horizon: timedelta
) -> float:
    """The rate as its definition says it, one moment at a time (quadratic: for checking)."""
    left = max(0, share - ledger.used(now))
    end = now + horizon
    tick = timedelta(microseconds=1)
    moments = sorted({at + WINDOW for at, _ in ledger.entries if now < at + WINDOW < end})
    rooms = [(left + ledger.expiring(now, m - tick), m - now) for m in moments]
    rooms.append((left + ledger.expiring(now, end), horizon))
    return min(calls / span.total_seconds() for calls, span in rooms)


@given(ledgers, st.integers(0, 5000), st.integers(1, 24 * 60))
def test_the_bearable_rate_is_the_least_room_over_its_span_at_each_expiry(
    ledger: CallWindow, share: int, horizon_minutes: int
) -> None:
    horizon = timedelta(minutes=horizon_minutes)
    assert bearable_rate(ledger, share, NOW, horizon) == _bearable_by_definition(
        ledger, share, NOW, horizon
    )


@given(ledgers, st.integers(0, 5000), st.floats(0, 50))
def test_the_paced_delay_stays_within_its_bounds(
    ledger: CallWindow, share: int, rate: float
) -> None:
    pacing = paced_delay(ledger, share, NOW, rate, base_delay=SHORT_DELAY, max_delay=SHORT_CEILING)
    assert 2.0 <= pacing.delay <= 300.0
    assert pacing.paced == (pacing.delay > 2.0)
