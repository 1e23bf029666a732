"""`GET /w/{workspace}/outbox`: the notices quotasync emailed this workspace's admins, for an
install with no mail server.

With no SMTP host set, the notifier writes each message as an `.eml` file in the data dir's
`outbox/` (engine/mailers.py); this page reads them back for the workspace's admins: when, to
whom, the subject and the body, newest first. One notice sent to several admins is one entry.
A message belongs to this workspace when it went to one of its admins and carries the workspace's
id in its `X-Quotasync-Workspace` header (older notices: when it names the workspace). With a mail server set, nothing is written there, and the page says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from quotasync.domain.roles import Role
from quotasync.engine.mailers import WORKSPACE_HEADER
from quotasync.store.tables import User, Workspace
from quotasync.web import auth, pages
from quotasync.web.state import RuntimeDep

SHOWN = 200  # the newest message files read; older ones stay on disk


@dataclass
class Notice:
    """One notice as the admins got it: the same subject and body, to each of them."""

    sent_at: datetime | None
    subject: str
    body: str
    to: list[str] = field(default_factory=list)


router = APIRouter(include_in_schema=False)


@router.get("/w/{workspace_id}/outbox")
def outbox(request: Request, workspace_id: str, runtime: RuntimeDep) -> HTMLResponse:
    with runtime.sessions() as session:
        viewer = auth.require_admin(auth.page_viewer(session, request, workspace_id))
        workspace = session.get(Workspace, workspace_id)
        if workspace is None:  # a member's row outlived its workspace: nothing to show
            raise HTTPException(403, "you are not a member of this workspace")
        admins = set(
            session.scalars(
                select(User.email).where(User.workspace_id == workspace_id, User.role == Role.ADMIN)
            )
        )
    directory = runtime.settings.outbox_dir
    context: dict[str, Any] = {
        "viewer": viewer,
        "workspace_name": workspace.name,
        "page": "outbox",
        "csrf": auth.csrf_token(request),
        "notices": notices(directory, admins, workspace_id, workspace.name),
        "directory": str(directory),
        "smtp_host": runtime.settings.smtp_host,
    }
    return pages.templates().TemplateResponse(request, "outbox.html", context)


def notices(
    directory: Path, admins: set[str], workspace_id: str, workspace_name: str
) -> list[Notice]:
    """The workspace's notices in the outbox, newest first."""
    if not directory.is_dir():
        return []
    files = sorted(directory.glob("*.eml"), key=_written)[-SHOWN:]
    grouped: dict[tuple[str, str, str], Notice] = {}
    for path in reversed(files):
        message = _read(path)
        if message is None:
            continue
        to = str(message.get("To", "")).strip().lower()
        body = _body(message)
        if not _ours(message, to, body, admins, workspace_id, workspace_name):
            continue
        subject = str(message.get("Subject", ""))
        date = str(message.get("Date", ""))
        notice = grouped.setdefault((date, subject, body), Notice(_date(date), subject, body))
        notice.to.append(to)
    return sorted(grouped.values(), key=_newest_first)


def _ours(
    message: EmailMessage,
    to: str,
    body: str,
    admins: set[str],
    workspace_id: str,
    workspace_name: str,
) -> bool:
    """Whether a notice is this workspace's: by its workspace header; a notice written before
    the header existed, by going to one of its admins and naming it."""
    if to not in admins:
        return False
    tagged = message.get(WORKSPACE_HEADER)
    if tagged is not None:
        return str(tagged).strip() == workspace_id
    return f'"{workspace_name}"' in body


def _written(path: Path) -> tuple[int, str]:
    # File names start with the second they were written; two in one second need the mtime.
    try:
        return path.stat().st_mtime_ns, path.name
    except OSError:
        return 0, path.name


def _newest_first(notice: Notice) -> float:
    return -notice.sent_at.timestamp() if notice.sent_at is not None else 0.0


def _read(path: Path) -> EmailMessage | None:
    try:
        with path.open("rb") as file:
            parsed = BytesParser(policy=policy.default).parse(file)
    except OSError:
        return None  # removed while we looked
    return parsed if isinstance(parsed, EmailMessage) else None


def _body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    if part is None:
        return ""
    content = part.get_content()
    return content if isinstance(content, str) else ""


def _date(text: str) -> datetime | None:
    try:
        return parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
