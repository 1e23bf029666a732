"""The `quotasync` command."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from quotasync.sandbox.editions import EDITIONS

app = typer.Typer(
    help="quotasync: log sales-email activity into Salesforce within the API quota admins set.",
    no_args_is_help=True,
    add_completion=False,
)

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


def main() -> None:
    app()


if __name__ == "__main__":
    main()
