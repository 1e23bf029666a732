"""`quotasync doctor` as an admin runs it: exit code 0 when no check fails, 1 when one does
(here: the QS_Activity_Id__c field deleted from Task), 2 for a workspace that does not exist;
and the same checks on the Doctor page and `POST /api/v1/workspaces/{ws}/doctor`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.acceptance.web_support import csrf_of
from tests.processes import cli, finish, spawn
from tests.sandbox_process import SandboxOrg, start_sandbox

# Its module-scoped org and workspaces are built once: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("doctor_cli")

CLI = [sys.executable, "-m", "quotasync.cli"]


@dataclass
class Setup:
    org: SandboxOrg
    workspace: str
    env: dict[str, str]
    admin_password: str = ""

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), self.env, timeout=120)

    def doctor(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run("doctor", "--workspace", self.workspace, *args)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("doctor-cli")
    org = start_sandbox(root / "org")
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(root / "data"), "COLUMNS": "200"}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    try:
        made = Setup(org, "", env).run(
            "workspace", "create", "Acme", "--admin", "a@acme.io", "--json"
        )
        assert made.returncode == 0, made.stderr
        created = json.loads(made.stdout)
        done = Setup(org, created["workspace"], env, created["admin_password"])
        sandbox_json = str(root / "org" / "sandbox.json")
        connected = done.run("connect", "--workspace", done.workspace, "--sandbox", sandbox_json)
        assert connected.returncode == 0, connected.stderr
        yield done
    finally:
        org.stop()


def test_the_doctor_exits_0_when_nothing_fails(setup: Setup) -> None:
    result = setup.doctor("--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    # The sync user lacks View Setup: a warning, which does not fail the command.
    assert report["status"] == "warn" and report["calls"] == 1
    found = {check["name"]: check for check in report["checks"]}
    assert found["view_setup"]["status"] == "warn"
    assert set(found["edition"]) == {"name", "title", "status", "detail", "fix"}


def test_the_doctor_exits_1_when_a_check_fails_and_says_how_to_fix_it(setup: Setup) -> None:
    field = {"object": "Task", "field": "QS_Activity_Id__c"}
    setup.org.control("POST", "fields", {**field, "present": False})
    try:
        as_json = setup.doctor("--json")
        table = setup.doctor()
    finally:
        setup.org.control("POST", "fields", {**field, "present": True})
    assert as_json.returncode == 1, as_json.stderr
    found = {check["name"]: check for check in json.loads(as_json.stdout)["checks"]}
    assert found["activity_field"]["status"] == "fail"
    assert table.returncode == 1
    assert "✗ fail" in table.stdout and "✓ pass" in table.stdout and "! warn" in table.stdout
    assert "QS_Activity_Id__c is missing on Task" in table.stdout
    assert "spent 1 Data API call" in table.stdout
    assert setup.doctor("--json").returncode == 0


def test_the_doctor_refuses_a_workspace_that_does_not_exist(setup: Setup) -> None:
    result = setup.run("doctor", "--workspace", "nope", "--json")
    assert result.returncode == 2 and "error:" in result.stderr


def test_the_doctor_page_shows_each_check_with_its_status_and_fix(setup: Setup) -> None:
    server = spawn([*CLI, "serve", "--port", "0"], setup.env, stdout_pipe=True)
    try:
        assert server.stdout is not None
        found = re.search(r"serving on (http://\S+)", server.stdout.readline())
        assert found, "serve printed no address"
        url = found.group(1)
        browser = requests.Session()
        form = browser.get(f"{url}/signin", timeout=30)
        signed_in = browser.post(
            f"{url}/signin",
            data={
                "email": "a@acme.io",
                "password": setup.admin_password,
                "csrf_token": csrf_of(form.text),
                "next": f"/w/{setup.workspace}/doctor",
            },
            timeout=60,
        )
        # Opening the page spends nothing; its button runs the checks.
        assert 'data-check="' not in signed_in.text
        token = csrf_of(signed_in.text)
        ran = browser.post(
            f"{url}/w/{setup.workspace}/doctor", data={"csrf_token": token}, timeout=60
        )
        answer = browser.post(
            f"{url}/api/v1/workspaces/{setup.workspace}/doctor",
            headers={"X-CSRF-Token": token},
            timeout=60,
        )
    finally:
        server.terminate()
        finish(server)
    assert signed_in.status_code == 200 and signed_in.url.endswith("/doctor")
    assert ran.status_code == 200
    page = ran.text
    assert 'href="/w/' + setup.workspace + '/doctor" aria-current="page">Doctor</a>' in page
    assert 'data-status="warn"' in page and "Nothing stops syncing, but some checks warn." in page
    rows = re.findall(r'<tr data-check="(\w+)" data-status="(\w+)">', page)
    assert dict(rows)["view_setup"] == "warn" and dict(rows)["edition"] == "pass"
    assert len(rows) == 12
    assert "System Permissions &gt; View Setup and Configuration" in page
    report = answer.json()
    assert [c["name"] for c in report["checks"]] == [name for name, _ in rows]
    assert report["status"] == "warn" and report["calls"] == 1
