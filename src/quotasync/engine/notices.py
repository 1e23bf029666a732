"""What the admins are told (RULES.md: Tell the admins), as text: the subject and body of each
email — a pause started, a pause ended (Real-Time Sync's rollover for Apex), a share warning.
Pure: the notifier (`engine/notifier.py`) decides what to send when, the mailers
(`engine/mailers.py`) send it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from quotasync.domain import governor
from quotasync.domain.governor import Reason
from quotasync.store import quota_rows
from quotasync.store.tables import PauseEpisode, Workspace

API_NAMES = {
    "data": "Data API calls",
    "bulk": "Bulk API batches",
    "bulk_query": "Bulk API query jobs",
    "apex": "async Apex executions",
}


@dataclass(frozen=True)
class Notice:
    subject: str
    body: str


def pause_started(workspace: Workspace, episode: PauseEpisode) -> Notice:
    if episode.api == "apex":
        return rollover_started(workspace, episode)
    calls = API_NAMES.get(episode.api, episode.api)
    lines = [
        f'quotasync has paused syncing with Salesforce for the workspace "{workspace.name}" '
        f"since {_when(episode.started_at)}.",
        "",
        f"Why: {_why(episode.reason, calls)} ({episode.reason}).",
    ]
    figures = figures_text(episode.figures, calls)
    if figures:
        lines.append(f"Figures: {figures}")
    lines += ["", *_nothing_lost(episode), "", "What you can do:"]
    lines += [f"- {step}" for step in _what_to_do(workspace, episode, calls)]
    return Notice(
        f"quotasync paused syncing for {workspace.name}: {episode.reason}", "\n".join(lines) + "\n"
    )


def rollover_started(workspace: Workspace, episode: PauseEpisode) -> Notice:
    """Apex has no room: Real-Time Sync hands over to Interval Sync (RULES.md: Real-Time Sync falls
    back)."""
    calls = API_NAMES["apex"]
    lines = [
        f'Real-Time Sync for the workspace "{workspace.name}" is off since '
        f"{_when(episode.started_at)}: {_why(episode.reason, calls)} ({episode.reason}).",
    ]
    figures = figures_text(episode.figures, calls)
    if figures:
        lines.append(f"Figures: {figures}")
    lines += [
        "",
        f"Nothing is missed: quotasync now queries the org's changes every "
        f"{workspace.sync_interval_minutes} minutes (Interval Sync) instead of receiving them as "
        "they happen, and switches Real-Time Sync back on by itself, with a catch-up, when "
        "there is Apex room again. You will get one more email then.",
        "",
        "What you can do:",
        f"- {_raise_share(workspace, 'apex')}",
        "- or wait: the org's async Apex executions leave the 24-hour window by themselves",
    ]
    return Notice(
        f"quotasync switched {workspace.name} to Interval Sync: {episode.reason}",
        "\n".join(lines) + "\n",
    )


def pause_ended(workspace: Workspace, episode: PauseEpisode) -> Notice:
    assert episode.ended_at is not None
    if episode.api == "apex":
        return Notice(
            f"quotasync switched Real-Time Sync back on for {workspace.name}",
            f'Real-Time Sync for the workspace "{workspace.name}" is back on since '
            f"{_when(episode.ended_at)}, after {_duration(episode.ended_at - episode.started_at)} "
            "of Interval Sync; a catch-up query brought in every change made meanwhile.\n",
        )
    lasted = _duration(episode.ended_at - episode.started_at)
    meanwhile = (
        "Meanwhile it wrote the waiting activities, oldest first, as its calls freed up; the "
        "backlog is written (or small enough that the limit no longer holds it back).\n"
        if episode.reason in LIMIT_REASONS
        else "The activities stored meanwhile are being written now, oldest first.\n"
    )
    body = (
        f'quotasync resumed syncing with Salesforce for the workspace "{workspace.name}" '
        f"at {_when(episode.ended_at)}.\n\n"
        f"It had paused at {_when(episode.started_at)} ({episode.reason}), for {lasted}. "
        + meanwhile
    )
    return Notice(f"quotasync resumed syncing for {workspace.name}", body)


# The pauses of a limit (the share, the guard): one episode covers the whole backlog, written as
# quotasync's calls free up, so one email says it began and one that it is over.
LIMIT_REASONS = frozenset(reason.value for reason in governor.FIGURE_REASONS)


def _nothing_lost(episode: PauseEpisode) -> list[str]:
    if episode.reason in LIMIT_REASONS:
        return [
            "Nothing is lost: new activities are still accepted and stored. quotasync writes "
            "them, oldest first, whenever room frees up in the 24-hour window, and sends one "
            "more email when the backlog is written or the limit no longer holds it back; none "
            "in between. Changes made in the org meanwhile reach quotasync when it has room."
        ]
    return [
        "Nothing is lost: new activities are still accepted and stored, and they are written, "
        "oldest first, as soon as syncing resumes, when the org's changes made meanwhile are "
        "read too. You will get one more email then."
    ]


def share_warning(workspace: Workspace, api: str, own_used: int, share: int) -> Notice:
    calls = API_NAMES.get(api, api)
    percent = own_used * 100 // share if share else 100
    body = (
        f"quotasync has used {_n(own_used)} of its share of {_n(share)} {calls} in the last 24 "
        f'hours ({percent}%) for the workspace "{workspace.name}".\n\n'
        "When the share is spent, syncing pauses until quotasync's own calls leave the 24-hour "
        "window; nothing is lost meanwhile.\n\n"
        "What you can do:\n"
        f"- {_raise_share(workspace, api)}\n"
        + (f"- {_open_tracking(workspace)}\n" if api == "data" else "")
    )
    return Notice(f"quotasync has used {percent}% of its {calls} share for {workspace.name}", body)


def figures_text(figures: dict[str, Any], calls: str) -> str:
    """'quotasync used X of its share of Y <calls>; the org used Z of T.', as far as known."""
    parts = []
    if figures.get("own_used") is not None and figures.get("share_calls") is not None:
        parts.append(
            f"quotasync used {_n(figures['own_used'])} of its share of "
            f"{_n(figures['share_calls'])} {calls} in the last 24 hours"
        )
    if figures.get("org_used") is not None and figures.get("org_max") is not None:
        org = f"the org used {_n(figures['org_used'])} of {_n(figures['org_max'])}"
        own = figures.get("own_used")
        if isinstance(own, int) and isinstance(figures["org_used"], int):
            org += f", {_n(max(0, figures['org_used'] - own))} of them by other apps"
        parts.append(org)
    return "; ".join(parts) + "." if parts else ""


def _why(reason: str, calls: str) -> str:
    why: dict[str, str] = {
        Reason.WORKSPACE_LIMIT: f"quotasync reached its share of the org's {calls}",
        Reason.ORG_GUARD: f"the org as a whole (quotasync and every other app) reached 90% of "
        f"its {calls}, and quotasync leaves the rest to the others",
        Reason.SALESFORCE_REFUSED: "Salesforce refused quotasync's calls (REQUEST_LIMIT_EXCEEDED)",
        Reason.NO_API_ACCESS: "the sync user cannot use the Salesforce API",
        Reason.AUTH: "Salesforce no longer accepts quotasync's login",
    }
    return why.get(reason, reason)


def _what_to_do(workspace: Workspace, episode: PauseEpisode, calls: str) -> list[str]:
    if episode.reason == Reason.NO_API_ACCESS:
        return [
            'give the sync user the "API Enabled" permission in Salesforce (and "View Setup and '
            "Configuration\", so quotasync can read the org's limits)"
        ]
    if episode.reason == Reason.AUTH:
        return [
            f"connect the workspace again: `quotasync connect --workspace {workspace.id} ...` with the org's login details"
        ]
    if episode.reason == Reason.ORG_GUARD:
        # quotasync's own share is not what ran out: raising it cannot help.
        return [
            "see which other apps use the org's calls: the Integrations page shows quotasync's "
            "use, other apps' use and what is left; in Salesforce, Setup > System Overview > "
            "API usage names them",
            "ask their owners to call less, or buy more API calls from Salesforce (the org's "
            "daily total grows with its licenses and add-ons)",
            f"or wait: quotasync looks again every {workspace.recheck_minutes} minutes (one call "
            "each time) and resumes by itself when the org is back under 90%",
        ]
    steps = []
    if episode.reason == Reason.WORKSPACE_LIMIT:
        steps.append(_raise_share(workspace, episode.api))
        if episode.api == "data":
            steps.append(_open_tracking(workspace))
    if episode.resume_at is not None:
        steps.append(
            f"or wait until {_when(episode.resume_at)}, when enough of quotasync's calls leave "
            "the 24-hour window; syncing resumes by itself"
        )
    else:
        steps.append(
            f"or wait: quotasync looks again every {workspace.recheck_minutes} minutes (at no "
            "cost in calls) and resumes by itself when there is room"
        )
    return steps


def _raise_share(workspace: Workspace, api: str) -> str:
    share_api = quota_rows.SHARE_OF.get(api, api)
    return (
        "raise quotasync's share (10-90%) with the slider on the Integrations page, or "
        f"`quotasync limit set --workspace {workspace.id} --api {share_api} --percent <n>`"
    )


def _open_tracking(workspace: Workspace) -> str:
    return (
        'turn off open tracking (untick "Log email opens" on the Integrations page): opens and '
        "clicks then stop updating their emails' Tasks, which spares the calls of emails opened "
        "after they were logged"
    )


def where_to_look(workspace_id: str, public_url: str | None) -> str:
    """The email's last line: the page that shows it all (its address when quotasync knows it)."""
    if public_url:
        return f"See it on the Integrations page: {public_url.rstrip('/')}/w/{workspace_id}/integrations"
    return (
        "See it on quotasync's Integrations page, or with "
        f"`quotasync usage --workspace {workspace_id}`."
    )


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
