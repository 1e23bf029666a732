"""Sending the admins' emails: over SMTP when `smtp_host` is set; otherwise each message is
written as an `.eml` file under `<data_dir>/outbox/`, so a single-machine install still keeps
what it would have sent (the Outbox page reads them back)."""

from __future__ import annotations

import smtplib
import ssl
import uuid
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol

from quotasync import private_files
from quotasync.clock import Clock
from quotasync.config import Settings

# Which workspace a notice is about, for mail filters and the Outbox page.
WORKSPACE_HEADER = "X-Quotasync-Workspace"


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

    def __init__(self, directory: Path, clock: Clock) -> None:
        self.directory = directory
        self.clock = clock

    def send(self, messages: Sequence[EmailMessage]) -> None:
        private_files.directory(self.directory)
        for message in messages:
            # Named for the message's own Date (the injected clock's), so the files sort as the
            # story happened, also on a virtual clock.
            sent = parsedate_to_datetime(message["Date"]) if message["Date"] else None
            stamp = (sent or self.clock.now()).strftime("%Y%m%dT%H%M%S")
            name = f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
            # An admin's notices name the org and its figures: for quotasync's user only.
            private_files.write(self.directory / name, bytes(message))


def mailer_for(settings: Settings, clock: Clock) -> Mailer:
    if settings.smtp_host:
        return SmtpMailer(settings)
    return OutboxMailer(settings.outbox_dir, clock)
