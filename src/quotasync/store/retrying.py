"""Transactions that outlast the store's passing troubles.

SQLite answers "database is locked" when another process holds its write lock past the busy
timeout; PostgreSQL drops a connection when the server restarts, a proxy times out or an admin
ends the backend, and refuses a transaction that lost a serialization race. None of these says
anything about the work itself: the whole transaction is run again, from its start, on a fresh
connection (the engine's pre-ping replaces a dead one). Everything else is raised at once.

Only work that touches nothing but the store belongs in `transaction`: it may run more than once.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger("quotasync.store")

ATTEMPTS = 6  # with the delays below: about 3 s of trying before the trouble is raised
FIRST_DELAY = 0.1
LONGEST_DELAY = 1.0
# SQLSTATEs that are the connection's or the moment's, never the statement's: serialization
# failure, deadlock, the server shutting down or starting, and every connection exception (08...).
PASSING_SQLSTATES = {"40001", "40P01", "57P01", "57P02", "57P03"}

_T = TypeVar("_T")


def passing(error: BaseException) -> bool:
    """Whether a store error is a passing one, worth the transaction again."""
    if not isinstance(error, DBAPIError):
        return False
    if error.connection_invalidated:
        return True
    cause = error.orig
    sqlstate = getattr(cause, "sqlstate", None)  # psycopg's
    if isinstance(sqlstate, str) and (sqlstate in PASSING_SQLSTATES or sqlstate.startswith("08")):
        return True
    if (
        sqlstate is None
        and type(cause).__name__ == "OperationalError"
        and type(cause).__module__.startswith("psycopg")
    ):
        return True  # no answer from the server at all: it cannot be reached, or went away
    if isinstance(cause, sqlite3.OperationalError):
        text = str(cause).lower()
        return "locked" in text or "busy" in text
    return False


def transaction(
    sessions: sessionmaker[Session],
    work: Callable[[Session], _T],
    *,
    attempts: int = ATTEMPTS,
    sleep: Callable[[float], None] = time.sleep,
) -> _T:
    """Run `work` in one transaction and commit; run it all again if the store failed in a
    passing way (up to `attempts` times), then raise."""
    delay = FIRST_DELAY
    for attempt in range(1, attempts + 1):
        try:
            with sessions.begin() as session:
                return work(session)
        except DBAPIError as error:
            if attempt == attempts or not passing(error):
                raise
            log.warning(
                "the store failed (%s), trying the transaction again (%d of %d)",
                type(error.orig).__name__,
                attempt + 1,
                attempts,
            )
        sleep(delay)
        delay = min(delay * 2, LONGEST_DELAY)
    raise AssertionError("unreachable")  # the loop returns or raises
