"""A worker process's scheduler as `quotasync worker` and the demo build it: one `Worker` (the
per-workspace stepper, with the notifier that emails the admins) under one `Pool`, with the claim
and lease lengths of the settings. One place, so that the demo runs what production runs."""

from __future__ import annotations

from datetime import timedelta

from quotasync.engine.notifier import Notifier
from quotasync.engine.pool import Options, Pool
from quotasync.engine.worker import Worker
from quotasync.runtime import Runtime


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
