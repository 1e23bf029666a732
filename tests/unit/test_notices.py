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
        "the org used 150 of 200." in notice.body
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
