"""Running a sandbox org as a real subprocess (`quotasync sandbox`) for tests and benchmarks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.login import token_login


@dataclass
class SandboxOrg:
    state_dir: Path
    process: subprocess.Popen[str]
    config: dict[str, Any]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None  # drains the process's output into `output`

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

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        # The reader sees end-of-file once the process is gone; close the pipe only after it.
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start_sandbox(state_dir: Path, *args: str, timeout: float = 60) -> SandboxOrg:
    """Start `quotasync sandbox` and wait for its `sandbox ready:` line."""
    command = [sys.executable, "-m", "quotasync.cli", "sandbox", "--state-dir", str(state_dir)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [*command, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if line.startswith("sandbox ready:"):
                ready.set()
        ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if not ready.wait(timeout) or process.poll() is not None:
        process.kill()
        process.wait()
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        raise RuntimeError("sandbox did not start:\n" + "\n".join(output))
    config = json.loads((state_dir / "sandbox.json").read_text())
    return SandboxOrg(state_dir, process, config, output, reader)
