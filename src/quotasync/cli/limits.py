"""`quotasync limit` (show, set) and `quotasync usage`: the API quotas and what was spent."""

from __future__ import annotations

import getpass
import json
from typing import TYPE_CHECKING, Annotated

import typer

from quotasync.cli import common
from quotasync.domain.realtime import SyncMode

if TYPE_CHECKING:
    from datetime import datetime

    from rich.table import Table

    from quotasync.runtime import Runtime
    from quotasync.store.tables import Workspace
    from quotasync.usage import ApiUsage, Limited, Pause, SettingsView, UsageView

limit_app = typer.Typer(
    help="quotasync's share of each API quota: show and set.", no_args_is_help=True
)


def _usage_view(runtime: Runtime, workspace: Workspace) -> UsageView:
    from quotasync import usage

    with runtime.sessions() as session:
        return usage.view(session, workspace, runtime.clock.now())


@limit_app.command("show")
def limit_show(workspace: common.WorkspaceOption, as_json: common.JsonOption = False) -> None:
    """quotasync's share of each API quota, the org's figures, what is left, and whether syncing
    of each type runs or is paused."""
    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    view = _usage_view(runtime, ws)
    if as_json:
        typer.echo(json.dumps(view.as_dict()))
        return
    from rich.console import Console

    if view.sync_user is None:
        from quotasync.usage import NO_SYNC_USER

        typer.echo(f"{ws.id}: {NO_SYNC_USER}")
    Console().print(_limits_table(view))
    for reason, apis in _unavailable(view).items():
        typer.echo(f"{', '.join(apis)}: unavailable: {reason}")
    for api in view.apis.values():
        if view.sync_user is None:
            continue  # nothing runs or pauses without an org: the line above says so
        if api.available or api.pauses:  # an unavailable type's line above says all there is
            typer.echo(f"{api.api}: {_state_text(api)}")
        for pause in api.pauses:
            if pause.limited is not None:
                typer.echo(f"{api.api}: {limited_text(pause.limited)}")
        if api.pacing is not None and api.pacing.on:
            typer.echo(f"{api.api}: pacing on: {api.pacing.why}")
    typer.echo(_settings_text(view.settings))


def _limits_table(view: UsageView) -> Table:
    from rich.table import Table

    table = Table("API", "share", "quotasync", "other apps", "left", "org total", "guard (90%)")
    for api in view.apis.values():
        table.add_row(api.api, *_limit_cells(api))
    return table


def _limit_cells(api: ApiUsage) -> list[str]:
    share, used = f"{api.share_percent}%", f"{api.quotasync_used:,}"
    figures = api.figures
    if not api.available:
        return [share, used, "-", "-", "unavailable", "-"]
    if figures is None:
        return [share, used, "-", "-", "not reported yet", "-"]
    return [
        f"{share} ({figures.share_calls:,} calls)",
        used,
        f"{figures.other_apps_used:,}",
        f"{figures.left:,}",
        f"{figures.org_max:,}",
        f"{figures.guard_calls:,}",
    ]


def _unavailable(view: UsageView) -> dict[str, list[str]]:
    """API types without figures, grouped by why: Bulk and Apex share one reason."""
    grouped: dict[str, list[str]] = {}
    for api in view.apis.values():
        if api.unavailable_reason is not None:
            grouped.setdefault(api.unavailable_reason, []).append(api.api)
    return grouped


def _state_text(api: ApiUsage) -> str:
    if not api.pauses:
        return api.state
    return "; ".join(_pause_text(api.api, pause) for pause in api.pauses)


def _pause_text(api: str, pause: Pause) -> str:
    which = "" if pause.api == api else f"{pause.api} "  # Bulk's query jobs pause on their own
    text = (
        f"{which}paused since {_when(pause.started_at)} ({pause.reason}); "
        f"next check {_when(pause.next_check)}"
    )
    if pause.resume_predicted:
        text += f"; resumes at {_when(pause.resume_at)}"
    return text


def limited_text(limited: Limited) -> str:
    """'limited: N waiting, written by about T (how T is worked out)'."""
    waiting = f"limited: {limited.waiting:,} waiting"
    if limited.written_by is None:
        return f"{waiting}, written when the org has room again (read at each recheck)"
    per_call = (
        f"{limited.per_call:,.0f} activities a call (the last 24 hours' average)"
        if limited.measured
        else f"a full call of {limited.per_call:,.0f} activities"
    )
    return (
        f"{waiting}, written by about {_when(limited.written_by)} "
        f"(as quotasync's calls leave the 24-hour window, at {per_call})"
    )


