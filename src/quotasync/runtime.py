"""What every command needs: settings, the store, the secrets vault and the clock."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from quotasync import private_files
from quotasync.clock import Clock, RealClock
from quotasync.config import Settings
from quotasync.crypto import Vault, load_key
from quotasync.errors import QuotasyncError
from quotasync.store import db

if TYPE_CHECKING:
    from quotasync.salesforce.connection import Connector


class NotMigrated(QuotasyncError):
    """The database has no schema yet."""


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    sessions: sessionmaker[Session]
    vault: Vault
    clock: Clock
    # How a request that waits on Salesforce (a deploy's progress) waits: tests on a manual
    # clock move it instead.
    sleep: Callable[[float], None] = time.sleep

    @property
    def connector(self) -> Connector:
        # Imported here: the Salesforce client costs a CLI command that never calls the org
        # a noticeable part of its start-up.
        from quotasync.salesforce.connection import Connector

        return Connector(self.sessions, self.vault, self.clock)


def open_runtime(settings: Settings | None = None, clock: Clock | None = None) -> Runtime:
    """The embedded SQLite store is migrated on first use; PostgreSQL is migrated explicitly."""
    settings = settings or Settings()
    # The data directory holds the key, the embedded store and the outbox: quotasync's user only.
    private_files.directory(settings.data_dir)
    url = settings.effective_database_url
    if make_url(url).get_backend_name() == "sqlite":
        if not db.is_current(url):
            db.upgrade(url)
    elif db.current_revision(url) is None:
        raise NotMigrated("the database has no schema yet: run `quotasync db upgrade` first")
    vault = Vault(load_key(settings.data_dir, settings.secret_key))
    return Runtime(settings, db.sessions(db.make_engine(url)), vault, clock or RealClock())
