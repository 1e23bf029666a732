"""`quotasync limit` and `quotasync usage` as an admin runs them, against a sandbox org."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from quotasync.simulation import ActivityStream
from tests.sandbox_process import SandboxOrg, start_sandbox

CLI = [sys.executable, "-m", "quotasync.cli"]


@dataclass
class Setup:
    org: SandboxOrg
    workspace: str
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], capture_output=True, text=True, env=self.env, timeout=120
        )

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("limits")
    org = start_sandbox(root / "org", "--seed", "60")
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(root / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    try:
        first = Setup(org, "", env)
        made = first.json("workspace", "create", "Acme", "--admin", "a@acme.io")
        done = Setup(org, made["workspace"], env)
        assert (
            done.run(
                "connect",
                "--workspace",
                done.workspace,
                "--sandbox",
                str(root / "org" / "sandbox.json"),
            ).returncode
            == 0
        )
        reps = [
            u["Email"]
            for u in org.control("GET", "records/User")
            if u["Email"].split("@")[0] not in ("admin", "sync", "noapi")
        ]
        people = [c["Email"] for c in org.control("GET", "records/Contact")]
        stream = ActivityStream(reps, people, datetime(2026, 11, 28, tzinfo=UTC), seed=3).take(600)
        (root / "a.jsonl").write_text("".join(json.dumps(a) + "\n" for a in stream))
        assert (
            done.run(
                "activities", "import", "--workspace", done.workspace, str(root / "a.jsonl")
            ).returncode
            == 0
        )
        assert done.run("worker", "--until-idle").returncode == 0
        yield done
    finally:
        org.stop()


def test_a_new_workspace_may_use_70_percent_of_each_quota(setup: Setup) -> None:
    view = setup.json("limit", "show", "--workspace", setup.workspace)["apis"]
    assert {api: v["share_percent"] for api, v in view.items()} == {
        "data": 70,
        "bulk": 70,
        "apex": 70,
    }


def test_the_org_figures_and_quotasyncs_use_agree_with_the_org(setup: Setup) -> None:
    data = setup.json("limit", "show", "--workspace", setup.workspace)["apis"]["data"]
    org = setup.org.control("GET", "usage")["DailyApiRequests"]
    assert data["org_max"] == org["max"]
    assert data["quotasync_used"] == org["by_app"]["quotasync"]
    assert data["share_calls"] == org["max"] * 70 // 100
    assert data["guard_calls"] == org["max"] * 90 // 100
    assert data["left"] == org["max"] - org["used"]
    # Bulk and Apex figures need /limits, which this sync user (no View Setup) cannot read.
    assert (
        setup.json("limit", "show", "--workspace", setup.workspace)["apis"]["bulk"]["org_max"]
        is None
    )


def test_other_apps_use_is_the_org_total_minus_quotasyncs_own(setup: Setup) -> None:
    setup.org.control("POST", "consume", {"app": "Marketing Cloud", "api": "data", "calls": 500})
    # The org's figure arrives with quotasync's next call; one lookup is enough.
    line = {
        "id": "probe-1",
        "kind": "email_sent",
        "occurred_at": "2026-11-28T10:00:00Z",
        "user_email": "nobody@acme.io",
        "to": ["new.person@unknown.example"],
    }
    Path(setup.env["QUOTASYNC_DATA_DIR"], "probe.jsonl").write_text(json.dumps(line) + "\n")
    setup.run(
        "activities",
        "import",
        "--workspace",
        setup.workspace,
        str(Path(setup.env["QUOTASYNC_DATA_DIR"], "probe.jsonl")),
    )
    assert setup.run("worker", "--until-idle").returncode == 0
    data = setup.json("limit", "show", "--workspace", setup.workspace)["apis"]["data"]
    org = setup.org.control("GET", "usage")["DailyApiRequests"]
    assert data["other_apps_used"] == org["by_app"]["Marketing Cloud"] == 500
    assert data["org_used"] == org["used"]


def test_an_admin_sets_a_share_within_10_to_90_percent(setup: Setup) -> None:
    for bad in ("95", "5", "70.5", "lots"):
        refused = setup.run(
            "limit", "set", "--workspace", setup.workspace, "--api", "data", "--percent", bad
        )
        assert refused.returncode == 2
        assert "The share must be a whole percentage from 10 to 90" in refused.stderr
    wrong_api = setup.run(
        "limit", "set", "--workspace", setup.workspace, "--api", "soap", "--percent", "50"
    )
    assert wrong_api.returncode == 2 and "data, bulk, apex" in wrong_api.stderr
    done = setup.run(
        "limit", "set", "--workspace", setup.workspace, "--api", "bulk", "--percent", "40"
    )
    assert done.returncode == 0 and "40% of the org's bulk quota" in done.stdout
    view = setup.json("limit", "show", "--workspace", setup.workspace)["apis"]
    assert (view["data"]["share_percent"], view["bulk"]["share_percent"]) == (70, 40)


def test_each_member_sees_the_calls_their_activity_cost_split_by_record_count(setup: Setup) -> None:
    usage = setup.json("usage", "--workspace", setup.workspace)
    members = usage["members"]
    assert len(members) >= 15  # the reps of the stream
    logging_calls = setup.org.control("GET", "usage")["DailyApiRequests"]["by_app"]["quotasync"]
    # Every logging call is split across the reps it carried; lookups and mirror loads are nobody's.
    assert 0 < sum(m["calls"] for m in members.values()) <= logging_calls
    assert all(0 < m["share_of_org"] < 1 for m in members.values())
