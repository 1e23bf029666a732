"""Connecting a workspace the ways Salesforce intends, against a sandbox org over HTTPS: the JWT
bearer flow with a key made here (its certificate uploaded to the connected app), the web-server
flow's authorization code with PKCE, and revoking the tokens when a workspace disconnects."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pydantic import SecretStr
from simple_salesforce.exceptions import SalesforceExpiredSession
from sqlalchemy import func, select

from quotasync.clock import RealClock
from quotasync.config import Settings
from quotasync.engine import sync
from quotasync.errors import GrantRefused, InvalidInput, NoAnswer, NotConnected, Unreachable
from quotasync.runtime import Runtime, open_runtime
from quotasync.salesforce import oauth_flows
from quotasync.salesforce.connection import (
    Connector,
    SandboxLogin,
    read_private_key,
)
from quotasync.store import workspaces
from quotasync.store.tables import Connection, LedgerEntry
from tests.acceptance.served_app import serve
from tests.acceptance.web_support import csrf_of
from tests.sandbox_process import SandboxOrg, start_sandbox

REDIRECT = "http://127.0.0.1:8765/oauth/callback"  # nothing listens: the Location header is enough
CLI = [sys.executable, "-m", "quotasync.cli"]


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxOrg]:
    sandbox = start_sandbox(tmp_path_factory.mktemp("connect-org"), "--seed", "5")
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runtime]:
    data_dir = tmp_path_factory.mktemp("connect-store")
    url = f"sqlite:///{data_dir / 'quotasync.db'}"
    made = open_runtime(Settings(data_dir=data_dir, database_url=url), RealClock())
    yield made
    made.sessions.kw["bind"].dispose()


@pytest.fixture
def connector(runtime: Runtime) -> Connector:
    return runtime.connector


@pytest.fixture
def workspace(runtime: Runtime) -> str:
    """A new workspace, not connected yet (one per test in the module's store: names are unique)."""
    with runtime.sessions.begin() as session:
        name = f"Acme {secrets.token_hex(4)}"
        made = workspaces.create(session, name, "admin@acme.io", datetime.now(UTC))
        return made.workspace.id


def key_and_certificate() -> tuple[str, str]:
    """An RSA key pair and a self-signed certificate, as an admin makes with openssl."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quotasync JWT test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


def upload(org: SandboxOrg, certificate: str, app: str = "quotasync") -> Any:
    return org.control("POST", f"apps/{app}/certificate", {"pem": certificate})


def connect_jwt(connector: Connector, org: SandboxOrg, workspace: str, key: str) -> Connection:
    return connector.connect_jwt(
        workspace,
        login_url=org.config["login_url"],
        client_id=org.app()["client_id"],
        private_key=key,
        username=org.user("sync")["username"],
        ca_file=org.config["ca_file"],
    )


def contacts(connector: Connector, workspace: str) -> int:
    """One REST call as the workspace's stored connection."""
    result: Any = connector.client(workspace).sf.query("SELECT COUNT() FROM Contact")
    return int(result["totalSize"])


def refresh_grant(org: SandboxOrg, refresh_token: str) -> requests.Response:
    return org.http().post(
        f"{org.config['login_url']}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": org.app()["client_id"],
            "client_secret": org.app()["client_secret"],
            "refresh_token": refresh_token,
        },
        timeout=30,
    )


# ---------------------------------------------------------------- JWT bearer flow


def test_a_key_made_here_connects_once_its_certificate_is_uploaded_to_the_app(
    org: SandboxOrg, runtime: Runtime, connector: Connector, workspace: str
) -> None:
    key, certificate = key_and_certificate()
    with pytest.raises(GrantRefused, match="private key does not belong to the certificate"):
        connect_jwt(connector, org, workspace, key)

    uploaded = upload(org, certificate)
    assert uploaded["app"] == "quotasync"
    assert uploaded["subject"] == "CN=quotasync JWT test"

    connection = connect_jwt(connector, org, workspace, key)
    assert connection.username == org.user("sync")["username"]
    assert connection.instance_url == org.instance_url
    assert connection.api_version == "62.0"  # chosen from the versions the org lists
    assert connection.refresh_token_sealed is None  # the JWT flow gives none
    assert connection.private_key_sealed is not None
    assert key not in connection.private_key_sealed  # sealed, never stored plain
    assert contacts(connector, workspace) == 5
    with runtime.sessions() as session:
        paths = session.scalars(
            select(LedgerEntry.path).where(
                LedgerEntry.workspace_id == workspace, LedgerEntry.purpose == "connect"
            )
        ).all()
    # Both connect calls went through the governed session, the refused one included.
    assert paths.count("/services/oauth2/token") == 2


