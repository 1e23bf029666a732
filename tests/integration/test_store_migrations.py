"""The schema the migrations build is the schema the code declares, on every engine."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from quotasync.store import db
from quotasync.store.tables import Base

TABLES = {
    "workspaces",
    "users",
    "connections",
    "activities",
    "ledger",
    "ledger_shares",
    "mirror",
    "email_lookups",
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
    assert db.current_revision(database_url) == "0001"


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
    assert db.current_revision(database_url) == "0001"
