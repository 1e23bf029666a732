"""A worker process's scheduler as `quotasync worker` and the demo build it: one `Worker` (the
per-workspace stepper, with the notifier that emails the admins) under one `Pool`, with the claim
and lease lengths of the settings. One place, so that the demo runs what production runs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from quotasync.domain.activities import State
from quotasync.engine.notifier import Notifier
from quotasync.engine.pool import Options, Pool
from quotasync.engine.worker import Worker
from quotasync.runtime import Runtime
from quotasync.store.tables import Activity, Connection, Workspace


def pool(
    runtime: Runtime,
    *,
    concurrency: int = 1,
    until_idle: bool = False,
    claim: timedelta | None = None,
) -> Pool:
    """The worker process's pool on `runtime`'s store, org connections and clock. `claim` is how
    long a writer holds a batch (default: the settings' `claim_seconds`)."""
    settings = runtime.settings
    notifier = Notifier(runtime.sessions, settings, runtime.clock)
    held = claim if claim is not None else timedelta(seconds=settings.claim_seconds)
    worker = Worker(runtime.connector, runtime.clock, notifier, held)
    lease = timedelta(seconds=settings.lease_seconds)
    return Pool(worker, runtime.clock, Options(concurrency, lease, until_idle))


def cannot_do(runtime: Runtime) -> list[str]:
    """What a worker on this store cannot do, and why, in words: an empty store (a wrong data
    directory or database URL makes a new, empty one), and pending activities of workspaces
    that are not connected to an org."""
    with runtime.sessions() as session:
        if session.scalar(select(func.count()).select_from(Workspace)) == 0:
            where = runtime.settings.effective_database_url.split("?")[0]
            return [
                f"the store at {where} has no workspaces: is QUOTASYNC_DATA_DIR (or "
                "QUOTASYNC_DATABASE_URL) the one `quotasync workspace create` used?"
            ]
        waiting = session.execute(
            select(Workspace.id, Workspace.name, func.count(Activity.id))
            .join(Activity, Activity.workspace_id == Workspace.id)
            .outerjoin(Connection, Connection.workspace_id == Workspace.id)
            .where(Activity.state == State.PENDING, Connection.workspace_id.is_(None))
            .group_by(Workspace.id, Workspace.name)
            .order_by(Workspace.id)
        ).all()
    return [
        f"{count:,} {'activity waits' if count == 1 else 'activities wait'} in workspace "
        f"{workspace_id} ({name}): it is not connected to an org "
        f"(`quotasync connect --workspace {workspace_id} ...`)"
        for workspace_id, name, count in waiting
    ]