def _settings_text(settings: SettingsView) -> str:
    return (
        f"while paused, quotasync looks again every {settings.recheck_minutes} minutes; "
        f"the admins are warned past {settings.warning_percent}% of a share; "
        f"activities are logged within {settings.log_within:g} s (pacing may hold them up to "
        f"{settings.max_batch_delay:g} s when the share would otherwise run out)"
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


@limit_app.command("set")
def limit_set(
    workspace: common.WorkspaceOption,
    api: Annotated[
        str | None, typer.Option("--api", help="data, bulk or apex (with --percent).")
    ] = None,
    percent: Annotated[
        str | None, typer.Option("--percent", help="quotasync's share of that API, 10 to 90.")
    ] = None,
    recheck_minutes: Annotated[
        int | None,
        typer.Option("--recheck-minutes", help="While paused, look again this often (5-1440)."),
    ] = None,
    warning_percent: Annotated[
        int | None,
        typer.Option("--warning-percent", help="Warn the admins past this % of a share (1-100)."),
    ] = None,
    log_within: Annotated[
        float | None,
        typer.Option(
            "--log-within",
            metavar="SECONDS",
            help="Log activities within this many seconds (5 to 900; new workspaces: 60).",
        ),
    ] = None,
    max_batch_delay: Annotated[
        float | None,
        typer.Option(
            "--max-batch-delay",
            metavar="SECONDS",
            help="When the share would otherwise run out, pacing may hold activities up to this "
            "many seconds (from --log-within to 3600).",
        ),
    ] = None,
) -> None:
    """Change the workspace's quota settings: a share (10-90%), the recheck interval, the warning
    threshold, how soon activities are logged, the longest paced delay. Each applies at once."""
    from quotasync.domain import governor
    from quotasync.services import shares
    from quotasync.services.workspace import NoSuchWorkspace

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    if (api is None) != (percent is None):
        common.fail("--api and --percent go together: which API type's share, and how much")
    wanted = (recheck_minutes, warning_percent, log_within, max_batch_delay)
    if api is None and wanted == (None, None, None, None):
        common.fail(
            "nothing to set: give --api with --percent, --recheck-minutes, --warning-percent, "
            "--log-within or --max-batch-delay"
        )
    share: dict[str, object] = {}
    if api is not None and percent is not None:
        # A whole number as typed ("-5" said back as -5); anything else as the text it is.
        share[api] = int(percent) if percent.strip().lstrip("-").isdigit() else percent
    settings = shares.SettingsChange(
        recheck_minutes=recheck_minutes,
        warning_percent=warning_percent,
        log_within=log_within,
        max_batch_delay=max_batch_delay,
    )
    try:  # all or nothing: a refusal stores none of the rest
        changed = shares.change(
            runtime.sessions,
            ws.id,
            shares=share,
            settings=settings,
            by=f"{getpass.getuser()} (command line)",
            now=runtime.clock.now(),
        )
    except (governor.ShareError, governor.SettingsError, NoSuchWorkspace) as exc:
        common.fail(str(exc))
    told = [
        f"quotasync may use {value}% of the org's {api_name} quota"
        for api_name, value in changed.set_shares.items()
    ]
    told.extend(SETTING_TEXT[column].format(value) for column, value in changed.settings.items())
    for text in told:
        typer.echo(f"{ws.id}: {text}")


SETTING_TEXT = {
    "recheck_minutes": "while paused, quotasync looks again every {} minutes",
    "warning_percent": "the admins are warned once use passes {}% of a share",
    "log_within": "activities are logged within {:g} seconds",
    "max_batch_delay": "pacing may hold activities up to {:g} seconds",
}


def usage(workspace: common.WorkspaceOption, as_json: common.JsonOption = False) -> None:
    """What quotasync, other apps and each member spent of the org's quotas in the past 24 hours,
    and whether syncing runs or is paused."""
    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    view = _usage_view(runtime, ws)
    if as_json:
        typer.echo(json.dumps(view.as_dict()))
        return
    if view.sync_user is None:
        from quotasync.usage import NO_SYNC_USER

        typer.echo(f"{ws.id}: {NO_SYNC_USER}")
    for api in view.apis.values():
        text = _usage_text(api)
        if view.sync_user is None:  # not "running": nothing syncs without an org
            text = text.replace(f"; {api.state}", "; not connected")
        typer.echo(f"{api.api:>5}: {text}")
        for pause in api.pauses:
            typer.echo(f"{'':7}{_pause_text(api.api, pause)}")
            if pause.limited is not None:
                typer.echo(f"{'':7}{limited_text(pause.limited)}")
        if api.pacing is not None and api.pacing.on:
            typer.echo(f"{'':7}pacing on: {api.pacing.why}")
    typer.echo(f" sync: {_sync_text(view)}")
    for member in view.members:
        share = (
            f", {member.share_of_org:.2%} of the org's Data calls"
            if member.share_of_org is not None
            else ""
        )
        typer.echo(f"  {member.email}: {member.calls:,.2f} Data calls in the past 24 hours{share}")


def _sync_text(view: UsageView) -> str:
    if view.sync_mode == SyncMode.REALTIME:
        return "Real-Time Sync (the org pushes changes; each push spends one async Apex execution)"
    rolled = any(p.reason for p in view.apis["apex"].pauses)
    return f"Interval Sync every {view.settings.sync_interval_minutes} minutes" + (
        " (rolled over from Real-Time Sync: no Apex room)" if rolled else ""
    )


def _usage_text(api: ApiUsage) -> str:
    if not api.available:
        return f"unavailable: {api.unavailable_reason}"
    figures = api.figures
    if figures is None:
        return (
            f"quotasync {api.quotasync_used:,} (org figures not reported yet); "
            f"share {api.share_percent}%; {api.state}"
        )
    return (
        f"quotasync {api.quotasync_used:,}, other apps {figures.other_apps_used:,}, "
        f"left {figures.left:,} of {figures.org_max:,}; share {api.share_percent}% = "
        f"{figures.share_calls:,} calls, guard {figures.guard_calls:,} calls; {api.state}"
    )
