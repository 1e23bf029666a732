"""A mirror sync the quota stops is paused like a batch (RULES.md: Pause, don't drop; Recheck and
resume; Tell the admins): its refusal opens the pause episode, the pause's looks bring the sync
back, and the admins hear once when it starts and once when it ends.

Found by a colleague: with nothing to write, a sync the caps refused (`QuotaExhausted`) opened no
episode. Nobody was told, nothing rechecked the room, and the sync went again only at its next
interval after the next scheduled `/limits` reading, up to an hour on."""

from __future__ import annotations

import email
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from quotasync.clock import ManualClock
from quotasync.domain import governor
from quotasync.engine.notifier import Notifier
from quotasync.engine.pool import Pool
from quotasync.engine.worker import Progress, Worker
from quotasync.store import quota_rows
from quotasync.store.tables import Workspace
from tests.integration.logging_support import Connect, Setup, records
from tests.integration.test_governor import EPOCH, in_step, open_pause
from tests.integration.test_logging import OrgFactory
from tests.integration.test_mirror_sync import assert_mirror_equals_org, mirrored
from tests.integration.test_notifications import episodes

T0 = datetime.fromisoformat(EPOCH.replace("Z", "+00:00"))


def subjects(setup: Setup) -> list[str]:
    """The emails the admins got (no mail server: the data dir's outbox), oldest first."""
    outbox = sorted((Path(setup.data_dir) / "outbox").glob("*.eml"))
    return [str(email.message_from_bytes(p.read_bytes())["Subject"]) for p in outbox]


def set_recheck(setup: Setup, minutes: int) -> None:
    with setup.runtime.sessions.begin() as session:
        stored = session.get(Workspace, setup.workspace_id)
        assert stored is not None
        quota_rows.set_settings(session, stored, recheck_minutes=minutes)


@pytest.mark.parametrize("user", ["admin", "sync"])
def test_a_sync_the_guard_stops_pauses_and_runs_again_within_a_recheck_of_room_coming_back(
    new_org: OrgFactory, workspace: Connect, user: str
) -> None:
    """Nothing to write and an interval sync due, while another app takes the org to 95%: the
    sync's first call (its answer shows the guard) is the only one past it; the rest of the sync
    is paused as `org_guard`, one episode and one email; the pause's rechecks read the org, and
    the first that finds room runs the sync, which brings the change it had to leave."""
    org = new_org("--seed", "20", "--daily-api-requests", "1000", "--speed", "0", "--epoch", EPOCH)
    clock = ManualClock(T0)
    setup = workspace(org, clock=clock, user=user)  # the mirror is loaded: a sync due at 0:30
    set_recheck(setup, 5)
    recheck = timedelta(minutes=5)
    notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
    pool, progress = Pool(Worker(setup.runtime.connector, clock, notifier), clock), Progress()

    def minute() -> None:
        """A minute on (the worker pool looks at every workspace at least once a minute)."""
        in_step(org, clock, 60)
        pool.turn(progress)

    pool.turn(progress)
    assert setup.states() == {} and not progress.paused  # nothing to write, ever

    # A minute on (so that the change is newer than the load's watermark), another app changes
    # a Contact, and another takes the org to 95% of its 1,000 calls.
    minute()
    contact = records(org, "Contact")[0]
    org.control("PATCH", f"records/Contact/{contact['Id']}", {"Title": "Chief Revenue Officer"})
    usage = org.control("GET", "usage")["DailyApiRequests"]
    org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 950 - usage["used"]})
    for _ in range(40):
        minute()
        if setup.ledger_entries("mirror_sync"):
            break
    # The sync's look went on the figures of before; its answer showed the guard reached, and
    # the fetch of the changed Contact is held: not one more call past the guard.
    [look] = setup.ledger_entries("mirror_sync")
    guard_seen = look.at
    assert guard_seen == T0 + timedelta(minutes=30)
    assert open_pause(setup) == "org_guard"
    assert progress.paused == {setup.workspace_id: "org_guard"}
    assert mirrored(setup, "Contact")[contact["Id"]].fields["Title"] != "Chief Revenue Officer"
    assert subjects(setup) == ["quotasync paused syncing for Acme: org_guard"]

    # Paused for 20 minutes: the org is read at every recheck; the sync sends nothing.
    for _ in range(20):
        minute()
        assert progress.paused == {setup.workspace_id: "org_guard"}
    readings = [e.at for e in setup.ledger_entries("limits_check") if e.at > guard_seen]
    assert [at - guard_seen for at in readings] == [recheck * n for n in range(1, 5)]
    assert [e.id for e in setup.ledger_entries("mirror_sync")] == [look.id]
    assert len(episodes(setup)) == 1 and len(subjects(setup)) == 1

    # The other app's calls leave the org's window (its clock moves a day on).
    in_step(org, clock, 30)
    org.control("POST", "clock", {"advance_seconds": 24 * 3600 + 60})
    room_back = clock.now()
    for _ in range(15):
        minute()
        if not progress.paused:
            break
    after = [e.at for e in setup.ledger_entries("mirror_sync") if e.at > guard_seen]
    assert after, "the sync did not run again 15 minutes after room came back"
    # At the latest a recheck after the last reading that showed the guard, and a look.
    assert min(after) - room_back <= recheck + governor.MIN_LOOK
    # Nothing the sync had to leave is lost: the mirror holds what the org holds.
    assert mirrored(setup, "Contact")[contact["Id"]].fields["Title"] == "Chief Revenue Officer"
    assert_mirror_equals_org(setup, org)
    # One episode, over; one email when it started and one when it ended.
    [episode] = episodes(setup)
    assert episode.reason == "org_guard" and episode.ended_at == min(after)
    assert open_pause(setup) is None and not progress.paused
    assert subjects(setup) == [
        "quotasync paused syncing for Acme: org_guard",
        "quotasync resumed syncing for Acme",
    ]


