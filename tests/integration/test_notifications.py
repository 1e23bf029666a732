"""RULES.md, Tell the admins: the admins hear once when a pause starts, once when it ends, and once
when use passes 80% of the share; the episodes behind those emails are kept (issue: the quota
governor, 5 and 6)."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from quotasync import usage
from quotasync.cli import limits as cli_limits
from quotasync.clock import ManualClock
from quotasync.engine.notifier import Notifier
from quotasync.engine.pool import Pool
from quotasync.engine.worker import Progress, Worker
from quotasync.engine.writer import COLLECTIONS_ONLY
from quotasync.store import quota_rows
from quotasync.store.tables import Notification, PauseEpisode, User, Workspace
from tests.integration.logging_support import Connect, Setup, people, stream
from tests.integration.test_governor import EMAILS, quotasync_calls
from tests.integration.test_logging import OrgFactory

SECOND_ADMIN = "ops@acme.io"


@dataclass
class Inbox:
    """What a real SMTP server on 127.0.0.1 received."""

    port: int
    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    def about(self, words: str) -> list[Message]:
        return [m for m in self.messages if words in str(m["Subject"])]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def inbox() -> Iterator[Inbox]:
    received = Inbox(free_port())
    controller = Controller(received, hostname="127.0.0.1", port=received.port)
    controller.start()
    yield received
    controller.stop()


def body(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def reach_the_share(new_org: OrgFactory, workspace: Connect, **mail: Any) -> tuple[Setup, Pool]:
    """test_governor's scenario: a 10% share of 200 calls (20), 4,400 emails to log, two admins;
    the worker pool turns until the share is spent and the workspace pauses."""
    org = new_org("--seed", "60", "--daily-api-requests", "200", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC))
    setup = workspace(org, clock=clock)
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        quota_rows.set_share(session, ws, "data", 10)
        ws.log_within = 0
        ws.bulk_threshold = 1_000_000
        session.add(
            User(workspace_id=ws.id, email=SECOND_ADMIN, role="admin", created_at=clock.now())
        )
        session.add(
            User(workspace_id=ws.id, email="rep@acme.io", role="member", created_at=clock.now())
        )
    # 4,400: full batches of 200 remain when the share is spent (see test_governor).
    activities = [a for a in stream(people(org), 9000, seed=21) if a["kind"] in EMAILS][:4400]
    setup.ingest(activities)
    settings = setup.runtime.settings.model_copy(update=mail)
    notifier = Notifier(setup.runtime.sessions, settings, clock)
    # Calls of 200 records (as test_governor): a smaller call spends the share sooner.
    setup.pool = Pool(
        Worker(setup.runtime.connector, clock, notifier, shape=COLLECTIONS_ONLY), clock
    )
    progress = Progress()
    for _ in range(40):
        setup.pool.turn(progress)
        if progress.paused:
            break
    assert progress.paused == {setup.workspace_id: "workspace_limit"}
    assert quotasync_calls(org) == 20
    return setup, setup.pool


def recheck_until_resumed(setup: Setup, pool: Pool) -> int:
    """Look again every 30 minutes until the predicted resume time; then drive to the end."""
    writer = pool.worker.writers[setup.workspace_id]
    assert writer.resume_at is not None
    assert isinstance(setup.clock, ManualClock)
    looks = 0
    while setup.clock.now() + timedelta(minutes=30) < writer.resume_at:
        setup.clock.advance(30 * 60)
        pool.turn(Progress())
        looks += 1
    setup.clock.advance((writer.resume_at - setup.clock.now()).total_seconds())
    setup.drive()
    return looks


def episodes(setup: Setup) -> list[PauseEpisode]:
    with setup.runtime.sessions() as session:
        return list(
            session.scalars(
                select(PauseEpisode)
                .where(PauseEpisode.workspace_id == setup.workspace_id)
                .order_by(PauseEpisode.id)
            )
        )


def test_the_admins_hear_once_when_the_share_pauses_syncing_and_once_when_it_resumes(
    new_org: OrgFactory, workspace: Connect, inbox: Inbox
) -> None:
    setup, pool = reach_the_share(
        new_org, workspace, smtp_host="127.0.0.1", smtp_port=inbox.port, mail_from="qs@acme.io"
    )
    admins = {"admin@acme.io", SECOND_ADMIN}

    # The share passed 80% on the way: one warning to each admin.
    warnings = inbox.about("share for")
    assert sorted(m["To"] for m in warnings) == sorted(admins)
    assert "quotasync has used 1" in body(
        warnings[0]
    ) and "of its share of 20 Data API calls" in body(warnings[0])

    # The pause: one email to each admin, none to the member, with the reason and the figures.
    paused = inbox.about("paused syncing")
    assert sorted(m["To"] for m in paused) == sorted(admins)
    assert all(m["From"] == "qs@acme.io" for m in inbox.messages)
    # Mail filters (and the Outbox page) tell the workspace by a header, not by its name.
    assert {m["X-Quotasync-Workspace"] for m in inbox.messages} == {setup.workspace_id}
    text = body(paused[0])
    assert "workspace_limit" in text
    assert "quotasync used 20 of its share of 20 Data API calls" in text
    assert "the org used 20 of 200" in text
    assert f"quotasync limit set --workspace {setup.workspace_id} --api data" in text
    assert "open tracking" in text
    writer = pool.worker.writers[setup.workspace_id]
    assert writer.resume_at is not None
    assert f"wait until {writer.resume_at:%Y-%m-%d %H:%M} UTC" in text

    # Nearly 24 hours of rechecks tell nobody anything more.
    told = len(inbox.messages)
    paused_at, resume_at = setup.clock.now(), writer.resume_at
    looks = recheck_until_resumed(setup, pool)
    assert looks >= 40
    assert set(setup.states()) == {"logged"}

    resumed = inbox.about("resumed syncing")
    assert sorted(m["To"] for m in resumed) == sorted(admins)
    assert "It had paused at" in body(resumed[0]) and "(workspace_limit)" in body(resumed[0])
    # Exactly one pause and one resume each; warnings at most once per 24 hours.
    assert len(inbox.about("paused syncing")) == 2
    later_warnings = [m for m in inbox.messages[told:] if "share for" in str(m["Subject"])]
    assert len(inbox.messages) == told + len(resumed) + len(later_warnings)
    assert len(later_warnings) in (0, 2)  # a new window may warn again, once

    # The episode: started, why, on what figures, and ended at the resume.
    [episode] = episodes(setup)
    assert (episode.api, episode.reason) == ("data", "workspace_limit")
    assert episode.started_at == paused_at
    assert episode.figures == {"own_used": 20, "share_calls": 20, "org_used": 20, "org_max": 200}
    assert episode.resume_at == resume_at
    assert episode.ended_at is not None and episode.ended_at >= episode.started_at + timedelta(
        hours=23
    )
    with setup.runtime.sessions() as session:
        kinds = sorted(
            (n.kind, n.recipients)
            for n in session.scalars(
                select(Notification).where(Notification.episode_id == episode.id)
            )
        )
    assert kinds == [("ended", 2), ("started", 2)]


def test_a_restarted_worker_does_not_tell_the_admins_again(
    new_org: OrgFactory, workspace: Connect, inbox: Inbox
) -> None:
    setup, _ = reach_the_share(new_org, workspace, smtp_host="127.0.0.1", smtp_port=inbox.port)
    told = len(inbox.messages)
    # A new process: fresh writers and notifier, the same store.
    settings = setup.runtime.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": inbox.port}
    )
    again = Pool(
        Worker(
            setup.runtime.connector,
            setup.clock,
            Notifier(setup.runtime.sessions, settings, setup.clock),
        ),
        setup.clock,
    )
    assert isinstance(setup.clock, ManualClock)
    for _ in range(3):
        setup.clock.advance(30 * 60)
        again.turn(Progress())
    assert len(inbox.messages) == told
    assert len(episodes(setup)) == 1


def test_without_a_mail_server_the_messages_land_in_the_data_dirs_outbox(
    new_org: OrgFactory, workspace: Connect
) -> None:
    setup, pool = reach_the_share(new_org, workspace)
    outbox = Path(setup.data_dir) / "outbox"

    def messages() -> list[Message]:
        return [email.message_from_bytes(p.read_bytes()) for p in sorted(outbox.glob("*.eml"))]

    kinds = sorted(
        ("warning" if "share for" in str(m["Subject"]) else str(m["Subject"])[:24], m["To"])
        for m in messages()
    )
    assert kinds == sorted(
        (kind, to)
        for kind in ("warning", "quotasync paused syncing")
        for to in ("admin@acme.io", SECOND_ADMIN)
    )
    paused = [m for m in messages() if "paused" in str(m["Subject"])]
    assert "quotasync used 20 of its share of 20" in body(paused[0])

    recheck_until_resumed(setup, pool)
    resumed = [m for m in messages() if "resumed" in str(m["Subject"])]
    assert sorted(m["To"] for m in resumed) == sorted(["admin@acme.io", SECOND_ADMIN])


def test_a_lower_warning_threshold_warns_the_admins_earlier(tmp_path: Path) -> None:
    """12 calls of a 20-call share (60%): past a 50% threshold, short of the default 80%."""
    from quotasync.engine.mailers import OutboxMailer
    from quotasync.store.tables import LedgerEntry
    from tests.integration.logging_support import open_workspace

    setup = open_workspace(tmp_path)
    now = setup.clock.now()
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        quota_rows.set_share(session, ws, "data", 10)
        quota_rows.observe(session, ws.id, "data", 12, 200, now)
        session.add_all(
            LedgerEntry(
                workspace_id=ws.id, api="data", purpose="upsert", at=now - timedelta(minutes=i)
            )
            for i in range(12)
        )
    mail = tmp_path / "mail"
    notifier = Notifier(
        setup.runtime.sessions, setup.runtime.settings, setup.clock, OutboxMailer(mail, setup.clock)
    )
    try:
        assert notifier.tell(setup.workspace_id) == 0
        setup.settings(warning_percent=50)
        assert notifier.tell(setup.workspace_id) == 1
        [sent] = [email.message_from_bytes(p.read_bytes()) for p in mail.glob("*.eml")]
        assert str(sent["Subject"]) == "quotasync has used 60% of its Data API calls share for Acme"
        assert "used 12 of its share of 20 Data API calls" in body(sent)
    finally:
        setup.close()


def test_a_backlog_that_keeps_meeting_the_share_is_one_episode_and_two_emails(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """30 calls of emails for a 20-call share, the first sent a minute apart: a day later the
    share frees up one call a minute, and each goes to the backlog at once. That used to be a
    pause and a resume email per freed call; it is one episode, told once each way, and the
    usage view says how much waits and until about when."""
    org = new_org("--seed", "60", "--daily-api-requests", "200", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    setup = workspace(org, clock=clock)
    with setup.runtime.sessions.begin() as session:
        ws = session.get(Workspace, setup.workspace_id)
        assert ws is not None
        quota_rows.set_share(session, ws, "data", 10)  # 20 calls; the connect's mirror load took 3
        ws.log_within = 0
        ws.bulk_threshold = 1_000_000
    activities = [a for a in stream(people(org), 14000, seed=27) if a["kind"] in EMAILS][:6000]
    assert len(activities) == 6000
    setup.ingest(activities)
    notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
    # Calls of 200 activities (the shape before composite requests): the episode rules are the
    # same whatever a call carries.
    pool = Pool(Worker(setup.runtime.connector, clock, notifier, shape=COLLECTIONS_ONLY), clock)
    progress = Progress()
    setup.pool = pool
    for _ in range(40):  # a batch a minute until the share is spent
        pool.turn(progress)
        if progress.paused:
            break
        clock.advance(60)
    assert progress.paused == {setup.workspace_id: "workspace_limit"}
    first_day = quotasync_calls(org)

    # A day on, quotasync's calls leave the window one a minute, and each goes at once.
    limited: list[usage.Limited] = []
    started = clock.now()
    while not pool.idle(progress):
        due = pool.turn(progress)
        with setup.runtime.sessions() as session:
            ws = session.get(Workspace, setup.workspace_id)
            assert ws is not None
            [*pauses] = usage.view(session, ws, clock.now()).apis["data"].pauses
        limited += [p.limited for p in pauses if p.limited is not None]
        assert due is not None and clock.now() < started + timedelta(hours=60)
        clock.advance(max(0.001, (due - clock.now()).total_seconds()))
    assert setup.states() == {"logged": 6000}
    # 30 logging calls of 200: 17 on the first day, the rest as the share freed up.
    assert setup.ledger_calls("data", "log_activity") == 30
    assert quotasync_calls(org) == setup.ledger_calls("data") > first_day

    # One episode, from the share's first refusal to the write that left nothing waiting.
    [episode] = episodes(setup)
    assert (episode.reason, episode.ended_at is not None) == ("workspace_limit", True)
    assert episode.ended_at is not None
    assert episode.ended_at - episode.started_at > timedelta(hours=23)
    # Exactly one email each way (and the one warning as the share passed 80%).
    outbox = Path(setup.data_dir) / "outbox"
    subjects = sorted(
        str(email.message_from_bytes(p.read_bytes())["Subject"]) for p in outbox.glob("*.eml")
    )
    assert [s.split(" for ")[0].split(":")[0] for s in subjects] == [
        "quotasync has used 80% of its Data API calls share",
        "quotasync paused syncing",
        "quotasync resumed syncing",
    ], subjects

    # Meanwhile the view said how much waited and until about when, as the calls freed up.
    assert limited and all(lim.written_by is not None for lim in limited)
    assert limited[0].waiting > limited[-1].waiting > 0
    assert limited[0].measured and limited[0].per_call == 200
    text = cli_limits.limited_text(limited[0])
    assert text.startswith(f"limited: {limited[0].waiting:,} waiting, written by about ")
