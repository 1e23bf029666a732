"""`quotasync sync` as an admin runs it against a sandbox org: refused before connecting, a full
sync right after connecting that fetches nothing the load fetched, an incremental sync that
brings another app's change, and a stop at the quota."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.processes import cli
from tests.sandbox_process import SandboxOrg, start_sandbox

# Its module-scoped org and workspaces are built once: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("sync_cli")

CLI = [sys.executable, "-m", "quotasync.cli"]
OBJECTS = ["User", "Account", "Contact", "Lead", "Opportunity"]


@dataclass
class Setup:
    org: SandboxOrg
    workspace: str
    env: dict[str, str]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), self.env, timeout=120)

    def sync(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("sync", "--workspace", self.workspace, *args)

    def connect(self) -> None:
        sandbox = str(self.org.state_dir / "sandbox.json")
        done = self.run("connect", "--workspace", self.workspace, "--sandbox", sandbox)
        assert done.returncode == 0, done.stderr


def new_setup(root: Path, *org_args: str) -> Setup:
    org = start_sandbox(root / "org", *org_args)
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(root / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    made = subprocess.run(
        [*CLI, "workspace", "create", "Acme", "--admin", "ops@acme.io", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert made.returncode == 0, made.stderr
    return Setup(org, json.loads(made.stdout)["workspace"], env)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    made = new_setup(tmp_path_factory.mktemp("sync"), "--seed", "40")
    try:
        yield made
    finally:
        made.org.stop()


def test_a_workspace_not_connected_is_told_to_connect_first(setup: Setup) -> None:
    made = setup.run("workspace", "create", "Beta", "--admin", "ops@beta.io", "--json")
    assert made.returncode == 0, made.stderr
    refused = setup.run("sync", "--workspace", json.loads(made.stdout)["workspace"])
    assert refused.returncode == 2
    assert "is not connected to Salesforce; run `quotasync connect`" in refused.stderr


def test_a_full_load_then_an_incremental_sync_bring_the_org_and_its_changes(setup: Setup) -> None:
    setup.connect()  # loads the mirror: the five types' first pages in one call
    full = setup.sync("--full", "--json")
    assert full.returncode == 0, full.stderr
    report: dict[str, Any] = json.loads(full.stdout)
    assert report["complete"] and report["paused"] is None
    assert list(report["objects"]) == OBJECTS
    # Connecting loaded every record moments ago: the first full sync goes on from that load,
    # and fetches nothing twice.
    for name, got in report["objects"].items():
        assert not got["full"] and got["fetched"] == got["applied"] == 0, name
    assert report["calls"] == {"data": 1}  # one look at the five types

    # Another app changes a Contact and deletes a Lead; the incremental sync brings both.
    loader: Any = setup.org.salesforce("admin", "Data Loader")
    contact = setup.org.control("GET", "records/Contact")[0]
    lead = setup.org.control("GET", "records/Lead")[0]
    loader.Contact.update(contact["Id"], {"Title": "Chief Customer Officer"})
    loader.Lead.delete(lead["Id"])
    changed = setup.sync("--json")
    assert changed.returncode == 0, changed.stderr
    objects = json.loads(changed.stdout)["objects"]
    assert not objects["Contact"]["full"]
    assert objects["Contact"]["applied"] == 1 and objects["Lead"]["deleted"] == 1
    assert objects["Contact"]["via"] == "rest"

    table = setup.sync()
    assert table.returncode == 0, table.stderr
    for heading in ("object", "via", "fetched", "applied", "deleted"):
        assert heading in table.stdout
    for name in OBJECTS:
        assert name in table.stdout
    assert "calls spent: data 1" in table.stdout  # nothing new: the look alone
    # Not zeros alone: each type says it is up to date and how many records the mirror holds.
    contacts = len(setup.org.control("GET", "records/Contact"))
    row = next(line for line in table.stdout.splitlines() if "Contact" in line)
    assert "up to date" in row and f"{contacts:,}" in row


def test_a_sync_the_quota_stops_exits_non_zero_saying_so(tmp_path: Path) -> None:
    setup = new_setup(tmp_path, "--seed", "20", "--daily-api-requests", "30")
    try:
        setup.connect()  # one call
        limited = setup.run(
            "limit", "set", "--workspace", setup.workspace, "--api", "data", "--percent", "10"
        )
        assert limited.returncode == 0, limited.stderr
        # An import by another app: 3 pages of new Contacts and of new Leads to fetch.
        for sobject in ("Contact", "Lead"):
            for start in (0, 3_000):
                setup.org.control(
                    "POST",
                    f"records/{sobject}",
                    [
                        {"LastName": f"Buyer {n}", "Company": "Corp"}
                        if sobject == "Lead"
                        else {"LastName": f"Buyer {n}"}
                        for n in range(start, start + 3_000)
                    ],
                )
        stopped = setup.sync("--full", "--json")
        assert stopped.returncode == 1
        assert "sync paused by the quota" in stopped.stderr
        report = json.loads(stopped.stdout)
        assert report["paused"]["reason"] == "workspace_limit"
        assert not report["complete"]
        assert report["calls"] == {"data": 2}  # what the share of 3 left after connecting
    finally:
        setup.org.stop()
