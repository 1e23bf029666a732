"""`quotasync user`: the people of a workspace (add, list), their passwords and API tokens."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from quotasync.cli import common
from quotasync.domain.roles import Role

user_app = typer.Typer(help="People of a workspace: add, list, passwords, API tokens.")

EmailArgument = Annotated[str, typer.Argument(help="The person's email.")]


@user_app.command("add")
def user_add(
    workspace: common.WorkspaceOption,
    email: EmailArgument,
    role: Annotated[str, typer.Option("--role", help="admin or member.")] = Role.MEMBER.value,
    as_json: common.JsonOption = False,
) -> None:
    """Add a person to a workspace; prints their first password (shown once) and where to sign in."""
    from quotasync.store import users

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    with runtime.sessions.begin() as session:
        try:
            made = users.add(session, ws, email, role, runtime.clock.now())
        except users.UserError as exc:
            common.fail(str(exc))
        out = {"workspace": ws.id, "email": made.user.email, "role": made.user.role}
    out["password"] = made.password
    if as_json:
        typer.echo(json.dumps(out))
        return
    typer.echo(f"{out['email']} is now a {out['role']} of {ws.id} ({ws.name})")
    typer.echo(f"first password: {made.password}  (shown once; sign in at /signin)")


@user_app.command("list")
def user_list(workspace: common.WorkspaceOption, as_json: common.JsonOption = False) -> None:
    """Who is in a workspace, and with which role."""
    from quotasync.store import users

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    with runtime.sessions() as session:
        people = [
            {"email": row.email, "role": row.role, "created_at": row.created_at.isoformat()}
            for row in users.of_workspace(session, ws.id)
        ]
    if as_json:
        typer.echo(json.dumps(people))
        return
    for person in people:
        typer.echo(f"{person['role']:>6}  {person['email']}")


@user_app.command("password")
def user_password(
    workspace: common.WorkspaceOption, email: EmailArgument, as_json: common.JsonOption = False
) -> None:
    """Give a person a new random password (shown once); the old one stops working."""
    from quotasync.store import users

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    with runtime.sessions.begin() as session:
        person = _person(session, ws.id, email)
        password = users.reset_password(person)
    if as_json:
        typer.echo(json.dumps({"email": person.email, "password": password}))
        return
    typer.echo(f"new password for {person.email}: {password}  (shown once)")


@user_app.command("token")
def user_token(
    workspace: common.WorkspaceOption, email: EmailArgument, as_json: common.JsonOption = False
) -> None:
    """Make an API token for a person (shown once): `Authorization: Bearer <token>` on /api/v1."""
    from quotasync.store import users

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    with runtime.sessions.begin() as session:
        person = _person(session, ws.id, email)
        token = users.new_api_token(session, person, runtime.clock.now())
        shown = {"email": person.email, "role": person.role}
    if as_json:
        typer.echo(json.dumps({**shown, "token": token}))
        return
    typer.echo(f"API token for {shown['email']} ({shown['role']}): {token}  (shown once)")


def _person(session, workspace_id: str, email: str):  # type: ignore[no-untyped-def]
    from quotasync.store import users

    try:
        found = users.find(session, workspace_id, email)
    except users.UserError as exc:
        common.fail(str(exc))
    if found is None:
        common.fail(
            f"{email} is not in workspace {workspace_id}; add them with `quotasync user add`"
        )
    return found
