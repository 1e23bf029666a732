"""`quotasync org`: quotasync's package in the workspace's Salesforce org (docs/ORG_PACKAGE.md)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quotasync.cli import common

if TYPE_CHECKING:
    from quotasync.salesforce.metadata import Status

org_app = typer.Typer(
    help="The org side: install quotasync's fields, Real-Time Sync Apex and permission set.",
    no_args_is_help=True,
)


@org_app.command("install")
def install(
    workspace: common.WorkspaceOption,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="quotasync's address, where the org's Real-Time Sync pushes go (its Remote Site "
            "Setting); default: QUOTASYNC_PUBLIC_URL.",
        ),
    ] = None,
    check_only: Annotated[
        bool,
        typer.Option("--check-only", help="Validate the package in the org; change nothing."),
    ] = False,
    package_dir: Annotated[
        Path | None,
        typer.Option("--package-dir", help="The package's source (default: org-package/)."),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Deploy quotasync's package to the workspace's org through the Metadata API: the
    QS_Activity_Id__c, QS_Opens__c and QS_Clicks__c fields, the QS_Sync_Setting__c object, the
    Real-Time Sync triggers and Apex, a Remote Site Setting for --url and the QS_Sync_User
    permission set. Runs as the connected user, who must be an admin (Modify All Data). Safe to
    run again. Costs a few Data API calls (ledgered as `org_install`)."""
    import time

    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from quotasync import errors
    from quotasync.salesforce import metadata, package
    from quotasync.services import org_package

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    address = url or runtime.settings.public_url
    if not address:
        common.fail("give quotasync's address with --url (or set QUOTASYNC_PUBLIC_URL)")
    console = Console(stderr=True)
    verb = "validating" if check_only else "deploying"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=as_json, console=console) as bar:
        task = bar.add_task(f"{verb} quotasync's package", total=None)
        shown: set[str] = set()

        def show(status: Status) -> None:
            bar.update(
                task,
                description=f"{verb} quotasync's package: {status.status}",
                total=status.total or None,
                completed=status.deployed,
            )
            for problem in status.problems:  # as they come: each once
                if str(problem) not in shown:
                    shown.add(str(problem))
                    bar.console.print(
                        f"[bold red]✗[/] {escape(str(problem))}", highlight=False, soft_wrap=True
                    )

        try:
            status = org_package.install(
                runtime.connector,
                ws.id,
                address,
                sleep=time.sleep,
                check_only=check_only,
                package_dir=package_dir or package.DEFAULT_DIR,
                on_status=show,
            )
        except metadata.DeployFailed as failed:
            if as_json:
                typer.echo(json.dumps(_as_dict(failed.status)))
            common.fail(
                f"Salesforce refused the package ({len(failed.problems)} problem(s)); "
                "nothing was changed"
            )
        except (
            org_package.NotAnAddress,
            package.PackageError,
            errors.NotConnected,
            errors.SalesforceError,
            errors.QuotaExhausted,
        ) as exc:
            common.fail(_explained(exc))
    if as_json:
        typer.echo(json.dumps(_as_dict(status)))
    elif check_only:
        typer.echo(f"{ws.id}: the package is valid for this org ({status.total} components)")
    else:
        typer.echo(
            f"{ws.id}: quotasync's package is installed ({status.deployed} components); assign "
            "the QS_Sync_User permission set to the sync user"
        )


def _explained(exc: Exception) -> str:
    from quotasync.errors import Refused

    if isinstance(exc, Refused) and exc.fault.code == "INSUFFICIENT_ACCESS":
        return (
            f"{exc.fault.message}: connect the workspace as an admin to install, or have an "
            "admin deploy org-package/ with `sf project deploy start`"
        )
    return str(exc)


def _as_dict(status: Status) -> dict[str, object]:
    return {
        "id": status.id,
        "status": status.status,
        "success": status.success,
        "check_only": status.check_only,
        "components_deployed": status.deployed,
        "components_total": status.total,
        "problems": [
            {"type": p.type, "name": p.name, "problem": p.problem, "file": p.file}
            for p in status.problems
        ],
    }
