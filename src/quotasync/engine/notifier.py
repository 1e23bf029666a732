"""Telling the admins (RULES.md: Tell the admins): one email when a pause starts, one when it ends,
and a warning once per 24 hours when quotasync's use passes the workspace's warning threshold (80%
of its share unless an admin set another).

The pause episodes in the store say what to tell; the `notifications` table says what was told.
A notice is claimed there (a row under a unique key) before it is sent, so two workers, or one
restarted after a crash, never send the same notice twice: at worst a crash mid-send loses it.
A send that fails gives its claim back, and the next cycle tries again.

Mail goes through SMTP when `smtp_host` is set; otherwise each message is written as an `.eml`
file under `<data_dir>/outbox/`, so a single-machine install still keeps what it would have sent.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parsedate_to_datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.config import Settings
from quotasync.domain import governor, quota
from quotasync.domain.governor import Reason
from quotasync.errors import Conflict
from quotasync.store import db, limits
from quotasync.store.tables import Notification, PauseEpisode, User, Workspace

log = logging.getLogger("quotasync.notifier")
# Which workspace a notice is about, for mail filters and the Outbox page.
WORKSPACE_HEADER = "X-Quotasync-Workspace"

STARTED, ENDED, WARNING = "started", "ended", "warning"

API_NAMES = {
    "data": "Data API calls",
    "bulk": "Bulk API batches",
    "bulk_query": "Bulk API query jobs",
    "apex": "async Apex executions",
}


# ---------------------------------------------------------------- the messages (pure)


@dataclass(frozen=True)
class Notice:
    subject: str
    body: str


def pause_started(workspace: Workspace, episode: PauseEpisode) -> Notice:
    if episode.api == "apex":
        return rollover_started(workspace, episode)
    calls = API_NAMES.get(episode.api, episode.api)
    lines = [
        f'quotasync has paused syncing with Salesforce for the workspace "{workspace.name}" '
        f"since {_when(episode.started_at)}.",
        "",
        f"Why: {_why(episode.reason, calls)} ({episode.reason}).",
    ]
    figures = figures_text(episode.figures, calls)
    if figures:
        lines.append(f"Figures: {figures}")
    lines += ["", *_nothing_lost(episode), "", "What you can do:"]
    lines += [f"- {step}" for step in _what_to_do(workspace, episode, calls)]
    return Notice(
        f"quotasync paused syncing for {workspace.name}: {episode.reason}", "\n".join(lines) + "\n"
    )


def rollover_started(workspace: Workspace, episode: PauseEpisode) -> Notice:
    """Apex has no room: Real-Time Sync hands over to Interval Sync (RULES.md: Real-Time Sync falls
    back)."""
    calls = API_NAMES["apex"]
    lines = [
        f'Real-Time Sync for the workspace "{workspace.name}" is off since '
        f"{_when(episode.started_at)}: {_why(episode.reason, calls)} ({episode.reason}).",
    ]
    figures = figures_text(episode.figures, calls)
    if figures:
        lines.append(f"Figures: {figures}")
    lines += [
        "",
        f"Nothing is missed: quotasync now queries the org's changes every "
        f"{workspace.sync_interval_minutes} minutes (Interval Sync) instead of receiving them as "
        "they happen, and switches Real-Time Sync back on by itself, with a catch-up, when "
        "there is Apex room again. You will get one more email then.",
        "",
        "What you can do:",
        f"- {_raise_share(workspace, 'apex')}",
        "- or wait: the org's async Apex executions leave the 24-hour window by themselves",
    ]
    return Notice(
        f"quotasync switched {workspace.name} to Interval Sync: {episode.reason}",
        "\n".join(lines) + "\n",
    )


def pause_ended(workspace: Workspace, episode: PauseEpisode) -> Notice:
    assert episode.ended_at is not None
    if episode.api == "apex":
        return Notice(
            f"quotasync switched Real-Time Sync back on for {workspace.name}",
            f'Real-Time Sync for the workspace "{workspace.name}" is back on since '
            f"{_when(episode.ended_at)}, after {_duration(episode.ended_at - episode.started_at)} "
            "of Interval Sync; a catch-up query brought in every change made meanwhile.\n",
        )
    lasted = _duration(episode.ended_at - episode.started_at)
    meanwhile = (
        "Meanwhile it wrote the waiting activities, oldest first, as its calls freed up; the "
        "backlog is written (or small enough that the limit no longer holds it back).\n"
        if episode.reason in LIMIT_REASONS
        else "The activities stored meanwhile are being written now, oldest first.\n"
    )
    body = (
        f'quotasync resumed syncing with Salesforce for the workspace "{workspace.name}" '
        f"at {_when(episode.ended_at)}.\n\n"
        f"It had paused at {_when(episode.started_at)} ({episode.reason}), for {lasted}. "
        + meanwhile
    )
    return Notice(f"quotasync resumed syncing for {workspace.name}", body)


# The pauses of a limit (the share, the guard): one episode covers the whole backlog, written as
# quotasync's calls free up, so one email says it began and one that it is over.
LIMIT_REASONS = frozenset(reason.value for reason in governor.FIGURE_REASONS)


def _nothing_lost(episode: PauseEpisode) -> list[str]:
    if episode.reason in LIMIT_REASONS:
        return [
            "Nothing is lost: new activities are still accepted and stored. quotasync writes",
            "them, oldest first, whenever room frees up in the 24-hour window, and sends one",
            "more email when the backlog is written or the limit no longer holds it back; none",
            "in between. Changes made in the org meanwhile reach quotasync when it has room.",
        ]
    return [
        "Nothing is lost: new activities are still accepted and stored, and they are written,",
        "oldest first, as soon as syncing resumes, when the org's changes made meanwhile are",
        "read too. You will get one more email then.",
    ]


def share_warning(workspace: Workspace, api: str, own_used: int, share: int) -> Notice:
    calls = API_NAMES.get(api, api)
    percent = own_used * 100 // share if share else 100
    body = (
        f"quotasync has used {own_used} of its share of {share} {calls} in the last 24 hours "
        f'({percent}%) for the workspace "{workspace.name}".\n\n'
        "When the share is spent, syncing pauses until quotasync's own calls leave the 24-hour "
        "window; nothing is lost meanwhile.\n\n"
        "What you can do:\n"
        f"- {_raise_share(workspace, api)}\n"
        f"- {_open_tracking(workspace)}\n"
    )
    return Notice(f"quotasync has used {percent}% of its {calls} share for {workspace.name}", body)


def figures_text(figures: dict[str, Any], calls: str) -> str:
    """'quotasync used X of its share of Y <calls>; the org used Z of T.', as far as known."""
    parts = []
    if figures.get("own_used") is not None and figures.get("share_calls") is not None:
        parts.append(
            f"quotasync used {figures['own_used']} of its share of {figures['share_calls']} "
            f"{calls} in the last 24 hours"
        )
    if figures.get("org_used") is not None and figures.get("org_max") is not None:
        parts.append(f"the org used {figures['org_used']} of {figures['org_max']}")
    return "; ".join(parts) + "." if parts else ""


def _why(reason: str, calls: str) -> str:
    why: dict[str, str] = {
        Reason.WORKSPACE_LIMIT: f"quotasync reached its share of the org's {calls}",
        Reason.ORG_GUARD: f"the org as a whole (quotasync and every other app) reached 90% of "
        f"its {calls}, and quotasync leaves the rest to the others",
        Reason.SALESFORCE_REFUSED: "Salesforce refused quotasync's calls (REQUEST_LIMIT_EXCEEDED)",
        Reason.NO_API_ACCESS: "the sync user cannot use the Salesforce API",
        Reason.AUTH: "Salesforce no longer accepts quotasync's login",
    }
    return why.get(reason, reason)


def _what_to_do(workspace: Workspace, episode: PauseEpisode, calls: str) -> list[str]:
    if episode.reason == Reason.NO_API_ACCESS:
        return [
            'give the sync user the "API Enabled" permission in Salesforce (and "View Setup and '
            "Configuration\", so quotasync can read the org's limits)"
        ]
    if episode.reason == Reason.AUTH:
        return [
            f"connect the workspace again: `quotasync connect --workspace {workspace.id} ...` with the org's login details"
        ]
    steps = []
    if episode.reason in (Reason.WORKSPACE_LIMIT, Reason.ORG_GUARD):
        steps.append(_raise_share(workspace, episode.api))
    steps.append(_open_tracking(workspace))
    if episode.resume_at is not None:
        steps.append(
            f"or wait until {_when(episode.resume_at)}, when enough of quotasync's calls leave "
            "the 24-hour window; syncing resumes by itself"
        )
    else:
        # Looking again costs a call only where other apps' use must be read afresh.
        cost = "one call each time" if episode.reason == Reason.ORG_GUARD else "at no cost in calls"
        steps.append(
            f"or wait: quotasync looks again every {workspace.recheck_minutes} minutes ({cost}) "
            "and resumes by itself when there is room"
        )
    return steps


def _raise_share(workspace: Workspace, api: str) -> str:
    share_api = limits.SHARE_OF.get(api, api)
    return (
        "raise quotasync's share (10-90%): "
        f"`quotasync limit set --workspace {workspace.id} --api {share_api} --percent <n>`"
    )


def _open_tracking(workspace: Workspace) -> str:
    return "turn off open tracking: every open and click updates its Task, one call each"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _duration(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


# ---------------------------------------------------------------- sending


class Mailer(Protocol):
    def send(self, messages: Sequence[EmailMessage]) -> None: ...


class SmtpMailer:
    """The messages of one notice over one SMTP connection."""

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
        self.settings = settings

    def send(self, messages: Sequence[EmailMessage]) -> None:
        s = self.settings
        assert s.smtp_host is not None
        with smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=30) as smtp:
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_user:
                password = s.smtp_password.get_secret_value() if s.smtp_password else ""
                smtp.login(s.smtp_user, password)
            for message in messages:
                smtp.send_message(message)


class OutboxMailer:
    """No mail server: each message becomes an .eml file an admin (or a test) can open."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send(self, messages: Sequence[EmailMessage]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        for message in messages:
            # Named for the message's own Date (the injected clock's), so the files sort as the
            # story happened, also on a virtual clock.
            sent = parsedate_to_datetime(message["Date"]) if message["Date"] else None
            stamp = (sent or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
            name = f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
            (self.directory / name).write_bytes(bytes(message))


def mailer_for(settings: Settings) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(settings)
    return OutboxMailer(settings.outbox_dir)


# ---------------------------------------------------------------- the notifier


class Notifier:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: Settings,
        clock: Clock,
        mailer: Mailer | None = None,
    ) -> None:
        self.sessions = sessions
        self.settings = settings
        self.clock = clock
        self.mailer = mailer or mailer_for(settings)

    def tell(self, workspace_id: str) -> int:
        """Send whatever this workspace's admins have not been told yet; returns notices sent."""
        now = self.clock.now()
        sent = 0
        with self.sessions() as session:
            workspace = session.get(Workspace, workspace_id)
            if workspace is None:
                return 0
            untold = _untold(session, workspace_id)
            warnings = self._warnings_due(session, workspace, now)
        for kind, episode in untold:
            notice = (pause_started if kind == STARTED else pause_ended)(workspace, episode)
            key = f"{episode.id}:{kind}"
            sent += self._send(workspace, episode.api, kind, key, notice, now, episode.id)
        for api, key, notice in warnings:
            sent += self._send(workspace, api, WARNING, key, notice, now, None)
        return sent

    def _warnings_due(
        self, session: Session, workspace: Workspace, now: datetime
    ) -> list[tuple[str, str, Notice]]:
        percents = limits.shares(workspace)
        own = limits.own_use(session, workspace.id, now)
        warning_at = limits.warning_at(workspace)
        due = []
        for api, figure in sorted(limits.figures(session, workspace.id).items()):
            share = quota.share_calls(figure.max, percents[limits.SHARE_OF.get(api, "data")])
            last = _last_warning(session, workspace.id, api)
            told = [last.created_at] if last is not None else []
            # A pause's emails told the admins more than a warning would: none while it lasts,
            # nor in the day after it started or ended.
            episode = _last_episode(session, workspace.id, api)
            if episode is not None:
                told += [episode.started_at, episode.ended_at or now]
            if governor.warning_due(
                own.get(api, 0),
                share,
                max(told, default=None),
                now,
                warning_at=warning_at,
                limited=episode is not None and episode.ended_at is None,
            ):
                # Keyed on the warning before it: of two workers, only one follows it.
                key = f"warning:{workspace.id}:{api}:{last.id if last is not None else 0}"
                due.append((api, key, share_warning(workspace, api, own.get(api, 0), share)))
        return due

    def _send(
        self,
        workspace: Workspace,
        api: str,
        kind: str,
        key: str,
        notice: Notice,
        now: datetime,
        episode_id: int | None,
    ) -> int:
        claim = self._claim(workspace.id, api, kind, key, now, episode_id)
        if claim is None:
            return 0  # another worker has it, or it went already
        with self.sessions() as session:
            admins = _admins(session, workspace.id)
        messages = [self._message(notice, to, workspace.id) for to in admins]
        try:
            if messages:
                self.mailer.send(messages)
        except (OSError, smtplib.SMTPException) as error:
            log.warning("could not send %s to %s's admins: %s", key, workspace.id, error)
            with self.sessions.begin() as session:
                row = session.get(Notification, claim)
                if row is not None:
                    session.delete(row)  # give it back: the next cycle tries again
            return 0
        with self.sessions.begin() as session:
            row = session.get(Notification, claim)
            assert row is not None
            row.sent_at, row.recipients = self.clock.now(), len(messages)
        log.info("sent %s notice %s to %d admins of %s", kind, key, len(messages), workspace.id)
        return 1

    def _claim(
        self,
        workspace_id: str,
        api: str,
        kind: str,
        key: str,
        now: datetime,
        episode_id: int | None,
    ) -> int | None:
        try:
            with db.adding(self.sessions) as session:
                row = Notification(
                    key=key,
                    workspace_id=workspace_id,
                    api=api,
                    kind=kind,
                    episode_id=episode_id,
                    created_at=now,
                    recipients=0,
                )
                session.add(row)
                session.flush()
                return row.id
        except Conflict:
            return None

    def _message(self, notice: Notice, to: str, workspace_id: str) -> EmailMessage:
        message = EmailMessage()
        message[WORKSPACE_HEADER] = workspace_id
        message["From"] = self.settings.mail_from
        message["To"] = to
        message["Subject"] = notice.subject
        message["Date"] = format_datetime(self.clock.now())
        message["Message-ID"] = make_msgid(domain="quotasync")
        message.set_content(notice.body)
        return message


