"""Helpers for the activity-logging tests: a workspace connected to a sandbox org, the worker pool
driven on an injected clock, and what the org and the outbox should hold for a list of activities."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock, ManualClock
from quotasync.config import Settings
from quotasync.domain import mapping
from quotasync.engine.notifier import Notifier
from quotasync.engine.pool import Pool
from quotasync.engine.worker import Progress, Worker
from quotasync.engine.writer import Shape
from quotasync.ingest import Ingest, Summary
from quotasync.runtime import Runtime, open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.services import connecting
from quotasync.services.connecting import SandboxFlow
from quotasync.simulation import ActivityStream
from quotasync.store import db, outbox, workspaces
from quotasync.store.tables import Activity as Row
from quotasync.store.tables import LedgerEntry, Workspace
from tests.processes import cli
from tests.sandbox_process import SandboxOrg

CLI = [sys.executable, "-m", "quotasync.cli"]
STREAM_START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
SERVICE_USERS = ("admin@", "sync@", "noapi@")


# ---------------------------------------------------------------- the org's people


@dataclass(frozen=True)
class People:
    reps: dict[str, str]  # rep email -> User id
    contacts: dict[str, str]  # email -> Contact id
    leads: dict[str, str]  # email -> Lead id

    def who(self, email: str) -> str | None:
        """The record a recipient's activity links to: the Contact, else the Lead."""
        return self.contacts.get(email) or self.leads.get(email)

    @property
    def recipients(self) -> list[str]:
        return sorted(set(self.contacts) | set(self.leads))


def records(org: SandboxOrg, sobject: str, where: str | None = None) -> list[dict[str, Any]]:
    """Every live record of a type, with every field, read without spending quota."""
    path = f"records/{sobject}"
    if where:
        path += "?" + urlencode({"where": where})
    found: list[dict[str, Any]] = org.control("GET", path)
    return found


def people(org: SandboxOrg) -> People:
    def by_email(sobject: str) -> dict[str, str]:
        return {r["Email"].lower(): r["Id"] for r in records(org, sobject, "Email != null")}

    reps = {
        email: user_id
        for email, user_id in by_email("User").items()
        if not email.startswith(SERVICE_USERS)
    }
    return People(reps, by_email("Contact"), by_email("Lead"))


def stream(
    org_people: People, count: int, *, seed: int = 7, strangers: float = 0.0
) -> list[dict[str, Any]]:
    return ActivityStream(
        sorted(org_people.reps), org_people.recipients, STREAM_START, seed=seed, strangers=strangers
    ).take(count)


# ---------------------------------------------------------------- the workspace

# `workspace(org, database_url=None, clock=None)`: the conftest fixture that makes a Setup.
Connect = Callable[..., "Setup"]


