"""Connecting a workspace to its org, and clients that act as its sync user.

Three ways in, as Salesforce intends: the JWT bearer flow (server to server, a private key whose
certificate the connected app holds), the web-server flow's authorization code (the "Connect
Salesforce" button), and, for a sandbox org on this machine, the password grant. Tokens and keys
are sealed before they reach the store; an expired session is renewed with the refresh token, or
with a new assertion where the JWT flow left none. Every call goes through the governed session.

What goes wrong is raised as `quotasync.errors`, its message in an admin's terms: a file or an
option that will not do is `InvalidInput`, a host out of reach `Unreachable` (requests' exceptions
are translated in `_send`), a login the org refuses `GrantRefused`, a workspace without a
connection `NotConnected`.
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
from quotasync.errors import (
    Fault,
    GrantRefused,
    InvalidInput,
    NoAnswer,
    NotConnected,
    Refused,
    SessionExpired,
    Unreachable,
)
from quotasync.salesforce import api, oauth_flows
from quotasync.salesforce.session import GovernedSession, OrgUsage
from quotasync.store import quota_rows, sync_state
from quotasync.store.ledger import Ledger
from quotasync.store.tables import Connection, Workspace

LIMITS_CHECK = "limits_check"  # the purpose of a call that reads the org's figures


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
        if path.is_dir():
            # The org's state directory given for the file in it: take the file.
            path = path / "sandbox.json"
        try:
            config = json.loads(path.read_text())
            app = next(a for a in config["connected_apps"] if a["name"] == "quotasync")
            handles = [u["handle"] for u in config["users"]]
            if user not in handles:
                raise InvalidInput(
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
            raise InvalidInput(
                f"{path} does not exist; start `quotasync sandbox --state-dir DIR` first"
            ) from None
        except InvalidInput:
            raise
        except (ValueError, KeyError, StopIteration, TypeError) as exc:
            raise InvalidInput(f"{path} is not a sandbox.json ({type(exc).__name__})") from None
        except OSError as exc:
            raise InvalidInput(f"{path} cannot be read: {exc.strerror or exc}") from None


def read_private_key(path: Path) -> str:
    """The RSA private key in a file, as PEM; InvalidInput says what is wrong with it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read the private key {path}: {exc.strerror or exc}") from None
    try:
        return oauth_flows.rsa_private_key(data)
    except oauth_flows.KeyProblem as exc:
        raise InvalidInput(f"{path}: {exc}") from None


