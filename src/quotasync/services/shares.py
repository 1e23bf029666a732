"""Setting a workspace's shares of the org's quotas and its governor settings (RULES.md:
Workspace share): the Integrations page, the JSON API and `quotasync limit set` all save here.

A change is all or nothing: one refused share or setting stores none of the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from quotasync import usage
from quotasync.domain import governor
from quotasync.services.workspace import stored
from quotasync.store import quota_rows
from quotasync.store.tables import Workspace


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
) -> Changed:
    """Set shares (API type to percent, 10-90) and settings in one transaction.

    Raises governor.ShareError for a share refused (out of range, an unknown type, or a type the
    sync user's permissions keep from being governed), governor.SettingsError for a setting
    refused, NoSuchWorkspace when the workspace is gone; then nothing is stored.
    """
    with sessions.begin() as session:
        workspace = stored(session, workspace_id)
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
        return Changed(quota_rows.shares(workspace), set_shares, changes)


def _set_share(session: Session, workspace: Workspace, api: str, percent: object) -> int:
    # Without View Setup only the Data share is governed (RULES.md: Without View Setup, Data only).
    refusal = usage.share_refusal(workspace, api)
    if refusal is not None:
        raise governor.ShareError(refusal)
    return quota_rows.set_share(session, workspace, api, percent)