def test_the_apps_own_key_keeps_working_after_an_upload(
    org: SandboxOrg, connector: Connector, workspace: str
) -> None:
    upload(org, key_and_certificate()[1])
    own_key = read_private_key(Path(org.app()["jwt_key_file"]))
    connect_jwt(connector, org, workspace, own_key)
    assert contacts(connector, workspace) == 5


def test_a_new_upload_replaces_the_earlier_certificate(
    org: SandboxOrg, connector: Connector, workspace: str
) -> None:
    first_key, first_certificate = key_and_certificate()
    second_key, second_certificate = key_and_certificate()
    upload(org, first_certificate)
    connect_jwt(connector, org, workspace, first_key)
    upload(org, second_certificate)
    with pytest.raises(GrantRefused, match="invalid assertion"):
        connect_jwt(connector, org, workspace, first_key)
    connect_jwt(connector, org, workspace, second_key)


def test_an_expired_jwt_session_is_renewed_with_a_new_assertion(
    org: SandboxOrg, runtime: Runtime, connector: Connector, workspace: str
) -> None:
    key, certificate = key_and_certificate()
    upload(org, certificate)
    connect_jwt(connector, org, workspace, key)
    client = connector.client(workspace)
    org.control("POST", "faults", {"expire_sessions": True})
    with pytest.raises(SalesforceExpiredSession):
        client.sf.query("SELECT COUNT() FROM Contact")
    client.refresh()  # what the engine does on INVALID_SESSION_ID
    assert client.sf.query("SELECT COUNT() FROM Contact")["totalSize"] == 5
    assert contacts(connector, workspace) == 5  # the new session was stored
    with runtime.sessions() as session:
        purposes = session.scalars(
            select(LedgerEntry.purpose).where(LedgerEntry.workspace_id == workspace)
        ).all()
    assert "jwt_bearer" in purposes


def test_the_uploaded_certificate_survives_a_restart(tmp_path: Path, runtime: Runtime) -> None:
    key, certificate = key_and_certificate()
    own_org = start_sandbox(tmp_path / "org")
    try:
        upload(own_org, certificate)
    finally:
        own_org.stop()
    restarted = start_sandbox(tmp_path / "org")
    try:
        with runtime.sessions.begin() as session:
            workspace = workspaces.create(session, "Globex", "a@globex.io", datetime.now(UTC))
            workspace_id = workspace.workspace.id
        connection = connect_jwt(runtime.connector, restarted, workspace_id, key)
        assert connection.org_id == restarted.config["org_id"]
    finally:
        restarted.stop()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot read the private key"),
        ("certificate", "holds a certificate, not a private key"),
        ("ec", "holds an EC private key, not an RSA one"),
        ("encrypted", "encrypted with a passphrase"),
        ("junk", "is not a PEM private key"),
    ],
)
def test_a_key_file_quotasync_cannot_sign_with_is_refused_with_the_reason(
    tmp_path: Path, content: str | None, message: str
) -> None:
    key, certificate = key_and_certificate()
    loaded = serialization.load_pem_private_key(key.encode(), password=None)
    files = {
        "certificate": certificate.encode(),
        "ec": ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        "encrypted": loaded.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        ),
        "junk": b"not a key\n",
    }
    path = tmp_path / "server.key"
    if content is not None:
        path.write_bytes(files[content])
    with pytest.raises(InvalidInput, match=message):
        read_private_key(path)


def test_an_unknown_consumer_key_is_explained(
    org: SandboxOrg, connector: Connector, workspace: str
) -> None:
    key, _ = key_and_certificate()
    with pytest.raises(GrantRefused) as refused:
        connector.connect_jwt(
            workspace,
            login_url=org.config["login_url"],
            client_id="3MVG9notAnApp",
            private_key=key,
            username=org.user("sync")["username"],
            ca_file=org.config["ca_file"],
        )
    assert refused.value.error == "invalid_client_id"
    assert "invalid_client_id" in str(refused.value)
    assert "not that of a connected app in this org" in str(refused.value)


