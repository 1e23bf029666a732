"""The workspace share and the org guard, enforced before each call (issue: the quota governor)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from quotasync.clock import ManualClock
from quotasync.engine.worker import Progress, Worker
from quotasync.store import limits
from quotasync.store.tables import Workspace
from tests.integration.logging_support import Connect, people, stream
from tests.integration.test_logging import OrgFactory, assert_each_in_org_once
from tests.sandbox_process import SandboxOrg

EMAILS = {"email_sent"}


def quotasync_calls(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("quotasync", 0))


def test_the_share_reached_pauses_the_workspace_until_its_own_calls_leave_the_window(
    new_org: OrgFactory, workspace: Connect
) -> None:
    # An org of 200 calls; a 10% share is 20 calls, of which the connect's mirror load took 3.
    org = new_org("--seed", "60", "--daily-api-requests", "200", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC))
    setup = workspace(org, clock=clock)
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        limits.set_share(session, ws, "data", 10)
        ws.batch_delay = 0
        ws.bulk_threshold = 1_000_000  # collections only: one call per 200 records
    activities = [a for a in stream(people(org), 8000, seed=21) if a["kind"] in EMAILS][:4000]
    setup.ingest(activities)  # 4,000 emails: 20 collections calls, more than the share leaves

    worker = setup.new_worker()
    progress = Progress()
    for _ in range(40):
        worker.cycle(progress)
        if progress.paused:
            break
    assert progress.paused == {setup.workspace_id: "workspace_limit"}
    assert setup.ledger_calls("data") == 20 == quotasync_calls(org)  # not one call past the share
    pending_at_pause = setup.states().get("pending", 0)
    assert pending_at_pause > 0

    # Still accepted and stored while paused.
    late = [a for a in stream(people(org), 400, seed=22) if a["kind"] in EMAILS][:50]
    assert setup.ingest(late).accepted == len(late)

    # The pause knows when room returns: when the oldest of its own calls leave the window.
    writer = worker.writers[setup.workspace_id]
    first_call = min(e.at for e in setup.ledger_entries("mirror_load"))
    assert writer.resume_at == first_call + timedelta(hours=24)
    # Until then it looks again every 30 minutes, and looking costs no call.
    looks = 0
    while clock.now() + timedelta(minutes=30) < writer.resume_at:
        clock.advance(30 * 60)
        worker.cycle(progress)
        looks += 1
    assert looks >= 40 and quotasync_calls(org) == 20
    assert progress.paused == {setup.workspace_id: "workspace_limit"}
    clock.advance((writer.resume_at - clock.now()).total_seconds())
    # ...and at that time, with the mirror load's calls gone from the window, it resumes.
    setup.drive()
    assert setup.states() == {"logged": len(activities) + len(late)}
    assert_each_in_org_once(org, activities + late)


def test_four_workers_together_never_pass_the_share(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60", "--daily-api-requests", "300", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC))
    setup = workspace(org, clock=clock)
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        limits.set_share(session, ws, "data", 10)  # 30 calls
        ws.batch_delay = 0
        ws.bulk_threshold = 1_000_000  # collections only: one call per 200 records
    activities = [a for a in stream(people(org), 20000, seed=23) if a["kind"] in EMAILS][:8000]
    setup.ingest(activities)

    def work() -> None:
        worker, progress = Worker(setup.runtime.connector, clock), Progress()
        for _ in range(30):
            worker.cycle(progress)
            if progress.paused:
                return

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # The org counted exactly what the ledger holds, and neither passed the share.
    assert quotasync_calls(org) == setup.ledger_calls("data") <= 30
    assert setup.ledger_calls("data") >= 28  # and the share was used, not left idle
