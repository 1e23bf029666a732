"""Installing quotasync's package in a workspace's org (`quotasync org install`, the Integrations
page's button): the fields, Real-Time Sync's setting object and Apex, the Remote Site Setting for
quotasync's address, and the sync user's permission set, in one Metadata API deploy; then the
permission set assigned to the sync user. `uninstall` takes it all away again
(docs/ORG_PACKAGE.md).

The deploy runs as the workspace's connected user, who needs Modify All Data (or Modify
Metadata): an admin. Deploying the same package again changes nothing, and uninstalling twice is
harmless, so both are safe to repeat. The outcome of each is kept on the workspace
(`org_package`), so a page can say whether the package is installed without asking the org.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from quotasync import errors
from quotasync.domain import org_parts
from quotasync.errors import InvalidInput, Refused
from quotasync.salesforce import api, metadata, package
from quotasync.store.tables import Workspace

if TYPE_CHECKING:
    from quotasync.salesforce.connection import Client, Connector

PERMISSION_SET = org_parts.PERMISSION_SET
INSTALLED, FAILED, UNINSTALLED = org_parts.INSTALLED, org_parts.FAILED, org_parts.UNINSTALLED
UNINSTALL_PURPOSE = "org_uninstall"


class NotAnAddress(InvalidInput):
    """quotasync's address, which the org's Remote Site Setting names, is not an http(s) URL."""


@dataclass(frozen=True)
class Outcome:
    """How an install ended: the deploy's final status and whether the sync user was given the
    permission set just now (False: they had it already, or the install was check-only)."""

    status: metadata.Status
    assigned: bool = False


def install(
    connector: Connector,
    workspace_id: str,
    url: str,
    *,
    sleep: metadata.Sleep,
    check_only: bool = False,
    package_dir: Path = package.DEFAULT_DIR,
    on_status: Callable[[metadata.Status], None] | None = None,
) -> Outcome:
    """Deploy the package (or, with `check_only`, validate it) to the workspace's org, allowing
    callouts to `url`'s origin, then assign its permission set to the sync user (not when
    check-only).

    Raises NotAnAddress and package.PackageError before anything is sent; then
    metadata.DeployFailed (each component's problem), metadata.DeployTimedOut, NotConnected, and
    the calls' own failures (SalesforceError, QuotaExhausted).
    """
    try:
        allowed = package.origin(url)
    except ValueError:
        raise NotAnAddress(f"quotasync's address must be an http(s) URL; got {url!r}") from None
    zipped = package.build(package_dir, url)
    client = connector.client(workspace_id)
    try:
        status = metadata.deploy(
            client, zipped, sleep=sleep, check_only=check_only, on_status=on_status
        )
        if check_only:
            return Outcome(status)
        with client.http.purpose(metadata.PURPOSE):
            assigned = assign(client, client.connection.user_id)
    except metadata.DeployFailed as failed:
        if not check_only:
            _record(connector, workspace_id, FAILED, "\n".join(map(str, failed.problems)))
        raise
    _record(connector, workspace_id, INSTALLED, allowed)
    return Outcome(status, assigned)


def uninstall(
    connector: Connector,
    workspace_id: str,
    *,
    sleep: metadata.Sleep,
    package_dir: Path = package.DEFAULT_DIR,
    on_status: Callable[[metadata.Status], None] | None = None,
) -> metadata.Status:
    """Delete what `install` added: the sync user's permission set assignment, then every
    component of the package in one destructive deploy (`destructiveChanges.xml`). Components
    the org lacks are warnings the deploy ignores, so uninstalling twice is harmless. The fields'
    values (Tasks' and Events' QS_Activity_Id__c among them) and the settings go with them.

    Raises package.PackageError, metadata.DeployFailed (say, the permission set is assigned to
    other users too), metadata.DeployTimedOut, NotConnected, SalesforceError, QuotaExhausted.
    """
    zipped = package.destructive(package_dir)
    client = connector.client(workspace_id)
    with client.http.purpose(UNINSTALL_PURPOSE):
        unassign(client, client.connection.user_id)
    try:
        status = metadata.deploy(
            client, zipped, sleep=sleep, ignore_warnings=True, on_status=on_status,
            purpose=UNINSTALL_PURPOSE,
        )  # fmt: skip
    except metadata.DeployFailed as failed:
        _record(connector, workspace_id, FAILED, "\n".join(map(str, failed.problems)))
        raise
    _record(connector, workspace_id, UNINSTALLED, None)
    return status


def assign(client: Client, user_id: str) -> bool:
    """Give the user the package's permission set (two calls: find it, assign it); False when
    they hold it already (Salesforce answers DUPLICATE_VALUE)."""
    permission_set = _permission_set_id(client)
    if permission_set is None:
        raise errors.SalesforceError(
            f"the org has no {PERMISSION_SET} permission set after the deploy"
        )
    try:
        api.create_record(
            client,
            "PermissionSetAssignment",
            {"AssigneeId": user_id, "PermissionSetId": permission_set},
        )
    except Refused as refused:
        if refused.fault.code == "DUPLICATE_VALUE":
            return False
        raise
    return True


def unassign(client: Client, user_id: str) -> bool:
    """Take the package's permission set from the user, if the org has it and they hold it;
    whether an assignment was deleted."""
    permission_set = _permission_set_id(client)
    if permission_set is None or not user_id.isalnum():
        return False
    found = api.first_page(
        client,
        "SELECT Id FROM PermissionSetAssignment "
        f"WHERE AssigneeId = '{user_id}' AND PermissionSetId = '{permission_set}'",
    )
    for record in found.records:
        assignment = record.get("Id") if isinstance(record, dict) else None
        if isinstance(assignment, str) and assignment.isalnum():
            api.send(client, "DELETE", f"sobjects/PermissionSetAssignment/{assignment}").close()
    return bool(found.records)


def _permission_set_id(client: Client) -> str | None:
    found = api.first_page(
        client, f"SELECT Id FROM PermissionSet WHERE Name = '{PERMISSION_SET}' LIMIT 1"
    )
    record = found.records[0] if found.records else None
    value = record.get("Id") if isinstance(record, dict) else None
    return value if isinstance(value, str) and value.isalnum() else None


def _record(connector: Connector, workspace_id: str, state: str, detail: str | None) -> None:
    """Keep the outcome on the workspace, for the Integrations page."""
    with connector.sessions.begin() as session:
        workspace = session.get(Workspace, workspace_id)
        if workspace is not None:
            workspace.org_package = state
            workspace.org_package_at = connector.clock.now()
            workspace.org_package_detail = detail[:4000] if detail else None
