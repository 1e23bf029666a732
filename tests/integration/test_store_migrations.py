"""The schema the migrations build is the schema the code declares, on every engine."""

from __future__ import annotations

from datetime import UTC, datetime

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.orm import sessionmaker

from quotasync.domain import mapping
from quotasync.store import db, workspaces
from quotasync.store.tables import Base, Workspace

TABLES = {
    "workspaces",
    "users",
    "connections",
    "activities",
    "ledger",
    "ledger_shares",
    "mirror",
    "email_lookups",
    "org_figures",
    "pause_episodes",
    "notifications",
    "sync_state",
    "rts_receipts",
    "api_tokens",
    "web_sessions",
    "sign_in_failures",
    "setting_changes",
    "org_samples",
    "worker_leases",
    "alembic_version",
}


def test_migrations_build_exactly_the_declared_schema(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == TABLES
            differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        assert differences == []
    finally:
        engine.dispose()
    assert db.current_revision(database_url) == db.HEAD == _newest_migration()


def test_migrations_go_down_to_nothing_and_back_up(database_url: str) -> None:
    db.upgrade(database_url)
    db.upgrade(database_url, "head")  # running it again is harmless

    engine = db.make_engine(database_url)
    try:
        with engine.begin() as connection:
            config = db.alembic_config(database_url)
            config.attributes["connection"] = connection
            command.downgrade(config, "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
    db.upgrade(database_url)
    assert db.current_revision(database_url) == db.HEAD == _newest_migration()


def test_a_workspace_syncing_before_limits_existed_starts_at_90_percent(database_url: str) -> None:
    db.upgrade(database_url, "0001")
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as connection:
            for ws in ("ws_old", "ws_idle"):
                connection.execute(
                    text(
                        "INSERT INTO workspaces (id, name, created_at, ingest_token_hash, open_tracking,"
                        " unmatched, batch_delay, bulk_threshold, synced_before_limits)"
                        " VALUES (:id, :id, '2026-11-01 00:00:00', :id, true, 'skip', 2.0, 2000, false)"
                    ),
                    {"id": ws},
                )
            connection.execute(
                text(
                    "INSERT INTO connections (workspace_id, instance_url, login_url, api_version,"
                    " client_id, username, org_id, user_id, access_token_sealed, connected_at)"
                    " VALUES ('ws_old', 'https://x', 'https://x', '62.0', 'c', 'u', 'o', 'u',"
                    " 'sealed', '2026-11-01 00:00:00')"
                )
            )
        db.upgrade(database_url)
        with engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, share_data, share_bulk, share_apex, synced_before_limits FROM workspaces ORDER BY id"
                )
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("ws_idle", 70, 70, 70, False),
        ("ws_old", 90, 90, 90, True),
    ]


def test_workspaces_at_the_old_2_second_delay_log_within_a_minute_and_others_keep_theirs(
    database_url: str,
) -> None:
    db.upgrade(database_url, "0009")
    rows = {  # id: (batch_delay, max_batch_delay) as the store held them
        "ws_default": (2.0, 300.0),
        "ws_low_ceiling": (2.0, 30.0),
        "ws_chosen": (10.0, 300.0),
        "ws_zero": (0.0, 600.0),
    }
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as connection:
            for ws, (delay, ceiling) in rows.items():
                connection.execute(
                    text(
                        "INSERT INTO workspaces (id, name, created_at, ingest_token_hash,"
                        " open_tracking, unmatched, batch_delay, bulk_threshold,"
                        " synced_before_limits, max_batch_delay)"
                        " VALUES (:id, :id, '2026-11-01 00:00:00', :id, true, 'skip', :delay,"
                        " 2000, false, :ceiling)"
                    ),
                    {"id": ws, "delay": delay, "ceiling": ceiling},
                )
        db.upgrade(database_url)
        with engine.connect() as connection:
            found = connection.execute(
                text("SELECT id, log_within, max_batch_delay FROM workspaces ORDER BY id")
            ).all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in found] == [
        ("ws_chosen", 10.0, 300.0),
        ("ws_default", 60.0, 300.0),
        ("ws_low_ceiling", 60.0, 60.0),  # the ceiling is never below log_within
        ("ws_zero", 0.0, 600.0),
    ]


def test_workspaces_from_before_0013_keep_bare_external_ids_and_new_ones_get_a_prefix(
    database_url: str,
) -> None:
    """Records an existing workspace wrote carry the bare activity id: it must go on writing
    under it, or a follow-up to an old email would make a second Task."""
    db.upgrade(database_url, "0012")
    engine = db.make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO workspaces (id, name, created_at, ingest_token_hash,"
                    " open_tracking, unmatched, bulk_threshold, synced_before_limits)"
                    " VALUES ('ws_old', 'Old', '2026-11-01 00:00:00', 'h', true, 'skip', 2000,"
                    " false)"
                )
            )
        db.upgrade(database_url)
        sessions = sessionmaker(engine)
        with sessions.begin() as session:
            made = workspaces.create(
                session, "New", "admin@new.example", datetime(2026, 12, 5, tzinfo=UTC)
            )
            new_id = made.workspace.id
        with sessions() as session:
            old = session.get_one(Workspace, "ws_old")
            new = session.get_one(Workspace, new_id)
            assert old.external_id_prefix is None
            assert new.external_id_prefix is not None
            assert mapping.external_id(old.external_id_prefix, "a-1") == "a-1"
            assert mapping.external_id(new.external_id_prefix, "a-1") == (
                f"{new.external_id_prefix}:a-1"
            )
    finally:
        engine.dispose()


def _newest_migration() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_current_head())


def test_a_store_at_the_newest_migration_is_current_and_an_empty_one_is_not(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'q.db'}"
    assert not db.is_current(url)
    db.upgrade(url)
    assert db.is_current(url)
