"""quotasync's web app served by uvicorn in a thread, over a SQLite store of its own: for tests
that send many requests and look in the store after each one (the store is read through the same
runtime, not through a CLI subprocess per look)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import func, select

from quotasync.clock import ManualClock
from quotasync.config import Settings
from quotasync.runtime import Runtime, open_runtime
from quotasync.store.tables import Activity
from quotasync.web.app import create_app
from tests import servers

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
METRICS_TOKEN = "qsm_only-the-operators-scrape-token"


@dataclass
class Served:
    url: str
    app: FastAPI
    runtime: Runtime

    def stored_ids(self, workspace_id: str) -> list[str]:
        """Every activity id the workspace's outbox holds, as often as it holds it."""
        with self.runtime.sessions() as session:
            return list(
                session.scalars(select(Activity.id).where(Activity.workspace_id == workspace_id))
            )

    def stored_count(self) -> int:
        with self.runtime.sessions() as session:
            return int(session.scalar(select(func.count()).select_from(Activity)) or 0)


def runtime_in(data_dir: Path, **settings: Any) -> Runtime:
    """A runtime on a fresh SQLite store whose clock stands still at NOW; /metrics is on."""
    return open_runtime(
        Settings(data_dir=data_dir, metrics_token=SecretStr(METRICS_TOKEN), **settings),
        ManualClock(NOW),
    )


@contextmanager
def serve(runtime: Runtime) -> Iterator[Served]:
    app = create_app(runtime)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = servers.start(server)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield Served(f"http://127.0.0.1:{port}", app, runtime)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        runtime.sessions.kw["bind"].dispose()
