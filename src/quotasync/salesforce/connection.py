"""Connecting a workspace to its org, and clients that act as its sync user.

Tokens are sealed before they reach the store; the access token is refreshed with the refresh
token when Salesforce says the session expired.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.crypto import Vault
from quotasync.salesforce.session import GovernedSession, OrgUsage
from quotasync.store import limits
from quotasync.store.ledger import Ledger
from quotasync.store.tables import Connection, Workspace

LIMITS_CHECK = "limits_check"  # the purpose of a call that reads the org's figures


class ConnectError(Exception):
    """Connecting failed; the message says why in the user's terms."""


@dataclass(frozen=True)
class SandboxLogin:
    """What `sandbox.json` offers for connecting as the `quotasync` app and the sync user."""

    instance_url: str
    login_url: str
    ca_file: str
    api_version: str
    client_id: str
    client_secret: str
    username: str
    password: str

    @classmethod
    def read(cls, path: Path, user: str = "sync") -> SandboxLogin:
        try:
            config = json.loads(path.read_text())
            app = next(a for a in config["connected_apps"] if a["name"] == "quotasync")
            handles = [u["handle"] for u in config["users"]]
            if user not in handles:
                raise ConnectError(
                    f"{path} has no user {user!r}; choose one of {', '.join(handles)}"
                )
            login = next(u for u in config["users"] if u["handle"] == user)
            return cls(
                instance_url=config["instance_url"],
                login_url=config["login_url"],
                ca_file=config["ca_file"],
                api_version=config["api_version"],
                client_id=app["client_id"],
                client_secret=app["client_secret"],
                username=login["username"],
                password=login["password"],
            )
        except FileNotFoundError:
            raise ConnectError(
                f"{path} does not exist; start `quotasync sandbox --state-dir DIR` first"
            ) from None
        except (ValueError, KeyError, StopIteration) as exc:
            raise ConnectError(f"{path} is not a sandbox.json ({exc!r})") from None


class Connector:
    def __init__(self, sessions: sessionmaker[Session], vault: Vault, clock: Clock) -> None:
        self.sessions = sessions
        self.vault = vault
        self.clock = clock
        self.ledger = Ledger(sessions)

    def session(self, workspace_id: str, ca_file: str | None) -> GovernedSession:
        """The governed session for one workspace: ledgered calls, org figures kept."""

        def keep(usage: OrgUsage) -> None:
            with self.sessions.begin() as session:
                limits.observe(
                    session,
                    workspace_id,
                    "data",
                    usage.used,
                    usage.max,
                    usage.observed_at,
                    own_in_answer=usage.own_calls,
                    answer_ids=usage.own_ids,
                )

        def caps(now: datetime, purpose: str) -> dict[str, int]:
            with self.sessions() as session:
                return limits.caps(session, workspace_id, now, probe=purpose == LIMITS_CHECK)

        return GovernedSession(
            self.ledger, workspace_id, self.clock, ca_file, on_usage=keep, caps=caps
        )

    def connect_sandbox(self, workspace_id: str, login: SandboxLogin) -> Connection:
        http = self.session(workspace_id, login.ca_file)
        form = {
            "grant_type": "password",
            "client_id": login.client_id,
            "client_secret": login.client_secret,
            "username": login.username,
            "password": login.password,
        }
        with http.purpose("connect"):
            token = _token(http, f"{login.login_url}/services/oauth2/token", form)
        identity = token["id"].rstrip("/").split("/")
        connection = Connection(
            workspace_id=workspace_id,
            instance_url=token["instance_url"],
            login_url=login.login_url,
            api_version=login.api_version,
            client_id=login.client_id,
            client_secret_sealed=self.vault.seal(login.client_secret),
            username=login.username,
            org_id=identity[-2],
            user_id=identity[-1],
            access_token_sealed=self.vault.seal(token["access_token"]),
            refresh_token_sealed=self.vault.seal(token["refresh_token"])
            if token.get("refresh_token")
            else None,
            ca_file=login.ca_file,
            connected_at=self.clock.now(),
        )
        with self.sessions.begin() as session:
            session.merge(connection)
            # The new sync user may have View Setup where the last one had not, or the other
            # way round: ask `/limits` again on the worker's next cycle.
            workspace = session.get(Workspace, workspace_id)
            if workspace is not None:
                workspace.limits_readable = None
                workspace.limits_next_check = None
        return connection

    def client(self, workspace_id: str) -> Client:
        with self.sessions() as session:
            connection = session.get(Connection, workspace_id)
        if connection is None:
            raise ConnectError(
                f"workspace {workspace_id} is not connected to Salesforce; run `quotasync connect`"
            )
        return Client(self, connection, self.session(workspace_id, connection.ca_file))

    def refresh(self, connection: Connection, http: GovernedSession) -> str:
        """A new access token from the refresh token; stored sealed, returned plain."""
        if not connection.refresh_token_sealed:
            raise ConnectError("the session expired and there is no refresh token; connect again")
        form = {
            "grant_type": "refresh_token",
            "client_id": connection.client_id,
            "refresh_token": self.vault.open(connection.refresh_token_sealed),
        }
        if connection.client_secret_sealed:
            form["client_secret"] = self.vault.open(connection.client_secret_sealed)
        with http.purpose("refresh_token"):
            token = _token(http, f"{connection.login_url}/services/oauth2/token", form)
        with self.sessions.begin() as session:
            stored = session.get(Connection, connection.workspace_id)
            if stored is not None:
                stored.access_token_sealed = self.vault.seal(token["access_token"])
        connection.access_token_sealed = self.vault.seal(token["access_token"])
        return str(token["access_token"])


class Client:
    """simple-salesforce acting as the workspace's sync user, over the governed session."""

    def __init__(self, connector: Connector, connection: Connection, http: GovernedSession) -> None:
        self.connector = connector
        self.connection = connection
        self.http = http
        self.sf = self._salesforce(connector.vault.open(connection.access_token_sealed))

    def _salesforce(self, access_token: str) -> Salesforce:
        return Salesforce(
            session_id=access_token,
            instance_url=self.connection.instance_url,
            session=self.http,
            version=self.connection.api_version,
        )

    def refresh(self) -> None:
        """Called once when Salesforce answers INVALID_SESSION_ID."""
        self.sf = self._salesforce(self.connector.refresh(self.connection, self.http))


def _token(http: GovernedSession, url: str, form: dict[str, str]) -> dict[str, Any]:
    """An OAuth token exchange through the governed session (it is a call to Salesforce too)."""
    try:
        response = http.post(url, data=form)
    except requests.RequestException as exc:
        raise ConnectError(f"cannot reach {url}: {exc}") from None
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise ConnectError(f"{url} answered {response.status_code} without JSON") from None
    if response.status_code != 200:
        raise ConnectError(
            f"Salesforce refused the login: {body.get('error')}: {body.get('error_description')}"
        )
    return body