def test_an_unreachable_host_and_an_untrusted_one_say_so(
    org: SandboxOrg, connector: Connector, workspace: str
) -> None:
    key, _ = key_and_certificate()
    with socket_closed_port() as port, pytest.raises(Unreachable, match="cannot reach") as refused:
        connector.connect_jwt(
            workspace,
            login_url=f"https://127.0.0.1:{port}",
            client_id="x",
            private_key=key,
            username="u",
        )
    assert f"cannot reach 127.0.0.1:{port}" in str(refused.value)
    assert refused.value.cause is NoAnswer.NETWORK
    with pytest.raises(Unreachable, match="TLS certificate is not trusted") as untrusted:
        connector.connect_jwt(
            workspace,
            login_url=org.config["login_url"],
            client_id=org.app()["client_id"],
            private_key=key,
            username="u",
        )
    assert untrusted.value.cause is NoAnswer.TLS


def test_a_user_the_app_is_not_pre_authorized_for_is_told_what_an_admin_must_do(
    org: SandboxOrg, connector: Connector, workspace: str
) -> None:
    key, certificate = key_and_certificate()
    upload(org, certificate)
    policy = {"admin_approved": True, "profiles": ["System Administrator"]}
    org.control("POST", "apps/quotasync/policy", policy)
    try:
        with pytest.raises(GrantRefused) as refused:
            connect_jwt(connector, org, workspace, key)  # as the sync user: Integration User
    finally:
        org.control("POST", "apps/quotasync/policy", {"admin_approved": False, "profiles": []})
    assert refused.value.description == "user hasn't approved this consumer"
    assert "user hasn't approved this consumer" in str(refused.value)
    assert "an org admin must" in str(refused.value)
    assert "profile" in str(refused.value)


@pytest.mark.parametrize(
    ("login_url", "audience"),
    [
        ("https://login.salesforce.com", "https://login.salesforce.com"),
        ("https://test.salesforce.com/", "https://test.salesforce.com"),
        ("https://acme.my.salesforce.com", "https://login.salesforce.com"),
        ("https://acme--uat.sandbox.my.salesforce.com", "https://test.salesforce.com"),
        ("https://127.0.0.1:4443", "https://127.0.0.1:4443"),
    ],
)
def test_the_assertion_audience_is_the_generic_login_host(login_url: str, audience: str) -> None:
    assert oauth_flows.jwt_audience(login_url) == audience


# ---------------------------------------------------------------- authorization code (web flow)


def consent(org: SandboxOrg, url: str, handle: str = "sync") -> dict[str, str]:
    """An admin at the consent page: sees it, signs in, allows; the redirect's query."""
    http = org.http()
    page = http.get(url, timeout=30)
    assert page.status_code == 200
    assert "Allow Access?" in page.text
    form = dict(parse_qs(urlsplit(url).query))
    user = org.user(handle)
    answer = http.post(
        url,
        data={
            **{k: v[0] for k, v in form.items()},
            "username": user["username"],
            "password": user["password"],
            "action": "allow",
        },
        allow_redirects=False,
        timeout=30,
    )
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith(REDIRECT + "?")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def test_the_connect_button_flow_with_pkce_connects_the_consenting_user(
    org: SandboxOrg, connector: Connector, workspace: str
) -> None:
    verifier = oauth_flows.new_code_verifier()
    url = oauth_flows.authorize_url(
        org.config["login_url"],
        org.app()["client_id"],
        REDIRECT,
        state="ws-state-42",
        code_challenge=oauth_flows.code_challenge(verifier),
    )
    back = consent(org, url, handle="admin")
    assert back["state"] == "ws-state-42"

    connection = connector.connect_authorization_code(
        workspace,
        login_url=org.config["login_url"],
        client_id=org.app()["client_id"],
        client_secret=org.app()["client_secret"],
        code=back["code"],
        redirect_uri=REDIRECT,
        ca_file=org.config["ca_file"],
        code_verifier=verifier,
    )
    assert connection.username == org.user("admin")["username"]
    assert connection.refresh_token_sealed is not None
    assert contacts(connector, workspace) == 5


