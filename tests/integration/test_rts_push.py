"""Real-Time Sync pushes from the sandbox org, as a receiving server sees them: what switches them
on and off, what one DML operation pushes, the signature, Apex spending, and delivery faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from typer.testing import CliRunner

from quotasync.cli import app
from tests.sandbox_process import SandboxOrg, start_sandbox

APEX = "DailyAsyncApexExecutions"
SECRET = "correct horse battery staple"
DAY = 24 * 60 * 60


# ---------------------------------------------------------------- a receiving server


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def verified(self, secret: str = SECRET) -> dict[str, Any]:
        """The push's JSON, once its signature has been checked as a receiver would."""
        stamp = self.headers["x-qs-timestamp"]
        expected = hmac.new(secret.encode(), f"{stamp}.".encode() + self.body, hashlib.sha256)
        assert hmac.compare_digest(self.headers["x-qs-signature"], "sha256=" + expected.hexdigest())
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every request and answers 200, or the statuses
    queued in `answers` first."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str = "/rts/ws1") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def take(self) -> list[Received]:
        with self.lock:
            out, self.received[:] = list(self.received), []
        return out


def start_receiver() -> tuple[Receiver, threading.Thread]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            headers = {k.lower(): v for k, v in self.headers.items()}
            with receiver.lock:
                receiver.received.append(Received(self.path, headers, body))
                status = receiver.answers.pop(0) if receiver.answers else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return receiver, thread


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    running, thread = start_receiver()
    yield running
    running.server.shutdown()
    running.server.server_close()
    thread.join(timeout=5)


# ---------------------------------------------------------------- one org for the module


@dataclass
class Rig:
    org: SandboxOrg
    sf: Any  # simple-salesforce's Salesforce: its dynamic attributes do not type-check
    receiver: Receiver
    baseline: dict[str, int] = field(default_factory=dict)

    def enable(self, callback: str | None = None, secret: str = SECRET) -> str:
        body = {
            "Name": "quotasync",
            "Callback_URL__c": callback or self.receiver.url(),
            "Secret__c": secret,
            "Enabled__c": True,
        }
        created: Any = self.sf.restful("sobjects/QS_Sync_Setting__c", method="POST", json=body)
        return str(created["id"])

    def set_enabled(self, setting_id: str, enabled: bool) -> None:
        self.sf.restful(
            f"sobjects/QS_Sync_Setting__c/{setting_id}",
            method="PATCH",
            json={"Enabled__c": enabled},
        )

    def flush(self) -> dict[str, int]:
        """Deliver everything queued; the counters' growth since the test began."""
        counters = self.org.control("POST", "rts/flush")
        return {k: counters[k] - self.baseline.get(k, 0) for k in self.baseline}

    def pushes(self) -> list[Received]:
        self.flush()
        return self.receiver.take()

    def apex(self) -> int:
        return int(self.org.control("GET", "usage")[APEX]["by_app"].get("quotasync", 0))

    def contact(self, **values: Any) -> str:
        created: Any = self.sf.restful(
            "sobjects/Contact", method="POST", json={"LastName": tag(), **values}
        )
        return str(created["id"])

    def collection(self, records: list[dict[str, Any]], all_or_none: bool = False) -> Any:
        body = {"allOrNone": all_or_none, "records": records}
        return self.sf.restful("composite/sobjects", method="POST", json=body)


def tag() -> str:
    return "rts" + uuid.uuid4().hex[:10]


def contacts(n: int, last_name: str) -> list[dict[str, Any]]:
    return [{"attributes": {"type": "Contact"}, "LastName": last_name} for _ in range(n)]


@pytest.fixture(scope="module")
def module_org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxOrg]:
    # A virtual clock (moved by tests) and sessions that never expire however far it moves.
    sandbox = start_sandbox(
        tmp_path_factory.mktemp("rts"), "--speed", "1", "--session-timeout-minutes", "0"
    )
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def module_sf(module_org: SandboxOrg) -> Any:
    return module_org.salesforce()


@pytest.fixture
def rig(module_org: SandboxOrg, module_sf: Any, receiver: Receiver) -> Iterator[Rig]:
    """The module's org with no setting, no delivery faults, nothing pending or received."""
    org, sf = module_org, module_sf
    for row in sf.query("SELECT Id FROM QS_Sync_Setting__c")["records"]:
        sf.restful(f"sobjects/QS_Sync_Setting__c/{row['Id']}", method="DELETE")
    org.control("POST", "rts", {"duplicate_rate": 0, "max_delay_ms": 0, "reorder": False})
    counters = org.control("POST", "rts/flush")
    receiver.take()
    receiver.answers.clear()
    yield Rig(org, sf, receiver, {k: v for k, v in counters.items() if isinstance(v, int)})


# ---------------------------------------------------------------- switching it on and off


def test_without_a_setting_dml_pushes_nothing_and_spends_no_apex(rig: Rig) -> None:
    apex = rig.apex()
    rig.contact()
    grown = rig.flush()
    assert grown["pushes"] == grown["suppressed_no_apex"] == grown["refused"] == 0
    assert rig.receiver.take() == []
    assert rig.apex() == apex
    assert rig.org.control("GET", "rts")["enabled"] is False


def test_a_setting_created_through_the_data_api_turns_pushing_on(rig: Rig) -> None:
    setting_id = rig.enable()
    assert setting_id.startswith("a01")
    found = rig.sf.query(
        "SELECT Id, Name, Callback_URL__c, Enabled__c FROM QS_Sync_Setting__c WHERE Enabled__c = true"
    )["records"]
    assert [(r["Id"], r["Callback_URL__c"]) for r in found] == [(setting_id, rig.receiver.url())]
    state = rig.org.control("GET", "rts")
    assert (state["enabled"], state["callback"], state["setting_id"]) == (
        True,
        rig.receiver.url(),
        setting_id,
    )
    assert SECRET not in json.dumps(state)

    contact_id = rig.contact()

    (push,) = rig.pushes()
    assert push.path == "/rts/ws1"
    assert [c["id"] for c in push.verified()["changes"]] == [contact_id]


def test_a_disabled_setting_pushes_nothing_until_it_is_enabled_again(rig: Rig) -> None:
    setting_id = rig.enable()
    rig.set_enabled(setting_id, False)
    apex = rig.apex()
    rig.contact()
    assert rig.pushes() == []
    assert rig.apex() == apex
    assert rig.org.control("GET", "rts")["enabled"] is False

    rig.set_enabled(setting_id, True)
    contact_id = rig.contact()
    (push,) = rig.pushes()
    assert push.verified()["changes"][0]["id"] == contact_id


def test_every_enabled_setting_gets_the_push_signed_with_its_own_secret(rig: Rig) -> None:
    # As QS_PushJob does: one body (one async Apex execution), one callout per enabled setting,
    # so workspaces sharing an org each get their pushes.
    rig.enable(callback=rig.receiver.url("/old"))
    rig.enable(callback=rig.receiver.url("/new"), secret="another")
    apex = rig.apex()
    rig.contact()
    pushes = sorted(rig.pushes(), key=lambda p: p.path)
    assert [p.path for p in pushes] == ["/new", "/old"]
    assert pushes[0].verified("another") == pushes[1].verified()
    assert pushes[0].body == pushes[1].body
    assert rig.apex() == apex + 1


# ---------------------------------------------------------------- what a push says


def test_a_user_update_is_pushed_as_the_packages_qs_usersync_trigger_does(rig: Rig) -> None:
    rig.enable()
    (user,) = rig.sf.query("SELECT Id FROM User WHERE Alias = 'noapi'")["records"]
    rig.sf.restful(f"sobjects/User/{user['Id']}", method="PATCH", json={"Title": tag()})
    (push,) = rig.pushes()
    (change,) = push.verified()["changes"]
    assert (change["sobject"], change["id"], change["change"]) == ("User", user["Id"], "updated")


def test_insert_update_delete_push_signed_changes_stamped_with_org_time(rig: Rig) -> None:
    rig.org.control("POST", "clock", {"advance_seconds": 3 * DAY})
    rig.enable()
    before = rig.org.control("GET", "clock")["timestamp"]

    contact_id = rig.contact(FirstName="Ada", Email="ada@example.com")
    created = rig.sf.restful(f"sobjects/Contact/{contact_id}")
    rig.sf.restful(f"sobjects/Contact/{contact_id}", method="PATCH", json={"Title": "CTO"})
    updated = rig.sf.restful(f"sobjects/Contact/{contact_id}")
    rig.sf.restful(f"sobjects/Contact/{contact_id}", method="DELETE")
    deleted = rig.org.control(
        "GET", f"records/Contact?where=Id%20%3D%20%27{contact_id}%27&include_deleted=true"
    )[0]

    received = rig.pushes()
    after = rig.org.control("GET", "clock")["timestamp"]
    assert len(received) == 3
    bodies = [r.verified() for r in received]
    for push, body in zip(received, bodies, strict=True):
        assert push.headers["content-type"] == "application/json"
        stamp = int(push.headers["x-qs-timestamp"])
        # The org's clock, three days ahead of this machine's, not the wall clock.
        assert int(before) <= stamp <= after
        assert stamp > time.time() + 2 * DAY
        sent = datetime.fromisoformat(body["sentAt"].replace("Z", "+00:00"))
        assert int(sent.timestamp()) == stamp and sent.tzinfo is not None
        assert body["organizationId"] == rig.org.config["org_id"]
        assert len(body["organizationId"]) == 18
    changes = [b["changes"] for b in bodies]
    assert [[c["change"] for c in cs] for cs in changes] == [["created"], ["updated"], ["deleted"]]
    insert, update, delete = (cs[0] for cs in changes)
    assert {c["sobject"] for c in (insert, update, delete)} == {"Contact"}
    assert {c["id"] for c in (insert, update, delete)} == {contact_id}
    assert insert["systemModstamp"] == created["SystemModstamp"]
    assert update["systemModstamp"] == updated["SystemModstamp"]
    assert delete["systemModstamp"] == deleted["SystemModstamp"]
    assert insert["fields"] == {k: v for k, v in created.items() if k != "attributes"}
    assert update["fields"] == {k: v for k, v in updated.items() if k != "attributes"}
    assert (update["fields"]["Title"], insert["fields"]["Title"]) == ("CTO", None)
    assert delete["fields"] == {}


def test_a_collections_insert_of_250_contacts_makes_2_pushes_and_spends_2_apex(rig: Rig) -> None:
    rig.enable()
    apex = rig.apex()
    name = tag()
    rig.collection(contacts(200, name))
    rig.collection(contacts(50, name))
    assert rig.apex() == apex + 2  # spent as the DML commits, before anything is delivered
    usage = rig.org.control("GET", "usage")[APEX]
    assert usage["by_app"]["quotasync"] == apex + 2
    assert rig.sf.restful("limits")[APEX]["Remaining"] == usage["max"] - usage["used"]

    received = rig.pushes()
    assert sorted(len(r.verified()["changes"]) for r in received) == [50, 200]
    assert rig.flush()["pushes"] == 2


def test_a_bulk_ingest_of_450_contacts_makes_3_pushes(rig: Rig) -> None:
    rig.enable()
    apex = rig.apex()
    name = tag()
    (result,) = rig.sf.bulk2.Contact.insert(
        records=[{"LastName": name} for _ in range(450)], wait=0.1
    )
    assert result["numberRecordsProcessed"] == 450
    received = rig.pushes()
    assert sorted(len(r.verified()["changes"]) for r in received) == [50, 200, 200]
    assert {c["change"] for r in received for c in r.verified()["changes"]} == {"created"}
    assert rig.apex() == apex + 3


def test_task_and_event_dml_pushes_nothing(rig: Rig) -> None:
    rig.enable()
    apex = rig.apex()
    task: Any = rig.sf.restful("sobjects/Task", method="POST", json={"Subject": "Call"})
    rig.sf.restful(f"sobjects/Task/{task['id']}", method="PATCH", json={"Status": "Completed"})
    rig.sf.restful(
        "sobjects/Event",
        method="POST",
        json={"Subject": "Demo", "StartDateTime": "2026-12-01T10:00:00Z", "DurationInMinutes": 30},
    )
    assert rig.pushes() == []
    assert rig.apex() == apex


def test_one_operation_pushes_per_object_and_only_what_succeeded(rig: Rig) -> None:
    rig.enable()
    name = tag()
    mixed = [
        *contacts(2, name),
        {"attributes": {"type": "Lead"}, "LastName": name, "Company": "Acme"},
        {"attributes": {"type": "Contact"}},  # no LastName: refused
    ]
    results = rig.collection(mixed)
    assert [r["success"] for r in results] == [True, True, True, False]
    received = [r.verified()["changes"] for r in rig.pushes()]
    assert sorted((cs[0]["sobject"], len(cs)) for cs in received) == [("Contact", 2), ("Lead", 1)]
    pushed = {c["id"] for cs in received for c in cs}
    assert pushed == {r["id"] for r in results if r["success"]}


def test_rolled_back_dml_pushes_nothing(rig: Rig) -> None:
    rig.enable()
    apex = rig.apex()
    refused = rig.collection([*contacts(3, tag()), {"attributes": {"type": "Contact"}}], True)
    assert not any(r["success"] for r in refused)
    composite = {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "POST",
                "url": "/services/data/v62.0/sobjects/Contact",
                "referenceId": "ok",
                "body": {"LastName": tag()},
            },
            {
                "method": "POST",
                "url": "/services/data/v62.0/sobjects/Contact",
                "referenceId": "bad",
                "body": {"FirstName": "no last name"},
            },
        ],
    }
    rig.sf.restful("composite", method="POST", json=composite)
    assert rig.pushes() == []
    assert rig.apex() == apex


def test_each_composite_subrequest_is_its_own_operation(rig: Rig) -> None:
    rig.enable()
    subrequests = [
        {
            "method": "POST",
            "url": "/services/data/v62.0/sobjects/Account",
            "referenceId": "account",
            "body": {"Name": tag()},
        },
        {
            "method": "POST",
            "url": "/services/data/v62.0/sobjects/Contact",
            "referenceId": "contact",
            "body": {"LastName": tag(), "AccountId": "@{account.id}"},
        },
        {
            "method": "PATCH",
            "url": "/services/data/v62.0/sobjects/Account/@{account.id}",
            "referenceId": "rename",
            "body": {"Name": tag()},
        },
    ]
    rig.sf.restful("composite", method="POST", json={"compositeRequest": subrequests})
    received = [r.verified()["changes"] for r in rig.pushes()]
    assert [(cs[0]["sobject"], cs[0]["change"]) for cs in received] == [
        ("Account", "created"),
        ("Contact", "created"),
        ("Account", "updated"),
    ]


def test_records_created_through_the_control_api_are_pushed(rig: Rig) -> None:
    rig.enable()
    rig.org.control("POST", "records/Account", [{"Name": tag()}, {"Name": tag()}])
    (push,) = rig.pushes()
    changes = push.verified()["changes"]
    assert [(c["sobject"], c["change"]) for c in changes] == [("Account", "created")] * 2


# ---------------------------------------------------------------- Apex and refusals


def test_with_apex_spent_nothing_is_pushed_until_the_window_frees_room(rig: Rig) -> None:
    rig.enable()
    left = rig.org.control("GET", "usage")[APEX]
    spent = rig.org.control(
        "POST", "consume", {"app": "Marketing Cloud", "api": "apex", "calls": left["max"]}
    )
    assert spent["usage"]["used"] == left["max"]

    rig.contact()
    grown = rig.flush()
    assert (grown["pushes"], grown["suppressed_no_apex"]) == (0, 1)
    assert rig.receiver.take() == []

    # A day later the spent executions have left the rolling window: pushing resumes by itself.
    rig.org.control("POST", "clock", {"advance_seconds": DAY + 1})
    contact_id = rig.contact()
    (push,) = rig.pushes()
    assert push.verified()["changes"][0]["id"] == contact_id


def test_a_callback_off_this_machine_is_refused(rig: Rig) -> None:
    rig.enable(callback="http://192.0.2.7:8080/rts")
    apex = rig.apex()
    rig.contact()
    grown = rig.flush()
    assert (grown["pushes"], grown["refused"]) == (0, 1)
    assert rig.apex() == apex
    assert "loopback" in rig.org.control("GET", "rts")["last_error"]


# ---------------------------------------------------------------- delivery faults


def test_duplicate_rate_1_sends_every_push_twice_byte_for_byte(rig: Rig) -> None:
    rig.enable()
    rig.org.control("POST", "rts", {"duplicate_rate": 1})
    rig.contact()
    rig.contact()
    received = rig.pushes()
    assert len(received) == 4
    assert len({(r.body, r.headers["x-qs-signature"]) for r in received}) == 2
    grown = rig.flush()
    assert (grown["pushes"], grown["delivered"], grown["duplicates"]) == (2, 2, 2)


def test_delayed_pushes_never_hold_the_dml_answer_and_flush_sends_them_now(rig: Rig) -> None:
    rig.enable()
    state = rig.org.control("POST", "rts", {"max_delay_ms": 30_000, "reorder": True})
    assert state["faults"] == {"duplicate_rate": 0, "max_delay_ms": 30_000, "reorder": True}
    made = {rig.contact() for _ in range(4)}
    # Each save was answered while its push still waited (up to 30 s): all four are pending.
    assert rig.org.control("GET", "rts")["counters"]["pending"] == 4
    grown = rig.flush()
    assert (grown["pushes"], grown["delivered"]) == (4, 4)
    assert {r.verified()["changes"][0]["id"] for r in rig.receiver.take()} == made


def test_5xx_answers_are_retried_then_the_push_is_dropped(rig: Rig) -> None:
    rig.enable()
    rig.receiver.answers[:] = [503, 500]
    rig.contact()
    assert rig.flush()["delivered"] == 1
    retried = rig.receiver.take()
    assert len(retried) == 3
    assert len({(r.body, r.headers["x-qs-signature"]) for r in retried}) == 1

    rig.receiver.answers[:] = [503, 503, 503]
    rig.contact()
    grown = rig.flush()
    assert (grown["delivered"], grown["failed"]) == (1, 1)
    assert len(rig.receiver.take()) == 3
    assert "503" in rig.org.control("GET", "rts")["last_error"]


def test_a_receiver_that_is_not_there_fails_the_push(rig: Rig) -> None:
    with socket.socket() as probe:  # a port nobody listens on once it is closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rig.enable(callback=f"http://127.0.0.1:{port}/rts")
    rig.contact()
    grown = rig.flush()
    assert (grown["pushes"], grown["delivered"], grown["failed"]) == (1, 0, 1)
    assert "Connection" in rig.org.control("GET", "rts")["last_error"]


@pytest.mark.parametrize(
    "body",
    [
        {"duplicate_rate": 2},
        {"duplicate_rate": "half"},
        {"max_delay_ms": -1},
        {"max_delay_ms": 10**9},
        {"reorder": "yes"},
        {"shuffle": True},
    ],
)
def test_bad_delivery_faults_are_refused_and_change_nothing(
    module_org: SandboxOrg, body: dict[str, Any]
) -> None:
    before = module_org.control("GET", "rts")["faults"]
    answer = module_org.http().post(
        f"{module_org.config['admin_url']}/rts",
        json={"reorder": True, **body},
        headers={"Authorization": f"Bearer {module_org.config['admin_token']}"},
        timeout=30,
    )
    assert answer.status_code == 400
    assert answer.json()["error"]
    assert module_org.control("GET", "rts")["faults"] == before


def test_the_rts_control_api_needs_the_admin_token(module_org: SandboxOrg) -> None:
    url = f"{module_org.config['admin_url']}/rts/flush"
    assert module_org.http().post(url, timeout=30).status_code == 401
    with pytest.raises(requests.HTTPError):
        module_org.control("POST", "rts/flush", {"timeout_seconds": -1})


# ---------------------------------------------------------------- the CLI options


def test_the_cli_options_seed_one_enabled_setting_that_a_restart_updates(
    tmp_path: Path, receiver: Receiver
) -> None:
    state_dir = tmp_path / "seeded"
    org = start_sandbox(state_dir, "--rts-callback", receiver.url("/cli"), "--rts-secret", "one")
    try:
        assert org.config["rts_callback"] == receiver.url("/cli")
        assert org.config["rts_secret"] == "one"
        sf: Any = org.salesforce()
        (setting,) = sf.query("SELECT Id, Enabled__c, Secret__c FROM QS_Sync_Setting__c")["records"]
        assert (setting["Enabled__c"], setting["Secret__c"]) == (True, "one")
        sf.Contact.create({"LastName": tag()})
        org.control("POST", "rts/flush")
        (push,) = receiver.take()
        assert push.path == "/cli"
        push.verified("one")
    finally:
        org.stop()

    org = start_sandbox(state_dir, "--rts-callback", receiver.url("/cli"), "--rts-secret", "two")
    try:
        sf = org.salesforce()
        (again,) = sf.query("SELECT Id, Enabled__c, Secret__c FROM QS_Sync_Setting__c")["records"]
        assert (again["Id"], again["Enabled__c"], again["Secret__c"]) == (
            setting["Id"],
            True,
            "two",
        )
        sf.Contact.create({"LastName": tag()})
        org.control("POST", "rts/flush")
        (push,) = receiver.take()
        push.verified("two")
    finally:
        org.stop()


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--rts-callback", "http://example.com/rts"], "loopback"),
        (["--rts-callback", "ftp://127.0.0.1/rts"], "http"),
        (["--rts-secret", "s"], "--rts-callback"),
    ],
)
def test_the_cli_refuses_callbacks_it_would_not_push_to(
    tmp_path: Path, args: list[str], complaint: str
) -> None:
    result = CliRunner().invoke(app, ["sandbox", "--state-dir", str(tmp_path / "org"), *args])
    assert result.exit_code == 2
    assert complaint in result.output
    assert not (tmp_path / "org").exists()
