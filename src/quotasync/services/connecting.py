"""Connecting a workspace to its org, by whichever flow, then loading the org's people and deals
into the mirror: `quotasync connect` (JWT bearer, or a sandbox's password grant) and the
Integrations page's Connect Salesforce (the web-server flow) have the same effects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.domain.governor import Reason
from quotasync.engine.matching import Matcher
from quotasync.errors import Fault, GrantRefused, NoApiAccess
from quotasync.store.tables import Connection, SyncState, Workspace

if TYPE_CHECKING:
    from quotasync.salesforce.connection import Connector, SandboxLogin


class Flow(Protocol):
    """How a connection is made; `name` is said in `quotasync connect --json`."""

    @property
    def name(self) -> str: ...

    def open(self, connector: Connector, workspace_id: str) -> Connection: ...


@dataclass(frozen=True)
class SandboxFlow:
    """A sandbox org's own app and user, with the password grant."""

    login: SandboxLogin
    name: str = "password"

    def open(self, connector: Connector, workspace_id: str) -> Connection:
        return connector.connect_sandbox(workspace_id, self.login)


@dataclass(frozen=True)
class JwtFlow:
    """The JWT bearer flow: the connected app's certificate and its private key here."""

    login_url: str
    client_id: str
    private_key: str
    username: str
    ca_file: str | None = None
    name: str = "jwt_bearer"

    def open(self, connector: Connector, workspace_id: str) -> Connection:
        return connector.connect_jwt(
            workspace_id,
            login_url=self.login_url,
            client_id=self.client_id,
            private_key=self.private_key,
            username=self.username,
            ca_file=self.ca_file,
        )


@dataclass(frozen=True)
class CodeFlow:
    """The web-server flow's authorization code (with its PKCE verifier), from the consent page."""

    login_url: str
    client_id: str
    client_secret: str | None
    code: str
    redirect_uri: str
    ca_file: str | None = None
    code_verifier: str | None = None
    name: str = "authorization_code"

    def open(self, connector: Connector, workspace_id: str) -> Connection:
        return connector.connect_authorization_code(
            workspace_id,
            login_url=self.login_url,
            client_id=self.client_id,
            client_secret=self.client_secret,
            code=self.code,
            redirect_uri=self.redirect_uri,
            ca_file=self.ca_file,
            code_verifier=self.code_verifier,
        )


@dataclass(frozen=True)
class Connected:
    connection: Connection
    mirror: dict[str, int]  # the live records of each mirrored type after the load
    load_stopped: str | None = None  # why the load stopped part way (the interval sync goes on)


def connect(
    sessions: sessionmaker[Session],
    connector: Connector,
    clock: Clock,
    workspace_id: str,
    flow: Flow,
) -> Connected:
    """Connect the workspace by `flow`, then load the mirror in full (engine/matching.py), so
    that the people lookup answers and the interval sync goes on from the load's watermarks.

    Raises what connecting raises, each with a message for the admin: InvalidInput (a login URL
    or a key that will not do), SalesforceError (the login host or the org refused, or did not
    answer), NotConnected, QuotaExhausted. A load the quota or the org stops part way is not an
    error: the interval sync finishes it.
    """
    with sessions() as session:
        # What the new connection replaces, kept as it is to put back if the new user cannot
        # sync: the connection, how far the sync had come (a connection to another org forgets
        # it) and the workspace's reading of the org's limits (reset on every connect).
        before = session.get(Connection, workspace_id)
        runs = list(
            session.scalars(select(SyncState).where(SyncState.workspace_id == workspace_id))
        )
        workspace = session.get(Workspace, workspace_id)
        limits = (
            (workspace.limits_readable, workspace.limits_next_check)
            if workspace is not None
            else None
        )
        session.expunge_all()
    connection = flow.open(connector, workspace_id)
    loaded = Matcher(sessions, workspace_id, clock).load(connector.client(workspace_id))
    if loaded.refused is not None:
        # The load's first call is the check that the org serves this user (no extra call): it
        # did not, so the connection that worked before (or none) stands again.
        with sessions.begin() as session:
            if before is not None:
                session.merge(before)
            else:
                made = session.get(Connection, workspace_id)
                if made is not None:
                    session.delete(made)
            for run in runs:
                session.merge(run)
            restored = session.get(Workspace, workspace_id)
            if restored is not None and limits is not None:
                restored.limits_readable, restored.limits_next_check = limits
        who = connection.username
        kind = NoApiAccess if loaded.refused == Reason.NO_API_ACCESS else GrantRefused
        hint = (
            f"give {who} the API Enabled permission in Salesforce"
            if kind is NoApiAccess
            else "connect again with a user and app the org accepts"
        )
        message = (
            f"Salesforce refuses API calls as {who} ({loaded.stopped}): {hint}. The "
            "workspace's connection is unchanged."
        )
        if kind is NoApiAccess:
            raise NoApiAccess(403, Fault("API_CURRENTLY_DISABLED", loaded.stopped or ""), message)
        raise GrantRefused(message, "refused", loaded.stopped or "")
    return Connected(connection, loaded.counts, loaded.stopped)
