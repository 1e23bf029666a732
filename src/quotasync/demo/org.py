"""The demo's sandbox org: a `quotasync sandbox` child process, and its control API.

The org runs in a process session of its own, so a Ctrl-C in the terminal reaches the demo alone:
the demo reads the org's records for its verdict first, and stops the org last.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import requests

from quotasync.errors import NoAnswer, QuotasyncError, Unreachable
from quotasync.sandbox.launcher import RunningSandbox, SandboxDidNotStart

READY = "sandbox ready:"


class OrgStopped(QuotasyncError, RuntimeError):
    """The sandbox org's process ended while the demo ran; the message has its last words."""


class DemoOrg:
    def __init__(self, running: RunningSandbox) -> None:
        self.running = running
        self.config = running.config
        self.http = requests.Session()
        self.http.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify
        self.http.verify = self.config["ca_file"]
        self.http.headers["Authorization"] = f"Bearer {self.config['admin_token']}"

    @classmethod
    def start(cls, state_dir: Path, *args: str, timeout: float = 120) -> DemoOrg:
        """Run `quotasync sandbox --state-dir DIR ARGS…` and wait for its ready line."""
        command = [sys.executable, "-m", "quotasync.cli", "sandbox", "--state-dir", str(state_dir)]
        process = subprocess.Popen(
            [*command, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,
        )
        output: list[str] = []
        ready = threading.Event()

        def pump() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                output.append(line.rstrip("\n"))
                if line.startswith(READY):
                    ready.set()
            ready.set()  # the process ended: stop waiting

        reader = threading.Thread(target=pump, name="demo-org-output", daemon=True)
        reader.start()
        running = RunningSandbox(state_dir, process, {}, output, reader)
        if not ready.wait(timeout) or process.poll() is not None:
            running.stop()
            raise SandboxDidNotStart("the sandbox org did not start:\n" + "\n".join(output))
        running.config = json.loads((state_dir / "sandbox.json").read_text())
        return cls(running)

    @property
    def state_dir(self) -> Path:
        return self.running.state_dir

    def stop(self) -> None:
        self.http.close()
        self.running.stop()

    def check_alive(self) -> None:
        if self.running.process.poll() is not None:
            last = "\n".join(self.running.output[-20:])
            raise OrgStopped(f"the sandbox org stopped unexpectedly:\n{last}")

    # ---------------------------------------------------------------- the control API

    def usage(self) -> dict[str, Any]:
        """Per limit name: max, used, by_app."""
        answer: dict[str, Any] = self._call("GET", "usage")
        return answer

    def consume(self, app: str, api: str, calls: int) -> int:
        """Spend quota as another app would, up to the org's limit; the calls spent."""
        return int(self._call("POST", "consume", {"app": app, "api": api, "calls": calls})["spent"])

    def load(self, app: str, api: str, calls_per_hour: float) -> None:
        self._call("POST", "load", {"app": app, "api": api, "calls_per_hour": calls_per_hour})

    def advance(self, seconds: float) -> None:
        self._call("POST", "clock", {"advance_seconds": seconds})

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Every live record of a type, with every field, read without spending quota."""
        found: list[dict[str, Any]] = self._call("GET", f"records/{sobject}")
        return found

    def insert(self, sobject: str, values: dict[str, Any]) -> str:
        """A record saved as the org's admin would in the UI: one DML operation, no quota."""
        [result] = self._call("POST", f"records/{sobject}", values)
        return str(result["id"])

    def flush_pushes(self) -> dict[str, Any]:
        """Deliver every queued Real-Time Sync push now; the push counters."""
        counters: dict[str, Any] = self._call("POST", "rts/flush", {"timeout_seconds": 10})
        return counters

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        response = self.http.request(
            method, f"{self.config['admin_url']}/{path}", json=body, timeout=60
        )
        response.raise_for_status()
        return response.json()


def org_records(config: dict[str, Any], sobject: str) -> list[dict[str, Any]]:
    """A running sandbox org's records of one type through its control API (`sandbox.json`'s
    admin token and CA), for a command that has only the org's folder."""
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would otherwise override verify
    http.verify = config["ca_file"]
    url = f"{config['admin_url']}/records/{sobject}"
    try:
        answer = http.get(
            url, headers={"Authorization": f"Bearer {config['admin_token']}"}, timeout=60
        )
        answer.raise_for_status()
        found: list[dict[str, Any]] = answer.json()
    except (requests.RequestException, ValueError) as exc:
        said = f"the sandbox org at {url} did not answer: is it running? ({exc})"
        raise Unreachable(said, NoAnswer.NETWORK) from None
    return found
