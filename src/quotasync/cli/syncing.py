"""`quotasync sync` and `quotasync rts`: Interval Sync and Real-Time Sync of the mirror."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from quotasync.cli import common

if TYPE_CHECKING:
    from quotasync.engine.sync import SyncReport

rts_app = typer.Typer(
    help="Real-Time Sync: the org pushes changes as they happen (spends async Apex).",
    no_args_is_help=True,
)


def sync(
    workspace: common.WorkspaceOption,
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Load every record again, not only the changes (except types loaded in full "
            "within the sync interval, as `connect` does: those go on from that load).",
        ),
    ] = False,
    as_json: common.JsonOption = False,
) -> None:
    """Bring the org's Users, Accounts, Contacts, Leads and Opportunities into the mirror: all of
    them the first time (or with --full), the changes since the last sync after that."""
    from rich.console import Console
    from rich.progress import Progress

    from quotasync import errors
    from quotasync.engine.sync import ObjectReport, Syncer

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    syncer = Syncer(runtime.connector, ws.id, runtime.clock)
    with Progress(disable=as_json, console=Console(stderr=True)) as bar:
        tasks: dict[str, Any] = {}

        def show(report: ObjectReport) -> None:
            if report.sobject not in tasks:
                what = "loading" if report.full else "syncing"
                tasks[report.sobject] = bar.add_task(f"{what} {report.sobject}", total=None)
            if report.counted == 0 and report.done:  # nothing to fetch: complete all the same
                bar.update(tasks[report.sobject], total=1, completed=1)
            else:
                bar.update(tasks[report.sobject], total=report.counted, completed=report.fetched)

        try:
            report = syncer.run(full=full, on_progress=show)
        except (errors.NotConnected, errors.NotFound) as exc:
            common.fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        from quotasync.engine import sync as sync_engine

        with runtime.sessions() as session:
            held = sync_engine.live_counts(session, ws.id, report.objects)
        _print_sync(report, held)
    if report.paused is not None:
        typer.echo(f"error: {report.paused.message}", err=True)
    elif report.error is not None:
        typer.echo(f"error: sync stopped: {report.error}", err=True)
    for failed in (o for o in report.objects.values() if o.error):
        typer.echo(f"error: {failed.sobject} not synced: {failed.error}", err=True)
    if not report.complete or report.paused is not None or report.error is not None:
        raise typer.Exit(1)


def _print_sync(report: SyncReport, held: dict[str, int]) -> None:
    """The run, a row per type, with what the mirror holds after it: a sync right after the load
    at connect fetches nothing, and says the mirror is up to date rather than only zeros."""
    from rich.console import Console
    from rich.table import Table

    # Eight columns would cut the names at 80: the count the org gave is in --json.
    table = Table("object", "via", "fetched", "applied", "deleted", "in mirror", "state")
    for o in report.objects.values():
        if o.done and o.fetched == 0 and not o.full:
            state = "up to date"
        else:
            state = "done" if o.done else ("failed" if o.error else "not done")
        table.add_row(
            o.sobject,
            o.via or "-",
            f"{o.fetched:,}",
            f"{o.applied:,}",
            f"{o.deleted:,}",
            f"{held.get(o.sobject, 0):,}",
            f"{'full load, ' if o.full else ''}{state}",
        )
    Console().print(table)
    spent = ", ".join(f"{api} {n:,}" for api, n in sorted(report.calls.items())) or "none"
    typer.echo(f"calls spent: {spent}")


def _salesforce_trouble() -> tuple[type[Exception], ...]:
    from quotasync import errors

    return (errors.SalesforceError, errors.QuotaExhausted)


@rts_app.command("on")
def rts_on(
    workspace: common.WorkspaceOption,
    url: Annotated[
        str,
        typer.Option("--url", help="Where the org pushes: this server's /rts/{workspace} URL."),
    ],
) -> None:
    """Switch Real-Time Sync on: a new secret, the org's setting record pointing at --url, and a
    catch-up sync. When the Apex quota runs out it rolls over to Interval Sync and back."""
    from quotasync import errors
    from quotasync.domain.realtime import SyncMode
    from quotasync.engine.realtime import RealTimeUnavailable
    from quotasync.services import sync_mode

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    try:
        sync_mode.switch(runtime.connector, runtime.clock, ws.id, SyncMode.REALTIME, url)
    except sync_mode.NotAPushUrl as exc:
        common.fail(f"--url must be an http(s) URL; got {exc.url!r}")
    except (RealTimeUnavailable, errors.NotConnected, errors.NotFound) as exc:
        common.fail(f"Real-Time Sync is not on: {exc}")
    except _salesforce_trouble() as exc:
        common.fail(f"Real-Time Sync is not on: {exc}")
    typer.echo(f"{ws.id}: Real-Time Sync is on; the org pushes changes to {url}")


@rts_app.command("off")
def rts_off(workspace: common.WorkspaceOption) -> None:
    """Switch Real-Time Sync off: the org stops pushing, Interval Sync keeps the mirror."""
    from quotasync import errors
    from quotasync.domain.realtime import SyncMode
    from quotasync.services import sync_mode

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    try:
        sync_mode.switch(runtime.connector, runtime.clock, ws.id, SyncMode.INTERVAL)
    except (errors.NotConnected, errors.NotFound) as exc:
        common.fail(str(exc))
    except _salesforce_trouble() as exc:
        common.fail(f"Real-Time Sync could not be switched off in the org: {exc}")
    typer.echo(f"{ws.id}: Real-Time Sync is off; Interval Sync keeps the mirror")
