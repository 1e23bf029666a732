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

from simple_salesforce.format import format_soql
from sqlalchemy.orm import Session

from quotasync.clock import Clock
from quotasync.domain import governor, org_parts
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
from quotasync.salesforce import api, package_probe
from quotasync.salesforce.connection import Client, Connector
from quotasync.store import episodes, quota_rows
from quotasync.store.tables import Connection, Workspace

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
            if session.get(Connection, self.workspace_id) is None:
                raise RealTimeUnavailable(
                    "the workspace is not connected to an org: connect it first (`quotasync "
                    f"connect --workspace {self.workspace_id} ...`)"
                )
            if workspace.limits_readable is False:
                raise RealTimeUnavailable(
                    "Real-Time Sync spends async Apex executions, which quotasync can only "
                    "govern with the org's figures, and the sync user may not read them: give "
                    "them the View Setup and Configuration permission (or connect as a user who "
                    "has it), run the worker once, and try again."
                )
            if workspace.limits_readable is None:
                raise RealTimeUnavailable(
                    "Real-Time Sync spends async Apex executions, governed by the org's figures, "
                    "which quotasync has not read yet: run the worker once (`quotasync worker "
                    "--until-idle`) and try again."
                )
            decision = self._apex_decision(session, workspace, now)
        if isinstance(decision, governor.Pause):
            raise RealTimeUnavailable(
                f"there is no Apex room now ({decision.reason.value}); Real-Time Sync can be "
                "switched on when there is"
            )
        missing = self._missing_parts()
        if missing:
            raise RealTimeUnavailable(
                f"the org lacks what Real-Time Sync needs from quotasync's package "
                f"({'; '.join(missing)}): {org_parts.install_fix(self.workspace_id)}, then try again"
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

    def _missing_parts(self) -> list[str]:
        """What of the package's setting object, triggers and classes the org lacks (one
        composite call). Parts the org would not list (say, Apex the sync user may not see) are
        not held against it: the doctor says what it could not look at."""
        client = self._client()
        asked = {
            "setting": package_probe.setting(),
            "triggers": package_probe.triggers(),
            "classes": package_probe.classes(),
        }
        with client.http.purpose(PURPOSE):
            replies = dict(zip(asked, api.composite(client, list(asked.values())), strict=True))
        found = package_probe.found(
            lambda ref: (replies[ref].status, replies[ref].body) if ref in replies else (0, None)
        )
        return org_parts.inventory(found).realtime

    def _write_setting(self, values: dict[str, object]) -> str:
        """Create or update this workspace's RTS setting record in the org; its id.

        Each workspace on an org has a setting of its own (`Workspace__c` is its id): the org's
        Apex pushes every change to each enabled setting, so switching one workspace on or off
        never re-points another's. A setting without a workspace (written by a quotasync from
        before settings were per workspace, or seeded by the sandbox's `--rts-callback`) is
        claimed by the first workspace that switches Real-Time Sync on."""
        with self.sessions() as session:
            setting_id = self._workspace(session).rts_setting_id
        client = self._client()
        owned = {"Workspace__c": self.workspace_id}
        with client.http.purpose(PURPOSE):
            if setting_id is None:
                mine = format_soql(
                    f"SELECT Id, Workspace__c FROM {SETTING} "
                    "WHERE Workspace__c = {} OR Workspace__c = null "
                    "ORDER BY LastModifiedDate DESC LIMIT 20",
                    self.workspace_id,
                )
                found = api.first_page(client, mine).records
                ours = [r for r in found if r.get("Workspace__c") == self.workspace_id]
                if ours or found:
                    setting_id = str((ours or found)[0]["Id"])
            if setting_id is None:
                name = {"Name": self.workspace_id[:80]}
                return api.create_record(client, SETTING, {**name, **owned, **values})
            api.update_record(client, SETTING, setting_id, {**owned, **values})
        return setting_id

    def _workspace(self, session: Session) -> Workspace:
        workspace = session.get(Workspace, self.workspace_id)
        if workspace is None:
            raise NotFound(f"workspace {self.workspace_id} does not exist")
        return workspace
