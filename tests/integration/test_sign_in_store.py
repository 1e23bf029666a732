"""Sign-in's store: wrong passwords counted by email and by client in the store (shared by every
web process, never evicted), one password check per sign-in whatever the number of workspaces
sharing the email, and server-side sessions that a sign-out or a new password end. On SQLite and
PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from quotasync.store import db, sign_in_failures, users, web_sessions, workspaces
from quotasync.store.tables import SignInFailure, User

START = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@pytest.fixture
def sessions(database_url: str):
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    yield db.sessions(engine)
    engine.dispose()


def test_the_tenth_wrong_password_locks_the_email_until_the_first_ages_out(sessions) -> None:
    keys = sign_in_failures.keys("Rep@Acme.io", "203.0.113.5")
    now = START
    with sessions.begin() as session:
        for _ in range(9):
            sign_in_failures.record(session, keys, now)
            now += timedelta(minutes=1)
        assert sign_in_failures.blocked_until(session, keys, now) is None
        sign_in_failures.record(session, keys, now)
        assert sign_in_failures.blocked_until(session, keys, now) == START + timedelta(minutes=15)
        # Another email from another client is not held up.
        other = sign_in_failures.keys("other@acme.io", "198.51.100.9")
        assert sign_in_failures.blocked_until(session, other, now) is None
        # 15 minutes after the first failure, one has aged out.
        assert sign_in_failures.blocked_until(session, keys, START + timedelta(minutes=15)) is None


def test_a_flood_of_other_emails_neither_frees_a_locked_one_nor_escapes_its_clients_limit(
    sessions,
) -> None:
    locked = sign_in_failures.keys("ceo@acme.io", "203.0.113.5")
    with sessions.begin() as session:
        for _ in range(sign_in_failures.PER_EMAIL):
            sign_in_failures.record(session, locked, START)
        # 10,001 junk emails from other clients: the count of the locked email stays (it was
        # evicted from the in-memory throttle this replaces).
        junk = [
            sign_in_failures.keys(f"x{n}@junk.io", f"10.0.{n // 250}.{n % 250}")
            for n in range(10_001)
        ]
        session.add_all(
            [SignInFailure(key=k.email, at=START) for k in junk]
            + [SignInFailure(key=k.client, at=START) for k in junk]
        )
        assert sign_in_failures.blocked_until(session, locked, START) is not None
        # One client trying many emails hits its own limit, whatever the emails.
        for n in range(sign_in_failures.PER_CLIENT):
            sign_in_failures.record(
                session, sign_in_failures.keys(f"u{n}@acme.io", "192.0.2.1"), START
            )
        fresh = sign_in_failures.keys("never-tried@acme.io", "192.0.2.1")
        assert sign_in_failures.blocked_until(session, fresh, START) is not None


def test_a_right_password_clears_the_emails_count(sessions) -> None:
    keys = sign_in_failures.keys("rep@acme.io", "203.0.113.5")
    with sessions.begin() as session:
        for _ in range(9):
            sign_in_failures.record(session, keys, START)
        sign_in_failures.clear(session, keys, START)
        keys_count = session.scalars(
            select(SignInFailure).where(SignInFailure.key == keys.email)
        ).all()
        assert keys_count == []


def two_workspaces(session, email: str) -> tuple[User, User, str, str]:
    first = workspaces.create(session, "First", email, START)
    second = workspaces.create(session, "Second", "boss@second.io", START)
    member = users.add(session, second.workspace, email, "member", START)
    return first.admin, member.user, first.admin_password, member.password


def test_an_email_in_two_workspaces_costs_one_password_check(sessions, monkeypatch) -> None:
    computed: list[bytes] = []
    real = users.low_level.hash_secret

    def counted(secret: bytes, *args, **kwargs):
        computed.append(secret)
        return real(secret, *args, **kwargs)

    with sessions.begin() as session:
        first, second, first_password, _ = two_workspaces(session, "pat@acme.io")
        # The same password in both: set it on the second too.
        users.set_password(session, second, first_password)
        monkeypatch.setattr(users.low_level, "hash_secret", counted)
        assert {u.id for u in users.sign_in(session, "pat@acme.io", first_password)} == {
            first.id,
            second.id,
        }
        assert len(computed) == 1
        computed.clear()
        assert users.sign_in(session, "pat@acme.io", "wrong password here") == []
        assert len(computed) == 1
        computed.clear()
        assert users.sign_in(session, "nobody@acme.io", "wrong password here") == []
        assert len(computed) == 1  # an unknown email costs the same one


def test_sign_in_is_refused_at_once_when_every_check_slot_is_taken(sessions) -> None:
    with sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", START)
        taken = [users._slots.acquire(blocking=False) for _ in range(users.CHECK_SLOTS)]
        try:
            assert all(taken)
            with pytest.raises(users.Busy):
                users.sign_in(session, "admin@acme.io", made.admin_password)
        finally:
            for _ in taken:
                users._slots.release()
        assert users.sign_in(session, "admin@acme.io", made.admin_password) != []


def test_a_session_ends_with_sign_out_with_a_new_password_and_with_its_lifetime(
    sessions,
) -> None:
    with sessions.begin() as session:
        first, second, _, _ = two_workspaces(session, "pat@acme.io")
        both = web_sessions.start(session, [first.id, second.id], START)
        other = web_sessions.start(session, [first.id], START)
        assert sorted(web_sessions.user_ids(session, both, START)) == sorted([first.id, second.id])
        web_sessions.end(session, both)
        assert web_sessions.user_ids(session, both, START) == []
        assert web_sessions.user_ids(session, other, START) == [first.id]
        users.reset_password(session, first, START, revoke_tokens=False)
        assert web_sessions.user_ids(session, other, START) == []
        late = web_sessions.start(session, [second.id], START)
        assert web_sessions.user_ids(session, late, START + web_sessions.LIFETIME) == []


def test_tokens_expire_can_be_revoked_and_go_with_a_reset_that_asks(sessions) -> None:
    with sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", START)
        admin = made.admin
        short = users.new_api_token(session, admin, START, name="ci", days=1)
        kept = users.new_api_token(session, admin, START, name="sidebar")
        assert users.by_api_token(session, short, START + timedelta(hours=23)) is not None
        assert users.by_api_token(session, short, START + timedelta(days=1)) is None
        listed = users.tokens_of(session, admin.id)
        assert [(t.name, t.last_used_at) for t in listed] == [
            ("ci", START + timedelta(hours=23)),
            ("sidebar", None),
        ]
        users.revoke_token(session, admin.id, listed[1].id, START)
        assert users.by_api_token(session, kept, START) is None
        third = users.new_api_token(session, admin, START, name="again")
        users.reset_password(session, admin, START, revoke_tokens=True)
        assert users.by_api_token(session, third, START) is None
        with pytest.raises(users.UserError):
            users.new_api_token(session, admin, START, days=400)


def test_an_ipv6_client_is_counted_by_its_64_whatever_address_it_takes() -> None:
    one = sign_in_failures.keys("a@acme.io", "2001:db8:1:2::1")
    other = sign_in_failures.keys("a@acme.io", "2001:db8:1:2:ffff:ffff:ffff:fffe")
    elsewhere = sign_in_failures.keys("a@acme.io", "2001:db8:1:3::1")
    assert one.client == other.client != elsewhere.client
    assert sign_in_failures.keys("a@acme.io", "203.0.113.5").client == "client:203.0.113.5"
