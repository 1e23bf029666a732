"""`quotasync connect` and `quotasync disconnect` as an admin runs them against a sandbox org: the
JWT bearer flow with a key made here, what it says when something is wrong, and disconnecting,
after which the org refuses the old refresh token."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from quotasync.config import Settings
from quotasync.runtime import open_runtime
from quotasync.store.tables import Connection
from tests.processes import cli
from tests.sandbox_process import SandboxOrg, start_sandbox

# Its module-scoped org and workspaces are built once: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("connect_cli")


@dataclass
class Setup:
    org: SandboxOrg
    root: Path
    env: dict[str, str]
    workspace: str = ""

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return cli(list(args), self.env, timeout=120)

    def jwt(self, key_file: Path, *extra: str) -> subprocess.CompletedProcess[str]:
        """`quotasync connect` with the JWT options, as the sync user of the quotasync app."""
        config = self.org.config
        return self.run(
            "connect",
            "--workspace",
            self.workspace,
            "--login-url",
            config["login_url"],
            "--client-id",
            self.org.app()["client_id"],
            "--private-key",
            str(key_file),
            "--username",
            self.org.user("sync")["username"],
            "--ca-file",
            config["ca_file"],
            *extra,
        )

    def stored(self) -> tuple[Connection | None, Any]:
        """The workspace's connection row as the product stored it, and the vault to open it."""
        data_dir = self.root / "data"
        runtime = open_runtime(Settings(data_dir=data_dir, database_url=None))
        try:
            with runtime.sessions() as session:
                return session.get(Connection, self.workspace), runtime.vault
        finally:
            runtime.sessions.kw["bind"].dispose()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    root = tmp_path_factory.mktemp("connect-cli")
    org = start_sandbox(root / "org", "--seed", "5")
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(root / "data")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    try:
        made = Setup(org, root, env)
        created = made.run("workspace", "create", "Acme", "--admin", "a@acme.io", "--json")
        assert created.returncode == 0, created.stderr
        made.workspace = json.loads(created.stdout)["workspace"]
        yield made
    finally:
        org.stop()


