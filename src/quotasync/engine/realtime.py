"""Real-Time Sync and its rollover to Interval Sync (RULES.md: Real-Time Sync falls back).

With Real-Time Sync on, the org's trigger pushes each change of a mirrored record to quotasync
(`POST /rts/{workspace}`), spending one async Apex execution per push. quotasync switches it on
and off through a setting record in the org (`QS_Sync_Setting__c`: callback URL, secret,
enabled), written with the sync user over the Data API.

The worker steps `RealTime` for every workspace that has Real-Time Sync set up:

- in `realtime` mode, when the governor finds no Apex room (quotasync's Apex share spent, or the
  org's Apex use at the 90% guard, which includes the org's whole quota being spent), the
  workspace rolls over: pushing is switched off in the org, the mode becomes `interval` (the
  interval sync then queries changes every `sync_interval_minutes`), and an Apex pause episode
  is opened, which the notifier tells the admins about;
- in `interval` mode with that episode open, at each interval it looks at the Apex room again;
  when there is room, pushing is switched back on *first* and a catch-up sync from the last
  watermark runs *second*, so a change made in between arrives one way or the other (both are
  idempotent: a newer SystemModstamp wins); the episode ends and the admins are told.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from quotasync.clock import Clock
from quotasync.domain import governor
from quotasync.domain.realtime import SyncMode
from quotasync.engine import episode_steps
from quotasync.engine.sync import Syncer
from quotasync.errors import (
    NotConnected,
    NotFound,
    QuotaExhausted,
    QuotasyncError,
    SalesforceError,
)
from quotasync.salesforce import api
from quotasync.salesforce.connection import Client, Connector
from quotasync.store import episodes, quota_rows
from quotasync.store.tables import Workspace

log = logging.getLogger("quotasync.realtime")

SETTING = "QS_Sync_Setting__c"
PURPOSE = "rts_switch"


class RealTimeUnavailable(QuotasyncError):
    """Real-Time Sync cannot be switched on for this workspace; the message says why."""


@dataclass(frozen=True)
class Switch:
    """A change of mode, for the summary and the tests."""

    to: str
    at: datetime
    reason: str | None = None


class RealTime:
    def __init__(
        self,
        connector: Connector,
        workspace_id: str,
        clock: Clock,
        client: Callable[[], Client] | None = None,
    ) -> None:
        self.connector = connector
        self.sessions = connector.sessions
        self.workspace_id = workspace_id
        self.clock = clock
        self._client = client or (lambda: connector.client(workspace_id))
        self._looked_at: datetime | None = None  # the last look for Apex room in interval mode

    # ---------------------------------------------------------------- set up

    def enable(self, callback_url: str) -> Switch:
        """Switch Real-Time Sync on: a new secret, the org's setting pointing at `callback_url`,
        then a catch-up sync so the mirror is whole when pushes take over."""
        now = self.clock.now()
        with self.sessions() as session:
            workspace = self._workspace(session)
            if workspace.limits_readable is not True:
                raise RealTimeUnavailable(
                    "Real-Time Sync spends async Apex executions, which quotasync can only "
                    "govern with the org's figures: give the sync user the View Setup and "
                    "Configuration permission, run the worker once, and try again."
                )
            decision = self._apex_decision(session, workspace, now)
        if isinstance(decision, governor.Pause):
            raise RealTimeUnavailable(
                f"there is no Apex room now ({decision.reason.value}); Real-Time Sync can be "
                "switched on when there is"
            )
        secret = secrets.token_urlsafe(32)
        with self.sessions.begin() as session:
            workspace = self._workspace(session)
            workspace.rts_secret_sealed = self.connector.vault.seal(secret)
        setting_id = self._write_setting(
            {"Callback_URL__c": callback_url, "Secret__c": secret, "Enabled__c": True}
        )
        Syncer(self.connector, self.workspace_id, self.clock, client=self._client()).run()
        with self.sessions.begin() as session:
            workspace = self._workspace(session)
            workspace.rts_setting_id = setting_id
            workspace.sync_mode = SyncMode.REALTIME
        return Switch(SyncMode.REALTIME, now)

    def disable(self) -> Switch:
        """Switch Real-Time Sync off for good: pushing stops, interval sync takes over."""
        with self.sessions() as session:
            configured = self._workspace(session).rts_setting_id is not None
        if configured:
            self._write_setting({"Enabled__c": False})
        with self.sessions.begin() as session:
            workspace = self._workspace(session)
            workspace.sync_mode = SyncMode.INTERVAL
            workspace.rts_setting_id = None
            workspace.rts_secret_sealed = None
        return Switch(SyncMode.INTERVAL, self.clock.now(), "switched off")

    # ---------------------------------------------------------------- the worker's step

    def step(self) -> Switch | None:
        """Roll over or back when the Apex room says so; None when nothing changes."""
        now = self.clock.now()
        with self.sessions() as session:
            workspace = self._workspace(session)
            if workspace.rts_setting_id is None:
                return None  # Real-Time Sync was never switched on
            mode = workspace.sync_mode
            every = timedelta(minutes=workspace.sync_interval_minutes)
            rolled_over = episodes.open_episode(session, self.workspace_id, "apex") is not None
            decision = self._apex_decision(session, workspace, now)
        try:
            if mode == SyncMode.REALTIME and isinstance(decision, governor.Pause):
                return self._roll_over(decision, now)
            if mode == SyncMode.INTERVAL and rolled_over:
                if self._looked_at is not None and now - self._looked_at < every:
                    return None  # looked at the room this interval already
                self._looked_at = now
                if isinstance(decision, governor.Send):
                    return self._roll_back(decision, now)
                episode_steps.record(self.sessions, self.workspace_id, decision, now)
        except (QuotaExhausted, SalesforceError, NotConnected, NotFound) as error:
            # The switch could not be written to the org: try again at the next step.
            log.warning("workspace %s: Real-Time Sync switch failed: %s", self.workspace_id, error)
        return None

    def _roll_over(self, decision: governor.Pause, now: datetime) -> Switch:
        self._write_setting({"Enabled__c": False})
        with self.sessions.begin() as session:
            self._workspace(session).sync_mode = SyncMode.INTERVAL
        episode_steps.record(self.sessions, self.workspace_id, decision, now)
        self._looked_at = now
        log.info(
            "workspace %s: Real-Time Sync rolled over to Interval Sync (%s)",
            self.workspace_id,
            decision.reason.value,
        )
        return Switch(SyncMode.INTERVAL, now, decision.reason.value)

    def _roll_back(self, decision: governor.Send, now: datetime) -> Switch:
        # Pushing first, the catch-up second: a change made in between comes one way or both.
        self._write_setting({"Enabled__c": True})
        report = Syncer(self.connector, self.workspace_id, self.clock, client=self._client()).run()
        if not report.complete:
            # The catch-up stopped (quota, error): stay on intervals; pushes are harmless.
            log.info("workspace %s: catch-up incomplete, staying on intervals", self.workspace_id)
            return Switch(SyncMode.INTERVAL, now, "catch-up incomplete")
        with self.sessions.begin() as session:
            self._workspace(session).sync_mode = SyncMode.REALTIME
        episode_steps.record(self.sessions, self.workspace_id, decision, now)
        log.info("workspace %s: Real-Time Sync is back", self.workspace_id)
        return Switch(SyncMode.REALTIME, now)

    # ---------------------------------------------------------------- helpers

    def _apex_decision(
        self, session: Session, workspace: Workspace, now: datetime
    ) -> governor.Decision:
        return quota_rows.decision(session, workspace, "apex", now)

    def _write_setting(self, values: dict[str, object]) -> str:
        """Create or update the org's RTS setting record; its id."""
        with self.sessions() as session:
            setting_id = self._workspace(session).rts_setting_id
        client = self._client()
        with client.http.purpose(PURPOSE):
            if setting_id is None:
                found = api.first_page(
                    client, f"SELECT Id FROM {SETTING} ORDER BY LastModifiedDate DESC LIMIT 1"
                ).records
                if found:
                    setting_id = str(found[0]["Id"])
            if setting_id is None:
                return api.create_record(client, SETTING, {"Name": "quotasync", **values})
            api.update_record(client, SETTING, setting_id, values)
        return setting_id

    def _workspace(self, session: Session) -> Workspace:
        workspace = session.get(Workspace, self.workspace_id)
        if workspace is None:
            raise NotFound(f"workspace {self.workspace_id} does not exist")
        return workspace
