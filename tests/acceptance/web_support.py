"""One served quotasync for the web tests: a sandbox org, two workspaces (Acme with an admin and a
member, Globex with its own admin), activity logged by a worker run so the figures are real, and
`quotasync serve` on a clock frozen at one moment, so the pages and `quotasync usage --json`
describe the same instant."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from quotasync.simulation import ActivityStream
from tests.processes import cli, finish, spawn
from tests.sandbox_process import SandboxOrg, start_sandbox

CLI = [sys.executable, "-m", "quotasync.cli"]


@dataclass
class Person:
    email: str
    password: str
    token: str  # an API token of their own


@dataclass
class Site:
    url: str
    org: SandboxOrg
    env: dict[str, str]
    acme: str
    globex: str
    acme_ingest: str
    admin: Person
    member: Person
    outsider: Person  # Globex's admin
    rep_emails: list[str]
    initech: str = ""  # a workspace not connected to any org yet
    newcomer: Person | None = None  # its admin

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), self.env, timeout=120)

    def cli_json(self, *args: str) -> Any:
        done = self.cli(*args, "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def usage(self) -> Any:
        return self.cli_json("usage", "--workspace", self.acme)

    def api(
        self, method: str, path: str, token: str | None = None, **kwargs: Any
    ) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)

    def browser_session(self, person: Person) -> requests.Session:
        """A signed-in session as a browser holds it: the cookie, and the page's CSRF token."""
        return signed_in(self.url, person.email, person.password)


def signed_in(url: str, email: str, password: str) -> requests.Session:
    """A browser's session signed in at the served app `url` through its sign-in form."""
    session = requests.Session()
    form = session.get(f"{url}/signin", timeout=30)
    done = session.post(
        f"{url}/signin",
        data={"email": email, "password": password, "csrf_token": csrf_of(form.text), "next": "/"},
        timeout=30,
    )
    assert done.status_code == 200, done.text
    return session


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page has no CSRF token"
    return found.group(1)


def serve_site(root: Path) -> Iterator[Site]:
    org = start_sandbox(root / "org", "--seed", "61")
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(root / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    server: subprocess.Popen[str] | None = None
    try:
        site = Site(
            "", org, env, "", "", "", Person("", "", ""), Person("", "", ""), Person("", "", ""), []
        )
        acme = site.cli_json("workspace", "create", "Acme", "--admin", "admin@acme.io")
        globex = site.cli_json("workspace", "create", "Globex", "--admin", "boss@globex.io")
        site.acme, site.globex, site.acme_ingest = (
            acme["workspace"],
            globex["workspace"],
            acme["ingest_token"],
        )
        sandbox_json = str(root / "org" / "sandbox.json")
        # Acme syncs as a user with View Setup (all three quotas shown); Globex as one without
        # (Data only, Bulk and Apex named unavailable).
        for workspace, user in ((site.acme, "admin"), (site.globex, "sync")):
            connected = site.cli(
                "connect", "--workspace", workspace, "--sandbox", sandbox_json, "--user", user
            )
            assert connected.returncode == 0, connected.stderr
        # Other apps' use, so the bars have more than quotasync in them.
        for api, calls in (("data", 41_000), ("bulk", 900), ("apex", 60_000)):
            org.control("POST", "consume", {"app": "Outreach", "api": api, "calls": calls})
        reps = [
            u["Email"]
            for u in org.control("GET", "records/User")
            if u["Email"].split("@")[0] not in ("admin", "sync", "noapi")
        ]
        site.rep_emails = reps
        member = site.cli_json("user", "add", "--workspace", site.acme, reps[0], "--role", "member")
        site.admin = Person(
            "admin@acme.io", acme["admin_password"], _token(site, site.acme, "admin@acme.io")
        )
        site.member = Person(reps[0], member["password"], _token(site, site.acme, reps[0]))
        site.outsider = Person(
            "boss@globex.io", globex["admin_password"], _token(site, site.globex, "boss@globex.io")
        )
        people = [c["Email"] for c in org.control("GET", "records/Contact")]
        stream = ActivityStream(reps, people, datetime(2026, 11, 28, tzinfo=UTC), seed=5).take(400)
        (root / "a.jsonl").write_text("".join(json.dumps(a) + "\n" for a in stream))
        # The least time allowed, so that `worker --until-idle` (real time) does not wait out
        # the 60-second default for the last batch.
        quick = site.cli("limit", "set", "--workspace", site.acme, "--log-within", "5")
        assert quick.returncode == 0, quick.stderr
        imported = site.cli("activities", "import", "--workspace", site.acme, str(root / "a.jsonl"))
        assert imported.returncode == 0, imported.stderr
        assert site.cli("worker", "--until-idle").returncode == 0
        initech = site.cli_json("workspace", "create", "Initech", "--admin", "it@initech.io")
        site.initech = initech["workspace"]
        site.newcomer = Person("it@initech.io", initech["admin_password"], "")
        # The Connect Salesforce button uses the org's quotasync app, as a real deployment
        # uses its own connected app.
        app = next(a for a in org.config["connected_apps"] if a["name"] == "quotasync")
        env["QUOTASYNC_SALESFORCE_CLIENT_ID"] = app["client_id"]
        env["QUOTASYNC_SALESFORCE_CLIENT_SECRET"] = app["client_secret"]
        env["QUOTASYNC_SALESFORCE_LOGIN_URL"] = org.config["login_url"]
        env["QUOTASYNC_SALESFORCE_CA_FILE"] = org.config["ca_file"]
        # From here on every command sees the same, still moment.
        env["QUOTASYNC_CLOCK_SPEED"] = "0"
        env["QUOTASYNC_CLOCK_EPOCH"] = datetime.now(UTC).isoformat()
        server = spawn([*CLI, "serve", "--port", "0"], env, stdout_pipe=True)
        assert server.stdout is not None
        line = server.stdout.readline()
        found = re.search(r"serving on (http://\S+)", line)
        if not found:
            server.terminate()
            raise AssertionError(f"serve said {line!r}: {finish(server)[1]}")
        site.url = found.group(1)
        yield site
    finally:
        if server is not None:
            server.terminate()
            finish(server)  # waits, and closes its files
        org.stop()


def _token(site: Site, workspace: str, email: str) -> str:
    made = site.cli_json("user", "token", "--workspace", workspace, email)
    return str(made["token"])