def test_a_code_exchanged_with_the_wrong_verifier_is_refused_and_used_up(
    org: SandboxOrg, connector: Connector, workspace: str
) -> None:
    verifier = oauth_flows.new_code_verifier()
    url = oauth_flows.authorize_url(
        org.config["login_url"],
        org.app()["client_id"],
        REDIRECT,
        state="s",
        code_challenge=oauth_flows.code_challenge(verifier),
    )
    code = consent(org, url)["code"]

    def exchange(code_verifier: str | None) -> Connection:
        return connector.connect_authorization_code(
            workspace,
            login_url=org.config["login_url"],
            client_id=org.app()["client_id"],
            client_secret=org.app()["client_secret"],
            code=code,
            redirect_uri=REDIRECT,
            ca_file=org.config["ca_file"],
            code_verifier=code_verifier,
        )

    with pytest.raises(GrantRefused, match="code_verifier does not match"):
        exchange(oauth_flows.new_code_verifier())
    with pytest.raises(GrantRefused, match="was used already"):
        exchange(verifier)


def test_a_pkce_code_exchanged_without_a_verifier_is_refused(
    org: SandboxOrg, connector: Connector, workspace: str
) -> None:
    url = oauth_flows.authorize_url(
        org.config["login_url"],
        org.app()["client_id"],
        REDIRECT,
        state="s",
        code_challenge=oauth_flows.code_challenge(oauth_flows.new_code_verifier()),
    )
    code = consent(org, url)["code"]
    with pytest.raises(GrantRefused, match="invalid code verifier"):
        connector.connect_authorization_code(
            workspace,
            login_url=org.config["login_url"],
            client_id=org.app()["client_id"],
            client_secret=org.app()["client_secret"],
            code=code,
            redirect_uri=REDIRECT,
            ca_file=org.config["ca_file"],
        )


def test_an_unsupported_challenge_method_is_sent_back_to_the_redirect_uri(
    org: SandboxOrg,
) -> None:
    url = oauth_flows.authorize_url(
        org.config["login_url"], org.app()["client_id"], REDIRECT, state="s", code_challenge="c"
    ).replace("code_challenge_method=S256", "code_challenge_method=S512")
    answer = org.http().get(url, allow_redirects=False, timeout=30)
    assert answer.status_code == 302
    query = parse_qs(urlsplit(answer.headers["location"]).query)
    assert query["error"] == ["invalid_request"]
    assert query["state"] == ["s"]


