"""sObject REST (`/sobjects/...`): create, read, update, delete, upsert, describe, replication."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from simple_salesforce import (
    SalesforceMalformedRequest,
    SalesforceResourceNotFound,
)

from tests.sandbox_process import SandboxOrg

CHECKSUM_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def checksum(id15: str) -> str:
    """Salesforce's id checksum (a letter for each five characters, from which of them are
    upper case), written out independently of the sandbox's ids.py."""
    out = ""
    for chunk in (id15[0:5], id15[5:10], id15[10:15]):
        bits = sum(1 << i for i, ch in enumerate(chunk) if ch.isascii() and ch.isupper())
        out += CHECKSUM_ALPHABET[bits]
    return out


def assert_valid_id(record_id: str, prefix: str) -> None:
    assert len(record_id) == 18 and record_id.isalnum()
    assert record_id[:3] == prefix
    assert record_id[15:] == checksum(record_id[:15])


def test_the_checksum_matches_the_real_examples() -> None:
    assert checksum("001D000000IRFma") == "IAH"
    assert checksum("003RO0000035WQg") == "YAM"


def error_of(excinfo: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    content = excinfo.value.content
    assert isinstance(content, list) and len(content) == 1, content
    return dict(content[0])


def tag() -> str:
    return "s" + uuid.uuid4().hex[:12]


@pytest.fixture(scope="module")
def contact_id(sf: Any) -> str:
    return str(sf.query("SELECT Id FROM Contact LIMIT 1")["records"][0]["Id"])


# ---------------------------------------------------------------- create and ids


def test_create_answers_201_with_id_success_and_no_errors(sf: Any) -> None:
    response = sf.Task.create({"Subject": "Call"}, headers=None)
    assert response["success"] is True
    assert response["errors"] == []
    assert_valid_id(response["id"], "00T")
    raw = sf.session.post(
        f"{sf.base_url}sobjects/Task/",
        headers=sf.headers,
        json={"Subject": "Raw call"},
    )
    assert raw.status_code == 201
    assert set(raw.json()) == {"id", "success", "errors"}


def test_each_object_gets_ids_with_its_key_prefix_and_checksum(sf: Any, contact_id: str) -> None:
    account = sf.Account.create({"Name": "Prefix Co " + tag()})["id"]
    assert_valid_id(account, "001")
    assert_valid_id(sf.Contact.create({"LastName": "Prefix", "AccountId": account})["id"], "003")
    assert_valid_id(sf.Lead.create({"LastName": "Prefix", "Company": "Prefix Co"})["id"], "00Q")
    opportunity = sf.Opportunity.create(
        {
            "Name": "Deal",
            "StageName": "Prospecting",
            "CloseDate": "2026-12-31",
            "AccountId": account,
        }
    )
    assert_valid_id(opportunity["id"], "006")
    assert_valid_id(sf.Task.create({"Subject": "x", "WhoId": contact_id})["id"], "00T")
    event = sf.Event.create(
        {"Subject": "Meet", "StartDateTime": "2026-12-01T10:00:00Z", "DurationInMinutes": 30}
    )
    assert_valid_id(event["id"], "00U")
    profile = sf.query("SELECT Id FROM Profile LIMIT 1")["records"][0]["Id"]
    handle = tag()
    user = sf.User.create(
        {
            "Username": f"{handle}@example.com",
            "LastName": "Prefix",
            "Email": f"{handle}@example.com",
            "ProfileId": profile,
        }
    )
    assert_valid_id(user["id"], "005")


def test_seeded_and_system_ids_carry_a_valid_checksum(sf: Any) -> None:
    for soql, prefix in [
        ("SELECT Id FROM Contact LIMIT 5", "003"),
        ("SELECT Id FROM Lead LIMIT 5", "00Q"),
        ("SELECT Id FROM Account LIMIT 5", "001"),
        ("SELECT Id FROM Opportunity LIMIT 5", "006"),
        ("SELECT Id FROM User LIMIT 5", "005"),
        ("SELECT Id FROM Organization", "00D"),
    ]:
        records = sf.query(soql)["records"]
        assert records
        for record in records:
            assert_valid_id(record["Id"], prefix)


# ---------------------------------------------------------------- read, update, delete


def test_get_returns_every_field_including_system_fields(sf: Any, contact_id: str) -> None:
    created = sf.Task.create({"Subject": "Read me", "WhoId": contact_id, "QS_Opens__c": 2})
    record = sf.Task.get(created["id"])
    assert record["attributes"] == {
        "type": "Task",
        "url": f"/services/data/v62.0/sobjects/Task/{created['id']}",
    }
    assert record["Id"] == created["id"]
    assert record["Subject"] == "Read me"
    assert record["WhoId"] == contact_id
    assert record["QS_Opens__c"] == 2
    assert record["IsDeleted"] is False
    assert record["Status"] == "Not Started"
    for name in ("SystemModstamp", "CreatedDate", "LastModifiedDate"):
        assert datetime.strptime(record[name], "%Y-%m-%dT%H:%M:%S.%f%z")
    assert record["CreatedById"].startswith("005")
    assert "Description" in record and record["Description"] is None


def test_get_with_fields_returns_only_those(sf: Any) -> None:
    created = sf.Task.create({"Subject": "Few fields", "Priority": "High"})
    record = sf.restful(f"sobjects/Task/{created['id']}", params={"fields": "Subject,Priority"})
    assert record == {
        "attributes": {
            "type": "Task",
            "url": f"/services/data/v62.0/sobjects/Task/{created['id']}",
        },
        "Subject": "Few fields",
        "Priority": "High",
    }


def test_update_answers_204_and_moves_system_modstamp_forward(sf: Any) -> None:
    created = sf.Task.create({"Subject": "Before"})
    before = sf.Task.get(created["id"])
    time.sleep(0.01)
    assert sf.Task.update(created["id"], {"Subject": "After", "Status": "Completed"}) == 204
    after = sf.Task.get(created["id"])
    assert after["Subject"] == "After"
    assert after["IsClosed"] is True
    assert after["SystemModstamp"] > before["SystemModstamp"]
    assert after["LastModifiedDate"] > before["LastModifiedDate"]
    assert after["CreatedDate"] == before["CreatedDate"]


def test_delete_answers_204_and_the_record_is_then_not_found(sf: Any) -> None:
    created = sf.Task.create({"Subject": "Doomed"})
    assert sf.Task.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound) as excinfo:
        sf.Task.get(created["id"])
    assert excinfo.value.status == 404
    assert error_of(excinfo)["errorCode"] == "NOT_FOUND"


