"""The Salesforce CLI (`sf`, a client quotasync did not write) against the sandbox org: it logs
in with an access token and deploys quotasync's org package from its Salesforce DX project,
layout unchanged, through the Metadata API's REST deploy, as an admin who prefers the CLI to
`quotasync org install` would (docs/ORG_PACKAGE.md).

The CLI is installed by `.ci/run` from tests/contract/sf (its lockfile pins it; undici is held at
7.10, whose Node 20 build the CLI runs on: newer undici needs Node 22's zstd). Skipped, saying
so, where it is not installed. Each CLI command starts Node and spends a few seconds: the
group is marked slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from quotasync.salesforce import package
from tests.sandbox_process import SandboxOrg, start_sandbox

SF = Path(__file__).parent / "sf" / "node_modules" / ".bin" / "sf"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        shutil.which("node") is None or not SF.exists(),
        reason="the Salesforce CLI is not installed: run `npm ci --prefix tests/contract/sf` "
        "(.ci/run does)",
    ),
]


class Cli:
    def __init__(self, org: SandboxOrg, home: Path) -> None:
        self.org = org
        self.env = {
            **os.environ,
            "HOME": str(home),
            "NODE_EXTRA_CA_CERTS": str(org.config["ca_file"]),  # the sandbox's own CA
            "SF_DISABLE_TELEMETRY": "true",
            "SF_DISABLE_AUTOUPDATE": "true",
            "SF_AUTOUPDATE_DISABLE": "true",
            "SF_USE_PROGRESS_BAR": "false",
            # The Metadata API's REST deploy: the sandbox serves no SOAP.
            "SF_ORG_METADATA_REST_DEPLOY": "true",
        }

    def run(self, *args: str, cwd: Path | None = None, **env: str) -> dict[str, Any]:
        done = subprocess.run(
            [str(SF), *args, "--json"],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            cwd=cwd,
            timeout=180,
            check=False,
        )
        answer: dict[str, Any] = json.loads(done.stdout)
        assert done.returncode == 0 and answer["status"] == 0, done.stdout + done.stderr
        return answer


@pytest.fixture
def sf(tmp_path: Path) -> Iterator[Cli]:
    # A deploy changes the org's objects: the org runs as a process of its own.
    org = start_sandbox(tmp_path / "org", "--without-package", process=True)
    try:
        yield Cli(org, tmp_path / "home")
    finally:
        org.stop()


def test_the_cli_logs_in_and_deploys_the_package_project_as_it_stands(
    sf: Cli, tmp_path: Path
) -> None:
    token = sf.org.token("admin")["access_token"]
    login = sf.run(
        "org", "login", "access-token", "--instance-url", sf.org.instance_url,
        "--alias", "sandbox", "--no-prompt", SF_ACCESS_TOKEN=token,
    )  # fmt: skip
    assert login["result"]["username"] == sf.org.user("admin")["username"]

    project = tmp_path / "org-package"
    shutil.copytree(package.DEFAULT_DIR, project)
    deployed = sf.run(
        "project", "deploy", "start", "--manifest", "manifest/package.xml",
        "--target-org", "sandbox", cwd=project,
    )["result"]  # fmt: skip
    assert deployed["status"] == "Succeeded" and deployed["success"] is True
    files = {(f["type"], f["fullName"], f["state"]) for f in deployed["files"]}
    assert ("ApexTrigger", "QS_ContactSync", "Created") in files
    assert ("CustomField", "Activity.QS_Activity_Id__c", "Created") in files
    assert ("CustomObject", "QS_Sync_Setting__c", "Created") in files
    assert len({(kind, name) for kind, name, _ in files}) == len(package.components())

    sobjects = sf.org.salesforce()
    triggers = sobjects.query("SELECT Name, TableEnumOrId, Status FROM ApexTrigger")["records"]
    assert sorted(t["TableEnumOrId"] for t in triggers) == [
        "Account", "Contact", "Lead", "Opportunity", "User",
    ]  # fmt: skip
    task: Any = sobjects.Task
    assert "QS_Activity_Id__c" in {f["name"] for f in task.describe()["fields"]}
