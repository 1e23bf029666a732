"""`quotasync activities` as an admin reads it: an import's bad lines in words (the field and the
problem, the line's own column for JSON that does not parse), and `list --state` naming which
activities are in a state and why."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.processes import cli

GOOD = {"id": "a-1", "kind": "email_sent", "occurred_at": "2026-11-28T09:00:00Z",
        "user_email": "rep@acme.io", "to": ["buyer@corp.io"], "subject": "Hi", "body": "x"}  # fmt: skip


def test_bad_lines_are_said_in_words_and_a_state_lists_its_activities(tmp_path: Path) -> None:
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(tmp_path / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), env, timeout=120)

    ws = json.loads(run("workspace", "create", "Acme", "--admin", "a@acme.io", "--json").stdout)[
        "workspace"
    ]
    lines = [json.dumps(GOOD), "{not json", json.dumps({"id": "a-2", "kind": "email_sent"}), ""]
    (tmp_path / "a.jsonl").write_text("\n".join(lines) + "\n")
    done = run("activities", "import", "--workspace", ws, str(tmp_path / "a.jsonl"))
    assert done.returncode == 1
    assert "accepted 1, already known 0, invalid 2" in done.stdout
    errors = done.stderr.splitlines()
    assert (
        "  line 2: not JSON: Expecting property name enclosed in double quotes at column 2"
        in errors
    )
    line3 = next(line for line in errors if line.startswith("  line 3: "))
    assert "occurred_at is required" in line3 and "user_email is required" in line3
    assert "{'field'" not in done.stderr  # no Python reprs

    pending = run("activities", "list", "--workspace", ws, "--state", "pending")
    assert pending.returncode == 0
    assert pending.stdout.splitlines() == ["a-1  email_sent  rep@acme.io"]
    assert run("activities", "list", "--workspace", ws, "--state", "failed").stdout == (
        f"no failed activities in {ws}\n"
    )
    wrong = run("activities", "list", "--workspace", ws, "--state", "lost")
    assert wrong.returncode == 2 and "--state is one of" in wrong.stderr
