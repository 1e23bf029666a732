"""The sandbox's /__sandbox/ control API (faults, clock, usage, records, org), its input checking,
and what survives a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import requests
from simple_salesforce import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
)

from tests.sandbox_process import SandboxOrg

EPOCH = "2026-11-28T00:00:00Z"
ORG_QUERY = "SELECT Id FROM Organization"
OrgFactory = Callable[..., SandboxOrg]


def used(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["used"])


def raw_control(
    org: SandboxOrg,
    method: str,
    path: str,
    body: bytes | str | None = None,
    token: str | None = "admin",
) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = (
            f"Bearer {org.config['admin_token']}" if token == "admin" else f"Bearer {token}"
        )
    return org.http().request(
        method, f"{org.config['admin_url']}/{path}", data=body, headers=headers, timeout=30
    )


def contacts_named(org: SandboxOrg, last_name: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = org.control(
        "GET", f"records/Contact?where=LastName%20%3D%20%27{last_name}%27"
    )
    return found


def sobject(sf: Salesforce, name: str) -> SFType:
    """`sf.<name>`, typed."""
    return cast(SFType, getattr(sf, name))


def content(error: SalesforceError) -> Any:
    """The parsed JSON body simple-salesforce attached to an error."""
    body: Any = error.content
    return body


# ---------------------------------------------------------------- faults


def test_latency_delays_every_response_until_it_is_reset(new_org: OrgFactory) -> None:
    org = new_org()
    sf = org.salesforce()
    assert org.control("POST", "faults", {"latency_ms": 400})["latency_ms"] == 400
    started = time.monotonic()
    sf.query(ORG_QUERY)
    assert time.monotonic() - started >= 0.4
    assert org.control("GET", "faults")["injected"]["delayed"] == 1
    org.control("POST", "faults", {"latency_ms": 0})
    sf.query(ORG_QUERY)
    # Reset: the answer was not held (the org counts each answer it delays; a stopwatch would
    # also count the machine's other work).
    assert org.control("GET", "faults")["injected"]["delayed"] == 1


def test_an_error_rate_of_one_answers_server_unavailable_and_is_not_counted(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    sf = org.salesforce()
    sf.query(ORG_QUERY)
    org.control("POST", "faults", {"error_rate": 1.0})
    for _ in range(3):
        with pytest.raises(SalesforceGeneralError) as failure:
            sf.query(ORG_QUERY)
        assert failure.value.status == 503
        assert content(failure.value)[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert used(org) == 1
    org.control("POST", "faults", {"error_rate": 0})
    sf.query(ORG_QUERY)
    assert sf.api_usage["api-usage"].used == 2


def test_a_dropped_connection_gives_no_answer_but_the_write_was_carried_out(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    sf = org.salesforce()
    name = f"Dropped{uuid.uuid4().hex[:8]}"
    org.control("POST", "faults", {"drop_rate": 1.0})
    with pytest.raises(requests.ConnectionError):
        sobject(sf, "Contact").create({"LastName": name})
    org.control("POST", "faults", {"drop_rate": 0})
    assert len(contacts_named(org, name)) == 1
    assert sf.query(f"SELECT Id FROM Contact WHERE LastName = '{name}'")["totalSize"] == 1
    assert used(org) == 2  # the dropped call was counted: it was served


def test_a_lock_rate_of_one_fails_single_writes_and_every_record_of_a_collection(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    sf = org.salesforce()
    existing = sobject(sf, "Contact").create({"LastName": "Locked"})["id"]
    org.control("POST", "faults", {"lock_rate": 1.0})

    with pytest.raises(SalesforceMalformedRequest) as failure:
        sobject(sf, "Contact").create({"LastName": "NotWritten"})
    assert failure.value.status == 400
    assert content(failure.value)[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert "unable to obtain exclusive access" in content(failure.value)[0]["message"]
    with pytest.raises(SalesforceMalformedRequest) as failure:
        sobject(sf, "Contact").update(existing, {"FirstName": "Nope"})
    assert content(failure.value)[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"

    results: Any = sf.restful(
        "composite/sobjects",
        method="POST",
        data=json.dumps(
            {
                "allOrNone": False,
                "records": [
                    {"attributes": {"type": "Contact"}, "LastName": "NotWritten"} for _ in range(3)
                ],
            }
        ),
    )
    assert len(results) == 3
    for result in results:
        assert result["success"] is False
        assert result["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert contacts_named(org, "NotWritten") == []

    org.control("POST", "faults", {"lock_rate": 0})
    sobject(sf, "Contact").update(existing, {"FirstName": "Now"})
    assert sobject(sf, "Contact").get(existing)["FirstName"] == "Now"


def test_jitter_spreads_the_latency_of_each_answer_over_a_range(new_org: OrgFactory) -> None:
    org = new_org()
    sf = org.salesforce()
    set_to = org.control("POST", "faults", {"latency_ms": 100, "jitter_ms": 400})
    assert (set_to["latency_ms"], set_to["jitter_ms"]) == (100, 400)
    took = []
    for _ in range(8):
        started = time.monotonic()
        sf.query(ORG_QUERY)
        took.append(time.monotonic() - started)
    # Never sooner than the latency, and not all alike (eight draws from 400 ms all within
    # 50 ms of each other: about one run in a quarter of a million).
    assert min(took) >= 0.1
    assert max(took) - min(took) > 0.05, took
    assert org.control("GET", "faults")["injected"]["delayed"] == 8
    org.control("POST", "faults", {"latency_ms": 0, "jitter_ms": 0})
    sf.query(ORG_QUERY)
    assert org.control("GET", "faults")["injected"]["delayed"] == 8


def test_every_fault_that_strikes_is_counted_by_kind(new_org: OrgFactory) -> None:
    org = new_org()
    sf = org.salesforce()
    assert org.control("GET", "faults")["injected"] == {
        "server_error": 0,
        "lock": 0,
        "drop": 0,
        "drop_not_counted": 0,
        "delayed": 0,
        "expire_sessions": 0,
        "expired_sessions": 0,
    }
    org.control("POST", "faults", {"error_rate": 1})
    for _ in range(2):
        with pytest.raises(SalesforceGeneralError):
            sf.query(ORG_QUERY)
    org.control("POST", "faults", {"error_rate": 0, "lock_rate": 1})
    records = [{"attributes": {"type": "Contact"}, "LastName": "Locked"} for _ in range(3)]
    sf.restful(
        "composite/sobjects",
        method="POST",
        data=json.dumps({"allOrNone": False, "records": records}),
    )  # three records refused: three locks
    org.control("POST", "faults", {"lock_rate": 0, "drop_rate": 1})
    with pytest.raises(requests.ConnectionError):
        sf.query(ORG_QUERY)
    org.control("POST", "faults", {"drop_rate": 0})
    org.salesforce("sync")  # a second session, so that expiring ends two
    expired = org.control("POST", "faults", {"expire_sessions": True})
    assert expired["expired_sessions"] == 2
    # A refusal the org does not count (the session has expired), then its answer dropped.
    counted = used(org)
    org.control("POST", "faults", {"drop_rate": 1})
    with pytest.raises(requests.ConnectionError):
        sf.query(ORG_QUERY)
    org.control("POST", "faults", {"drop_rate": 0})
    assert used(org) == counted

    injected = org.control("GET", "faults")["injected"]
    assert injected == {
        "server_error": 2,
        "lock": 3,
        "drop": 2,
        "drop_not_counted": 1,
        "delayed": 0,
        "expire_sessions": 1,
        "expired_sessions": 2,
    }
    assert expired["injected"]["expired_sessions"] == 2  # the POST's answer shows them too
    # The settings are shown beside the counters; a GET changes nothing.
    shown = org.control("GET", "faults")
    assert shown["error_rate"] == shown["lock_rate"] == shown["drop_rate"] == 0


def test_bad_fault_settings_change_nothing(new_org: OrgFactory) -> None:
    org = new_org()
    response = raw_control(org, "POST", "faults", '{"latency_ms": 300, "lock_rate": 7}')
    assert response.status_code == 400
    assert "lock_rate must be between 0 and 1" in response.json()["error"]
    assert org.control("GET", "faults")["latency_ms"] == 0
    response = raw_control(org, "POST", "faults", '{"jitter_ms": -1}')
    assert response.status_code == 400 and "jitter_ms" in response.json()["error"]


def test_calls_counted_since_the_start_stay_counted_when_the_window_moves_on(
    new_org: OrgFactory,
) -> None:
    org = new_org("--speed", "1", "--epoch", EPOCH, "--session-timeout-minutes", "0")
    sf = org.salesforce()
    for _ in range(3):
        sf.query(ORG_QUERY)
    org.control("POST", "consume", {"app": "Data Loader", "calls": 50})
    assert org.control("GET", "counted")["DailyApiRequests"] == {"Data Loader": 50, "quotasync": 3}
    org.control("POST", "clock", {"advance_seconds": 25 * 3600})
    # The window has forgotten them; the count since the start has not.
    assert org.control("GET", "usage")["DailyApiRequests"]["by_app"] == {}
    sf.query(ORG_QUERY)
    counted = org.control("GET", "counted")
    assert counted["DailyApiRequests"] == {"Data Loader": 50, "quotasync": 4}
    assert counted["DailyBulkApiBatches"] == {}


def test_records_changed_and_deleted_through_the_control_api_move_their_modstamp(
    new_org: OrgFactory,
) -> None:
    org = new_org("--speed", "1", "--epoch", EPOCH, "--session-timeout-minutes", "0")
    made = org.control("POST", "records/Contact", [{"LastName": "Changing"}, {"LastName": "Going"}])
    changing, going = made[0]["id"], made[1]["id"]
    before = contacts_named(org, "Changing")[0]["SystemModstamp"]
    org.control("POST", "clock", {"advance_seconds": 60})
    changed = org.control("PATCH", f"records/Contact/{changing}", {"Title": "CFO"})
    assert changed == {"id": changing, "success": True, "errors": []}
    org.control("DELETE", f"records/Contact/{going}")

    sf = org.salesforce()
    after = sobject(sf, "Contact").get(changing)
    assert after["Title"] == "CFO"
    assert after["SystemModstamp"] > before
    gone = sf.query_all(
        f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{going}'", include_deleted=True
    )
    assert gone["records"][0]["IsDeleted"] is True
    assert sf.api_usage["api-usage"].used == 2  # the control calls spent nothing

    again = raw_control(org, "DELETE", f"records/Contact/{going}")
    assert again.status_code == 400
    assert again.json()["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    bad = raw_control(org, "PATCH", f"records/Contact/{changing}", '{"Nonsense__c": 1}')
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["statusCode"] == "INVALID_FIELD"


# ---------------------------------------------------------------- the control API itself


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "usage"),
        ("GET", "counted"),
        ("POST", "consume"),
        ("POST", "load"),
        ("POST", "faults"),
        ("GET", "faults"),
        ("GET", "clock"),
        ("POST", "clock"),
        ("GET", "records/Contact"),
        ("POST", "records/Contact"),
        ("GET", "org"),
    ],
)
def test_the_control_api_needs_the_admin_token(org: SandboxOrg, method: str, path: str) -> None:
    body = json.dumps({"app": "Marketing Cloud", "calls": 1, "error_rate": 1})
    for token in (None, "not-the-admin-token", org.token()["access_token"]):
        response = raw_control(org, method, path, body, token=token)
        assert response.status_code == 401, (token, response.text)
        assert "admin_token" in response.json()["error"]
    assert org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("Marketing Cloud") is None


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        (
            "consume",
            '{"app": "Marketing Cloud", "api": "DailyNonsense", "calls": 5}',
            "unknown api",
        ),
        ("consume", '{"app": "Marketing Cloud", "calls": -5}', "calls must be at least"),
        ("consume", '{"app": "Marketing Cloud", "calls": "many"}', "calls must be a number"),
        ("consume", '{"app": "Marketing Cloud", "calls": 2.5}', "calls must be a whole number"),
        ("consume", '{"calls": 5}', "app must name"),
        ("consume", '{"app": "Marketing Cloud", "calls": Infinity}', "calls must be"),
        ("consume", "this is not json", "not JSON"),
        ("consume", "[1, 2]", "JSON object"),
        ("load", '{"app": "Marketing Cloud", "calls_per_hour": -1}', "calls_per_hour"),
        ("load", '{"app": "Marketing Cloud", "calls_per_hour": Infinity}', "calls_per_hour"),
        ("load", '{"app": "Marketing Cloud", "calls_per_hour": NaN}', "calls_per_hour"),
        ("faults", '{"explode": true}', "unknown fault"),
        ("faults", '{"error_rate": 2}', "error_rate must be between"),
        ("faults", '{"latency_ms": NaN}', "latency_ms"),
        ("faults", '{"drop_rate": "always"}', "drop_rate must be a number"),
        ("records/Contact", "{not json", "not JSON"),
        ("records/Contact", "[]", "post a record"),
    ],
)
def test_bad_control_input_answers_400_with_a_clear_message(
    org: SandboxOrg, path: str, body: str, words: str
) -> None:
    before = org.control("GET", "usage")
    response = raw_control(org, "POST", path, body)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert words in message
    assert "Traceback" not in response.text
    # Nothing was changed by the refused request, and the org still answers.
    assert org.control("GET", "usage") == before
    faults = org.control("POST", "faults", {})
    assert faults["error_rate"] == 0 and faults["latency_ms"] == 0
    org.salesforce().query(ORG_QUERY)


def test_moving_the_clock_of_a_real_clock_sandbox_is_refused_with_a_reason(
    org: SandboxOrg,
) -> None:
    response = raw_control(org, "POST", "clock", '{"advance_seconds": 60}')
    assert response.status_code == 400
    assert "real clock" in response.json()["error"]


def test_impossible_clock_moves_are_refused_and_time_goes_on(new_org: OrgFactory) -> None:
    org = new_org("--speed", "0", "--epoch", EPOCH)
    for body in (
        '{"advance_seconds": -60}',
        '{"advance_seconds": NaN}',
        '{"advance_seconds": 1e20}',
        "{}",
    ):
        response = raw_control(org, "POST", "clock", body)
        assert response.status_code == 400, (body, response.text)
        assert "advance_seconds" in response.json()["error"]
        assert org.control("GET", "clock")["now"].startswith("2026-11-28T00:00:00")
    org.salesforce().query(ORG_QUERY)


def test_an_unknown_record_type_in_the_control_api_is_not_found(org: SandboxOrg) -> None:
    response = raw_control(org, "GET", "records/NoSuchObject__c")
    assert response.status_code == 404
    assert "NoSuchObject__c" in response.json()["error"]


def test_control_calls_are_never_counted(new_org: OrgFactory) -> None:
    org = new_org("--speed", "1", "--epoch", EPOCH)
    sf = org.salesforce()
    sf.query(ORG_QUERY)
    org.control("GET", "usage")
    org.control("GET", "org")
    org.control("GET", "clock")
    org.control("POST", "clock", {"advance_seconds": 1})
    org.control("POST", "faults", {"latency_ms": 0})
    org.control("GET", "records/Contact")
    org.control("POST", "records/Contact", {"LastName": "Seeded"})
    org.control("POST", "load", {"app": "Marketing Cloud", "calls_per_hour": 0})
    raw_control(org, "POST", "consume", "not json")
    assert used(org) == 1
    sf.query(ORG_QUERY)
    assert sf.api_usage["api-usage"].used == 2


def test_the_clock_moves_forward_and_new_records_carry_the_virtual_time(
    new_org: OrgFactory,
) -> None:
    org = new_org("--speed", "0", "--epoch", EPOCH, "--session-timeout-minutes", "0")
    assert org.control("GET", "clock")["now"].startswith("2026-11-28T00:00:00")
    moved = org.control("POST", "clock", {"advance_seconds": 3 * 86400 + 3600})
    assert moved["now"].startswith("2026-12-01T01:00:00")
    assert moved["timestamp"] == pytest.approx(1796086800, abs=1)
    sf = org.salesforce()
    created = sobject(sf, "Contact").create({"LastName": "Timely"})
    record = sobject(sf, "Contact").get(created["id"])
    assert record["CreatedDate"].startswith("2026-12-01T01:00:00")
    assert org.control("GET", "org")["now"].startswith("2026-12-01T01:00:00")


def test_records_posted_through_the_control_api_are_visible_over_rest(org: SandboxOrg) -> None:
    name = f"Controlled{uuid.uuid4().hex[:8]}"
    created = raw_control(
        org, "POST", "records/Contact", json.dumps([{"LastName": name}, {"LastName": name}])
    )
    assert created.status_code == 201
    assert all(r["success"] for r in created.json())
    found = org.salesforce().query(f"SELECT Id, OwnerId FROM Contact WHERE LastName = '{name}'")
    assert found["totalSize"] == 2
    assert {r["Id"] for r in found["records"]} == {r["id"] for r in created.json()}
    refused = raw_control(org, "POST", "records/Contact", json.dumps({"FirstName": "NoLastName"}))
    assert refused.status_code == 400
    assert refused.json()[0]["success"] is False


def test_the_org_endpoint_describes_edition_and_allocations(org: SandboxOrg) -> None:
    info = org.control("GET", "org")
    assert info["org_id"] == org.config["org_id"]
    assert info["edition"] == "enterprise"
    assert info["organization_type"] == "Enterprise Edition"
    assert info["api_access"] is True
    assert info["allocations"]["DailyApiRequests"] == 120_000


# ---------------------------------------------------------------- restart


def stable_config(org: SandboxOrg) -> dict[str, Any]:
    """sandbox.json without what a restart may change (the port)."""
    return {
        k: v for k, v in org.config.items() if k not in ("instance_url", "login_url", "admin_url")
    }


def test_a_restarted_sandbox_keeps_records_usage_sessions_and_credentials(
    new_org: OrgFactory, tmp_path: Path
) -> None:
    state = tmp_path / "kept"
    first = new_org("--speed", "1", "--epoch", EPOCH, state_dir=state)
    ca_before = Path(first.config["ca_file"]).read_bytes()
    token = first.token()
    refresh = (
        first.http()
        .post(
            f"{first.config['login_url']}/services/oauth2/token",
            data={
                "grant_type": "password",
                "client_id": first.app()["client_id"],
                "client_secret": first.app()["client_secret"],
                "username": first.user("sync")["username"],
                "password": first.user("sync")["password"],
            },
            timeout=30,
        )
        .json()["refresh_token"]
    )
    sf = first.salesforce()
    created = sobject(sf, "Contact").create({"LastName": "Survivor"})
    sf.query(ORG_QUERY)
    first.control("POST", "consume", {"app": "Marketing Cloud", "calls": 40})
    first.control("POST", "clock", {"advance_seconds": 3600})
    usage_before = first.control("GET", "usage")["DailyApiRequests"]
    first.stop()

    second = new_org("--speed", "1", "--epoch", EPOCH, state_dir=state)
    assert stable_config(second) == stable_config(first)
    assert Path(second.config["ca_file"]).read_bytes() == ca_before
    assert second.control("GET", "usage")["DailyApiRequests"] == usage_before
    assert second.control("GET", "clock")["now"] >= "2026-11-28T01:00:00"  # the advance stayed

    # The access token issued before the restart still works, against the new address.
    again = Salesforce(
        session_id=token["access_token"],
        instance_url=second.instance_url,
        session=second.http(),
        version=second.config["api_version"],
    )
    assert sobject(again, "Contact").get(created["id"])["LastName"] == "Survivor"
    again.query(ORG_QUERY)
    assert again.api_usage["api-usage"].used == usage_before["used"] + 2
    # So does the refresh token, and the password of every user.
    response = second.http().post(
        f"{second.config['login_url']}/services/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": refresh,
            "client_id": second.app()["client_id"],
            "client_secret": second.app()["client_secret"],
        },
        timeout=30,
    )
    assert response.status_code == 200
    for handle in ("admin", "sync"):
        second.salesforce(handle).query(ORG_QUERY)


def test_a_restart_with_another_edition_reports_the_new_edition_everywhere(
    new_org: OrgFactory, tmp_path: Path
) -> None:
    state = tmp_path / "changing"
    first = new_org("--edition", "enterprise", state_dir=state)
    first.salesforce().query(ORG_QUERY)
    first.stop()

    second = new_org("--edition", "developer", state_dir=state)
    sf = second.salesforce()
    records = sf.query("SELECT OrganizationType FROM Organization")["records"]
    assert records[0]["OrganizationType"] == "Developer Edition"
    assert sf.api_usage["api-usage"].total == 15_000
    assert second.config["organization_type"] == "Developer Edition"


def test_records_the_org_cannot_hold_get_a_400_naming_the_problem(org: SandboxOrg) -> None:
    response = raw_control(org, "POST", "records/Account", json.dumps({"Name": "N", "NumberOfEmployees": "inf"}))  # fmt: skip
    assert response.status_code == 400
    assert response.json()[0]["errors"][0]["statusCode"] == "INVALID_TYPE_ON_FIELD_IN_RECORD"
    odd = raw_control(org, "GET", "records/Task?where=ActivityDate%20%3D%20LAST_N_DAYS:9999999999")
    assert odd.status_code == 200, odd.text


def test_a_virtual_clock_restarted_without_an_epoch_carries_on_from_where_it_was(
    new_org: OrgFactory, tmp_path: Path
) -> None:
    state = tmp_path / "fast"
    first = new_org("--speed", "600", state_dir=state)
    time.sleep(1)
    before = first.control("GET", "clock")["timestamp"]
    first.stop()
    second = new_org("--speed", "600", state_dir=state)
    assert second.control("GET", "clock")["timestamp"] >= before


def test_a_restart_whose_clock_would_go_back_is_refused(
    new_org: OrgFactory, tmp_path: Path
) -> None:
    state = tmp_path / "back"
    first = new_org("--speed", "0", "--epoch", "2027-01-01T00:00:00Z", state_dir=state)
    first.stop()
    command = [sys.executable, "-m", "quotasync.cli", "sandbox", "--state-dir", str(state)]
    refused = subprocess.run(
        [*command, "--speed", "0", "--epoch", EPOCH],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "before" in refused.stderr and "2027-01-01" in refused.stderr
    assert "Traceback" not in refused.stderr
