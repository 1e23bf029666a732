"""The `quotasync` command."""

from __future__ import annotations

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
activities_app = typer.Typer(help="Activities: import and list.", no_args_is_help=True)
limit_app = typer.Typer(
    help="quotasync's share of each API quota: show and set.", no_args_is_help=True
)
app.add_typer(limit_app, name="limit")
app.add_typer(activities_app, name="activities")

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
    headless: Annotated[
        bool,
        typer.Option(
            "--headless",
            help="No pages: print a summary and exit (the only mode until the web app arrives).",
        ),
    ] = True,
    minutes: Annotated[
        float, typer.Option(help="How long the 20 reps keep working.", min=0.05)
    ] = 1.0,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the demo keeps its org and store (default: a fresh temporary folder)."
        ),
    ] = None,
) -> None:
    """The product on the embedded defaults: a seeded sandbox org, a workspace connected to it,
    the worker and 20 reps' activity; exits 0 only if every accepted activity is in the org once."""
    import tempfile

    from quotasync import demo as story

    with tempfile.TemporaryDirectory(prefix="quotasync-demo-") as scratch:
        folder = data_dir or Path(scratch)
        typer.echo(f"Demo: a seeded sandbox org, one workspace, 20 reps for {minutes:g} minutes…")
        report = story.run(folder, minutes)
    _print_demo(report)
    raise typer.Exit(0 if report.ok else 1)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
) -> None:
    """Serve the JSON API (ingest: POST /api/v1/workspaces/{workspace}/activities; docs at /docs)."""
    import socket

    import uvicorn

    from quotasync.web.app import create_app

    runtime = _runtime()
    app_ = create_app(runtime)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        _fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")
    sock.listen(2048)  # connections queue from now on, so the line below is a promise
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"quotasync serving on http://{shown}:{sock.getsockname()[1]}", nl=True)
    server = uvicorn.Server(uvicorn.Config(app_, log_level="warning", access_log=False))
    server.run(sockets=[sock])


def _print_demo(report) -> None:  # type: ignore[no-untyped-def]
    from rich.console import Console
    from rich.table import Table

    table = Table(title="quotasync demo", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    table.add_row("activities accepted", f"{report.accepted:,}")
    for state in ("logged", "failed", "skipped", "pending"):
        table.add_row(f"  {state}", f"{report.states.get(state, 0):,}")
    for purpose, calls in sorted(report.calls.items()):
        table.add_row(f"Salesforce calls: {purpose}", f"{calls:,}")
    table.add_row("activities per logging call", f"{report.activities_per_call:,.1f}")
    table.add_row(
        "records expected / found in the org",
        f"{report.expected_records:,} / {report.found_records:,}",
    )
    table.add_row("duplicates / missing", f"{report.duplicates} / {report.missing}")
    Console().print(table)
    if report.ok:
        typer.echo("verdict: every accepted activity is in the org exactly once")
    else:
        typer.echo("verdict: MISMATCH: some accepted activities are not in the org exactly once")


def _fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def _runtime(speed: float | None = None, epoch: str | None = None):  # type: ignore[no-untyped-def]
    from quotasync.runtime import NotMigrated, open_runtime

    try:
        return open_runtime(clock=_clock(speed, epoch))
    except NotMigrated as exc:
        _fail(str(exc))


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

    sessions = _runtime().sessions
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

    sessions = _runtime().sessions
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


WorkspaceOption = Annotated[str, typer.Option("--workspace", help="Workspace id (or unique name).")]


def _workspace(sessions, reference: str):  # type: ignore[no-untyped-def]
    from quotasync.store import workspaces

    with sessions() as session:
        try:
            return workspaces.find(session, reference)
        except workspaces.WorkspaceError as exc:
            _fail(str(exc))


@app.command()
def connect(
    workspace: WorkspaceOption,
    sandbox: Annotated[Path, typer.Option("--sandbox", help="A sandbox org's sandbox.json.")],
    as_json: JsonOption = False,
) -> None:
    """Connect a workspace to a sandbox org as its `quotasync` app and sync user, and load the
    org's people into the mirror."""
    from quotasync.engine.matching import Matcher
    from quotasync.salesforce.connection import ConnectError, SandboxLogin

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    connector = runtime.connector
    try:
        connection = connector.connect_sandbox(ws.id, SandboxLogin.read(sandbox))
        loaded = Matcher(runtime.sessions, ws.id, runtime.clock).load(connector.client(ws.id))
    except ConnectError as exc:
        _fail(str(exc))
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


@activities_app.command("import")
def activities_import(
    workspace: WorkspaceOption,
    file: Annotated[
        Path, typer.Argument(help="JSON Lines: one activity per line.", exists=True, dir_okay=False)
    ],
    as_json: JsonOption = False,
) -> None:
    """Store the activities of a JSON Lines file in the outbox (the worker writes them)."""
    from rich.progress import Progress

    from quotasync.ingest import Ingest

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    ingest = Ingest(runtime.sessions, runtime.clock)
    total = file.stat().st_size
    with file.open("rb") as lines, Progress(disable=as_json, transient=False) as bar:
        task = bar.add_task(f"importing {file.name}", total=total)
        summary = ingest.from_lines(
            ws.id, lines, on_chunk=lambda done: bar.update(task, completed=done)
        )
    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
        return
    typer.echo(
        f"accepted {summary.accepted:,}, already known {summary.duplicates:,}, invalid {len(summary.errors):,}"
    )
    for error in summary.errors[:20]:
        typer.echo(f"  line {error['line']}: {error['problems']}", err=True)
    if summary.errors:
        raise typer.Exit(1)


@activities_app.command("list")
def activities_list(workspace: WorkspaceOption, as_json: JsonOption = False) -> None:
    """How many activities are in each state."""
    from quotasync.store import outbox

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    with runtime.sessions() as session:
        counts = outbox.counts(session, ws.id)
        skipped = outbox.skipped_reasons(session, ws.id)
    if as_json:
        typer.echo(json.dumps({**counts, "skipped_by_reason": skipped}))
        return
    for state in ("pending", "logged", "failed", "skipped"):
        typer.echo(f"{state:>8}: {counts.get(state, 0):,}")
    for reason, n in sorted(skipped.items()):
        typer.echo(f"{'':>10}{reason.replace('_', ' ')}: {n:,}")


def _limits_view(runtime, workspace) -> dict:  # type: ignore[no-untyped-def]
    """Per API type: the share, the org's figures (when known), quotasync's use and others'."""
    from quotasync.domain import governor
    from quotasync.store import limits

    now = runtime.clock.now()
    with runtime.sessions() as session:
        figures = limits.figures(session, workspace.id)
        own = limits.own_use(session, workspace.id, now)
        view = {}
        for api, percent in limits.shares(workspace).items():
            used = sum(own.get(a, 0) for a in limits.LEDGER_APIS[api])
            entry: dict[str, object] = {"share_percent": percent, "quotasync_used": used}
            figure = figures.get(api)
            if figure is not None:
                at_reading = limits.own_use_at(session, workspace.id, api, figure.observed_at)
                others = max(0, figure.used - at_reading)
                entry.update(
                    org_max=figure.max,
                    org_used=others + used,
                    other_apps_used=others,
                    left=max(0, figure.max - others - used),
                    share_calls=governor.share_calls(figure.max, percent),
                    guard_calls=governor.guard_calls(figure.max),
                    observed_at=figure.observed_at.isoformat(),
                )
            else:
                entry["org_max"] = None  # not reported yet (Bulk and Apex need View Setup)
            view[api] = entry
    return view


@limit_app.command("show")
def limit_show(workspace: WorkspaceOption, as_json: JsonOption = False) -> None:
    """quotasync's share of each API quota, the org's figures and what is left."""
    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    view = _limits_view(runtime, ws)
    if as_json:
        typer.echo(json.dumps({"workspace": ws.id, "apis": view}))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("API", "share", "quotasync", "other apps", "left", "org total", "guard (90%)")
    for api, e in view.items():
        known = e["org_max"] is not None
        table.add_row(
            api,
            f"{e['share_percent']}%" + (f" ({e['share_calls']:,} calls)" if known else ""),
            f"{e['quotasync_used']:,}",
            f"{e['other_apps_used']:,}" if known else "-",
            f"{e['left']:,}" if known else "-",
            f"{e['org_max']:,}" if known else "not reported yet",
            f"{e['guard_calls']:,}" if known else "-",
        )
    Console().print(table)


@limit_app.command("set")
def limit_set(
    workspace: WorkspaceOption,
    api: Annotated[str, typer.Option("--api", help="data, bulk or apex.")],
    percent: Annotated[str, typer.Option("--percent", help="quotasync's share, 10 to 90.")],
) -> None:
    """Set quotasync's share of one API quota (10-90%); it applies at once."""
    from quotasync.domain.governor import ShareError
    from quotasync.store import limits

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    with runtime.sessions.begin() as session:
        try:
            given: object = int(percent) if percent.strip().lstrip("-").isdigit() else percent
            value = limits.set_share(session, ws, api, given)
        except ShareError as exc:
            _fail(str(exc))
    typer.echo(f"{ws.id}: quotasync may use {value}% of the org's {api} quota")


@app.command()
def usage(workspace: WorkspaceOption, as_json: JsonOption = False) -> None:
    """What quotasync, other apps and each member spent of the org's quotas in the past 24 hours."""
    from quotasync.store import limits

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    view = _limits_view(runtime, ws)
    with runtime.sessions() as session:
        members = limits.member_use(session, ws.id, runtime.clock.now())
    data_total = view["data"].get("org_used") or 0
    per_member = {
        email: {
            "calls": round(calls, 2),
            "share_of_org": round(calls / data_total, 6) if data_total else None,
        }
        for email, calls in sorted(members.items(), key=lambda kv: -kv[1])
    }
    if as_json:
        typer.echo(json.dumps({"workspace": ws.id, "apis": view, "members": per_member}))
        return
    for api, e in view.items():
        org = (
            f" of {e['org_max']:,} (other apps {e['other_apps_used']:,}, left {e['left']:,})"
            if e["org_max"] is not None
            else " (org figures not reported yet)"
        )
        typer.echo(f"{api:>5}: quotasync {e['quotasync_used']:,}{org}; share {e['share_percent']}%")
    for email, m in per_member.items():
        share = (
            f", {m['share_of_org']:.2%} of the org's Data calls"
            if m["share_of_org"] is not None
            else ""
        )
        typer.echo(f"  {email}: {m['calls']:,.2f} Data calls in the past 24 hours{share}")


@app.command()
def worker(
    until_idle: Annotated[
        bool,
        typer.Option("--until-idle", help="Exit when nothing is pending and nothing is paused."),
    ] = False,
    speed: SpeedOption = None,
    epoch: EpochOption = None,
) -> None:
    """Write pending activities to Salesforce until stopped (SIGINT/SIGTERM finish the batch in flight)."""
    import signal
    import threading

    from quotasync.engine.notifier import Notifier
    from quotasync.engine.worker import Worker

    runtime = _runtime(speed, epoch)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    notifier = Notifier(runtime.sessions, runtime.settings, runtime.clock)
    progress = Worker(runtime.connector, runtime.clock, notifier).run(stop, until_idle=until_idle)
    typer.echo(
        f"worker stopped: {progress.settled:,} activities settled in {progress.steps:,} steps"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
