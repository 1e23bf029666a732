"""The store failing for a moment: SQLite locked by another process past its busy timeout, a
PostgreSQL connection dropped in the middle of a transaction. Transactions are run again, and
nothing acknowledged is lost or stored twice."""

from __future__ import annotations

import logging
import signal
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import OperationalError

from quotasync.clock import ManualClock, RealClock
from quotasync.ingest import Ingest
from quotasync.store import db, outbox, retrying, workspaces
from tests.acceptance.served_app import runtime_in, serve
from tests.databases import postgres_url
from tests.integration.logging_support import CLI, connect, people, stream
from tests.integration.test_governor import quotasync_calls
from tests.integration.test_logging import assert_each_in_org_once
from tests.processes import finish, spawn
from tests.sandbox_process import SandboxOrg

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
ITEMS = [
    {
        "id": f"em-{n}",
        "kind": "email_sent",
        "occurred_at": "2026-12-02T11:00:00Z",
        "user_email": "rep@acme.io",
        "to": [f"buyer{n}@example.com"],
        "subject": f"Hello {n}",
    }
    for n in range(50)
]


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from postgres_url()


def test_a_sqlite_store_locked_past_its_busy_timeout_is_waited_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'quotasync.db'}"
    db.upgrade(url)
    engine = db.make_engine(url, busy_timeout=0.3)
    sessions = db.sessions(engine)
    with sessions.begin() as session:
        workspace_id = workspaces.create(session, "Acme", "admin@acme.io", NOW).workspace.id

    # Another process holds the write lock for well past the busy timeout.
    other = sqlite3.connect(
        tmp_path / "quotasync.db", isolation_level=None, check_same_thread=False
    )
    other.execute("BEGIN EXCLUSIVE")
    with pytest.raises(OperationalError, match="locked"):
        retrying.transaction(
            sessions, lambda s: s.execute(text("UPDATE workspaces SET name = name")), attempts=1
        )  # one try is not enough: the trouble is real
    releaser = threading.Timer(1.0, lambda: other.execute("COMMIT"))
    releaser.start()
    with caplog.at_level(logging.WARNING, logger="quotasync.store"):
        summary = Ingest(sessions, ManualClock(NOW)).accept(workspace_id, ITEMS)
    releaser.join()
    other.close()

    assert summary.accepted == 50 and summary.duplicates == 0
    assert "trying the transaction again" in caplog.text
    with sessions() as session:
        assert outbox.counts(session, workspace_id) == {"pending": 50}
    engine.dispose()


def test_a_postgresql_connection_dropped_mid_transaction_is_retried(
    postgres: str, caplog: pytest.LogCaptureFixture
) -> None:
    db.upgrade(postgres)
    engine = db.make_engine(postgres)
    sessions = db.sessions(engine)
    with sessions.begin() as session:
        workspace_id = workspaces.create(session, "Acme", "admin@acme.io", NOW).workspace.id
    admin = create_engine(postgres)
    dropped: list[int] = []

    def drop_once(connection: Any, cursor: Any, statement: str, *_: Any) -> None:
        # The first INSERT of activities finds its connection ended by the server, as a
        # restart or a proxy's timeout would end it: half-way through the transaction.
        if not dropped and statement.startswith("INSERT INTO activities"):
            pid = connection.connection.dbapi_connection.info.backend_pid
            with admin.begin() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            dropped.append(pid)

    event.listen(engine, "before_cursor_execute", drop_once)
    with caplog.at_level(logging.WARNING, logger="quotasync.store"):
        summary = Ingest(sessions, ManualClock(NOW)).accept(workspace_id, ITEMS)
    assert dropped, "the fault was not injected"
    assert summary.accepted == 50 and summary.duplicates == 0
    assert "trying the transaction again" in caplog.text
    with sessions() as session:
        assert outbox.counts(session, workspace_id) == {"pending": 50}
    engine.dispose()
    admin.dispose()


