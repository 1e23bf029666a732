"""What the commands share: their common options, the runtime and workspace they open, and how
they fail (a message on stderr, exit code 2)."""

from __future__ import annotations

from typing import Annotated, NoReturn

import typer

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]

WorkspaceOption = Annotated[str, typer.Option("--workspace", help="Workspace id (or unique name).")]

SpeedOption = Annotated[
    float | None,
    typer.Option(help="Virtual clock: N virtual seconds per real second.", min=0),
]
EpochOption = Annotated[
    str | None,
    typer.Option(help="Virtual clock: the ISO-8601 instant where virtual and real time agree."),
]


def clock(speed: float | None, epoch: str | None):  # type: ignore[no-untyped-def]
    from quotasync.clock import make_clock

    try:
        return make_clock(speed, epoch)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--epoch") from None


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def runtime(speed: float | None = None, epoch: str | None = None):  # type: ignore[no-untyped-def]
    from quotasync.config import Settings
    from quotasync.runtime import NotMigrated, open_runtime

    settings = Settings()
    # Options first; else the environment's virtual clock, so that several commands (a server
    # and a `usage --json`, say) can agree on one moment.
    speed = speed if speed is not None else settings.clock_speed
    epoch = epoch if epoch is not None else settings.clock_epoch
    try:
        return open_runtime(settings, clock=clock(speed, epoch))
    except NotMigrated as exc:
        fail(str(exc))


def find_workspace(sessions, reference: str):  # type: ignore[no-untyped-def]
    from quotasync.store import workspaces

    with sessions() as session:
        try:
            return workspaces.find(session, reference)
        except workspaces.WorkspaceError as exc:
            fail(str(exc))
