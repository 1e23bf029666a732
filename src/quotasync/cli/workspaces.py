"""`quotasync workspace` (create, list) and `quotasync connect`: a workspace and its org."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from quotasync.cli import common

workspace_app = typer.Typer(help="Workspaces: create and list.", no_args_is_help=True)


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="The workspace's name.")],
    admin: Annotated[str, typer.Option("--admin", help="The first admin's email.")],
    as_json: common.JsonOption = False,
) -> None:
    """Create a workspace with its first admin; prints the id, the ingest token and the admin's
    first password (each shown once)."""
    from quotasync.clock import RealClock
    from quotasync.store import workspaces

    sessions = common.runtime().sessions
    with sessions.begin() as session:
        try:
            made = workspaces.create(session, name, admin, RealClock().now())
        except workspaces.WorkspaceError as exc:
            common.fail(str(exc))
        out = {
            "workspace": made.workspace.id,
            "name": made.workspace.name,
            "admin": made.admin.email,
            "ingest_token": made.ingest_token,
            "admin_password": made.admin_password,
        }
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"workspace {out['workspace']} ({out['name']}), admin {out['admin']}")
    typer.echo(f"ingest token: {out['ingest_token']}  (shown once; keep it safe)")
    typer.echo(f"admin's first password: {out['admin_password']}  (shown once)")


@workspace_app.command("list")
def workspace_list(as_json: common.JsonOption = False) -> None:
    """List workspaces."""
    from sqlalchemy import func, select

    from quotasync.store.tables import User, Workspace

    sessions = common.runtime().sessions
    with sessions() as session:
        rows = session.execute(
            select(Workspace.id, Workspace.name, Workspace.created_at, func.count(User.id))
            .outerjoin(User, User.workspace_id == Workspace.id)
            .group_by(Workspace.id, Workspace.name, Workspace.created_at)
            .order_by(Workspace.created_at)
        ).all()
    items = [
        {"workspace": r[0], "name": r[1], "created_at": r[2].isoformat(), "users": r[3]}
        for r in rows
    ]
    if as_json:
        typer.echo(json.dumps(items))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("workspace", "name", "created", "users")
    for item in items:
        table.add_row(item["workspace"], item["name"], item["created_at"], str(item["users"]))
    Console().print(table)


SANDBOX_USER = "sync"


def connect(
    workspace: common.WorkspaceOption,
    sandbox: Annotated[Path, typer.Option("--sandbox", help="A sandbox org's sandbox.json.")],
    user: Annotated[
        str,
        typer.Option(
            "--user",
            help="The sandbox user to sync as, by handle (sync: no View Setup; admin: has it).",
        ),
    ] = SANDBOX_USER,
    as_json: common.JsonOption = False,
) -> None:
    """Connect a workspace to a sandbox org as its `quotasync` app and a sync user, and load the
    org's people into the mirror."""
    from quotasync.engine.matching import Matcher
    from quotasync.salesforce.connection import ConnectError, SandboxLogin

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    connector = runtime.connector
    try:
        connection = connector.connect_sandbox(ws.id, SandboxLogin.read(sandbox, user))
        loaded = Matcher(runtime.sessions, ws.id, runtime.clock).load(connector.client(ws.id))
    except ConnectError as exc:
        common.fail(str(exc))
    out = {
        "workspace": ws.id,
        "instance_url": connection.instance_url,
        "org_id": connection.org_id,
        "username": connection.username,
        "mirror": loaded,
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(
        f"{ws.id} connected to {out['instance_url']} (org {out['org_id']}) as {out['username']}"
    )
    typer.echo("mirror: " + ", ".join(f"{n:,} {k}s" for k, n in loaded.items()))
