"""Worker leases on SQLite and PostgreSQL: one holder per workspace, earliest due first, a dead
holder's lease runs out, and concurrent takers never share a workspace."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from quotasync.domain.activities import parse_activity
from quotasync.store import db, leases, outbox
from quotasync.store.tables import Connection, WorkerLease, Workspace

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
EMAIL = parse_activity(
    {
        "id": "act-1",
        "kind": "email_sent",
        "occurred_at": "2026-12-02T12:00:00Z",
        "user_email": "rep@example.com",
        "to": ["buyer@example.com"],
        "subject": "Hello",
    }
)


@pytest.fixture
def store(database_url: str) -> Iterator[sessionmaker[Session]]:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    yield db.sessions(engine)
    engine.dispose()


def connect(sessions: sessionmaker[Session], count: int, *, prefix: str = "ws") -> list[str]:
    """`count` connected workspaces (rows only: leases never read the connection's secrets)."""
    ids = [f"{prefix}_{n:04d}" for n in range(count)]
    with sessions.begin() as session:
        for workspace_id in ids:
            session.add(
                Workspace(
                    id=workspace_id,
                    name=workspace_id,
                    created_at=T0,
                    ingest_token_hash=workspace_id.ljust(64, "0"),
                )
            )
            session.flush()
            session.add(
                Connection(
                    workspace_id=workspace_id,
                    instance_url="https://org.example",
                    login_url="https://login.example",
                    api_version="62.0",
                    client_id="client",
                    username="sync@example.com",
                    org_id="00D000000000001",
                    user_id="005000000000001",
                    access_token_sealed="sealed",
                    connected_at=T0,
                )
            )
    return ids


def test_each_connected_workspace_gets_one_lease_row_due_at_once(
    store: sessionmaker[Session],
) -> None:
    ids = connect(store, 3)
    with store.begin() as session:
        assert leases.ensure(session, T0) == 3
        assert leases.ensure(session, T0) == 0  # idempotent
        session.execute(delete(Connection).where(Connection.workspace_id == ids[0]))
        leases.ensure(session, T0)  # a disconnected workspace's row goes
    with store() as session:
        rows = {r.workspace_id: r for r in session.scalars(select(WorkerLease))}
    assert sorted(rows) == ids[1:]
    assert all(r.due_at == T0 and r.holder is None for r in rows.values())


def test_take_serves_the_earliest_due_and_holds_it_until_given_back(
    store: sessionmaker[Session],
) -> None:
    a, b, c = connect(store, 3)
    with store.begin() as session:
        leases.ensure(session, T0)
        leases.give_back(session, "nobody", a, T0, T0)  # not held: changes nothing
        session.get_one(WorkerLease, a).due_at = T0 + timedelta(seconds=5)
        session.get_one(WorkerLease, c).due_at = T0 - timedelta(seconds=5)
    now = T0 + timedelta(seconds=1)
    with store.begin() as session:
        assert leases.take(session, "w1", now, LEASE) == c  # due first
        assert leases.take(session, "w2", now, LEASE) == b
        assert leases.take(session, "w3", now, LEASE) is None  # a is not due yet; c, b held
    with store.begin() as session:
        leases.give_back(session, "w1", c, now, now + timedelta(minutes=10))
        assert leases.holders(session, now) == {b: "w2"}
    later = T0 + timedelta(seconds=6)
    with store.begin() as session:
        assert leases.take(session, "w1", later, LEASE) == a
        assert leases.take(session, "w1", later, LEASE) is None  # c is due in 10 minutes


def test_a_dead_holders_lease_runs_out_and_renewal_keeps_a_live_one(
    store: sessionmaker[Session],
) -> None:
    a, b = connect(store, 2)
    with store.begin() as session:
        leases.ensure(session, T0)
        assert leases.take(session, "live", T0, LEASE) == a
        assert leases.take(session, "dead", T0, LEASE) == b
    half = T0 + LEASE / 2
    with store.begin() as session:
        assert leases.renew(session, "live", [a, b], half, LEASE) == 1  # b is not its lease
    after = T0 + LEASE + timedelta(seconds=1)
    with store.begin() as session:
        # The dead holder's lease ran out: another worker takes its workspace; the live one's
        # renewed lease still holds.
        assert leases.take(session, "other", after, LEASE) == b
        assert leases.take(session, "other", after, LEASE) is None
        # The dead holder, back from a long stall, cannot give back what is no longer its own.
        leases.give_back(session, "dead", b, after, after + timedelta(hours=1))
        assert leases.holders(session, after) == {a: "live", b: "other"}
        assert leases.release_all(session, "live") == 1
        assert leases.holders(session, after) == {b: "other"}


def test_new_activities_wake_a_workspace_that_was_due_later(
    store: sessionmaker[Session],
) -> None:
    (a,) = connect(store, 1)
    with store.begin() as session:
        leases.ensure(session, T0)
        session.get_one(WorkerLease, a).due_at = T0 + timedelta(hours=1)

    with store.begin() as session:
        outbox.accept(session, a, [EMAIL], T0 + timedelta(seconds=3))
    with store.begin() as session:
        assert session.get_one(WorkerLease, a).due_at == T0 + timedelta(seconds=3)
        assert leases.take(session, "w", T0 + timedelta(seconds=3), LEASE) == a


def test_concurrent_takers_never_hold_one_workspace_together(
    store: sessionmaker[Session],
) -> None:
    ids = connect(store, 40)
    with store.begin() as session:
        leases.ensure(session, T0)
    taken: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def taker(name: str) -> None:
        start.wait()
        while True:
            with store.begin() as session:
                got = leases.take(session, name, T0, LEASE)
            if got is None:
                with store() as session:
                    if len(leases.holders(session, T0)) == len(ids):
                        return
                continue
            with lock:
                taken.append(got)

    threads = [threading.Thread(target=taker, args=(f"w{n}",)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert Counter(taken) == Counter(ids)  # every workspace taken, none twice


def test_activities_arriving_during_a_step_make_it_due_when_given_back(
    store: sessionmaker[Session],
) -> None:
    """The step looked before they arrived and found nothing: the workspace must not wait its
    idle minute for them."""
    (a,) = connect(store, 1)
    with store.begin() as session:
        leases.ensure(session, T0)
        assert leases.take(session, "w", T0, LEASE) == a
    arrived = T0 + timedelta(seconds=1)
    with store.begin() as session:
        outbox.accept(session, a, [EMAIL], arrived)
    with store.begin() as session:
        leases.give_back(session, "w", a, T0 + timedelta(seconds=2), T0 + timedelta(minutes=1))
    with store() as session:
        assert session.get_one(WorkerLease, a).due_at == arrived
    with store.begin() as session:
        assert leases.take(session, "w", T0 + timedelta(seconds=2), LEASE) == a
        # A step with nothing arriving meanwhile is given back due when it says.
        leases.give_back(session, "w", a, T0 + timedelta(seconds=3), T0 + timedelta(minutes=1))
    with store() as session:
        row = session.get_one(WorkerLease, a)
        assert row.due_at == T0 + timedelta(minutes=1) and row.woken_at is None
