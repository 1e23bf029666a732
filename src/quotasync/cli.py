"""The `quotasync` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from quotasync.sandbox.editions import EDITIONS

if TYPE_CHECKING:
    from datetime import datetime

    from rich.table import Table
    from sqlalchemy.orm import Session

    from quotasync.engine.sync import SyncReport
    from quotasync.runtime import Runtime
    from quotasync.store.tables import Workspace
    from quotasync.usage import ApiUsage, Pause, UsageView
    from quotasync.usage import Settings as UsageSettings

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
rts_app = typer.Typer(
    help="Real-Time Sync: the org pushes changes as they happen (spends async Apex).",
    no_args_is_help=True,
)
app.add_typer(rts_app, name="rts")

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
        str | None,
        typer.Option(
            help="Turn Real-Time Sync on: the org pushes signed change notices to this http(s) "
            "URL on this machine (seeds an enabled QS_Sync_Setting__c)."
        ),
    ] = None,
    rts_secret: Annotated[
        str | None,
        typer.Option(
            help="The HMAC-SHA256 key pushes are signed with (with --rts-callback; default: a "
            "generated one, shown in sandbox.json)."
        ),
    ] = None,
    session_timeout_minutes: Annotated[
        float, typer.Option(help="Sessions expire after this much inactivity (0: never).", min=0)
    ] = 120.0,
) -> None:
    """Run a Salesforce org on this machine (HTTPS, its own CA), for tests, benchmarks and demos."""
    from quotasync.sandbox import rts, server
    from quotasync.sandbox.org import OrgConfig

    if edition is not None and edition not in EDITIONS:
        raise typer.BadParameter(f"choose one of {', '.join(EDITIONS)}", param_hint="--edition")
    if rts_callback is not None:
        problem = rts.callback_problem(rts_callback)
        if problem is None and len(rts_callback) > 255:
            problem = "at most 255 characters"
        if problem is not None:
            raise typer.BadParameter(problem, param_hint="--rts-callback")
    if rts_secret is not None:
        if rts_callback is None:
            raise typer.BadParameter("needs --rts-callback too", param_hint="--rts-secret")
        if not 1 <= len(rts_secret) <= 255:
            raise typer.BadParameter("1 to 255 characters", param_hint="--rts-secret")
    config = OrgConfig(
        edition=edition,
        licenses=licenses,
        daily_api_requests=daily_api_requests,
        seed=seed,
        rts_callback=rts_callback,
        rts_secret=rts_secret,
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


SANDBOX_USER = "sync"


@app.command()
def connect(
    workspace: WorkspaceOption,
    sandbox: Annotated[Path, typer.Option("--sandbox", help="A sandbox org's sandbox.json.")],
    user: Annotated[
        str,
        typer.Option(
            "--user",
            help="The sandbox user to sync as, by handle (sync: no View Setup; admin: has it).",
        ),
    ] = SANDBOX_USER,
    as_json: JsonOption = False,
) -> None:
    """Connect a workspace to a sandbox org as its `quotasync` app and a sync user, and load the
    org's people into the mirror."""
    from quotasync.engine.matching import Matcher
    from quotasync.salesforce.connection import ConnectError, SandboxLogin

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    connector = runtime.connector
    try:
        connection = connector.connect_sandbox(ws.id, SandboxLogin.read(sandbox, user))
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


def _salesforce_trouble() -> tuple[type[Exception], ...]:
    import requests
    from simple_salesforce.exceptions import SalesforceError

    from quotasync.store.ledger import NoRoom

    return (SalesforceError, NoRoom, requests.RequestException)


