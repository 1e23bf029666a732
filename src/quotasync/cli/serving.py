"""The commands that run until stopped: the sandbox org, the JSON API, the worker, the demo."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quotasync.cli import common
from quotasync.sandbox.editions import EDITIONS

if TYPE_CHECKING:
    from quotasync.sandbox.org import OrgConfig


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
        str | None,
        typer.Option(
            help=f"Org edition: {', '.join(EDITIONS)}. [default: enterprise on a first start; "
            "a restart keeps the org's]"
        ),
    ] = None,
    licenses: Annotated[
        int | None,
        typer.Option(
            help="Salesforce user licenses (the API allocation grows with them). [default: "
            "the edition's own on a first start; a restart keeps the org's]",
            min=1,
        ),
    ] = None,
    daily_api_requests: Annotated[
        int | None, typer.Option(help="Override the edition's DailyApiRequests allocation.", min=1)
    ] = None,
    speed: common.SpeedOption = None,
    epoch: common.EpochOption = None,
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
    without_package: Annotated[
        bool,
        typer.Option(
            "--without-package",
            "--bare-activity-fields",
            help="First start only: an org without quotasync's package, as before `quotasync org "
            "install`: Task and Event without QS_Activity_Id__c, QS_Opens__c and QS_Clicks__c, "
            "no QS_Sync_Setting__c, no Real-Time Sync triggers (nothing is pushed).",
        ),
    ] = False,
) -> None:
    """Run a Salesforce org on this machine (HTTPS, its own CA), for tests, benchmarks and demos."""
    from quotasync.sandbox import server

    config = org_config(
        edition,
        licenses,
        daily_api_requests,
        seed,
        rts_callback,
        rts_secret,
        session_timeout_minutes,
        without_package,
    )
    from quotasync.sandbox.control import is_loopback

    if not is_loopback(host):
        typer.echo(
            f"warning: the sandbox org listens on {host}, beyond this machine: anyone who can "
            "reach it may try its users' passwords; its control API still answers only this "
            "machine",
            err=True,
        )
    try:
        server.run(state_dir, config, common.clock(speed, epoch), host=host, port=port)
    except KeyboardInterrupt:
        pass
    except OSError as exc:
        typer.echo(f"error: cannot serve on {host}:{port}: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from None


def org_config(
    edition: str | None,
    licenses: int | None,
    daily_api_requests: int | None,
    seed: int,
    rts_callback: str | None,
    rts_secret: str | None,
    session_timeout_minutes: float,
    without_package: bool = False,
) -> OrgConfig:
    """The org `quotasync sandbox`'s options describe, or a BadParameter naming the option."""
    from quotasync.sandbox import rts
    from quotasync.sandbox.org import OrgConfig

    if edition is not None and edition not in EDITIONS:
        raise typer.BadParameter(f"choose one of {', '.join(EDITIONS)}", param_hint="--edition")
    if rts_callback is not None:
        problem = rts.callback_problem(rts_callback)
        if problem is None and len(rts_callback) > 255:
            problem = "at most 255 characters"
        if problem is not None:
            raise typer.BadParameter(problem, param_hint="--rts-callback")
    if rts_callback is not None and without_package:
        raise typer.BadParameter(
            "an org without the package has no QS_Sync_Setting__c", param_hint="--rts-callback"
        )
    if rts_secret is not None:
        if rts_callback is None:
            raise typer.BadParameter("needs --rts-callback too", param_hint="--rts-secret")
        if not 1 <= len(rts_secret) <= 255:
            raise typer.BadParameter("1 to 255 characters", param_hint="--rts-secret")
    return OrgConfig(
        edition=edition,
        licenses=licenses,
        daily_api_requests=daily_api_requests,
        seed=seed,
        rts_callback=rts_callback,
        rts_secret=rts_secret,
        session_timeout_minutes=session_timeout_minutes,
        without_package=without_package,
    )