@dataclass
class Setup:
    runtime: Runtime
    workspace_id: str
    org: SandboxOrg | None
    data_dir: Path
    database_url: str
    clock: Clock
    pool: Pool | None = None

    def settings(self, **values: Any) -> None:
        """Change the workspace's logging settings (open_tracking, unmatched, bulk_threshold...)."""
        with self.runtime.sessions.begin() as session:
            workspace = session.get(Workspace, self.workspace_id)
            assert workspace is not None
            for name, value in values.items():
                setattr(workspace, name, value)

    @property
    def prefix(self) -> str | None:
        """What this workspace's external ids start with (None: a workspace from before)."""
        return prefix_of(self.runtime.sessions, self.workspace_id)

    def external_id(self, key: str) -> str:
        """The QS_Activity_Id__c this workspace writes for an email's or meeting's id."""
        return mapping.external_id(self.prefix, key)

    def by_activity_id(self, found: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """`by_activity_id` for this workspace: its records by activity id, any other under
        its whole external id."""
        return by_activity_id(found, [self.prefix])

    def ingest(self, items: Sequence[object]) -> Summary:
        return Ingest(self.runtime.sessions, self.clock).accept(self.workspace_id, items)

    def new_pool(self, shape: Shape = Shape(), notifier: Notifier | None = None) -> Pool:
        """The scheduler `quotasync worker` runs, driven here a turn at a time (`Pool.turn`)."""
        worker = Worker(self.runtime.connector, self.clock, notifier, shape=shape)
        self.pool = Pool(worker, self.clock)
        return self.pool

    def drive(self, *, max_turns: int = 5000, clock_hours_cap: float = 48) -> Progress:
        """Turn the pool until nothing is pending, moving the manual clock to whatever is due
        next (a retry's backoff, a batch delay, a pause's recheck) instead of sleeping."""
        assert isinstance(self.clock, ManualClock), "drive() needs a ManualClock"
        pool = self.pool or self.new_pool()
        progress = Progress()
        started = self.clock.now()
        for _ in range(max_turns):
            next_due = pool.turn(progress)
            if pool.idle(progress):
                return progress
            now = self.clock.now()
            if next_due is None:
                next_due = now + timedelta(seconds=1)
            if next_due > now:
                self.clock.advance((next_due - now).total_seconds())
            assert self.clock.now() - started < timedelta(hours=clock_hours_cap), (
                f"still not idle after {clock_hours_cap} h of clock: {self.states()}"
            )
        raise AssertionError(f"still not idle after {max_turns} turns: {self.states()}")

    def rows(self) -> dict[str, Row]:
        with self.runtime.sessions() as session:
            found = session.scalars(select(Row).where(Row.workspace_id == self.workspace_id))
            return {row.id: row for row in found}

    def states(self) -> dict[str, int]:
        with self.runtime.sessions() as session:
            return outbox.counts(session, self.workspace_id)

    def ledger_calls(self, api: str = "data", purpose: str | None = None) -> int:
        query = select(func.coalesce(func.sum(LedgerEntry.calls), 0)).where(
            LedgerEntry.workspace_id == self.workspace_id, LedgerEntry.api == api
        )
        if purpose is not None:
            query = query.where(LedgerEntry.purpose == purpose)
        with self.runtime.sessions() as session:
            return int(session.scalar(query) or 0)

    def ledger_entries(self, purpose: str) -> list[LedgerEntry]:
        with self.runtime.sessions() as session:
            return list(
                session.scalars(
                    select(LedgerEntry).where(
                        LedgerEntry.workspace_id == self.workspace_id,
                        LedgerEntry.purpose == purpose,
                    )
                )
            )

    def close(self) -> None:
        engine = self.runtime.sessions.kw["bind"]
        engine.dispose()

    def cli_env(self) -> dict[str, str]:
        env = {**os.environ, "QUOTASYNC_DATA_DIR": str(self.data_dir), "PYTHONUNBUFFERED": "1"}
        env["QUOTASYNC_DATABASE_URL"] = self.database_url
        return env

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return cli(list(args), self.cli_env(), timeout=timeout)


def open_workspace(
    tmp_path: Path, database_url: str | None = None, clock: Clock | None = None
) -> Setup:
    """A new workspace in a store of its own, not connected to any org."""
    data_dir = tmp_path / "data"
    url = database_url or f"sqlite:///{data_dir / 'quotasync.db'}"
    if make_url(url).get_backend_name() != "sqlite":
        db.upgrade(url)
    clock = clock or ManualClock(datetime.now(UTC))
    runtime = open_runtime(Settings(data_dir=data_dir, database_url=url), clock)
    with runtime.sessions.begin() as session:
        # "Acme", or "Acme 2" and on for more workspaces in one store: names are unique.
        taken = set(session.scalars(select(Workspace.name)))
        name = next(n for n in ("Acme", *(f"Acme {i}" for i in range(2, 1000))) if n not in taken)
        made = workspaces.create(session, name, "admin@acme.io", clock.now())
    return Setup(runtime, made.workspace.id, None, data_dir, url, clock)


def connect(
    org: SandboxOrg,
    tmp_path: Path,
    database_url: str | None = None,
    clock: Clock | None = None,
    user: str = "sync",
    load: bool = True,
) -> Setup:
    """A workspace connected to the org as the quotasync app and a user (the sync user, who
    lacks View Setup, unless told otherwise), its mirror loaded (unless `load` is False)."""
    setup = open_workspace(tmp_path, database_url, clock)
    setup.org = org
    connector = setup.runtime.connector
    login = SandboxLogin.read(org.state_dir / "sandbox.json", user)
    if load:  # as `quotasync connect` does it
        sessions, clock = setup.runtime.sessions, setup.clock
        connecting.connect(sessions, connector, clock, setup.workspace_id, SandboxFlow(login))
    else:
        connector.connect_sandbox(setup.workspace_id, login)
    return setup


# ---------------------------------------------------------------- what the org should hold


@dataclass
class ExpectedTask:
    id: str
    rep: str
    first_recipient: str
    opens: int = 0
    clicks: int = 0
    replies: int = 0
    follow_ups: list[str] = field(default_factory=list)


@dataclass
class ExpectedEvent:
    id: str
    rep: str
    attendee: str | None
    start: str
    end: str
    canceled: bool = False
    changes: list[str] = field(default_factory=list)


def salesforce_time(iso: str) -> str:
    return datetime.fromisoformat(iso).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def expected_tasks(activities: Iterable[dict[str, Any]]) -> dict[str, ExpectedTask]:
    tasks: dict[str, ExpectedTask] = {}
    for item in activities:
        if item["kind"] == "email_sent":
            tasks[item["id"]] = ExpectedTask(item["id"], item["user_email"], item["to"][0].lower())
    for item in activities:
        task = tasks.get(item.get("email_id", ""))
        if task is None:
            continue
        task.follow_ups.append(item["id"])
        kind = item["kind"]
        task.opens += kind == "email_opened"
        task.clicks += kind == "link_clicked"
        task.replies += kind == "email_replied"
    return tasks


def expected_events(activities: Iterable[dict[str, Any]]) -> dict[str, ExpectedEvent]:
    events: dict[str, ExpectedEvent] = {}
    ordered = sorted(activities, key=lambda a: datetime.fromisoformat(a["occurred_at"]))
    for item in ordered:
        if item["kind"] == "meeting_booked":
            meeting = item["meeting"]
            attendees = meeting.get("attendees") or []
            events[item["id"]] = ExpectedEvent(
                item["id"],
                item["user_email"],
                attendees[0].lower() if attendees else None,
                salesforce_time(meeting["start"]),
                salesforce_time(meeting["end"]),
            )
    for item in ordered:
        event = events.get(item.get("meeting_id", ""))
        if event is None:
            continue
        event.changes.append(item["id"])
        if item["kind"] == "meeting_canceled":
            event.canceled = True
        else:
            event.canceled = False
            event.start = salesforce_time(item["meeting"]["start"])
            event.end = salesforce_time(item["meeting"]["end"])
    return events


def prefix_of(sessions: sessionmaker[Session], workspace_id: str) -> str | None:
    with sessions() as session:
        return session.get_one(Workspace, workspace_id).external_id_prefix


def by_activity_id(
    found: Iterable[dict[str, Any]], prefixes: Iterable[str | None]
) -> dict[str, list[dict[str, Any]]]:
    """Records by the activity id their external id carries for one of these workspaces (their
    `prefixes`); a record of none of them under its whole external id, so that it shows as
    unexpected. (An id too long to be kept whole after the prefix stays under its external id.)"""
    heads = [f"{p}{mapping.PREFIX_SEPARATOR}" for p in prefixes if p is not None]
    grouped: dict[str, list[dict[str, Any]]] = {}
    for record in found:
        value = record.get(mapping.EXTERNAL_ID) or ""
        head = next((h for h in heads if value.startswith(h)), "")
        grouped.setdefault(value[len(head) :], []).append(record)
    return grouped


def duplicates(found: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts = Counter(r.get("QS_Activity_Id__c") for r in found)
    return {key or "": n for key, n in counts.items() if n > 1}


def reply_lines(description: str | None) -> int:
    return sum(1 for line in (description or "").splitlines() if line.startswith("Reply "))


def sf_time(value: str | None) -> str:
    """A Salesforce datetime (2026-11-28T09:00:00.000+0000) to whole seconds."""
    return (value or "")[:19]