@rts_app.command("on")
def rts_on(
    workspace: WorkspaceOption,
    url: Annotated[
        str,
        typer.Option("--url", help="Where the org pushes: this server's /rts/{workspace} URL."),
    ],
) -> None:
    """Switch Real-Time Sync on: a new secret, the org's setting record pointing at --url, and a
    catch-up sync. When the Apex quota runs out it rolls over to Interval Sync and back."""
    from quotasync.engine.realtime import RealTime, RealTimeUnavailable
    from quotasync.salesforce.connection import ConnectError

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    if not url.startswith(("http://", "https://")):
        _fail(f"--url must be an http(s) URL; got {url!r}")
    try:
        RealTime(runtime.connector, ws.id, runtime.clock).enable(url)
    except (RealTimeUnavailable, ConnectError) as exc:
        _fail(f"Real-Time Sync is not on: {exc}")
    except _salesforce_trouble() as exc:
        _fail(f"Real-Time Sync is not on: {exc}")
    typer.echo(f"{ws.id}: Real-Time Sync is on; the org pushes changes to {url}")


@rts_app.command("off")
def rts_off(workspace: WorkspaceOption) -> None:
    """Switch Real-Time Sync off: the org stops pushing, Interval Sync keeps the mirror."""
    from quotasync.engine.realtime import RealTime
    from quotasync.salesforce.connection import ConnectError

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    try:
        RealTime(runtime.connector, ws.id, runtime.clock).disable()
    except ConnectError as exc:
        _fail(str(exc))
    except _salesforce_trouble() as exc:
        _fail(f"Real-Time Sync could not be switched off in the org: {exc}")
    typer.echo(f"{ws.id}: Real-Time Sync is off; Interval Sync keeps the mirror")


