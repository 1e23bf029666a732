"""`quotasync db upgrade` and `quotasync workspace` as a user runs them, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import select

from quotasync import crypto
from quotasync.store import db
from quotasync.store.tables import User, Workspace
from tests.processes import cli


def quotasync(
    tmp_path: Path, *args: str, url: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(tmp_path / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    if url:
        env["QUOTASYNC_DATABASE_URL"] = url
    return cli(list(args), env, timeout=60)


def test_a_new_workspace_gets_an_admin_and_an_ingest_token_kept_only_as_a_hash(
    tmp_path: Path, database_url: str
) -> None:
    upgraded = quotasync(tmp_path, "db", "upgrade", url=database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    head = ScriptDirectory.from_config(db.alembic_config(database_url)).get_current_head()
    assert f"database at revision {head}" in upgraded.stdout
    made = quotasync(
        tmp_path,
        "workspace",
        "create",
        "Acme Sales",
        "--admin",
        "RevOps@Acme.io",
        "--json",
        url=database_url,
    )
    assert made.returncode == 0, made.stderr
    out = json.loads(made.stdout)
    assert out["name"] == "Acme Sales" and out["admin"] == "revops@acme.io"
    assert out["workspace"].startswith("ws_") and out["ingest_token"].startswith("qsi_")
    engine = db.make_engine(database_url)
    with db.sessions(engine)() as session:
        workspace = session.get(Workspace, out["workspace"])
        assert workspace is not None
        assert workspace.ingest_token_hash == crypto.token_hash(out["ingest_token"])
        assert out["ingest_token"] not in json.dumps(
            [c for c in workspace.__dict__.values() if isinstance(c, str)]
        )
        roles = session.execute(select(User.email, User.role)).all()
        assert [tuple(r) for r in roles] == [("revops@acme.io", "admin")]
        assert workspace.open_tracking and workspace.unmatched == "skip"
    engine.dispose()
    listed = json.loads(quotasync(tmp_path, "workspace", "list", "--json", url=database_url).stdout)
    assert [(w["workspace"], w["users"]) for w in listed] == [(out["workspace"], 1)]


def test_the_embedded_store_needs_no_setup(tmp_path: Path) -> None:
    made = quotasync(tmp_path, "workspace", "create", "Solo", "--admin", "me@solo.dev")
    assert made.returncode == 0, made.stderr
    assert "ingest token: qsi_" in made.stdout
    assert (tmp_path / "data" / "quotasync.db").is_file()


def test_bad_workspace_input_is_refused_plainly(tmp_path: Path) -> None:
    for args, message in [
        (("", "--admin", "a@b.co"), "a workspace name is 1 to 200 characters"),
        (("Acme", "--admin", "not-an-email"), "'not-an-email' is not an email address"),
    ]:
        result = quotasync(tmp_path, "workspace", "create", *args)
        assert result.returncode == 2
        assert f"error: {message}" in result.stderr
        assert "Traceback" not in result.stderr


def test_two_workspaces_may_not_share_a_name(tmp_path: Path) -> None:
    first = quotasync(tmp_path, "workspace", "create", "Acme", "--admin", "a@acme.io", "--json")
    assert first.returncode == 0, first.stderr
    ws = json.loads(first.stdout)["workspace"]
    again = quotasync(tmp_path, "workspace", "create", "acme", "--admin", "b@acme.io")
    assert again.returncode == 2
    assert f"error: a workspace named 'acme' exists already ({ws}); choose another name" in (
        again.stderr
    )
    # The name stays one workspace's, so it still stands for it.
    shown = quotasync(tmp_path, "limit", "show", "--workspace", "Acme")
    assert shown.returncode == 0 and ws in shown.stdout


def test_the_worker_until_idle_ignores_a_workspace_that_is_not_connected(tmp_path: Path) -> None:
    made = json.loads(
        quotasync(
            tmp_path, "workspace", "create", "Later", "--admin", "a@later.io", "--json"
        ).stdout
    )
    line = {
        "id": "e1",
        "kind": "email_sent",
        "occurred_at": "2026-11-28T09:00:00Z",
        "user_email": "rep@later.io",
        "to": ["x@client.io"],
    }
    (tmp_path / "one.jsonl").write_text(json.dumps(line) + "\n")
    imported = quotasync(
        tmp_path,
        "activities",
        "import",
        "--workspace",
        made["workspace"],
        str(tmp_path / "one.jsonl"),
    )
    assert imported.returncode == 0, imported.stderr
    worked = quotasync(tmp_path, "worker", "--until-idle")
    assert worked.returncode == 0, worked.stderr
    assert "0 activities settled" in worked.stdout
    listed = json.loads(
        quotasync(tmp_path, "activities", "list", "--workspace", made["workspace"], "--json").stdout
    )
    assert listed["pending"] == 1  # kept for when the workspace connects
