"""The doctor: whether a workspace's Salesforce plan and sync user allow syncing, and why events
are not syncing when they are not. Each check says pass, warn, fail or skip (not run: an earlier
check failed, or it does not apply), in one line, with its fix.

What it asks the org costs one Data API call: the sync user's session is renewed first (an OAuth
exchange, free), then one Composite request carries every question (the edition, the sync user's
permissions, Task's and Event's fields, the org package's setting object and Apex, the Real-Time
Sync setting), and its answer's
`Sforce-Limit-Info` gives the org's 24-hour use. The call goes through the governed session with
purpose `doctor`, so it is ledgered and counted against quotasync's share like any other; with no
room in the share it is not sent, and the checks that needed it say so. Nothing is written to
the org. The rest comes from the store: shares, pauses, Real-Time Sync pushes received.

This module asks; what the answers mean is judged in `quotasync/diagnosis.py` (pure).
"""

from __future__ import annotations

from datetime import datetime

from simple_salesforce.format import format_soql
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quotasync import usage
from quotasync.diagnosis import (
    SETTING,
    Answers,
    Check,
    Report,
    not_connected,
    org_checks,
    renewal,
    report,
)
from quotasync.diagnosis import connection as connection_check
from quotasync.domain.realtime import SyncMode
from quotasync.errors import (
    NotConnected,
    QuotaExhausted,
    Refused,
    SalesforceError,
    SessionExpired,
    Unreachable,
)
from quotasync.salesforce import api, package_probe
from quotasync.salesforce.connection import Client, Connector
from quotasync.store import quota_rows
from quotasync.store.tables import Connection, LedgerEntry, RtsReceipt, Workspace

PURPOSE = "doctor"


def run(connector: Connector, workspace_id: str, callback_url: str | None = None) -> Report:
    """Every check of one workspace. `callback_url` is where this server takes Real-Time Sync
    pushes, when known (the web app knows it; the CLI does not)."""
    with connector.sessions() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is None:
            raise LookupError(f"no workspace {workspace_id}")
        connection = session.get(Connection, workspace_id)
        watermark = session.scalar(select(func.max(LedgerEntry.id))) or 0
    checks = [connection_check(connection)]
    calls = 0
    try:
        client = connector.client(workspace_id) if connection is not None else None
    except NotConnected:  # disconnected a moment ago
        client, checks = None, [connection_check(None)]
    if client is not None:
        checks.append(_renew(client))
        answers = _ask(client, workspace, watermark)
        checks += _org_checks(connector, workspace_id, client, answers, callback_url)
        calls = answers.calls
    else:
        checks += not_connected()
    return report(workspace_id, connector.clock.now(), checks, calls)


def _renew(client: Client) -> Check:
    """A new session from the connection's grant: free, and what the worker does when its
    session expires."""
    try:
        client.refresh()
    except SalesforceError as exc:
        return renewal(client.connection.username, exc)
    return renewal(client.connection.username, None)


def _ask(client: Client, workspace: Workspace, watermark: int) -> Answers:
    connection = client.connection
    user_id = connection.user_id if connection.user_id.isalnum() else ""
    questions = {
        "org": api.query("SELECT OrganizationType, IsSandbox FROM Organization"),
        "perms": api.query(
            "SELECT PermissionSet.Name, PermissionSet.PermissionsApiEnabled, "
            "PermissionSet.PermissionsViewSetup "
            f"FROM PermissionSetAssignment WHERE AssigneeId = '{user_id}'"
        ),
        "task": api.describe("Task"),
        "event": api.describe("Event"),
        "setting": package_probe.setting(),
        "triggers": package_probe.triggers(),
        "classes": package_probe.classes(),
    }
    if workspace.sync_mode == SyncMode.REALTIME:
        # This workspace's setting, and the enabled ones (a stray one may push here), however
        # many other workspaces' settings the org holds.
        ours = workspace.rts_setting_id if (workspace.rts_setting_id or "").isalnum() else ""
        questions["rts"] = api.query(
            format_soql(
                f"SELECT Id, Name, Workspace__c, Callback_URL__c, Enabled__c FROM {SETTING} "
                "WHERE Id = {} OR Workspace__c = {} OR Enabled__c = true "
                "ORDER BY LastModifiedDate DESC LIMIT 50",
                ours or "000000000000000",
                workspace.id,
            )
        )
    answers = Answers()
    try:
        with client.http.purpose(PURPOSE):
            replies = api.composite(client, list(questions.values()))
        for ref, reply in zip(questions, replies, strict=True):
            answers.parts[ref] = (reply.status, reply.body)
    except QuotaExhausted as exc:
        answers.problem = (
            f"quotasync's {exc.api} share (or the org's 90% guard) has no room for the doctor's "
            "one call"
        )
    except Refused as refused:
        answers.refusal = refused.fault.code
        answers.message = refused.fault.message or str(refused)
    except SessionExpired as lost:
        answers.refusal, answers.message = "INVALID_SESSION_ID", str(lost)
    except Unreachable as exc:
        answers.problem = f"Salesforce could not be reached ({exc})"
    reported = client.http.org_usage
    if reported is not None and answers.refusal is None and answers.problem is None:
        answers.used, answers.total = reported.used, reported.max
    answers.calls = _spent(client, watermark)
    return answers


def _spent(client: Client, watermark: int) -> int:
    with client.connector.sessions() as session:
        spent = session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.calls), 0)).where(
                LedgerEntry.workspace_id == client.connection.workspace_id,
                LedgerEntry.purpose == PURPOSE,
                LedgerEntry.id > watermark,
            )
        )
    return int(spent or 0)


def _org_checks(
    connector: Connector,
    workspace_id: str,
    client: Client,
    answers: Answers,
    callback_url: str | None,
) -> list[Check]:
    now = connector.clock.now()
    with connector.sessions() as session:
        # Read after the call: the figures it brought back are in the store now.
        workspace = session.get(Workspace, workspace_id)
        assert workspace is not None
        view = usage.view(session, workspace, now)
        stored = quota_rows.figures(session, workspace_id).get("data")
        last_push = _last_push(session, workspace_id)
    username = client.connection.username
    return org_checks(answers, workspace, username, view, stored, last_push, callback_url)


def _last_push(session: Session, workspace_id: str) -> datetime | None:
    return session.scalar(
        select(func.max(RtsReceipt.received_at)).where(RtsReceipt.workspace_id == workspace_id)
    )
