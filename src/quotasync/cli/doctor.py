"""`quotasync doctor`: whether the org's plan and the sync user allow syncing, and why events are
not syncing when they are not. Exit code 0 when no check fails, 1 when one does."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from quotasync.cli import common

if TYPE_CHECKING:
    from rich.table import Table

    from quotasync.diagnosis import Report

STYLES = {"pass": "green", "warn": "yellow", "fail": "bold red", "skip": "dim"}


def doctor(workspace: common.WorkspaceOption, as_json: common.JsonOption = False) -> None:
    """Check the org's edition, the sync user's permissions, the org's API use, quotasync's
    shares and pauses, the QS_Activity_Id__c field and Real-Time Sync, each with its fix.
    Costs one Data API call (ledgered as `doctor`)."""
    from quotasync import doctor as checks
    from quotasync.diagnosis import FAIL, MARKERS

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    report = checks.run(runtime.connector, ws.id)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        from rich.console import Console

        console = Console()
        console.print(_table(report))
        console.print(f"{MARKERS[report.status]} {report.summary}", markup=False)
        console.print(f"The doctor spent {report.calls} Data API call(s).", markup=False)
    if report.status == FAIL:
        raise typer.Exit(1)


def _table(report: Report) -> Table:
    from rich.table import Table
    from rich.text import Text

    from quotasync.diagnosis import MARKERS

    table = Table("", "check", "detail", "fix", show_lines=True)
    for check in report.checks:
        status = Text(f"{MARKERS[check.status]} {check.status}", style=STYLES[check.status])
        # Text, not markup: details quote Salesforce's messages, which may hold brackets.
        table.add_row(status, Text(check.title), Text(check.detail), Text(check.fix or ""))
    return table