def test_a_well_formed_id_nobody_has_is_not_found(sf: Any) -> None:
    id15 = "00T5g0zzzzzzzzz"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.get(id15 + checksum(id15))


# ---------------------------------------------------------------- upsert by external id


def test_upsert_by_external_id_creates_then_updates(sf: Any) -> None:
    key = tag()
    assert sf.Task.upsert(f"QS_Activity_Id__c/{key}", {"Subject": "First"}) == 201
    assert sf.Task.upsert(f"QS_Activity_Id__c/{key}", {"Subject": "Second"}) == 200
    record = sf.Task.get_by_custom_id("QS_Activity_Id__c", key)
    assert record["Subject"] == "Second"
    assert record["QS_Activity_Id__c"] == key
    found = sf.query(f"SELECT Id FROM Task WHERE QS_Activity_Id__c = '{key}'")
    assert found["totalSize"] == 1
    assert found["records"][0]["Id"] == record["Id"]


def test_upsert_answers_with_id_and_created_flag(sf: Any) -> None:
    key = tag()
    created = sf.Task.upsert(f"QS_Activity_Id__c/{key}", {"Subject": "a"}, raw_response=True)
    body = created.json()
    assert body["created"] is True and body["success"] is True
    assert_valid_id(body["id"], "00T")
    updated = sf.Task.upsert(f"QS_Activity_Id__c/{key}", {"Subject": "b"}, raw_response=True)
    assert updated.json() == {"id": body["id"], "success": True, "errors": [], "created": False}


def test_get_by_unknown_custom_id_is_not_found(sf: Any) -> None:
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.get_by_custom_id("QS_Activity_Id__c", tag())


def test_upsert_on_a_field_that_is_not_an_external_id_is_refused(sf: Any) -> None:
    with pytest.raises(SalesforceResourceNotFound) as excinfo:
        sf.Task.upsert("Subject/abc", {"Priority": "Low"})
    assert error_of(excinfo)["errorCode"] == "NOT_FOUND"


# ---------------------------------------------------------------- describe


@pytest.mark.parametrize("name", ["Task", "Event"])
def test_describe_shows_the_activity_custom_fields(sf: Any, name: str) -> None:
    description = getattr(sf, name).describe()
    assert description["name"] == name
    assert description["keyPrefix"] == {"Task": "00T", "Event": "00U"}[name]
    fields = {f["name"]: f for f in description["fields"]}
    assert fields["QS_Activity_Id__c"]["externalId"] is True
    assert fields["QS_Activity_Id__c"]["custom"] is True
    assert fields["QS_Activity_Id__c"]["type"] == "string"
    for number in ("QS_Opens__c", "QS_Clicks__c"):
        assert fields[number]["type"] == "double"
        assert fields[number]["externalId"] is False
    assert fields["Id"]["type"] == "id"
    assert fields["SystemModstamp"]["type"] == "datetime"
    assert fields["WhoId"]["referenceTo"] == ["Contact", "Lead"]


