"""Telling the admins (RULES.md: Tell the admins): one email when a pause starts, one when it ends,
and a warning once per 24 hours when quotasync's use passes the workspace's warning threshold (80%
of its share unless an admin set another).

The pause episodes in the store say what to tell; the `notifications` table says what was told.
A notice is claimed there (a row under a unique key) before it is sent, so two workers, or one
restarted after a crash, never send the same notice twice: at worst a crash mid-send loses it.
A send that fails gives its claim back, and the next cycle tries again.

The texts are in `engine/notices.py`; mail goes through SMTP when `smtp_host` is set, otherwise
into `.eml` files under `<data_dir>/outbox/` (`engine/mailers.py`).
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

from sqlalchemy import and_, exists, select
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.config import Settings
from quotasync.domain import governor, quota
from quotasync.domain.roles import Role
from quotasync.engine.mailers import WORKSPACE_HEADER, Mailer, mailer_for
from quotasync.engine.notices import (
    Notice,
    pause_ended,
    pause_started,
    share_warning,
    where_to_look,
)
from quotasync.errors import Conflict
from quotasync.store import db, quota_rows
from quotasync.store.tables import Notification, PauseEpisode, User, Workspace

log = logging.getLogger("quotasync.notifier")

STARTED, ENDED, WARNING = "started", "ended", "warning"


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
        self.mailer = mailer or mailer_for(settings, clock)

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
        percents = quota_rows.shares(workspace)
        own = quota_rows.own_use(session, workspace.id, now)
        warning_at = quota_rows.warning_at(workspace)
        due = []
        for api, figure in sorted(quota_rows.figures(session, workspace.id).items()):
            share = quota.share_calls(figure.max, percents[quota_rows.SHARE_OF.get(api, "data")])
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
        message.set_content(
            notice.body + "\n" + where_to_look(workspace_id, self.settings.public_url) + "\n"
        )
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
            .where(User.workspace_id == workspace_id, User.role == Role.ADMIN)
            .order_by(User.email)
        )
    )
