"""`quotasync demo --headless`: the whole logging path on the embedded defaults, then a verdict.

A seeded sandbox org, a workspace connected to it, the worker, and 20 reps' worth of realistic
activity for a few minutes; then a summary, and exit status 0 only if every accepted activity is
in the org exactly once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

from quotasync.config import Settings
from quotasync.engine.matching import Matcher
from quotasync.engine.worker import Worker
from quotasync.ingest import Ingest
from quotasync.runtime import open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.sandbox import launcher
from quotasync.simulation import ActivityStream
from quotasync.store import outbox, workspaces
from quotasync.store.ledger import Ledger

RATE = 20.0  # activities per second from the 20 reps together
DRAIN_TIMEOUT = 300.0  # seconds the worker gets to finish after the generator stops


@dataclass
class Report:
    accepted: int = 0
    states: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    expected_records: int = 0
    found_records: int = 0
    duplicates: int = 0
    missing: int = 0
    seconds: float = 0.0

    @property
    def activities_per_call(self) -> float:
        logging_calls = self.calls.get("log_activity", 0)
        return self.states.get("logged", 0) / logging_calls if logging_calls else 0.0

    @property
    def ok(self) -> bool:
        settled = self.states.get("logged", 0) == self.accepted
        return settled and self.duplicates == 0 and self.missing == 0


def run(data_dir: Path, minutes: float, rate: float = RATE, seed: int = 300) -> Report:
    started = time.monotonic()
    org = launcher.start(data_dir / "org", "--seed", str(seed), "--session-timeout-minutes", "0")
    try:
        return _run(data_dir, org, minutes, rate, started)
    finally:
        org.stop()


def _run(
    data_dir: Path, org: launcher.RunningSandbox, minutes: float, rate: float, started: float
) -> Report:
    runtime = open_runtime(Settings(data_dir=data_dir / "data", database_url=None))
    with runtime.sessions.begin() as session:
        workspace = workspaces.create(
            session, "Demo", "admin@demo.example", runtime.clock.now()
        ).workspace
        # Strangers are logged without a WhoId, so every accepted activity ends up in the org.
        workspace.unmatched = "log_unlinked"
    connector = runtime.connector
    connector.connect_sandbox(workspace.id, SandboxLogin.read(org.state_dir / "sandbox.json"))
    Matcher(runtime.sessions, workspace.id, runtime.clock).load(connector.client(workspace.id))
    control = _Control(org.config)
    reps = [
        u["Email"]
        for u in control.records("User")
        if u["Email"].split("@")[0] not in ("admin", "sync", "noapi")
    ]
    people = [r["Email"] for t in ("Contact", "Lead") for r in control.records(t)]
    stream = ActivityStream(reps, people, datetime.now(UTC), strangers=0.02)
    ingest = Ingest(runtime.sessions, runtime.clock)
    stop_worker = threading.Event()
    worker = Worker(connector, runtime.clock)
    thread = threading.Thread(target=worker.run, args=(stop_worker,), daemon=True)
    thread.start()
    sent: list[dict[str, Any]] = []
    deadline = time.monotonic() + minutes * 60
    while time.monotonic() < deadline:
        batch = stream.take(max(1, int(rate)))
        ingest.accept(workspace.id, batch)
        sent += batch
        time.sleep(1.0)
    drain_until = time.monotonic() + DRAIN_TIMEOUT
    while time.monotonic() < drain_until:
        with runtime.sessions() as session:
            if outbox.pending_count(session, workspace.id) == 0:
                break
        time.sleep(0.5)
    stop_worker.set()
    thread.join(timeout=30)
    report = Report(accepted=len({a["id"] for a in sent}), seconds=time.monotonic() - started)
    with runtime.sessions() as session:
        report.states = outbox.counts(session, workspace.id)
        logged = {row for row in _logged_ids(session, workspace.id)}
    report.calls = Ledger(runtime.sessions).by_purpose(workspace.id)
    _verify(report, sent, logged, control)
    return report


def _logged_ids(session: Any, workspace_id: str) -> set[str]:
    from sqlalchemy import select

    from quotasync.store.tables import Activity

    return set(
        session.scalars(
            select(Activity.id).where(
                Activity.workspace_id == workspace_id, Activity.state == "logged"
            )
        )
    )


def _verify(
    report: Report, sent: list[dict[str, Any]], logged: set[str], control: _Control
) -> None:
    """Every logged email is one Task; every logged meeting not canceled last is one Event."""
    tasks = Counter(t.get("QS_Activity_Id__c") for t in control.records("Task"))
    events = Counter(e.get("QS_Activity_Id__c") for e in control.records("Event"))
    last_change: dict[str, str] = {}
    for activity in sent:
        if activity["kind"] in ("meeting_updated", "meeting_canceled"):
            last_change[activity["meeting_id"]] = activity["kind"]
    for activity in sent:
        if activity["id"] not in logged:
            continue
        if activity["kind"] == "email_sent":
            expected, found = 1, tasks.get(activity["id"], 0)
        elif activity["kind"] == "meeting_booked":
            expected = 0 if last_change.get(activity["id"]) == "meeting_canceled" else 1
            found = events.get(activity["id"], 0)
        else:
            continue
        report.expected_records += expected
        report.found_records += found
        report.duplicates += max(0, found - 1)
        report.missing += max(0, expected - found)


class _Control:
    """The sandbox's control API: reading records costs no quota and leaves no trace in the ledger."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.verify = config["ca_file"]
        self.http.headers["Authorization"] = f"Bearer {config['admin_token']}"

    def records(self, sobject: str) -> list[dict[str, Any]]:
        response = self.http.get(f"{self.config['admin_url']}/records/{sobject}", timeout=120)
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()
        return records
