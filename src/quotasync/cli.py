"""The `quotasync` command."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from quotasync.sandbox.editions import EDITIONS

app = typer.Typer(
    help="quotasync: log sales-email activity into Salesforce within the API quota admins set.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback's local variables may hold tokens or passwords: never print them.
    pretty_exceptions_show_locals=False,
)

db_app = typer.Typer(help="The store: migrations.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspaces: create and list.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(workspace_app, name="workspace")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

SpeedOption = Annotated[
    float | None,
    typer.Option(help="Virtual clock: N virtual seconds per real second.", min=0),
]
EpochOption = Annotated[
    str | None,
    typer.Option(help="Virtual clock: the ISO-8601 instant where virtual and real time agree."),
]


def _clock(speed: float | None, epoch: str | None):  # type: ignore[no-untyped-def]
    from quotasync.clock import make_clock

    try:
        return make_clock(speed, epoch)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--epoch") from None


@app.command()
def sandbox(
    state_dir: Annotated[
        Path,
        typer.Option("--state-dir", help="Where the org keeps its state, CA and sandbox.json."),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port to listen on; 0 picks a free one.", min=0, max=65535)
    ] = 0,
    edition: Annotated[
        str | None, typer.Option(help=f"Org edition: {', '.join(EDITIONS)}.")
    ] = None,
    licenses: Annotated[
        int | None,
        typer.Option(help="Salesforce user licenses (allocation grows with them).", min=1),
    ] = None,
    daily_api_requests: Annotated[
        int | None, typer.Option(help="Override the edition's DailyApiRequests allocation.", min=1)
    ] = None,
    speed: SpeedOption = None,
    epoch: EpochOption = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed N Contacts, Leads, Accounts and Opportunities (first start only), plus 20 reps.",
            min=0,
        ),
    ] = 0,
    rts_callback: Annotated[
        str | None, typer.Option(help="URL the org pushes Real-Time Sync change notices to.")
    ] = None,
    session_timeout_minutes: Annotated[
        float, typer.Option(help="Sessions expire after this much inactivity (0: never).", min=0)
    ] = 120.0,
) -> None:
    """Run a Salesforce org on this machine (HTTPS, its own CA), for tests, benchmarks and demos."""
    from quotasync.sandbox import server
    from quotasync.sandbox.org import OrgConfig

    if edition is not None and edition not in EDITIONS:
        raise typer.BadParameter(f"choose one of {', '.join(EDITIONS)}", param_hint="--edition")
    if rts_callback is not None and not rts_callback.startswith(("http://", "https://")):
        raise typer.BadParameter("must be an http(s) URL", param_hint="--rts-callback")
    config = OrgConfig(
        edition=edition,
        licenses=licenses,
        daily_api_requests=daily_api_requests,
        seed=seed,
        rts_callback=rts_callback,
        session_timeout_minutes=session_timeout_minutes,
    )
    try:
        server.run(state_dir, config, _clock(speed, epoch), host=host, port=port)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        typer.echo(f"error: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its org.")] = Path(
        ".quotasync/demo-org"
    ),
    port: Annotated[
        int, typer.Option(help="Port for the sandbox org; 0 picks a free one.", min=0, max=65535)
    ] = 0,
) -> None:
    """Start a seeded sandbox org and print how to reach it (the full product demo arrives with
    activity logging)."""
    from quotasync.sandbox import server
    from quotasync.sandbox.org import OrgConfig

    typer.echo(
        f"Starting a seeded sandbox org in {data_dir} (credentials in {data_dir / 'sandbox.json'}); Ctrl-C stops it."
    )
    with contextlib.suppress(KeyboardInterrupt):
        server.run(data_dir, OrgConfig(seed=1000), _clock(None, None), port=port)


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _open_store():  # type: ignore[no-untyped-def]
    """Settings and a session factory; an embedded SQLite store is migrated on first use."""
    from sqlalchemy.engine import make_url

    from quotasync.config import Settings
    from quotasync.store import db

    settings = Settings()
    url = settings.effective_database_url
    if make_url(url).get_backend_name() == "sqlite":
        db.upgrade(url)
    elif db.current_revision(url) is None:
        _fail("the database has no schema yet: run `quotasync db upgrade` first")
    return settings, db.sessions(db.make_engine(url))


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply the store's migrations (SQLite in the data dir, or QUOTASYNC_DATABASE_URL)."""
    from quotasync.config import Settings
    from quotasync.store import db

    url = Settings().effective_database_url
    db.upgrade(url, revision)
    typer.echo(f"database at revision {db.current_revision(url)}")


@workspace_app.command("create")
def workspace_create(
    name: Annotated[str, typer.Argument(help="The workspace's name.")],
    admin: Annotated[str, typer.Option("--admin", help="The first admin's email.")],
    as_json: JsonOption = False,
) -> None:
    """Create a workspace with its first admin; prints the id and the ingest token (shown once)."""
    from quotasync.clock import RealClock
    from quotasync.store import workspaces

    _, sessions = _open_store()
    with sessions.begin() as session:
        try:
            made = workspaces.create(session, name, admin, RealClock().now())
        except workspaces.WorkspaceError as exc:
            _fail(str(exc))
        out = {
            "workspace": made.workspace.id,
            "name": made.workspace.name,
            "admin": made.admin.email,
            "ingest_token": made.ingest_token,
        }
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"workspace {out['workspace']} ({out['name']}), admin {out['admin']}")
    typer.echo(f"ingest token: {out['ingest_token']}  (shown once; keep it safe)")


@workspace_app.command("list")
def workspace_list(as_json: JsonOption = False) -> None:
    """List workspaces."""
    from sqlalchemy import func, select

    from quotasync.store.tables import User, Workspace

    _, sessions = _open_store()
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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
