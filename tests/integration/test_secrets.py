"""Secrets at rest and in logs: the key file is the owner's alone; Salesforce tokens, the client
secret, the Real-Time Sync secret, passwords, API and ingest tokens are never stored in plain
and never written to any log, through a connect, writes, a session renewal and RTS switched on."""

from __future__ import annotations

import logging
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from quotasync.clock import ManualClock
from quotasync.config import Settings
from quotasync.crypto import KEY_FILE
from quotasync.engine.realtime import RealTime
from quotasync.runtime import open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.store import users, workspaces
from quotasync.store.tables import Base, Connection, Workspace
from tests.integration.logging_support import Setup, connect, people, stream
from tests.integration.test_auth import OrgFactory


def test_the_generated_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    runtime = open_runtime(Settings(data_dir=tmp_path / "data"), ManualClock(datetime.now(UTC)))
    key = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    sealed = runtime.vault.seal("a refresh token")
    assert "a refresh token" not in sealed
    # The same data dir opens what it sealed; a configured key is used instead of the file.
    again = open_runtime(Settings(data_dir=tmp_path / "data"), ManualClock(datetime.now(UTC)))
    assert again.vault.open(sealed) == "a refresh token"
    elsewhere = tmp_path / "other"
    configured = open_runtime(
        Settings(data_dir=elsewhere, secret_key=key.read_text().strip()),
        ManualClock(datetime.now(UTC)),
    )
    assert configured.vault.open(sealed) == "a refresh token"
    assert not (elsewhere / KEY_FILE).exists()


def stored_text(setup: Setup) -> str:
    """Every value of every table, as text, and for SQLite the database files' bytes too."""
    parts: list[str] = []
    with setup.runtime.sessions() as session:
        for table in Base.metadata.sorted_tables:
            parts += [repr(tuple(row)) for row in session.execute(select(table))]
    database = make_url(setup.database_url).database
    if make_url(setup.database_url).get_backend_name() == "sqlite" and database:
        for path in Path(database).parent.glob(Path(database).name + "*"):
            parts.append(path.read_bytes().decode("latin-1"))
    return "\n".join(parts)


def test_no_secret_is_stored_or_logged_in_plain(
    new_org: OrgFactory,
    database_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger of every library, at every level
    org = new_org("--seed", "30", "--session-timeout-minutes", "0")
    clock = ManualClock(datetime.now(UTC))
    setup = connect(org, tmp_path, database_url, clock, user="admin")
    try:
        login = SandboxLogin.read(org.state_dir / "sandbox.json", "admin")
        vault = setup.runtime.vault
        secrets = {"client secret": login.client_secret, "sync user's password": login.password}

        def connection() -> Connection:
            with setup.runtime.sessions() as session:
                found = session.get(Connection, setup.workspace_id)
                assert found is not None
                return found

        first = connection()
        secrets["first access token"] = vault.open(first.access_token_sealed)
        assert first.refresh_token_sealed is not None
        secrets["refresh token"] = vault.open(first.refresh_token_sealed)
        with setup.runtime.sessions.begin() as session:
            admin = users.find(session, setup.workspace_id, "admin@acme.io")
            assert admin is not None
            secrets["password"] = users.reset_password(
                session, admin, clock.now(), revoke_tokens=False
            )
            secrets["API token"] = users.new_api_token(session, admin, clock.now())
            other = workspaces.create(session, "Other", "admin@other.io", clock.now())
            secrets["ingest token"] = other.ingest_token
            secrets["first password"] = other.admin_password

        # Writes, then every session expires: the worker renews its own with the refresh token.
        setup.settings(log_within=0)
        setup.ingest(stream(people(org), 300, seed=9))
        setup.drive()
        org.control("POST", "faults", {"expire_sessions": True})
        setup.ingest(stream(people(org), 300, seed=10))
        setup.drive()
        renewed = vault.open(connection().access_token_sealed)
        assert renewed != secrets["first access token"]
        secrets["renewed access token"] = renewed

        RealTime(setup.runtime.connector, setup.workspace_id, clock).enable(
            "https://127.0.0.1:9/rts/" + setup.workspace_id
        )
        with setup.runtime.sessions() as session:
            workspace = session.get(Workspace, setup.workspace_id)
            assert workspace is not None and workspace.rts_secret_sealed is not None
            secrets["RTS secret"] = vault.open(workspace.rts_secret_sealed)

        assert all(len(value) >= 12 for value in secrets.values()), secrets.keys()
        assert len(caplog.records) > 0
        logged = caplog.text + "\n".join(str(r.args) for r in caplog.records)
        at_rest = stored_text(setup)
        assert [name for name, value in secrets.items() if value in logged] == []
        assert [name for name, value in secrets.items() if value in at_rest] == []
    finally:
        setup.close()