@dataclass(frozen=True)
class Disconnection:
    """What `Connector.disconnect` did: the tokens the org revoked, the connection it forgot."""

    workspace_id: str
    instance_url: str
    username: str
    revoked: tuple[str, ...]  # "refresh token", "access token": the ones the org accepted


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
                quota_rows.observe(
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
                return quota_rows.caps(session, workspace_id, now, probe=purpose == LIMITS_CHECK)

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
        return self._save(
            workspace_id,
            token,
            login_url=login.login_url,
            api_version=login.api_version,
            client_id=login.client_id,
            client_secret=login.client_secret,
            username=login.username,
            ca_file=login.ca_file,
        )

    def connect_jwt(
        self,
        workspace_id: str,
        *,
        login_url: str,
        client_id: str,
        private_key: str,
        username: str,
        ca_file: str | None = None,
    ) -> Connection:
        """Connect as `username` with the JWT bearer flow: no password, no consent page; the
        connected app must hold this key's certificate and be pre-authorized for the user."""
        base = _login_base(login_url)
        key = oauth_flows.rsa_private_key(private_key.encode())  # KeyProblem: InvalidInput
        http = self.session(workspace_id, ca_file)
        with http.purpose("connect"):
            token = self._assertion_token(http, base, client_id, key, username)
            api_version = _api_version(http, token["instance_url"])
        return self._save(
            workspace_id,
            token,
            login_url=base,
            api_version=api_version,
            client_id=client_id,
            client_secret=None,
            username=username,
            ca_file=ca_file,
            private_key=key,
        )

    def connect_authorization_code(
        self,
        workspace_id: str,
        *,
        login_url: str,
        client_id: str,
        client_secret: str | None,
        code: str,
        redirect_uri: str,
        ca_file: str | None = None,
        code_verifier: str | None = None,
    ) -> Connection:
        """Exchange the code Salesforce's consent page sent to `redirect_uri` (the web-server
        flow), and connect as the user who consented."""
        base = _login_base(login_url)
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": client_id,
            "redirect_uri": redirect_uri,
        }
        if client_secret:
            form["client_secret"] = client_secret
        if code_verifier:
            form["code_verifier"] = code_verifier
        http = self.session(workspace_id, ca_file)
        with http.purpose("connect"):
            token = _token(http, f"{base}/services/oauth2/token", form)
            identity = _get_json(http, token["id"], token["access_token"])
            api_version = _api_version(http, token["instance_url"])
        return self._save(
            workspace_id,
            token,
            login_url=base,
            api_version=api_version,
            client_id=client_id,
            client_secret=client_secret,
            username=str(identity["username"]),
            ca_file=ca_file,
        )

    def disconnect(self, workspace_id: str, *, revoke: bool = True) -> Disconnection:
        """Revoke the workspace's tokens at the org (unless `revoke` is False: the org is out of
        reach and an admin revokes them in Setup), then forget the connection."""
        with self.sessions() as session:
            connection = session.get(Connection, workspace_id)
        if connection is None:
            raise NotConnected(f"workspace {workspace_id} is not connected to Salesforce")
        revoked: list[str] = []
        if revoke:
            http = self.session(workspace_id, connection.ca_file)
            url = f"{connection.login_url}/services/oauth2/revoke"
            # The refresh token first: revoking it ends the sessions it made, too.
            tokens = [
                ("refresh token", connection.refresh_token_sealed),
                ("access token", connection.access_token_sealed),
            ]
            with http.purpose("disconnect"):
                for kind, sealed in tokens:
                    if sealed and _revoke(http, url, self.vault.open(sealed)):
                        revoked.append(kind)
        with self.sessions.begin() as session:
            stored = session.get(Connection, workspace_id)
            if stored is not None:
                session.delete(stored)
        return Disconnection(
            workspace_id, connection.instance_url, connection.username, tuple(revoked)
        )

    def _assertion_token(
        self, http: GovernedSession, login_url: str, client_id: str, key: str, username: str
    ) -> dict[str, Any]:
        assertion = oauth_flows.jwt_assertion(
            key,
            client_id=client_id,
            username=username,
            audience=oauth_flows.jwt_audience(login_url),
            now=self.clock.now(),
        )
        form = {"grant_type": oauth_flows.JWT_BEARER, "assertion": assertion}
        return _token(http, f"{login_url}/services/oauth2/token", form)

    def _save(
        self,
        workspace_id: str,
        token: dict[str, Any],
        *,
        login_url: str,
        api_version: str,
        client_id: str,
        client_secret: str | None,
        username: str,
        ca_file: str | None,
        private_key: str | None = None,
    ) -> Connection:
        """Store a new connection, sealed, in place of any earlier one."""
        identity = token["id"].rstrip("/").split("/")
        seal = self.vault.seal
        connection = Connection(
            workspace_id=workspace_id,
            instance_url=token["instance_url"],
            login_url=login_url,
            api_version=api_version,
            client_id=client_id,
            client_secret_sealed=seal(client_secret) if client_secret else None,
            username=username,
            org_id=identity[-2],
            user_id=identity[-1],
            access_token_sealed=seal(token["access_token"]),
            refresh_token_sealed=seal(token["refresh_token"])
            if token.get("refresh_token")
            else None,
            private_key_sealed=seal(private_key) if private_key else None,
            ca_file=ca_file,
            connected_at=self.clock.now(),
        )
        with self.sessions.begin() as session:
            before = session.get(Connection, workspace_id)
            if before is not None and (before.org_id, before.instance_url) != (
                connection.org_id,
                connection.instance_url,
            ):
                # Another org (or the org on another instance, which costs a load at worst): the
                # mirror's watermarks say nothing about it, so the load that follows is a full
                # one, and tombstones what the other org had.
                sync_state.forget_runs(session, workspace_id)
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
            raise NotConnected(
                f"workspace {workspace_id} is not connected to Salesforce; run `quotasync connect`"
            )
        return Client(self, connection, self.session(workspace_id, connection.ca_file))

    def refresh(self, connection: Connection, http: GovernedSession) -> str:
        """A new access token, from the refresh token or else from a new JWT assertion; stored
        sealed, returned plain."""
        if connection.refresh_token_sealed:
            form = {
                "grant_type": "refresh_token",
                "client_id": connection.client_id,
                "refresh_token": self.vault.open(connection.refresh_token_sealed),
            }
            if connection.client_secret_sealed:
                form["client_secret"] = self.vault.open(connection.client_secret_sealed)
            with http.purpose("refresh_token"):
                token = _token(http, f"{connection.login_url}/services/oauth2/token", form)
        elif connection.private_key_sealed:
            key = self.vault.open(connection.private_key_sealed)
            with http.purpose("jwt_bearer"):
                token = self._assertion_token(
                    http, connection.login_url, connection.client_id, key, connection.username
                )
        else:
            raise SessionExpired("the session expired and there is no refresh token; connect again")
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


