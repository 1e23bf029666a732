"""`quotasync worker` as an operator runs it: it pauses at the share and tells the admins."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from quotasync.simulation import ActivityStream
from tests.processes import cli, finish, spawn
from tests.sandbox_process import start_sandbox

CLI = [sys.executable, "-m", "quotasync.cli"]


def test_the_worker_pauses_at_the_share_and_writes_the_admins_a_notice(tmp_path: Path) -> None:
    org = start_sandbox(tmp_path / "org", "--seed", "60", "--daily-api-requests", "60")
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(tmp_path / "data")}
    for name in ("QUOTASYNC_DATABASE_URL", "QUOTASYNC_SMTP_HOST"):
        env.pop(name, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), env, timeout=120)

    try:
        ws = json.loads(
            run("workspace", "create", "Acme", "--admin", "ops@acme.io", "--json").stdout
        )["workspace"]
        assert (
            run(
                "connect", "--workspace", ws, "--sandbox", str(tmp_path / "org" / "sandbox.json")
            ).returncode
            == 0
        )
        assert (
            run("limit", "set", "--workspace", ws, "--api", "data", "--percent", "10").returncode
            == 0
        )
        reps = [
            u["Email"]
            for u in org.control("GET", "records/User")
            if u["Email"].split("@")[0] not in ("admin", "sync", "noapi")
        ]
        people = [c["Email"] for c in org.control("GET", "records/Contact")]
        emails = [
            a
            for a in ActivityStream(reps, people, datetime(2026, 11, 28, tzinfo=UTC)).take(20000)
            if a["kind"] == "email_sent"
        ][:6000]  # six calls of 1,000: more than the share leaves
        (tmp_path / "a.jsonl").write_text("".join(json.dumps(a) + "\n" for a in emails))
        assert (
            run("activities", "import", "--workspace", ws, str(tmp_path / "a.jsonl")).returncode
            == 0
        )

        worker = spawn([*CLI, "worker"], env)
        outbox = tmp_path / "data" / "outbox"
        deadline = time.monotonic() + 60
        # The pause's notice (the 80% warning may come first).
        while time.monotonic() < deadline and not any(
            "paused syncing" in p.read_text() for p in outbox.glob("*.eml")
        ):
            time.sleep(0.5)
        worker.send_signal(signal.SIGTERM)
        _out, err = finish(worker, timeout=60)
        assert worker.returncode == 0, err
        # 10% of 60 calls: six, one of which the connect's mirror load spent.
        assert org.control("GET", "usage")["DailyApiRequests"]["by_app"]["quotasync"] == 6
    finally:
        org.stop()
    notices = [p.read_text() for p in outbox.glob("*.eml")]
    assert len([n for n in notices if "ops@acme.io" in n]) >= 1, notices
    assert any("workspace_limit" in n or "share" in n for n in notices)


def test_the_worker_says_what_it_cannot_do_and_why(tmp_path: Path) -> None:
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(tmp_path / "data")}
    for name in ("QUOTASYNC_DATABASE_URL", "QUOTASYNC_SMTP_HOST"):
        env.pop(name, None)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), env, timeout=120)

    # A wrong data dir is a new, empty store: the worker says so rather than idling quietly.
    empty = run("worker", "--until-idle")
    assert empty.returncode == 0
    assert "has no workspaces: is QUOTASYNC_DATA_DIR" in empty.stderr
    ws = json.loads(run("workspace", "create", "Acme", "--admin", "ops@acme.io", "--json").stdout)[
        "workspace"
    ]
    item = {"id": "e-1", "kind": "email_sent", "occurred_at": "2026-11-28T09:00:00+00:00",
            "user_email": "rep@acme.io", "to": ["buyer@corp.io"], "subject": "Hi", "body": "x"}  # fmt: skip
    (tmp_path / "a.jsonl").write_text(json.dumps(item) + "\n")
    assert run("activities", "import", "--workspace", ws, str(tmp_path / "a.jsonl")).returncode == 0
    done = run("worker", "--until-idle")
    assert done.returncode == 0
    assert "worker stopped: 0 activities settled in" in done.stdout
    said = " ".join(done.stderr.split())
    assert f"1 activity waits in workspace {ws} (Acme): it is not connected to an org" in said
    assert f"`quotasync connect --workspace {ws} ...`" in said
    # Nor does `limit show` call an unconnected workspace's syncing "running".
    shown = run("limit", "show", "--workspace", ws)
    assert "limits need a sync user" in shown.stdout
    assert "running" not in shown.stdout
    used = run("usage", "--workspace", ws)
    assert "running" not in used.stdout and "not connected" in used.stdout
