"""The `quotasync` command: the root app and what it is made of, one module per part.

`quotasync --help` lists commands and groups in the order they are registered below. A new
group is one `app.add_typer(module.x_app, name="x")` line here.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from quotasync.cli import (
    activities,
    database,
    doctor,
    limits,
    org,
    serving,
    syncing,
    users,
    workspaces,
)

app = typer.Typer(
    help="quotasync: log sales-email activity into Salesforce within the API quota admins set.",
    no_args_is_help=True,
    add_completion=False,
    # Click's own help layout: whole sentences wrapped at the terminal's width, option names
    # never cut, no `<str>`-style tags (Rich's panels cut and tagged them at 80 columns).
    rich_markup_mode=None,
    context_settings={"max_content_width": 100, "help_option_names": ["-h", "--help"]},
    # A traceback's local variables may hold tokens or passwords: never print them.
    pretty_exceptions_show_locals=False,
)


def _version(shown: bool) -> None:
    if shown:
        from quotasync import __version__

        typer.echo(f"quotasync {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """quotasync: log sales-email activity into Salesforce within the API quota admins set."""


app.command()(serving.sandbox)
app.command()(serving.demo)
app.command()(serving.serve)
app.command()(workspaces.connect)
app.command()(workspaces.disconnect)
app.command()(syncing.sync)
app.command()(limits.usage)
app.command()(serving.worker)
app.command()(doctor.doctor)

app.add_typer(database.db_app, name="db")
app.add_typer(workspaces.workspace_app, name="workspace")
app.add_typer(limits.limit_app, name="limit")
app.add_typer(activities.activities_app, name="activities")
app.add_typer(syncing.rts_app, name="rts")
app.add_typer(users.user_app, name="user")
app.add_typer(org.org_app, name="org")


def _one_line_summaries(typer_app: typer.Typer) -> None:
    """Each command's summary in a `--help` list is its docstring's first paragraph on one line:
    Typer keeps the docstring's hard line breaks there, which come out as ragged rows."""
    for command in typer_app.registered_commands:
        doc = command.help or (command.callback.__doc__ if command.callback else None)
        if command.short_help is None and doc:
            command.short_help = " ".join(doc.strip().split("\n\n")[0].split())
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _one_line_summaries(group.typer_instance)


_one_line_summaries(app)


def command() -> Any:
    """The click command `quotasync` runs, with plain metavars (`--host HOST`, not Typer's
    `--host <str>` tags)."""
    built = typer.main.get_command(app)
    _plain_metavars(built)
    return built


def _plain_metavars(command: Any) -> None:
    # Duck-typed: Typer's options are not click.Option subclasses.
    for param in command.params:
        kind = getattr(param, "param_type_name", "")
        if kind == "argument" and param.metavar is None:
            param.metavar = param.name.upper()
            continue
        if kind == "option" and not getattr(param, "is_flag", False) and param.metavar is None:
            choices = getattr(getattr(param, "type", None), "choices", None)
            param.metavar = "|".join(map(str, choices)) if choices else param.name.upper()
    # Typer's groups are not click.Group subclasses, but hold their commands the same way.
    for sub in (getattr(command, "commands", None) or {}).values():
        _plain_metavars(sub)


def main() -> None:
    command()(prog_name="quotasync")