@app.command()
def sync(
    workspace: WorkspaceOption,
    full: Annotated[
        bool,
        typer.Option("--full", help="Load every record again, not only the changes."),
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Bring the org's Users, Accounts, Contacts, Leads and Opportunities into the mirror: all of
    them the first time (or with --full), the changes since the last sync after that."""
    from rich.console import Console
    from rich.progress import Progress

    from quotasync.engine.sync import ObjectReport, Syncer
    from quotasync.salesforce.connection import ConnectError

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
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
        except ConnectError as exc:
            _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        _print_sync(report)
    if report.paused is not None:
        typer.echo(f"error: {report.paused.message}", err=True)
    elif report.error is not None:
        typer.echo(f"error: sync stopped: {report.error}", err=True)
    for failed in (o for o in report.objects.values() if o.error):
        typer.echo(f"error: {failed.sobject} not synced: {failed.error}", err=True)
    if not report.complete or report.paused is not None or report.error is not None:
        raise typer.Exit(1)


def _print_sync(report: SyncReport) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("object", "via", "counted", "fetched", "applied", "deleted", "state")
    for o in report.objects.values():
        state = "done" if o.done else ("failed" if o.error else "not done")
        counted = "-" if o.counted is None else f"{o.counted:,}"
        table.add_row(
            o.sobject,
            o.via or "-",
            counted,
            f"{o.fetched:,}",
            f"{o.applied:,}",
            f"{o.deleted:,}",
            f"{'full load, ' if o.full else ''}{state}",
        )
    Console().print(table)
    spent = ", ".join(f"{api} {n:,}" for api, n in sorted(report.calls.items())) or "none"
    typer.echo(f"calls spent: {spent}")


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


def _usage_view(runtime: Runtime, workspace: Workspace) -> UsageView:
    from quotasync import usage

    with runtime.sessions() as session:
        return usage.view(session, workspace, runtime.clock.now())


@limit_app.command("show")
def limit_show(workspace: WorkspaceOption, as_json: JsonOption = False) -> None:
    """quotasync's share of each API quota, the org's figures, what is left, and whether syncing
    of each type runs or is paused."""
    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    view = _usage_view(runtime, ws)
    if as_json:
        typer.echo(json.dumps(view.as_dict()))
        return
    from rich.console import Console

    Console().print(_limits_table(view))
    for reason, apis in _unavailable(view).items():
        typer.echo(f"{', '.join(apis)}: unavailable: {reason}")
    for api in view.apis.values():
        if api.available or api.pauses:  # an unavailable type's line above says all there is
            typer.echo(f"{api.api}: {_state_text(api)}")
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


def _settings_text(settings: UsageSettings) -> str:
    return (
        f"while paused, quotasync looks again every {settings.recheck_minutes} minutes; "
        f"the admins are warned past {settings.warning_percent}% of a share; "
        f"batches wait {settings.batch_delay:g} s, up to {settings.max_batch_delay:g} s when paced"
    )


def _when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "-"


@limit_app.command("set")
def limit_set(
    workspace: WorkspaceOption,
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
    max_batch_delay: Annotated[
        float | None,
        typer.Option(
            "--max-batch-delay",
            help="Pacing may make batches wait up to this many seconds (batch delay to 3600).",
        ),
    ] = None,
) -> None:
    """Change the workspace's quota settings: a share (10-90%), the recheck interval, the warning
    threshold, the longest paced batch delay. Each applies at once."""
    from quotasync.domain import governor
    from quotasync.store import limits

    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    if (api is None) != (percent is None):
        _fail("--api and --percent go together: which API type's share, and how much")
    if api is None and (recheck_minutes, warning_percent, max_batch_delay) == (None, None, None):
        _fail(
            "nothing to set: give --api with --percent, --recheck-minutes, --warning-percent "
            "or --max-batch-delay"
        )
    told = []
    with runtime.sessions.begin() as session:  # all or nothing: a refusal rolls back the rest
        if api is not None and percent is not None:
            value = _set_share(session, ws, api, percent)
            told.append(f"quotasync may use {value}% of the org's {api} quota")
        try:
            changes = limits.set_settings(
                session,
                ws,
                recheck_minutes=recheck_minutes,
                warning_percent=warning_percent,
                max_batch_delay=max_batch_delay,
            )
        except governor.SettingsError as exc:
            _fail(str(exc))
    told.extend(SETTING_TEXT[column].format(value) for column, value in changes.items())
    for text in told:
        typer.echo(f"{ws.id}: {text}")


SETTING_TEXT = {
    "recheck_minutes": "while paused, quotasync looks again every {} minutes",
    "warning_percent": "the admins are warned once use passes {}% of a share",
    "max_batch_delay": "pacing may make batches wait up to {:g} seconds",
}


def _set_share(session: Session, ws: Workspace, api: str, percent: str) -> int:
    from quotasync import usage
    from quotasync.domain.governor import ShareError
    from quotasync.store import limits

    refusal = usage.share_refusal(ws, api)
    if refusal is not None:
        _fail(refusal)
    try:
        given: object = int(percent) if percent.strip().lstrip("-").isdigit() else percent
        return limits.set_share(session, ws, api, given)
    except ShareError as exc:
        _fail(str(exc))


@app.command()
def usage(workspace: WorkspaceOption, as_json: JsonOption = False) -> None:
    """What quotasync, other apps and each member spent of the org's quotas in the past 24 hours,
    and whether syncing runs or is paused."""
    runtime = _runtime()
    ws = _workspace(runtime.sessions, workspace)
    view = _usage_view(runtime, ws)
    if as_json:
        typer.echo(json.dumps(view.as_dict()))
        return
    for api in view.apis.values():
        typer.echo(f"{api.api:>5}: {_usage_text(api)}")
        for pause in api.pauses:
            typer.echo(f"{'':7}{_pause_text(api.api, pause)}")
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
    if view.sync_mode == "realtime":
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
    from datetime import timedelta

    from quotasync.engine.notifier import Notifier
    from quotasync.engine.worker import Worker

    runtime = _runtime(speed, epoch)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    notifier = Notifier(runtime.sessions, runtime.settings, runtime.clock)
    claim = timedelta(seconds=runtime.settings.claim_seconds)
    worker = Worker(runtime.connector, runtime.clock, notifier, claim)
    progress = worker.run(stop, until_idle=until_idle)
    typer.echo(
        f"worker stopped: {progress.settled:,} activities settled in {progress.steps:,} steps"
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