def write_key_and_certificate(folder: Path) -> tuple[Path, str]:
    """A private key file and its self-signed certificate, as `openssl req -x509` makes them."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "quotasync")])
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
    folder.mkdir(parents=True, exist_ok=True)
    key_file = folder / "server.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key_file, certificate.public_bytes(serialization.Encoding.PEM).decode()


def test_an_admin_connects_with_the_jwt_flow_and_disconnects(setup: Setup, tmp_path: Path) -> None:
    key_file, certificate = write_key_and_certificate(tmp_path)
    refused = setup.jwt(key_file)
    assert refused.returncode == 2
    assert "does not belong to the certificate uploaded to the connected app" in refused.stderr

    setup.org.control("POST", "apps/quotasync/certificate", {"pem": certificate})
    connected = setup.jwt(key_file)
    assert connected.returncode == 0, connected.stderr
    sync_user = setup.org.user("sync")["username"]
    assert f"connected to {setup.org.instance_url}" in connected.stdout
    assert f"as {sync_user}" in connected.stdout
    assert "5 Contacts" in connected.stdout  # the mirror was loaded through the new connection

    done = setup.run("disconnect", "--workspace", setup.workspace, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["revoked"] == ["access token"]
    assert setup.stored()[0] is None


def test_disconnect_revokes_the_refresh_token_so_the_org_refuses_it(setup: Setup) -> None:
    sandbox_json = str(setup.root / "org" / "sandbox.json")
    connected = setup.run("connect", "--workspace", setup.workspace, "--sandbox", sandbox_json)
    assert connected.returncode == 0, connected.stderr
    connection, vault = setup.stored()
    assert connection is not None and connection.refresh_token_sealed is not None
    refresh_token = vault.open(connection.refresh_token_sealed)

    done = setup.run("disconnect", "--workspace", setup.workspace)

    assert done.returncode == 0, done.stderr
    assert "revoked refresh token and access token" in done.stdout
    app = setup.org.app()
    answer = setup.org.http().post(
        f"{setup.org.config['login_url']}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "client_id": app["client_id"],
            "client_secret": app["client_secret"],
            "refresh_token": refresh_token,
        },
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json() == {
        "error": "invalid_grant",
        "error_description": "expired access/refresh token",
    }
    again = setup.run("disconnect", "--workspace", setup.workspace)
    assert again.returncode == 2
    assert "is not connected to Salesforce" in again.stderr


def test_connect_refuses_to_mix_the_sandbox_file_with_jwt_options(
    setup: Setup, tmp_path: Path
) -> None:
    mixed = setup.run(
        "connect",
        "--workspace",
        setup.workspace,
        "--sandbox",
        str(setup.root / "org" / "sandbox.json"),
        "--private-key",
        str(tmp_path / "server.key"),
    )
    assert mixed.returncode == 2
    assert "--sandbox cannot be combined with --private-key" in mixed.stderr
    partial = setup.run("connect", "--workspace", setup.workspace, "--client-id", "x")
    assert partial.returncode == 2
    assert "also needs --login-url, --private-key, --username" in partial.stderr


def test_a_key_file_that_cannot_sign_is_refused_with_the_reason(
    setup: Setup, tmp_path: Path
) -> None:
    missing = setup.jwt(tmp_path / "nowhere.key")
    assert missing.returncode == 2
    assert "cannot read the private key" in missing.stderr
    assert "No such file or directory" in missing.stderr

    ec_key = tmp_path / "ec.key"
    ec_key.write_bytes(
        ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    not_rsa = setup.jwt(ec_key)
    assert not_rsa.returncode == 2
    assert "not an RSA one" in not_rsa.stderr
    assert setup.stored()[0] is None


def test_an_unreachable_login_host_is_named(setup: Setup, tmp_path: Path) -> None:
    key_file, _ = write_key_and_certificate(tmp_path)
    unreachable = setup.run(
        "connect",
        "--workspace",
        setup.workspace,
        "--login-url",
        "https://127.0.0.1:9",  # discard: nothing listens
        "--client-id",
        "x",
        "--private-key",
        str(key_file),
        "--username",
        "u@example.com",
    )
    assert unreachable.returncode == 2
    assert "cannot reach 127.0.0.1:9" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_connect_checks_the_new_user_before_it_replaces_a_working_connection(
    setup: Setup,
) -> None:
    folder = str(setup.root / "org")  # the org's folder, not its sandbox.json: that is fine too
    first = setup.run("connect", "--workspace", setup.workspace, "--sandbox", folder)
    assert first.returncode == 0, first.stderr
    said = " ".join(first.stdout.split())
    sync_user = setup.org.user("sync")["username"]
    assert f"checked: the org answers API calls as {sync_user}" in said
    for loaded in ("Users", "Accounts", "5 Contacts", "Leads", "Opportunities"):
        assert loaded in said, loaded
    # A user the org will not serve does not replace it.
    refused = setup.run(
        "connect", "--workspace", setup.workspace, "--sandbox", folder, "--user", "noapi"
    )
    assert refused.returncode == 2
    why = " ".join(refused.stderr.split())
    noapi = setup.org.user("noapi")["username"]
    assert f"Salesforce refuses API calls as {noapi} (API_CURRENTLY_DISABLED" in why
    assert "give " + noapi + " the API Enabled permission" in why
    assert "The workspace's connection is unchanged." in why
    stored, _ = setup.stored()
    assert stored is not None and stored.username == sync_user
    # Not a folder of an org at all: said plainly, no traceback.
    wrong = setup.run("connect", "--workspace", setup.workspace, "--sandbox", str(setup.root))
    assert wrong.returncode == 2 and "Traceback" not in wrong.stderr
    assert "does not exist; start `quotasync sandbox --state-dir DIR` first" in wrong.stderr
    assert setup.run("disconnect", "--workspace", setup.workspace).returncode == 0