def test_task_subtype_is_described_as_create_only(sf: Any) -> None:
    fields = {f["name"]: f for f in sf.Task.describe()["fields"]}
    assert fields["TaskSubtype"]["createable"] is True
    assert fields["TaskSubtype"]["updateable"] is False
    assert {v["value"] for v in fields["TaskSubtype"]["picklistValues"]} == {
        "Task",
        "Email",
        "ListEmail",
        "Cadence",
        "Call",
        "LinkedIn",
    }


def test_describe_global_lists_the_objects_with_key_prefixes(sf: Any) -> None:
    described = sf.describe()
    assert described is not None
    prefixes = {o["name"]: o["keyPrefix"] for o in described["sobjects"]}
    assert prefixes["Contact"] == "003"
    assert prefixes["Lead"] == "00Q"
    assert prefixes["Account"] == "001"
    assert prefixes["Opportunity"] == "006"
    assert prefixes["Task"] == "00T"
    assert prefixes["Event"] == "00U"
    assert prefixes["User"] == "005"


def test_describe_of_an_unknown_object_is_not_found(sf: Any) -> None:
    with pytest.raises(SalesforceResourceNotFound) as excinfo:
        sf.Nope__c.describe()
    assert error_of(excinfo)["errorCode"] == "NOT_FOUND"


# ---------------------------------------------------------------- replication


def org_now(org: SandboxOrg) -> datetime:
    return datetime.strptime(org.control("GET", "clock")["now"], "%Y-%m-%dT%H:%M:%S.%f%z")


def test_deleted_and_updated_list_records_changed_in_the_window(sf: Any, org: SandboxOrg) -> None:
    start = org_now(org) - timedelta(seconds=1)
    kept = sf.Task.create({"Subject": "kept"})["id"]
    gone = sf.Task.create({"Subject": "gone"})["id"]
    sf.Task.delete(gone)
    end = org_now(org) + timedelta(seconds=1)

    deleted = sf.Task.deleted(start, end)
    deleted_ids = {r["id"] for r in deleted["deletedRecords"]}
    assert gone in deleted_ids and kept not in deleted_ids
    entry = next(r for r in deleted["deletedRecords"] if r["id"] == gone)
    assert entry["deletedDate"].endswith("+0000")
    assert "earliestDateAvailable" in deleted and "latestDateCovered" in deleted

    updated = sf.Task.updated(start, end)
    assert kept in updated["ids"] and gone not in updated["ids"]
    assert "latestDateCovered" in updated


def test_a_replication_window_ending_before_it_starts_is_refused(sf: Any, org: SandboxOrg) -> None:
    now = org_now(org)
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.Task.updated(now, now - timedelta(hours=1))
    assert error_of(excinfo)["errorCode"] == "INVALID_REPLICATION_DATE"


# ---------------------------------------------------------------- validation


def refused(call: Any, *args: Any) -> dict[str, Any]:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        call(*args)
    assert excinfo.value.status == 400
    return error_of(excinfo)


def test_a_contact_without_last_name_is_required_field_missing(sf: Any) -> None:
    error = refused(sf.Contact.create, {"FirstName": "Ada"})
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert error["fields"] == ["LastName"]
    assert "LastName" in error["message"]


def test_an_unknown_field_is_invalid_field(sf: Any) -> None:
    error = refused(sf.Task.create, {"Subject": "x", "Bogus__c": 1})
    assert error["errorCode"] == "INVALID_FIELD"
    assert "Bogus__c" in error["message"]


def test_writing_a_read_only_field_is_refused(sf: Any) -> None:
    error = refused(sf.Task.create, {"Subject": "x", "CreatedDate": "2026-01-01T00:00:00Z"})
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error["fields"] == ["CreatedDate"]
    task = sf.Task.create({"Subject": "x"})["id"]
    error = refused(sf.Task.update, task, {"SystemModstamp": "2026-01-01T00:00:00Z"})
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"


def test_a_string_too_long_is_refused(sf: Any) -> None:
    error = refused(sf.Task.create, {"Subject": "x" * 256})
    assert error["errorCode"] == "STRING_TOO_LONG"
    assert error["fields"] == ["Subject"]
    assert sf.Task.create({"Subject": "x" * 255})["success"] is True


def test_a_malformed_who_id_is_refused(sf: Any) -> None:
    error = refused(sf.Task.create, {"Subject": "x", "WhoId": "not-an-id"})
    assert error["errorCode"] == "MALFORMED_ID"
    assert error["fields"] == ["WhoId"]