def _login_base(login_url: str) -> str:
    try:
        return oauth_flows.login_base(login_url)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _send(http: GovernedSession, method: str, url: str, **kwargs: Any) -> requests.Response:
    """One request through the governed session; an unreachable or untrusted host is
    `Unreachable`, and says so: requests' exceptions go no further than here."""
    host = url.split("/")[2] if url.count("/") >= 2 else url
    try:
        return http.request(method, url, **kwargs)
    except requests.exceptions.SSLError as exc:
        raise Unreachable(
            f"cannot reach {host}: its TLS certificate is not trusted "
            f"(a sandbox org needs --ca-file with its ca_file): {exc}",
            NoAnswer.TLS,
            host,
        ) from None
    except requests.RequestException as exc:
        raise Unreachable(
            f"cannot reach {host}: {type(exc).__name__}; check the login URL and the network",
            NoAnswer.NETWORK,
            host,
        ) from None


def _token(http: GovernedSession, url: str, form: dict[str, str]) -> dict[str, Any]:
    """An OAuth token exchange through the governed session (it is a call to Salesforce too)."""
    response = _send(http, "POST", url, data=form)
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        unreadable = f"{url} answered {response.status_code} without JSON"
        raise Unreachable(unreadable, NoAnswer.UNREADABLE) from None
    if response.status_code != 200:
        error, description = str(body.get("error")), str(body.get("error_description"))
        raise GrantRefused(
            oauth_flows.explain(form["grant_type"], error, description), error, description
        )
    return body


def _get_json(http: GovernedSession, url: str, access_token: str | None = None) -> Any:
    headers = {"Authorization": f"Bearer {access_token}"} if access_token else {}
    response = _send(http, "GET", url, headers=headers)
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200 or body is None:
        said = f"{url} answered {response.status_code}: {response.text[:200]}"
        if response.status_code == 200:
            raise Unreachable(said, NoAnswer.UNREADABLE)
        raise Refused(response.status_code, _fault(body, response.text), said)
    return body


def _api_version(http: GovernedSession, instance_url: str) -> str:
    """The REST version to use, from the versions the org serves (a free call)."""
    listing = _get_json(http, f"{instance_url}/services/data/")
    try:
        return oauth_flows.choose_api_version(listing)
    except (ValueError, TypeError, KeyError) as exc:
        unusable = f"{instance_url} lists no usable REST API version: {exc}"
        raise Unreachable(unusable, NoAnswer.UNREADABLE) from None


def _revoke(http: GovernedSession, url: str, token: str) -> bool:
    """Whether the org revoked the token; False if it no longer knew it (revoked already)."""
    response = _send(http, "POST", url, data={"token": token})
    if response.status_code == 200:
        return True
    if response.status_code == 400:
        return False
    raise Refused(
        response.status_code,
        _fault(None, response.text),
        f"{url} answered {response.status_code}; the tokens were not revoked and the "
        "connection is kept",
    )


def _fault(body: Any, text: str) -> Fault:
    """The fault an answer names: its JSON error when it has one, its text otherwise."""
    return api.fault(body if body is not None else text)
