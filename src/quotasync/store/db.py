"""Engines and migrations. SQLite gets WAL, foreign keys and a busy timeout; PostgreSQL is used as is.

`adding` is the transaction for rows whose unique key another writer may have taken first: there
SQLAlchemy's `IntegrityError` is translated into `errors.Conflict`, so the callers above the store
name none of SQLAlchemy's exceptions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from quotasync import private_files
from quotasync.errors import Conflict

if TYPE_CHECKING:
    from alembic.config import Config


# The newest migration. Kept here so that opening an up-to-date store needs no Alembic; a test
# checks it against the migrations folder.
HEAD = "0015"


def make_engine(url: str, busy_timeout: float = 30.0) -> Engine:
    """An engine for the store at `url`. On SQLite a writer waits up to `busy_timeout` seconds
    for another's lock before "database is locked" (which `retrying` then waits out)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            # The store holds sealed secrets and everyone's activity: 0600 from its first byte
            # (SQLite gives its journal and WAL files the database file's permissions).
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            private_files.touch(Path(database))
        engine = create_engine(url, connect_args={"timeout": busy_timeout})
        event.listen(
            engine, "connect", lambda connection, _record: _sqlite_pragmas(connection, busy_timeout)
        )
        return engine
    # A worker may run up to 64 threads, each wanting a connection at times: connections beyond
    # the pool's five are opened when needed and closed after, instead of making threads wait.
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=70)


def _sqlite_pragmas(connection: Any, busy_timeout: float) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
    cursor.close()


def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def adding(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction, committed at the end, whose rows may meet a unique key already taken:
    then it is rolled back and `Conflict` raised (from a flush inside, or from the commit)."""
    try:
        with sessions.begin() as session:
            yield session
    except IntegrityError as error:
        raise Conflict(f"the store holds it already: {error.orig}") from error


def alembic_config(url: str) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option(
        "script_location", str(resources.files("quotasync.store") / "migrations")
    )
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` to `revision` (creating it if it is a new SQLite file)."""
    # Alembic is imported only here and below: most commands open a store that is up to date.
    from alembic import command

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def is_current(url: str) -> bool:
    """Whether the database at `url` is at HEAD, read without Alembic (a missing table: no)."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            found = connection.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    except DBAPIError:
        return False
    finally:
        engine.dispose()
    return [row[0] for row in found] == [HEAD]