def test_a_who_id_nobody_has_is_an_invalid_cross_reference(sf: Any) -> None:
    id15 = "0035g0zzzzzzzzz"
    error = refused(sf.Task.create, {"Subject": "x", "WhoId": id15 + checksum(id15)})
    assert error["errorCode"] == "INVALID_CROSS_REFERENCE_KEY"


def test_an_event_needs_a_start(sf: Any) -> None:
    error = refused(sf.Event.create, {"Subject": "x", "DurationInMinutes": 30})
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert "StartDateTime" in error["message"]


def test_an_event_needs_an_end_or_a_duration(sf: Any) -> None:
    error = refused(sf.Event.create, {"Subject": "x", "StartDateTime": "2026-12-01T10:00:00Z"})
    assert error["errorCode"] == "REQUIRED_FIELD_MISSING"


def test_an_event_with_end_and_duration_needs_them_to_agree(sf: Any) -> None:
    error = refused(
        sf.Event.create,
        {
            "Subject": "x",
            "StartDateTime": "2026-12-01T10:00:00Z",
            "EndDateTime": "2026-12-01T11:00:00Z",
            "DurationInMinutes": 30,
        },
    )
    assert error["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    agreed = sf.Event.create(
        {
            "Subject": "x",
            "StartDateTime": "2026-12-01T10:00:00Z",
            "EndDateTime": "2026-12-01T11:00:00Z",
            "DurationInMinutes": 60,
        }
    )
    assert agreed["success"] is True


def test_an_event_derives_its_end_from_the_duration(sf: Any) -> None:
    created = sf.Event.create(
        {"Subject": "x", "StartDateTime": "2026-12-01T10:00:00Z", "DurationInMinutes": 45}
    )
    event = sf.Event.get(created["id"])
    assert event["EndDateTime"] == "2026-12-01T10:45:00.000+0000"
    assert event["ActivityDateTime"] == "2026-12-01T10:00:00.000+0000"
    assert event["DurationInMinutes"] == 45
    from_end = sf.Event.create(
        {
            "Subject": "y",
            "StartDateTime": "2026-12-01T10:00:00Z",
            "EndDateTime": "2026-12-01T12:00:00Z",
        }
    )
    assert sf.Event.get(from_end["id"])["DurationInMinutes"] == 120


def test_task_subtype_is_set_on_create_and_refused_on_update(sf: Any) -> None:
    created = sf.Task.create({"Subject": "Email sent", "TaskSubtype": "Email"})
    assert sf.Task.get(created["id"])["TaskSubtype"] == "Email"
    assert sf.Task.get(sf.Task.create({"Subject": "plain"})["id"])["TaskSubtype"] == "Task"
    error = refused(sf.Task.update, created["id"], {"TaskSubtype": "Call"})
    assert error["errorCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert error["fields"] == ["TaskSubtype"]


def test_update_of_a_deleted_record_is_not_found_and_says_it_is_deleted(sf: Any) -> None:
    created = sf.Task.create({"Subject": "x"})
    sf.Task.delete(created["id"])
    with pytest.raises(SalesforceResourceNotFound) as caught:
        sf.Task.update(created["id"], {"Subject": "y"})
    assert error_code(caught.value) == "ENTITY_IS_DELETED"
    with pytest.raises(SalesforceResourceNotFound) as again:
        sf.Task.delete(created["id"])
    assert error_code(again.value) == "ENTITY_IS_DELETED"


def error_code(error: SalesforceResourceNotFound) -> str:
    content: Any = error.content
    return str(content[0]["errorCode"])


def test_an_external_id_with_a_percent_sign_is_taken_as_written(sf: Any) -> None:
    value = "a%20b-" + uuid.uuid4().hex[:8]
    # upsert sends the path as given, so the % is encoded here; get_by_custom_id encodes itself.
    result = sf.Task.upsert(f"QS_Activity_Id__c/{value.replace('%', '%25')}", {"Subject": "pct"})
    assert result == 201
    found = sf.query(f"SELECT Id, QS_Activity_Id__c FROM Task WHERE Subject = 'pct' AND QS_Activity_Id__c = '{value}'")  # fmt: skip
    assert found["totalSize"] == 1
    by_value = sf.Task.get_by_custom_id("QS_Activity_Id__c", value)
    assert by_value["Id"] == found["records"][0]["Id"]


def test_id_is_an_id_lookup_field_in_the_url_too(sf: Any) -> None:
    created = sf.Task.create({"Subject": "by Id"})
    assert sf.Task.get_by_custom_id("Id", created["id"])["Subject"] == "by Id"
    assert sf.Task.get_by_custom_id("Id", created["id"][:15])["Id"] == created["id"]
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.get_by_custom_id("Id", "00T000000000000AAA")
    assert sf.Task.upsert(f"Id/{created['id']}", {"Subject": "changed"}) == 200
    assert sf.Task.get(created["id"])["Subject"] == "changed"