def test_a_sync_the_share_stops_pauses_and_runs_again_when_its_own_calls_leave_the_window(
    new_org: OrgFactory, database_url: str, workspace: Connect
) -> None:
    """The same for the workspace's share: the sync's refusal is a `workspace_limit` pause that
    knows when room returns (quotasync's own first call leaves the window), and the sync goes
    at that moment rather than at its next interval. On both stores: the stopped run gives its
    start back by matching the time it was marked with."""
    # A 10% share of 50 calls: 5, of which the connect's load took one and four idle syncs
    # (one look each, every 25 minutes) the rest.
    org = new_org("--seed", "20", "--daily-api-requests", "50", "--speed", "0", "--epoch", EPOCH)
    clock = ManualClock(T0)
    setup = workspace(org, database_url, clock)  # the sync user: no `/limits` readings to spend it
    setup.settings(share_data=10, sync_interval_minutes=25)
    notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
    pool, progress = Pool(Worker(setup.runtime.connector, clock, notifier), clock), Progress()
    [load] = setup.ledger_entries("mirror_load")
    room_at = load.at + governor.WINDOW  # the first of quotasync's calls leaves the window

    def until(moment: datetime) -> None:
        """Turn the worker pool, the clocks moved on to whatever it is due for next (a
        workspace with nothing due is looked at every `pool.IDLE_LOOK`)."""
        for _ in range(3000):
            due = pool.turn(progress)
            if clock.now() >= moment:
                return
            step = min(due or moment, moment) - clock.now()
            in_step(org, clock, max(step, timedelta(seconds=1)).total_seconds())
        raise AssertionError(f"not at {moment} after 3000 turns")

    until(T0 + timedelta(minutes=125))
    assert len(setup.ledger_entries("mirror_sync")) == 4  # the share is spent...
    assert open_pause(setup) == "workspace_limit"  # ...and the fifth sync is paused
    assert progress.paused == {setup.workspace_id: "workspace_limit"}
    assert pool.worker.writers[setup.workspace_id].resume_at == room_at
    assert subjects(setup) == [
        "quotasync has used 80% of its Data API calls share for Acme",  # at the fourth sync
        "quotasync paused syncing for Acme: workspace_limit",
    ]

    until(room_at - timedelta(seconds=1))
    assert len(setup.ledger_entries("mirror_sync")) == 4  # looking again costs nothing
    until(room_at)
    # The sync goes the moment room returns, and the episode is over.
    # (A day on, the session has expired: the request the org refused for it counted nothing.)
    assert [e.at for e in setup.ledger_entries("mirror_sync") if e.calls][4:] == [room_at]
    [episode] = episodes(setup)
    assert episode.reason == "workspace_limit" and episode.ended_at == room_at
    assert not progress.paused
    assert subjects(setup)[1:] == [
        "quotasync paused syncing for Acme: workspace_limit",
        "quotasync resumed syncing for Acme",
    ]
