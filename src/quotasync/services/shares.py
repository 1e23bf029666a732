"""Setting a workspace's shares of the org's quotas and its governor settings (RULES.md:
Workspace share): the Integrations page, the JSON API and `quotasync limit set` all save here.

A change is all or nothing: one refused share or setting stores none of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from quotasync import usage
from quotasync.domain import governor
from quotasync.services.workspace import stored
from quotasync.store import quota_rows
from quotasync.store.tables import SettingChange, Workspace


@dataclass(frozen=True)
class SettingsChange:
    """The governor settings to change; None leaves one as it is."""

    recheck_minutes: int | None = None
    warning_percent: int | None = None
    log_within: float | None = None
    max_batch_delay: float | None = None
    open_tracking: bool | None = None


@dataclass(frozen=True)
class Changed:
    shares: dict[str, int]  # every share of the workspace, as stored now
    set_shares: dict[str, int] = field(default_factory=dict)  # the shares this change set
    settings: dict[str, object] = field(default_factory=dict)  # the settings changed, by column


def change(
    sessions: sessionmaker[Session],
    workspace_id: str,
    *,
    shares: Mapping[str, object] | None = None,
    settings: SettingsChange | None = None,
    by: str = "",
    now: datetime | None = None,
) -> Changed:
    """Set shares (API type to percent, 10-90) and settings in one transaction.

    Raises governor.ShareError for a share refused (out of range, an unknown type, or a type the
    sync user's permissions keep from being governed), governor.SettingsError for a setting
    refused, NoSuchWorkspace when the workspace is gone; then nothing is stored.
    """
    with sessions.begin() as session:
        workspace = stored(session, workspace_id)
        shares_before = quota_rows.shares(workspace)
        settings_before = {name: getattr(workspace, name) for name in SETTING_NAMES}
        set_shares = {
            api: _set_share(session, workspace, api, percent)
            for api, percent in (shares or {}).items()
        }
        wanted = settings or SettingsChange()
        changes = quota_rows.set_settings(
            session,
            workspace,
            recheck_minutes=wanted.recheck_minutes,
            warning_percent=wanted.warning_percent,
            log_within=wanted.log_within,
            max_batch_delay=wanted.max_batch_delay,
            open_tracking=wanted.open_tracking,
        )
        if now is not None:
            history = [
                (f"{api} share", f"{shares_before.get(api)}%", f"{percent}%")
                for api, percent in set_shares.items()
                if shares_before.get(api) != percent
            ] + [
                (name.replace("_", " "), _text(settings_before[name]), _text(value))
                for name, value in changes.items()
                if settings_before.get(name) != value
            ]
            session.add_all(
                SettingChange(
                    workspace_id=workspace_id,
                    at=now,
                    changed_by=(by or "unknown")[:254],
                    setting=setting,
                    before=before[:40],
                    after=after[:40],
                )
                for setting, before, after in history
            )
        return Changed(quota_rows.shares(workspace), set_shares, changes)


SETTING_NAMES = (
    "recheck_minutes",
    "warning_percent",
    "log_within",
    "max_batch_delay",
    "open_tracking",
)


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def history(session: Session, workspace_id: str, limit: int = 20) -> list[SettingChange]:
    """The workspace's latest share and setting changes, newest first."""
    return list(
        session.scalars(
            select(SettingChange)
            .where(SettingChange.workspace_id == workspace_id)
            .order_by(SettingChange.at.desc(), SettingChange.id.desc())
            .limit(limit)
        )
    )


def _set_share(session: Session, workspace: Workspace, api: str, percent: object) -> int:
    # Without View Setup only the Data share is governed (RULES.md: Without View Setup, Data only).
    refusal = usage.share_refusal(workspace, api)
    if refusal is not None:
        raise governor.ShareError(refusal)
    return quota_rows.set_share(session, workspace, api, percent)
