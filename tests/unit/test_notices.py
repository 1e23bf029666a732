"""The text of the admins' emails (RULES.md: Tell the admins): the reason, the figures, and what to
do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from quotasync.engine import notices
from quotasync.store.tables import PauseEpisode, Workspace

START = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)
ACME = Workspace(id="ws_1", name="Acme", recheck_minutes=30, warning_percent=80)
FIGURES = {"own_used": 20, "share_calls": 20, "org_used": 150, "org_max": 200}


def episode(reason: str = "workspace_limit", **values: object) -> PauseEpisode:
    return PauseEpisode(
        id=1,
        workspace_id="ws_1",
        api="data",
        reason=reason,
        started_at=START,
        next_check=START + timedelta(minutes=30),
        **{"figures": FIGURES, **values},
    )


def test_a_share_pause_names_the_reason_the_figures_and_the_three_ways_out() -> None:
    notice = notices.pause_started(ACME, episode(resume_at=START + timedelta(hours=23)))
    assert notice.subject == "quotasync paused syncing for Acme: workspace_limit"
    assert (
        "quotasync reached its share of the org's Data API calls (workspace_limit)" in notice.body
    )
    assert (
        "quotasync used 20 of its share of 20 Data API calls in the last 24 hours; "
        "the org used 150 of 200, 130 of them by other apps." in notice.body
    )
    assert "`quotasync limit set --workspace ws_1 --api data --percent <n>`" in notice.body
    assert "turn off open tracking" in notice.body
    assert "wait until 2026-11-29 13:00 UTC" in notice.body


def test_a_refusal_without_figures_says_only_what_is_known() -> None:
    notice = notices.pause_started(ACME, episode("salesforce_refused", figures={}))
    assert "REQUEST_LIMIT_EXCEEDED" in notice.body
    assert "Figures:" not in notice.body
    assert "limit set" not in notice.body
    assert "looks again every 30 minutes" in notice.body


def test_the_resume_says_when_and_how_long_the_pause_lasted() -> None:
    ended = episode(ended_at=START + timedelta(hours=23, minutes=59))
    notice = notices.pause_ended(ACME, ended)
    assert notice.subject == "quotasync resumed syncing for Acme"
    assert "at 2026-11-29 13:59 UTC" in notice.body
    assert "(workspace_limit), for 23 h 59 min" in notice.body


def test_the_warning_gives_the_use_against_the_share() -> None:
    notice = notices.share_warning(ACME, "bulk_query", 17, 20)
    assert notice.subject == "quotasync has used 85% of its Bulk API query jobs share for Acme"
    assert "used 17 of its share of 20 Bulk API query jobs" in notice.body
    assert "--api bulk " in notice.body


def test_a_guard_pause_points_at_the_other_apps_not_at_quotasyncs_share() -> None:
    # Other apps took the org past 90%; quotasync had used 68 of its 84,000.
    figures = {"own_used": 68, "share_calls": 84_000, "org_used": 108_100, "org_max": 120_000}
    notice = notices.pause_started(ACME, episode("org_guard", figures=figures))
    assert "limit set" not in notice.body and "raise quotasync's share" not in notice.body
    assert "open tracking" not in notice.body
    assert (
        "quotasync used 68 of its share of 84,000 Data API calls in the last 24 hours; the org "
        "used 108,100 of 120,000, 108,032 of them by other apps." in notice.body
    )
    assert "see which other apps use the org's calls" in notice.body
    assert "buy more API calls" in notice.body
    assert "looks again every 30 minutes (one call each time)" in notice.body


def test_no_sentence_is_broken_across_lines() -> None:
    for notice in (
        notices.pause_started(ACME, episode()),
        notices.pause_started(ACME, episode("org_guard")),
        notices.pause_started(ACME, episode("salesforce_refused", figures={})),
        notices.share_warning(ACME, "data", 17_000, 20_000),
    ):
        for line in notice.body.splitlines():
            # Each line starts a paragraph or a list item: a sentence wrapped by hand would
            # leave a line starting mid-sentence.
            assert line == "" or line.startswith(("- ", "quotasync")) or line[0].isupper(), line


def test_open_tracking_advice_says_what_it_saves_and_where_to_turn_it_off() -> None:
    notice = notices.share_warning(ACME, "data", 17_000, 20_000)
    assert "used 17,000 of its share of 20,000 Data API calls" in notice.body
    assert 'untick "Log email opens" on the Integrations page' in notice.body
    assert "one call each" not in notice.body  # opens are batched with their email's Task
    assert "open tracking" not in notices.share_warning(ACME, "bulk", 17, 20).body


def test_the_email_ends_with_the_page_to_look_at() -> None:
    assert notices.where_to_look("ws_1", "https://sync.acme.example/") == (
        "See it on the Integrations page: https://sync.acme.example/w/ws_1/integrations"
    )
    assert "quotasync usage --workspace ws_1" in notices.where_to_look("ws_1", None)
