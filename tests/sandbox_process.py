"""Running a sandbox org as a real subprocess (`quotasync sandbox`) for tests and benchmarks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce
from simple_salesforce.login import token_login

from quotasync.sandbox import launcher
from quotasync.sandbox.launcher import RunningSandbox


@dataclass
class SandboxOrg(RunningSandbox):
    """A running sandbox org with what tests need to talk to it."""

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


def start_sandbox(state_dir: Path, *args: str, timeout: float = 60) -> SandboxOrg:
    """Start `quotasync sandbox` and wait for its `sandbox ready:` line."""
    running = launcher.start(state_dir, *args, timeout=timeout)
    return SandboxOrg(
        running.state_dir, running.process, running.config, running.output, running.reader
    )
