"""`quotasync activities`: import a JSON Lines file into the outbox, count by state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from quotasync.cli import common

activities_app = typer.Typer(
    help="Activities: import, list, and a sample to try.", no_args_is_help=True
)


@activities_app.command("import")
def activities_import(
    workspace: common.WorkspaceOption,
    file: Annotated[
        Path, typer.Argument(help="JSON Lines: one activity per line.", exists=True, dir_okay=False)
    ],
    as_json: common.JsonOption = False,
) -> None:
    """Store the activities of a JSON Lines file in the outbox (the worker writes them)."""
    from rich.progress import Progress

    from quotasync.ingest import Ingest

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
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
        typer.echo(f"  line {error['line']}: {problems_text(error['problems'])}", err=True)
    if len(summary.errors) > 20:
        typer.echo(f"  … and {len(summary.errors) - 20:,} more lines (--json lists all)", err=True)
    if summary.errors:
        raise typer.Exit(1)


def problems_text(problems: list[dict[str, str]]) -> str:
    """`field message; field message`, as a person reads it (not Python's repr)."""
    return "; ".join(
        f"{p['field']} {p['message']}" if p.get("field") else p["message"] for p in problems
    )


@activities_app.command("list")
def activities_list(
    workspace: common.WorkspaceOption,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="List the activities in this state (failed, skipped, pending, logged) with "
            "their reasons, newest first, instead of counting every state.",
        ),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="At most this many.", min=1)] = 50,
    as_json: common.JsonOption = False,
) -> None:
    """How many activities are in each state; with --state, which ones and why."""
    from quotasync.domain.activities import State
    from quotasync.store import outbox

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    if state is not None:
        if state not in tuple(State):
            common.fail(f"--state is one of {', '.join(State)}; got {state!r}")
        with runtime.sessions() as session:
            rows = outbox.recent(session, ws.id, state=State(state), limit=limit)
            listed = [
                {
                    "id": row.id,
                    "kind": row.kind,
                    "user": row.user_email,
                    "received_at": row.received_at.isoformat(),
                    "reason": row.last_error,
                }
                for row in rows
            ]
        if as_json:
            typer.echo(json.dumps(listed))
            return
        if not listed:
            typer.echo(f"no {state} activities in {ws.id}")
        for item in listed:
            why = f": {item['reason']}" if item["reason"] else ""
            typer.echo(f"{item['id']}  {item['kind']}  {item['user']}{why}")
        return
    with runtime.sessions() as session:
        counts = outbox.counts(session, ws.id)
        skipped = outbox.skipped_reasons(session, ws.id)
    if as_json:
        typer.echo(json.dumps({**counts, "skipped_by_reason": skipped}))
        return
    for state in State:
        typer.echo(f"{state:>8}: {counts.get(state, 0):,}")
    for reason, n in sorted(skipped.items()):
        typer.echo(f"{'':>10}{reason.replace('_', ' ')}: {n:,}")


@activities_app.command("sample")
def activities_sample(
    sandbox: Annotated[
        Path,
        typer.Option(
            "--sandbox", help="The sandbox org's folder (or its sandbox.json) to draw people from."
        ),
    ],
    count: Annotated[int, typer.Option("--count", help="How many activities.", min=1)] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Another seed, other activities.")] = 7,
) -> None:
    """Print a day of sales-email activity (JSON Lines: emails, opens, clicks, replies, meetings)
    between the sandbox org's reps and its Contacts and Leads: something to import and watch
    quotasync log."""
    from datetime import UTC, datetime

    from quotasync.demo.org import org_records
    from quotasync.demo.reps import org_people
    from quotasync.errors import SalesforceError
    from quotasync.simulation import ActivityStream

    config_file = sandbox / "sandbox.json" if sandbox.is_dir() else sandbox
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        common.fail(f"{config_file} is not a sandbox.json: {exc}")
    try:
        found, people = org_people(lambda sobject: org_records(config, sobject))
    except SalesforceError as exc:
        common.fail(str(exc))
    reps = list(found)
    if not reps or not people:
        common.fail("the sandbox org has no reps or no people: start it with --seed N")
    start = datetime.now(UTC).replace(microsecond=0)
    for activity in ActivityStream(reps, people, start, seed=seed).take(count):
        typer.echo(json.dumps(activity))
