"""`quotasync user`: the people of a workspace (add, list), their passwords and API tokens."""

from __future__ import annotations

import json
from typing import Annotated, Any

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
    workspace: common.WorkspaceOption,
    email: EmailArgument,
    revoke_tokens: Annotated[
        bool,
        typer.Option(
            "--revoke-tokens",
            help="Also revoke every API token of theirs (when the old password may have leaked).",
        ),
    ] = False,
    as_json: common.JsonOption = False,
) -> None:
    """Give a person a new random password (shown once); the old one stops working and every web
    session signed in with it ends."""
    from quotasync.store import users

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    with runtime.sessions.begin() as session:
        person = _person(session, ws.id, email)
        password = users.reset_password(
            session, person, runtime.clock.now(), revoke_tokens=revoke_tokens
        )
    if as_json:
        typer.echo(json.dumps({"email": person.email, "password": password}))
        return
    typer.echo(f"new password for {person.email}: {password}  (shown once)")
    if revoke_tokens:
        typer.echo("their API tokens are revoked")


@user_app.command("token")
def user_token(
    workspace: common.WorkspaceOption,
    email: EmailArgument,
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
    days: Annotated[
        int,
        typer.Option("--days", help="How long it works (1 to 366; 0: until revoked).", min=0),
    ] = 90,
    as_json: common.JsonOption = False,
) -> None:
    """Make an API token for a person (shown once): `Authorization: Bearer <token>` on /api/v1."""
    from quotasync.store import users

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    with runtime.sessions.begin() as session:
        person = _person(session, ws.id, email)
        try:
            token = users.new_api_token(
                session, person, runtime.clock.now(), name=name, days=days or None
            )
        except users.UserError as exc:
            common.fail(str(exc))
        made = users.tokens_of(session, person.id)[-1]
        shown = {
            "email": person.email,
            "role": person.role,
            "id": made.id,
            "name": made.name,
            "expires_at": made.expires_at.isoformat() if made.expires_at else None,
        }
    if as_json:
        typer.echo(json.dumps({**shown, "token": token}))
        return
    until = f"until {shown['expires_at'][:10]}" if shown["expires_at"] else "until revoked"
    typer.echo(
        f"API token {shown['id']} ({shown['name']}) for {shown['email']} ({shown['role']}), "
        f"{until}: {token}  (shown once)"
    )


@user_app.command("tokens")
def user_tokens(
    workspace: common.WorkspaceOption, email: EmailArgument, as_json: common.JsonOption = False
) -> None:
    """A person's API tokens: name, made, last used, expiry, revoked (never the tokens)."""
    from quotasync.store import users

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    with runtime.sessions() as session:
        person = _person(session, ws.id, email)
        listed = [_token_row(t) for t in users.tokens_of(session, person.id)]
    if as_json:
        typer.echo(json.dumps(listed))
        return
    for row in listed:
        state = "revoked" if row["revoked_at"] else "live"
        typer.echo(
            f"{row['id']:>5}  {state:<8}{row['name']}  made {row['created_at'][:16]}, last used "
            f"{(row['last_used_at'] or 'never')[:16]}, expires {(row['expires_at'] or 'never')[:10]}"
        )


@user_app.command("revoke-token")
def user_revoke_token(
    workspace: common.WorkspaceOption,
    email: EmailArgument,
    token_id: Annotated[int, typer.Argument(help="The token's id (`quotasync user tokens`).")],
) -> None:
    """Revoke one of a person's API tokens: it stops working at once."""
    from quotasync.store import users

    runtime = common.runtime()
    ws = common.find_workspace(runtime.sessions, workspace)
    with runtime.sessions.begin() as session:
        person = _person(session, ws.id, email)
        try:
            users.revoke_token(session, person.id, token_id, runtime.clock.now())
        except users.UserError as exc:
            common.fail(str(exc))
    typer.echo(f"token {token_id} of {person.email} is revoked")


def _token_row(token) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    def when(moment):  # type: ignore[no-untyped-def]
        return moment.isoformat() if moment is not None else None

    return {
        "id": token.id,
        "name": token.name or "(unnamed)",
        "created_at": when(token.created_at),
        "last_used_at": when(token.last_used_at),
        "expires_at": when(token.expires_at),
        "revoked_at": when(token.revoked_at),
    }


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
