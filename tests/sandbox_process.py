"""Running a sandbox org for tests and benchmarks: served from a thread of the test process (the
same app, TLS and socket as `quotasync sandbox`, without a hundred interpreters to start), or as a
real `quotasync sandbox` subprocess where a test needs the process itself."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import typer
from simple_salesforce import Salesforce
from simple_salesforce.login import token_login

from quotasync.cli import app as cli_app
from quotasync.cli import common, serving
from quotasync.sandbox import launcher, server


@dataclass
class SandboxOrg:
    """A running sandbox org with what tests need to talk to it."""

    state_dir: Path
    config: dict[str, Any]
    _stop: Callable[[], None]
    output: list[str] = field(default_factory=list)  # what a subprocess printed, so far
    pid: int = field(default_factory=os.getpid)  # the process serving it

    def stop(self) -> None:
        self._stop()

    @property
    def instance_url(self) -> str:
        return str(self.config["instance_url"])

    def user(self, handle: str) -> dict[str, Any]:
        return next(u for u in self.config["users"] if u["handle"] == handle)

    def app(self, name: str = "quotasync") -> dict[str, Any]:
        return next(a for a in self.config["connected_apps"] if a["name"] == name)

    def http(self) -> requests.Session:
        """A session that trusts the sandbox's CA, whatever REQUESTS_CA_BUNDLE says."""
        session = requests.Session()
        session.trust_env = False
        session.verify = self.config["ca_file"]
        return session

    def token(self, handle: str = "admin", app: str = "quotasync", **extra: str) -> dict[str, Any]:
        """A password-grant login through simple-salesforce's own token_login."""
        connected = self.app(app)
        user = self.user(handle)
        data = {
            "grant_type": "password",
            "client_id": connected["client_id"],
            "client_secret": connected["client_secret"],
            "username": user["username"],
            "password": user["password"],
            **extra,
        }
        with self.http() as session:
            access, instance = token_login(
                f"{self.config['login_url']}/services/oauth2/token",
                data,
                "login",
                connected["client_id"],
                None,
                None,
                session,
            )
        return {"access_token": access, "instance": instance}

    def salesforce(self, handle: str = "admin", app: str = "quotasync") -> Salesforce:
        token = self.token(handle, app)
        return Salesforce(
            session_id=token["access_token"],
            instance_url=self.instance_url,
            session=self.http(),
            version=self.config["api_version"],
        )

    def control(self, method: str, path: str, body: Any = None) -> Any:
        with self.http() as session:
            response = session.request(
                method,
                f"{self.config['admin_url']}/{path}",
                json=body,
                headers={"Authorization": f"Bearer {self.config['admin_token']}"},
                timeout=30,
            )
        response.raise_for_status()
        return response.json()


def start_sandbox(
    state_dir: Path, *args: str, timeout: float = 60, process: bool = False
) -> SandboxOrg:
    """Start an org with `quotasync sandbox`'s options `args` and wait until it listens: in a
    thread of this process, or (`process=True`) as a subprocess that printed `sandbox ready:`."""
    if process:
        running = launcher.start(state_dir, *args, timeout=timeout)
        return SandboxOrg(
            running.state_dir, running.config, running.stop, running.output, running.process.pid
        )
    command = typer.main.get_command(cli_app)
    assert isinstance(command, typer.core.TyperGroup)
    options = (
        command.commands["sandbox"]
        .make_context("sandbox", ["--state-dir", str(state_dir), *args])
        .params
    )
    config = serving.org_config(
        options["edition"],
        options["licenses"],
        options["daily_api_requests"],
        options["seed"],
        options["rts_callback"],
        options["rts_secret"],
        options["session_timeout_minutes"],
        options["without_package"],
    )
    clock = common.clock(options["speed"], options["epoch"])
    prepared = server.prepare(state_dir, config, clock, options["host"], options["port"])
    serving_org = server.InThread(prepared)
    serving_org.start(timeout)
    described = json.loads((state_dir / "sandbox.json").read_text())
    return SandboxOrg(state_dir, described, serving_org.stop)
