"""`quotasync sandbox` as a user runs it (`quotasync demo` is in test_demo.py)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from tests.sandbox_process import start_sandbox

CLI = [sys.executable, "-m", "quotasync.cli"]


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout)


def test_the_sandbox_prints_its_url_and_writes_sandbox_json(tmp_path: Path) -> None:
    org = start_sandbox(tmp_path / "org", "--edition", "developer", "--licenses", "2", process=True)
    try:
        ready = next(line for line in org.output if line.startswith("sandbox ready:"))
        assert ready == f"sandbox ready: {org.instance_url}"
        config = json.loads((tmp_path / "org" / "sandbox.json").read_text())
        assert config["instance_url"].startswith("https://127.0.0.1:")
        assert Path(config["ca_file"]).is_file()
        assert config["org_id"].startswith("00D") and len(config["org_id"]) == 18
        assert {a["name"] for a in config["connected_apps"]} == {
            "quotasync",
            "Marketing Cloud",
            "Data Loader",
        }
        permissions = {u["handle"]: (u["api_enabled"], u["view_setup"]) for u in config["users"]}
        assert permissions == {
            "admin": (True, True),
            "sync": (True, False),
            "noapi": (False, False),
        }
        assert config["admin_token"] and config["admin_url"].endswith("/__sandbox")
        assert org.control("GET", "usage")["DailyApiRequests"]["max"] == 15_000
    finally:
        org.stop()


def test_an_unknown_edition_is_refused_with_the_list_of_editions(tmp_path: Path) -> None:
    result = run_cli("sandbox", "--state-dir", str(tmp_path), "--edition", "platinum")
    assert result.returncode == 2
    assert "enterprise" in result.stderr and "contact-manager" in result.stderr
    assert not (tmp_path / "sandbox.json").exists()


def test_an_epoch_without_an_offset_is_refused_clearly(tmp_path: Path) -> None:
    result = run_cli(
        "sandbox", "--state-dir", str(tmp_path), "--speed", "60", "--epoch", "2026-11-28T00:00:00"
    )
    assert result.returncode == 2
    assert "UTC offset" in result.stderr


def test_a_port_in_use_is_reported_without_a_stack_trace(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_cli("sandbox", "--state-dir", str(tmp_path), "--port", str(port))
    assert result.returncode == 2
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr
