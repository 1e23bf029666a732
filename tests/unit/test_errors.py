"""quotasync's error tree, and each seam's translation into it: a real requests error from a
closed loopback port, a real TLS handshake with an untrusted certificate, a real SQLite unique
key, a real ASGI disconnect. Above these seams nothing names a third-party exception."""

from __future__ import annotations

import ast
import asyncio
import contextlib
import datetime as dt
import importlib
import json
import socket
import ssl
import sys
import threading
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce

from quotasync import crypto, errors, runtime
from quotasync.clock import ManualClock
from quotasync.config import Settings
from quotasync.domain import activities, governor
from quotasync.domain import realtime as domain_realtime
from quotasync.engine import realtime as engine_realtime
from quotasync.engine import writer
from quotasync.salesforce import api, bulk, connection, oauth_flows, org_limits
from quotasync.services import pushes, sync_mode
from quotasync.services import workspace as services_workspace
from quotasync.store import db, users, workspaces
from quotasync.web import auth
from tests.unit.salesforce_fakes import T0, FakeClient, Reply

SRC = Path(__file__).resolve().parents[2] / "src" / "quotasync"


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port nothing listens on: bound, never listening, so connections are refused."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield int(bound.getsockname()[1])


# ---------------------------------------------------------------- the tree


def test_every_error_quotasync_raises_is_in_the_tree() -> None:
    invalid = [
        governor.ShareError,
        governor.SettingsError,
        activities.InvalidActivity,
        domain_realtime.PushInvalid,
        users.UserError,
        workspaces.WorkspaceError,
        oauth_flows.KeyProblem,
        pushes.PushTooLarge,
        sync_mode.NotAPushUrl,
    ]
    for kind in invalid:
        assert issubclass(kind, errors.InvalidInput), kind
        assert issubclass(kind, ValueError), kind  # what callers caught them as before
    salesforce = [
        errors.Unreachable,
        errors.SessionExpired,
        errors.GrantRefused,
        errors.Refused,
        errors.NoApiAccess,
        org_limits.LimitsClosed,
        bulk.JobFailed,
    ]
    for kind in salesforce:
        assert issubclass(kind, errors.SalesforceError), kind
    assert issubclass(errors.NoApiAccess, errors.Refused)
    assert issubclass(org_limits.LimitsClosed, errors.Refused)
    assert not issubclass(org_limits.LimitsClosed, errors.NoApiAccess)
    others = [
        errors.SalesforceError,
        errors.QuotaExhausted,
        errors.NotConnected,
        errors.NotFound,
        errors.Conflict,
        errors.InvalidInput,
        crypto.SecretError,
        runtime.NotMigrated,
        auth.SignInRequired,
        domain_realtime.PushRefused,
        engine_realtime.RealTimeUnavailable,
        writer.Paused,
    ]
    for kind in others:
        assert issubclass(kind, errors.QuotasyncError), kind
    # A workspace a service was asked about and cannot find: a LookupError, as callers caught it.
    assert issubclass(services_workspace.NoSuchWorkspace, errors.NotFound)
    assert issubclass(services_workspace.NoSuchWorkspace, LookupError)


def test_the_tree_is_pure() -> None:
    """No I/O and nothing third-party: the domain derives its errors from it."""
    tree = ast.parse((SRC / "errors.py").read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= {"__future__", "dataclasses", "enum"}


def test_no_handler_above_the_seams_names_a_third_party_exception() -> None:
    """The engine, the services, the CLI and the web app catch only quotasync's errors and the
    standard library's: each `except` clause is resolved to the classes it names, with the
    imports its module makes (at the top, or inside the function)."""
    found = []
    for package in ("engine", "services", "cli", "web"):
        for path in sorted((SRC / package).rglob("*.py")):
            if path.name == "__main__.py":
                continue  # importing it runs the CLI; it catches nothing
            module = importlib.import_module(
                ".".join(("quotasync", *path.relative_to(SRC).with_suffix("").parts))
            )
            tree = ast.parse(path.read_text())
            names = dict(vars(module))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import) or (
                    isinstance(node, ast.ImportFrom) and not node.level
                ):
                    exec(compile(ast.Module([node], []), str(path), "exec"), names)
            for node in ast.walk(tree):
                if isinstance(node, ast.ExceptHandler) and node.type is not None:
                    caught = eval(compile(ast.Expression(node.type), str(path), "eval"), names)
                    for kind in caught if isinstance(caught, tuple) else (caught,):
                        root = kind.__module__.split(".")[0]
                        if root != "quotasync" and root not in sys.stdlib_module_names:
                            found.append(f"{path.relative_to(SRC)}:{node.lineno}: {kind}")
    assert found == []


def test_pause_reasons_are_the_governors_enum_and_equal_the_stores_strings() -> None:
    assert governor.Reason.ORG_GUARD == "org_guard"
    reasons: dict[str, str] = {governor.Reason.AUTH: "connect again"}
    assert reasons.get("auth") == "connect again"  # a reason read back from the store
    paused = writer.Paused(governor.Reason.NO_API_ACCESS)
    assert paused.reason is governor.Reason.NO_API_ACCESS


# ---------------------------------------------------------------- requests, at the REST seam


def _client_at(port: int) -> FakeClient:
    """A client whose governed session sends through requests' own adapter, to `port`."""
    fake = FakeClient(lambda _: Reply())
    fake.http.mount("https://", HTTPAdapter())
    fake.http.timeout = 5.0
    fake.sf = Salesforce(
        session_id="token", instance_url=f"https://127.0.0.1:{port}", session=fake.http
    )
    return fake


def test_no_answer_from_a_closed_port_is_unreachable(closed_port: int) -> None:
    fake = _client_at(closed_port)
    with pytest.raises(errors.Unreachable) as unreachable:
        api.update_record(fake.client, "Task", "00T1", {})
    assert unreachable.value.cause is errors.NoAnswer.NETWORK
    assert unreachable.value.host == "127.0.0.1"
    assert str(unreachable.value).startswith("no answer: ")
    assert [c.api for c in fake.ledger.calls] == ["data"]  # reserved before it was sent


def test_an_answer_that_is_not_json_is_unreachable_unreadable() -> None:
    fake = FakeClient(lambda _: Reply(200, "<html>a proxy's page</html>"))
    with pytest.raises(errors.Unreachable) as unreadable:
        api.first_page(fake.client, "SELECT Id FROM Contact")
    assert unreadable.value.cause is errors.NoAnswer.UNREADABLE


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        ("API_DISABLED_FOR_ORG", errors.NoApiAccess),
        ("API_CURRENTLY_DISABLED", errors.NoApiAccess),
        ("REQUEST_LIMIT_EXCEEDED", errors.Refused),
        ("INVALID_FIELD", errors.Refused),
    ],
)
def test_a_refusal_carries_salesforces_error_code(code: str, kind: type[errors.Refused]) -> None:
    fake = FakeClient(lambda _: Reply(403, [{"errorCode": code, "message": "no"}]))
    with pytest.raises(errors.Refused) as refused:
        api.update_record(fake.client, "Task", "00T1", {})
    assert type(refused.value) is kind
    assert (refused.value.status, refused.value.fault) == (403, errors.Fault(code, "no"))
    assert str(refused.value) == f"403 {code}: no"


def test_limits_closed_to_the_sync_user_is_told_apart_from_no_api_access() -> None:
    closed = [{"errorCode": "API_DISABLED_FOR_ORG", "message": "limits resource is not enabled"}]
    fake = FakeClient(lambda _: Reply(403, closed))
    with pytest.raises(org_limits.LimitsClosed) as limits_closed:
        org_limits.read(fake.client)
    assert limits_closed.value.fault.code == "API_DISABLED_FOR_ORG"
    assert str(limits_closed.value) == "limits resource is not enabled"


def test_a_session_that_cannot_be_renewed_is_session_expired() -> None:
    fake = FakeClient(lambda _: Reply(401, [{"errorCode": "INVALID_SESSION_ID"}]))
    fake.renewable = False  # the org refuses the refresh token: GrantRefused, inside
    with pytest.raises(errors.SessionExpired) as expired:
        api.update_record(fake.client, "Task", "00T1", {})
    assert str(expired.value) == "the session expired and could not be renewed"
    assert len(fake.org.sent) == 1  # not sent again: there was no new session to send it with


def test_the_ledgers_refusal_is_quota_exhausted() -> None:
    fake = FakeClient(lambda _: Reply(204))
    fake.caps = {"data": 0}
    with pytest.raises(errors.QuotaExhausted) as exhausted:
        api.update_record(fake.client, "Task", "00T1", {})
    assert (exhausted.value.api, exhausted.value.used, exhausted.value.cap) == ("data", 0, 0)
    assert fake.org.sent == []


# ---------------------------------------------------------------- requests, at the login seam


def test_a_closed_login_host_is_unreachable_network(closed_port: int) -> None:
    fake = FakeClient(lambda _: Reply())
    fake.http.mount("https://", HTTPAdapter())
    with pytest.raises(errors.Unreachable) as unreachable:
        connection._send(fake.http, "POST", f"https://127.0.0.1:{closed_port}/services/oauth2")
    assert unreachable.value.cause is errors.NoAnswer.NETWORK
    assert unreachable.value.host == f"127.0.0.1:{closed_port}"
    assert f"cannot reach 127.0.0.1:{closed_port}: ConnectionError" in str(unreachable.value)


def test_an_untrusted_certificate_is_unreachable_tls(tmp_path: Path) -> None:
    with _tls_server(tmp_path) as port:
        fake = FakeClient(lambda _: Reply())
        fake.http.mount("https://", HTTPAdapter())
        with pytest.raises(errors.Unreachable) as untrusted:
            connection._send(fake.http, "GET", f"https://127.0.0.1:{port}/services/data/")
    assert untrusted.value.cause is errors.NoAnswer.TLS
    assert "TLS certificate is not trusted" in str(untrusted.value)


def test_a_refused_login_is_grant_refused_with_oauths_fields() -> None:
    body = {"error": "invalid_grant", "error_description": "user hasn't approved this consumer"}
    fake = FakeClient(lambda _: Reply(400, body))
    form = {"grant_type": "refresh_token"}
    with pytest.raises(errors.GrantRefused) as refused:
        connection._token(fake.http, "https://org.test/services/oauth2/token", form)
    assert (refused.value.error, refused.value.description) == (
        "invalid_grant",
        "user hasn't approved this consumer",
    )
    assert "an org admin must" in str(refused.value)  # the admin's terms, from oauth_flows


def test_a_login_answer_without_json_is_unreachable_unreadable() -> None:
    fake = FakeClient(lambda _: Reply(502, "<html>bad gateway</html>"))
    with pytest.raises(errors.Unreachable) as unreadable:
        connection._token(fake.http, "https://org.test/services/oauth2/token", {"grant_type": "x"})
    assert unreadable.value.cause is errors.NoAnswer.UNREADABLE
    assert (
        str(unreadable.value) == "https://org.test/services/oauth2/token answered 502 without JSON"
    )


def test_input_that_will_not_do_is_invalid_input(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="does not exist"):
        connection.SandboxLogin.read(tmp_path / "sandbox.json")
    (tmp_path / "sandbox.json").write_text("{}")
    with pytest.raises(errors.InvalidInput, match=r"is not a sandbox\.json"):
        connection.SandboxLogin.read(tmp_path / "sandbox.json")
    (tmp_path / "key.pem").write_text("not a key\n")
    with pytest.raises(errors.InvalidInput, match="not a PEM private key"):
        connection.read_private_key(tmp_path / "key.pem")


# ---------------------------------------------------------------- SQLAlchemy, at the store seam


def test_a_unique_key_taken_is_a_conflict_and_the_transaction_is_rolled_back(
    tmp_path: Path,
) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'conflict.db'}")
    table = sa.Table(
        "notice",
        sa.MetaData(),
        sa.Column("key", sa.String, primary_key=True),
        sa.Column("n", sa.Integer),
    )
    table.metadata.create_all(engine)
    sessions = db.sessions(engine)
    with db.adding(sessions) as session:
        session.execute(table.insert().values(key="k", n=1))
    with pytest.raises(errors.Conflict), db.adding(sessions) as session:
        session.execute(table.insert().values(key="other", n=2))
        session.execute(table.insert().values(key="k", n=3))
    with sessions() as session:
        assert session.execute(sa.select(table.c.key, table.c.n)).all() == [("k", 1)]
    engine.dispose()


# ---------------------------------------------------------------- Starlette, in the web app


def test_a_client_gone_before_its_body_arrived_is_answered_400(tmp_path: Path) -> None:
    from quotasync.runtime import open_runtime
    from quotasync.web.app import create_app

    opened = open_runtime(Settings(data_dir=tmp_path / "data"), ManualClock(T0))
    with opened.sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", T0)
        workspace, token = made.workspace.id, made.ingest_token
    app = create_app(opened)
    path = f"/api/v1/workspaces/{workspace}/activities"
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"100"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    opened.sessions.kw["bind"].dispose()
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert start["status"] == 400
    assert json.loads(body) == {"detail": "the client went away before its body arrived"}


# ---------------------------------------------------------------- helpers


class _tls_server:
    """A local TLS server whose self-signed certificate nobody trusts; it completes (or fails)
    one handshake and closes."""

    def __init__(self, tmp_path: Path) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
        now = dt.datetime.now(dt.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256())
        )
        self.cert = tmp_path / "cert.pem"
        self.key = tmp_path / "key.pem"
        self.cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        self.key.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    def __enter__(self) -> int:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(1)

        def serve() -> None:
            try:
                accepted, _ = self.listener.accept()
            except OSError:
                return  # closed before anyone came
            with accepted, context.wrap_socket(accepted, server_side=True):
                pass  # the client refuses the certificate: the handshake fails (ssl.SSLError)

        def serving() -> None:
            with contextlib.suppress(ssl.SSLError, OSError):
                serve()

        self.thread = threading.Thread(target=serving, daemon=True)
        self.thread.start()
        return int(self.listener.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self.thread.join()
