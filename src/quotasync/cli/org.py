"""`quotasync org`: quotasync's package in the workspace's Salesforce org (docs/ORG_PACKAGE.md)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from quotasync.cli import common

if TYPE_CHECKING:
    from quotasync.salesforce.metadata import DeployFailed, Status

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
        typer.Option("--package-dir", help="The package's source (default: the one shipped)."),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Deploy quotasync's package to the workspace's org through the Metadata API: the
    QS_Activity_Id__c, QS_Opens__c and QS_Clicks__c fields, the QS_Sync_Setting__c object, the
    Real-Time Sync triggers and Apex, a Remote Site Setting for --url and the QS_Sync_User
    permission set, then assign that permission set to the sync user. Runs as the connected user,
    who must be an admin (Modify All Data). Safe to run again. Costs a few Data API calls
    (ledgered as `org_install`)."""
    import time

    from quotasync.salesforce import metadata, package
    from quotasync.services import org_package

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    address = url or runtime.settings.public_url
    if not address:
        common.fail("give quotasync's address with --url (or set QUOTASYNC_PUBLIC_URL)")
    verb = "validating" if check_only else "deploying"
    with _progress(f"{verb} quotasync's package", as_json) as show:
        try:
            outcome = org_package.install(
                runtime.connector,
                ws.id,
                address,
                sleep=time.sleep,
                check_only=check_only,
                package_dir=package_dir or package.DEFAULT_DIR,
                on_status=show,
            )
        except metadata.DeployFailed as failed:
            _refused(failed, as_json)
        except _failures() as exc:  # evaluated only when something is raised
            common.fail(_explained(exc))
    status = outcome.status
    if as_json:
        typer.echo(json.dumps({**_as_dict(status), "permission_set_assigned": outcome.assigned}))
    elif check_only:
        typer.echo(f"{ws.id}: the package is valid for this org ({status.total} components)")
    else:
        held = "now has" if outcome.assigned else "already had"
        typer.echo(
            f"{ws.id}: quotasync's package is installed ({status.deployed} components); the "
            f"sync user {held} the {org_package.PERMISSION_SET} permission set"
        )


@org_app.command("uninstall")
def uninstall(
    workspace: common.WorkspaceOption,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    package_dir: Annotated[
        Path | None,
        typer.Option("--package-dir", help="The package's source (default: the one shipped)."),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Remove what `quotasync org install` added, through a destructive Metadata API deploy:
    the sync user's QS_Sync_User assignment, then the permission set, the Apex, the Remote Site
    Setting, QS_Sync_Setting__c with its records and the Activity fields with their values
    (Tasks and Events quotasync logged lose their QS_Activity_Id__c). Components already gone
    are skipped: safe to run again. Costs a few Data API calls (ledgered as `org_uninstall`)."""
    import time

    from quotasync.salesforce import metadata, package
    from quotasync.services import org_package

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    if not yes and not typer.confirm(
        f"Remove quotasync's package from {ws.id}'s org, with the QS_ fields' values?"
    ):
        common.fail("nothing was changed")
    with _progress("removing quotasync's package", as_json) as show:
        try:
            status = org_package.uninstall(
                runtime.connector,
                ws.id,
                sleep=time.sleep,
                package_dir=package_dir or package.DEFAULT_DIR,
                on_status=show,
            )
        except metadata.DeployFailed as failed:
            _refused(failed, as_json)
        except _failures() as exc:  # evaluated only when something is raised
            common.fail(_explained(exc))
    if as_json:
        typer.echo(json.dumps(_as_dict(status)))
    else:
        typer.echo(
            f"{ws.id}: quotasync's package is removed from the org ({status.total - 1} "
            "components deleted or already gone)"
        )


def _failures() -> tuple[type[Exception], ...]:
    """What a deploy command reports and exits 2 on (imported late: the CLI starts quickly)."""
    from quotasync import errors
    from quotasync.salesforce import package
    from quotasync.services import org_package

    return (
        org_package.NotAnAddress,
        package.PackageError,
        errors.NotConnected,
        errors.SalesforceError,
        errors.QuotaExhausted,
    )


@contextmanager
def _progress(what: str, quiet: bool) -> Iterator[Callable[[Status], None]]:
    """A progress bar for a deploy (`numberComponentsDeployed` of `numberComponentsTotal`), and
    each component failure printed once, as it comes."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=quiet, console=Console(stderr=True)) as bar:
        task = bar.add_task(what, total=None)
        shown: set[str] = set()

        def show(status: Status) -> None:
            bar.update(
                task,
                description=f"{what}: {status.status}",
                total=status.total or None,
                completed=status.deployed,
            )
            for problem in status.problems:
                if str(problem) not in shown:
                    shown.add(str(problem))
                    bar.console.print(
                        f"[bold red]✗[/] {escape(str(problem))}", highlight=False, soft_wrap=True
                    )

        yield show


def _refused(failed: DeployFailed, as_json: bool) -> NoReturn:
    if as_json:
        typer.echo(json.dumps(_as_dict(failed.status)))
    common.fail(
        f"Salesforce refused the package ({len(failed.problems)} problem(s)); nothing was changed"
    )


def _explained(exc: Exception) -> str:
    from quotasync.errors import Refused

    if isinstance(exc, Refused) and exc.fault.code == "INSUFFICIENT_ACCESS":
        return (
            f"{exc.fault.message}: connect the workspace as an admin, or have an admin deploy "
            "the package (`quotasync org path` prints where it is) with `sf project deploy start`"
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


@org_app.command("path")
def path() -> None:
    """Print where the package's source is (a Salesforce DX project), for an admin who deploys
    it with the Salesforce CLI: `sf project deploy start --manifest manifest/package.xml`."""
    from quotasync.salesforce import package

    typer.echo(str(package.DEFAULT_DIR))
