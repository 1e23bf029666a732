"""`quotasync workspace` (create, list), `quotasync connect` and `quotasync disconnect`: a
workspace and its org."""

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
JWT_OPTIONS = ("--login-url", "--client-id", "--private-key", "--username")


def connect(
    workspace: common.WorkspaceOption,
    sandbox: Annotated[
        Path | None,
        typer.Option(
            "--sandbox", help="A sandbox org's sandbox.json: connect with its password grant."
        ),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option(
            "--user",
            help="With --sandbox: the sandbox user to sync as, by handle (sync: no View Setup; "
            "admin: has it). Default: sync.",
        ),
    ] = None,
    login_url: Annotated[
        str | None,
        typer.Option(
            "--login-url",
            help="JWT flow: the org's login host, e.g. https://login.salesforce.com, "
            "https://test.salesforce.com or https://yourdomain.my.salesforce.com.",
        ),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="JWT flow: the connected app's consumer key.")
    ] = None,
    private_key: Annotated[
        Path | None,
        typer.Option(
            "--private-key",
            help="JWT flow: the RSA private key (PEM) of the certificate the app holds.",
        ),
    ] = None,
    username: Annotated[
        str | None, typer.Option("--username", help="JWT flow: the Salesforce user to sync as.")
    ] = None,
    ca_file: Annotated[
        Path | None,
        typer.Option("--ca-file", help="JWT flow: a CA file to trust (a sandbox org's ca_file)."),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """Connect a workspace to its org and load the org's people into the mirror: with the JWT
    bearer flow (--login-url, --client-id, --private-key, --username) or, for a sandbox org, with
    --sandbox DIR/sandbox.json."""
    from quotasync import errors
    from quotasync.salesforce.connection import SandboxLogin, read_private_key
    from quotasync.services import connecting

    jwt_given = {
        name: value
        for name, value in zip(
            (*JWT_OPTIONS, "--ca-file"),
            (login_url, client_id, private_key, username, ca_file),
            strict=True,
        )
        if value is not None
    }
    if sandbox is not None and jwt_given:
        common.fail(
            f"--sandbox cannot be combined with {', '.join(jwt_given)}: --sandbox connects with "
            "the sandbox's own app and users; for the JWT flow against a sandbox, give its "
            "login_url and ca_file with --login-url and --ca-file instead of --sandbox"
        )
    if sandbox is None and user is not None:
        common.fail(
            "--user picks a sandbox user and needs --sandbox; the JWT flow takes --username"
        )
    if sandbox is None:
        missing = [name for name in JWT_OPTIONS if name not in jwt_given]
        if len(missing) == len(JWT_OPTIONS):
            common.fail(
                "give --sandbox DIR/sandbox.json, or --login-url, --client-id, --private-key and "
                "--username for the JWT bearer flow (see docs/CONNECTING.md)"
            )
        if missing:
            common.fail(f"the JWT bearer flow also needs {', '.join(missing)}")

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    try:
        flow: connecting.Flow
        if sandbox is not None:
            flow = connecting.SandboxFlow(SandboxLogin.read(sandbox, user or SANDBOX_USER))
        else:
            assert login_url and client_id and private_key and username  # checked above
            flow = connecting.JwtFlow(
                login_url=login_url,
                client_id=client_id,
                private_key=read_private_key(private_key),
                username=username,
                ca_file=str(ca_file.resolve()) if ca_file else None,
            )
        connected = connecting.connect(
            runtime.sessions, runtime.connector, runtime.clock, ws.id, flow
        )
    except (errors.InvalidInput, errors.SalesforceError, errors.NotConnected) as exc:
        common.fail(str(exc))
    connection, loaded = connected.connection, connected.mirror
    out = {
        "workspace": ws.id,
        "instance_url": connection.instance_url,
        "org_id": connection.org_id,
        "username": connection.username,
        "flow": flow.name,
        "mirror": loaded,
        "load_stopped": connected.load_stopped,
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(
        f"{ws.id} connected to {out['instance_url']} (org {out['org_id']}) as {out['username']}"
    )
    typer.echo(
        "checked: the org answers API calls as " + out["username"] + "; mirror: "
        + ", ".join(f"{n:,} {_plural(k, n)}" for k, n in loaded.items())
    )  # fmt: skip
    if connected.load_stopped is not None:
        typer.echo(
            f"the load stopped part way ({connected.load_stopped}): the worker's interval sync "
            "brings in the rest"
        )


def _plural(sobject: str, n: int) -> str:
    if n == 1:
        return sobject
    return "Opportunities" if sobject == "Opportunity" else f"{sobject}s"


def disconnect(
    workspace: common.WorkspaceOption,
    revoke: Annotated[
        bool,
        typer.Option(
            "--revoke/--no-revoke",
            help="Revoke the tokens at the org first. --no-revoke only forgets the connection "
            "(when the org is out of reach; revoke them in Setup > Connected Apps OAuth Usage).",
        ),
    ] = True,
    as_json: common.JsonOption = False,
) -> None:
    """Disconnect a workspace from its org: revoke its tokens at the org, then forget the
    connection. The worker stops syncing it until it is connected again."""
    from quotasync import errors

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    try:
        done = runtime.connector.disconnect(ws.id, revoke=revoke)
    except (errors.NotConnected, errors.SalesforceError) as exc:
        common.fail(str(exc))
    out = {
        "workspace": ws.id,
        "instance_url": done.instance_url,
        "username": done.username,
        "revoked": list(done.revoked),
    }
    if as_json:
        typer.echo(json.dumps(out))
        return
    revoked = " and ".join(done.revoked) or "no token (the org knew none of them any more)"
    if not revoke:
        revoked = "nothing (--no-revoke)"
    typer.echo(
        f"{ws.id} disconnected from {done.instance_url} ({done.username}); revoked {revoked}"
    )