def demo(
    headless: Annotated[
        bool,
        typer.Option(
            "--headless",
            help="Nobody watching: run the story for --minutes (3), print the summary, exit 1 "
            "if any accepted activity is missing or duplicated in the org.",
        ),
    ] = False,
    minutes: Annotated[
        float | None,
        typer.Option(
            help="Real minutes of story, from the reps' first activity (default: until Ctrl-C; "
            "3 with --headless). A story that would not fit runs on a faster clock.",
            min=0.5,
        ),
    ] = None,
    speed: Annotated[
        float,
        typer.Option(
            help="Virtual seconds per real second: at 60 a day of quota is 24 minutes.",
            min=1,
            max=600,
        ),
    ] = 60.0,
    port: Annotated[
        int,
        typer.Option(help="The web app's port on 127.0.0.1; 0 picks a free one.", min=0, max=65535),
    ] = 0,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where the demo keeps its org, store, emails and log (default: a fresh "
            "temporary folder, removed at the end)."
        ),
    ] = None,
    as_json: common.JsonOption = False,
) -> None:
    """The whole product on the embedded defaults, no account, no setup: a seeded sandbox org,
    the web app, the worker, 20 reps' activity and other apps' load, on a virtual clock; it
    prints the sign-in and each chapter as it happens, and the summary when stopped (Ctrl-C)."""
    import signal
    import tempfile
    import threading

    from rich.console import Console

    from quotasync import demo as show
    from quotasync.demo.org import OrgStopped
    from quotasync.demo.stage import CannotServe
    from quotasync.sandbox.launcher import SandboxDidNotStart

    if data_dir is not None and data_dir.exists() and any(data_dir.iterdir()):
        common.fail(
            f"--data-dir {data_dir} holds an earlier run: give the demo a new or empty folder"
        )
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda *_: stop.set())
    console = Console(stderr=as_json, highlight=False)
    if headless and minutes is None:
        minutes = 3.0
    with tempfile.TemporaryDirectory(prefix="quotasync-demo-") as scratch:
        options = show.Options(data_dir or Path(scratch), minutes, speed, port)
        try:
            summary = show.run(options, console, stop)
        except show.Interrupted:
            console.print("demo stopped before the story began")
            raise typer.Exit(130) from None
        except (SandboxDidNotStart, CannotServe, OrgStopped) as exc:
            common.fail(str(exc))
    _print_demo(summary, as_json, console)
    if summary.interrupted and headless:
        raise typer.Exit(130)
    raise typer.Exit(0 if summary.ok else 1)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=0, max=65535)] = 8000,
) -> None:
    """Serve the web app (sign in at /), the JSON API and the ingest API (docs at /docs)."""
    import socket

    import uvicorn

    from quotasync.web.app import create_app

    runtime = common.runtime()
    app_ = create_app(runtime)
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        common.fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")
    sock.listen(2048)  # connections queue from now on, so the line below is a promise
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"quotasync serving on http://{shown}:{sock.getsockname()[1]}", nl=True)
    server = uvicorn.Server(uvicorn.Config(app_, log_level="warning", access_log=False))
    server.run(sockets=[sock])


def _print_demo(summary, as_json: bool, console) -> None:  # type: ignore[no-untyped-def]
    import json

    from quotasync.demo.summary import render

    render(summary, console)
    if as_json:
        typer.echo(json.dumps(summary.as_dict(), indent=2))


def worker(
    until_idle: Annotated[
        bool,
        typer.Option("--until-idle", help="Exit when nothing is pending and nothing is paused."),
    ] = False,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency",
            "-c",
            help="Threads in this process, each stepping one workspace at a time.",
            min=1,
            max=64,
        ),
    ] = 1,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            help="Serve this process's Prometheus metrics on 127.0.0.1:PORT (0 picks one).",
            min=0,
            max=65535,
        ),
    ] = None,
    speed: common.SpeedOption = None,
    epoch: common.EpochOption = None,
) -> None:
    """Write pending activities to Salesforce until stopped. Run as many as you like, on any hosts
    sharing one PostgreSQL store: they share the workspaces by lease. SIGINT/SIGTERM finish the
    batches in flight and give the leases back."""
    import signal
    import threading

    from quotasync import metrics
    from quotasync.engine import process

    runtime = common.runtime(speed, epoch)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    if metrics_port is not None:
        try:
            bound = metrics.serve_worker_metrics("127.0.0.1", metrics_port)
        except OSError as exc:
            common.fail(f"cannot serve metrics on 127.0.0.1:{metrics_port}: {exc.strerror or exc}")
        typer.echo(f"worker metrics on http://127.0.0.1:{bound}/metrics")
    for problem in process.cannot_do(runtime):
        typer.echo(f"note: {problem}", err=True)
    pool = process.pool(runtime, concurrency=concurrency, until_idle=until_idle)
    progress = pool.run(stop)
    typer.echo(
        f"worker stopped: {progress.settled:,} "
        f"{'activity' if progress.settled == 1 else 'activities'} settled in "
        f"{progress.steps:,} {'step' if progress.steps == 1 else 'steps'}"
    )
    if until_idle:
        for problem in process.cannot_do(runtime):
            typer.echo(f"left: {problem}", err=True)
