"""The sandbox's state directory: records, the usage window and settings in one SQLite file.

Every request's changes are written in one transaction at the end of the request, so a sandbox that
is stopped (or killed) keeps everything it has answered for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson

from quotasync import private_files

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (id TEXT PRIMARY KEY, type TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS usage (
    api TEXT NOT NULL, app TEXT NOT NULL, second INTEGER NOT NULL, calls INTEGER NOT NULL,
    PRIMARY KEY (api, app, second)
);
CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StateFile:
    def __init__(self, path: Path) -> None:
        self.path = path
        private_files.touch(path)  # the org's records and passwords: its user's only
        # The sandbox serves from one event loop thread; background jobs run on that thread too.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def records(self) -> Iterator[tuple[str, str, dict[str, Any]]]:
        for record_id, sobject, data in self._db.execute("SELECT id, type, data FROM records"):
            yield record_id, sobject, orjson.loads(data)

    def usage(self) -> Iterator[tuple[str, str, int, int]]:
        yield from self._db.execute("SELECT api, app, second, calls FROM usage ORDER BY second")

    def setting(self, key: str, default: Any = None) -> Any:
        row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return orjson.loads(row[0]) if row else default

    def save(
        self,
        records: Iterable[tuple[str, str, dict[str, Any]]] = (),
        usage: Iterable[tuple[str, str, int, int]] = (),
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Write one request's worth of changes atomically.

        Record values may be typed: orjson writes dates and datetimes as ISO-8601, which the
        field coercion reads back.
        """
        rows = [(rid, sobject, orjson.dumps(data)) for rid, sobject, data in records]
        spent = list(usage)
        if not rows and not spent and not settings:
            return
        with self._transaction():
            if rows:
                self._db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?)", rows)
            live = [u for u in spent if u[3] > 0]
            gone = [u[:3] for u in spent if u[3] <= 0]
            if live:
                self._db.executemany("INSERT OR REPLACE INTO usage VALUES (?, ?, ?, ?)", live)
            if gone:
                self._db.executemany(
                    "DELETE FROM usage WHERE api = ? AND app = ? AND second = ?", gone
                )
            for key, value in (settings or {}).items():
                if value is None:
                    self._db.execute("DELETE FROM settings WHERE key = ?", (key,))
                else:
                    self._db.execute(
                        "INSERT OR REPLACE INTO settings VALUES (?, ?)", (key, orjson.dumps(value))
                    )

    def settings_with_prefix(self, prefix: str) -> Iterator[tuple[str, Any]]:
        rows = self._db.execute(
            "SELECT key, value FROM settings WHERE key LIKE ? ESCAPE '!'",
            (prefix.replace("!", "!!").replace("%", "!%").replace("_", "!_") + "%",),
        )
        for key, value in rows:
            yield key, orjson.loads(value)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, kind: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if kind else "COMMIT")