def test_the_connect_button_loads_the_mirror_as_quotasync_connect_does(
    org: SandboxOrg, tmp_path: Path
) -> None:
    """One implementation of connecting (services/connecting.py): the page's web-server flow and
    `quotasync connect` leave the same mirror, each load ledgered as the mirror's load."""
    app = org.app()
    database_url = f"sqlite:///{tmp_path / 'quotasync.db'}"
    settings = Settings(
        data_dir=tmp_path,
        database_url=database_url,
        salesforce_client_id=app["client_id"],
        salesforce_client_secret=SecretStr(app["client_secret"]),
        salesforce_login_url=org.config["login_url"],
        salesforce_ca_file=org.config["ca_file"],
        public_url=REDIRECT.removesuffix("/oauth/callback"),
    )
    runtime = open_runtime(settings, RealClock())
    with runtime.sessions.begin() as session:
        on_page = workspaces.create(session, "Web", "admin@web.io", datetime.now(UTC))
        on_cli = workspaces.create(session, "Cli", "admin@cli.io", datetime.now(UTC))
        page_id, cli_id = on_page.workspace.id, on_cli.workspace.id
        password = on_page.admin_password

    env = {
        **os.environ,
        "QUOTASYNC_DATA_DIR": str(tmp_path),
        "QUOTASYNC_DATABASE_URL": database_url,
    }
    by_cli = subprocess.run(
        [
            *CLI,
            *("connect", "--workspace", cli_id, "--user", "admin", "--json"),
            *("--sandbox", str(org.state_dir / "sandbox.json")),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert by_cli.returncode == 0, by_cli.stderr
    cli_mirror = json.loads(by_cli.stdout)["mirror"]
    assert cli_mirror["Contact"] == 5

    with serve(runtime) as served:
        browser = requests.Session()
        signin = browser.get(f"{served.url}/signin", timeout=30)
        signed = browser.post(
            f"{served.url}/signin",
            data={
                "email": "admin@web.io",
                "password": password,
                "csrf_token": csrf_of(signin.text),
                "next": "/",
            },
            timeout=30,
        )
        assert signed.status_code == 200
        started = browser.post(
            f"{served.url}/w/{page_id}/connect",
            data={"csrf_token": csrf_of(signed.text), "host": "default"},
            allow_redirects=False,
            timeout=30,
        )
        assert started.status_code == 303
        back = consent(org, started.headers["location"], handle="admin")
        called = browser.get(
            f"{served.url}/oauth/callback", params=back, allow_redirects=False, timeout=30
        )
        assert called.status_code == 303
        page = browser.get(f"{served.url}{called.headers['location']}", timeout=30)
        assert f"Connected to Salesforce as {org.user('admin')['username']}." in page.text

        with runtime.sessions() as session:
            page_mirror = sync.live_counts(session, page_id, cli_mirror)
            loads = {
                workspace_id: session.scalar(
                    select(func.count())
                    .select_from(LedgerEntry)
                    .where(
                        LedgerEntry.workspace_id == workspace_id,
                        LedgerEntry.purpose == sync.LOAD_PURPOSE,
                    )
                )
                for workspace_id in (page_id, cli_id)
            }
    assert page_mirror == cli_mirror
    assert loads[cli_id]  # the load spent calls, ledgered as such
    assert loads[page_id] == loads[cli_id]


# ---------------------------------------------------------------- disconnecting


def test_disconnecting_revokes_the_tokens_so_the_org_refuses_them(
    org: SandboxOrg, runtime: Runtime, connector: Connector, workspace: str
) -> None:
    url = oauth_flows.authorize_url(
        org.config["login_url"], org.app()["client_id"], REDIRECT, state="s"
    )
    connection = connector.connect_authorization_code(
        workspace,
        login_url=org.config["login_url"],
        client_id=org.app()["client_id"],
        client_secret=org.app()["client_secret"],
        code=consent(org, url)["code"],
        redirect_uri=REDIRECT,
        ca_file=org.config["ca_file"],
    )
    assert connection.refresh_token_sealed is not None
    refresh_token = runtime.vault.open(connection.refresh_token_sealed)
    access_token = runtime.vault.open(connection.access_token_sealed)

    done = connector.disconnect(workspace)

    assert done.revoked == ("refresh token", "access token")
    refused = refresh_grant(org, refresh_token)
    assert refused.status_code == 400
    assert refused.json()["error"] == "invalid_grant"
    rest = org.http().get(
        f"{org.instance_url}/services/data/v62.0/",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )
    assert rest.status_code == 401
    with pytest.raises(NotConnected, match="is not connected to Salesforce"):
        connector.client(workspace)
    with pytest.raises(NotConnected, match="is not connected to Salesforce"):
        connector.disconnect(workspace)


def test_disconnecting_a_jwt_connection_revokes_its_session(
    org: SandboxOrg, runtime: Runtime, connector: Connector, workspace: str
) -> None:
    key, certificate = key_and_certificate()
    upload(org, certificate)
    connection = connect_jwt(connector, org, workspace, key)
    access_token = runtime.vault.open(connection.access_token_sealed)
    assert connector.disconnect(workspace).revoked == ("access token",)
    userinfo = org.http().get(
        f"{org.config['login_url']}/services/oauth2/userinfo",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )
    assert userinfo.status_code == 403


def test_disconnecting_without_revoking_only_forgets_the_connection(
    org: SandboxOrg, runtime: Runtime, connector: Connector, workspace: str
) -> None:
    login = SandboxLogin.read(org.state_dir / "sandbox.json")
    connection = connector.connect_sandbox(workspace, login)
    assert connection.refresh_token_sealed is not None
    refresh_token = runtime.vault.open(connection.refresh_token_sealed)

    assert connector.disconnect(workspace, revoke=False).revoked == ()

    with pytest.raises(NotConnected, match="is not connected to Salesforce"):
        connector.client(workspace)
    assert refresh_grant(org, refresh_token).status_code == 200  # still good: revoke it in Setup


# ---------------------------------------------------------------- helpers


class socket_closed_port:
    """A local port nothing listens on, for as long as the block runs."""

    def __enter__(self) -> int:
        import socket

        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        return int(self.socket.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.socket.close()