def _untold(session: Session, workspace_id: str) -> list[tuple[str, PauseEpisode]]:
    """(kind, episode) for each start and end the admins have not been told of, in order."""

    def without(kind: str) -> Any:
        told = exists().where(
            and_(Notification.episode_id == PauseEpisode.id, Notification.kind == kind)
        )
        return ~told

    started = session.scalars(
        select(PauseEpisode).where(PauseEpisode.workspace_id == workspace_id, without(STARTED))
    )
    ended = session.scalars(
        select(PauseEpisode).where(
            PauseEpisode.workspace_id == workspace_id,
            PauseEpisode.ended_at.is_not(None),
            without(ENDED),
        )
    )
    found = [(STARTED, e) for e in started] + [(ENDED, e) for e in ended]
    return sorted(found, key=lambda item: (item[1].id, item[0] == ENDED))


def _last_warning(session: Session, workspace_id: str, api: str) -> Notification | None:
    return session.scalars(
        select(Notification)
        .where(
            Notification.workspace_id == workspace_id,
            Notification.api == api,
            Notification.kind == WARNING,
        )
        .order_by(Notification.id.desc())
    ).first()


def _last_episode(session: Session, workspace_id: str, api: str) -> PauseEpisode | None:
    return session.scalars(
        select(PauseEpisode)
        .where(PauseEpisode.workspace_id == workspace_id, PauseEpisode.api == api)
        .order_by(PauseEpisode.started_at.desc(), PauseEpisode.id.desc())
    ).first()


def _admins(session: Session, workspace_id: str) -> list[str]:
    return list(
        session.scalars(
            select(User.email)
            .where(User.workspace_id == workspace_id, User.role == "admin")
            .order_by(User.email)
        )
    )