@pytest.mark.long
def test_a_worker_whose_postgresql_connections_keep_dropping_loses_and_repeats_nothing(
    new_org: Callable[..., SandboxOrg], postgres: str, tmp_path: Path
) -> None:
    org = new_org("--seed", "60", "--session-timeout-minutes", "0")
    setup = connect(org, tmp_path, postgres, RealClock())
    try:
        # Several calls of up to 1,000 records, each held 1.5 s by the org, so that drops land
        # in every part of a step: claiming, waiting on the org, recording the answers.
        activities = stream(people(org), 8000, seed=5)
        setup.settings(log_within=0)
        setup.ingest(activities)
        org.control("POST", "faults", {"latency_ms": 1500})
        env = {**setup.cli_env(), "QUOTASYNC_CLAIM_SECONDS": "10", "QUOTASYNC_LEASE_SECONDS": "10"}
        env["QUOTASYNC_DATABASE_URL"] = f"{postgres}&application_name=qs_dropped"
        process = spawn([*CLI, "worker", "--until-idle", "--concurrency", "2"], env)
        admin = create_engine(postgres)
        rounds = 0
        try:
            # The server ends all of the worker's connections, in whatever transaction they are,
            # over and over; after three drops with nothing logged in between it lets one step
            # through, so the worker ends by itself however slow the machine (no wall-clock
            # bound: the worker exits when nothing is pending, the test's timeout is the net).
            logged, fruitless = 0, 0
            while process.poll() is None:
                now_logged = setup.states().get("logged", 0)
                if now_logged > logged:
                    logged, fruitless = now_logged, 0
                if fruitless < 3:
                    with admin.begin() as other:
                        hit = len(
                            other.execute(
                                text(
                                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                    "WHERE application_name = 'qs_dropped'"
                                )
                            ).all()
                        )
                    rounds += 1 if hit else 0
                    fruitless += 1
                time.sleep(0.5)  # paces the faults; nothing is timed
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            admin.dispose()
        _out, err = finish(process)
        assert rounds >= 5, (rounds, err[-3000:])
        assert setup.states() == {"logged": 8000}, err[-3000:]
        assert process.returncode == 0, err[-3000:]
        # Whether an ending struck inside a transaction (logged as "trying the transaction
        # again") or between two (the pool reconnects silently) is the machine's timing: once in
        # a while every ending fell between, and a check on the log failed a correct run. What
        # must hold either way is above and below: each activity once, every call ledgered.
        assert_each_in_org_once(org, activities, setup)
        # No call escaped the ledger, dropped connections or not.
        assert quotasync_calls(org) == setup.ledger_calls()
    finally:
        setup.close()


def test_an_ingest_the_store_cannot_take_is_refused_with_503_and_nothing_half_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = runtime_in(tmp_path / "data")
    with runtime.sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", NOW)
    database = tmp_path / "data" / "quotasync.db"
    # Writers give up on a lock after 0.2 s (then the transaction's retries, about 3 s).
    runtime.sessions.kw["bind"].dispose()
    runtime.sessions.configure(bind=db.make_engine(f"sqlite:///{database}", busy_timeout=0.2))
    with serve(runtime) as served:
        url = f"{served.url}/api/v1/workspaces/{made.workspace.id}/activities"
        headers = {"Authorization": f"Bearer {made.ingest_token}"}
        other = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN EXCLUSIVE")  # another process holds the store for good
        try:
            with caplog.at_level(logging.WARNING, logger="quotasync.store"):
                refused = requests.post(url, json=ITEMS[:10], headers=headers, timeout=60)
            # Meanwhile the app goes on answering: storing waits in a worker thread.
            assert requests.get(f"{served.url}/openapi.json", timeout=5).status_code == 200
        finally:
            other.execute("ROLLBACK")
            other.close()
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "5"
        assert "nothing was saved" in refused.json()["detail"]
        # It was tried again, as often as a transaction is, before the answer was given.
        assert caplog.text.count("trying the transaction again") == retrying.ATTEMPTS - 1
        assert served.stored_ids(made.workspace.id) == []
        # The email product tries again: everything is taken, once.
        again = requests.post(url, json=ITEMS[:10], headers=headers, timeout=60)
        assert again.status_code == 202 and again.json()["accepted"] == 10, again.text
        assert sorted(served.stored_ids(made.workspace.id)) == sorted(
            str(i["id"]) for i in ITEMS[:10]
        )
