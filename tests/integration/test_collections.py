"""sObject Collections (`/composite/sobjects`) through simple-salesforce's `restful`."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from simple_salesforce import SalesforceMalformedRequest

from tests.integration.support import first_error


def tag() -> str:
    return "c" + uuid.uuid4().hex[:12]


def task(**values: Any) -> dict[str, Any]:
    return {"attributes": {"type": "Task"}, **values}


def send(sf: Any, path: str, method: str, body: Any = None) -> Any:
    data = json.dumps(body) if body is not None else None
    return sf.restful(path, method=method, data=data)


def used(sf: Any) -> int:
    return int(sf.api_usage["api-usage"].used)


def tasks_tagged(sf: Any, key: str) -> list[dict[str, Any]]:
    soql = f"SELECT Id, Subject, QS_Activity_Id__c FROM Task WHERE QS_Activity_Id__c LIKE '{key}%'"
    return list(sf.query(soql)["records"])


# ---------------------------------------------------------------- create


def test_create_answers_one_result_per_record_in_order(sf: Any) -> None:
    key = tag()
    records = [task(Subject=f"n{n}", QS_Activity_Id__c=f"{key}-{n}") for n in range(3)]
    results = send(sf, "composite/sobjects", "POST", {"allOrNone": False, "records": records})
    assert len(results) == 3
    for result in results:
        assert result["success"] is True
        assert result["errors"] == []
        assert result["id"].startswith("00T") and len(result["id"]) == 18
    stored = {r["Id"]: r["Subject"] for r in tasks_tagged(sf, key)}
    assert [stored[r["id"]] for r in results] == ["n0", "n1", "n2"]


def test_a_bad_record_fails_alone_when_all_or_none_is_off(sf: Any) -> None:
    key = tag()
    records = [
        task(Subject="good", QS_Activity_Id__c=f"{key}-0"),
        {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
        task(Subject="x" * 256, QS_Activity_Id__c=f"{key}-2"),
        task(Subject="also good", QS_Activity_Id__c=f"{key}-3"),
    ]
    results = send(sf, "composite/sobjects", "POST", {"allOrNone": False, "records": records})
    assert [r["success"] for r in results] == [True, False, False, True]
    missing = results[1]["errors"][0]
    assert missing["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert missing["fields"] == ["LastName"]
    assert missing["message"]
    assert "errorCode" not in missing
    assert results[2]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert sorted(r["Subject"] for r in tasks_tagged(sf, key)) == ["also good", "good"]


def test_all_or_none_rolls_back_the_good_records_too(sf: Any) -> None:
    key = tag()
    records = [
        task(Subject="good", QS_Activity_Id__c=f"{key}-0"),
        task(Subject="bad", QS_Activity_Id__c=f"{key}-1", Bogus__c=1),
        task(Subject="good too", QS_Activity_Id__c=f"{key}-2"),
    ]
    results = send(sf, "composite/sobjects", "POST", {"allOrNone": True, "records": records})
    assert [r["success"] for r in results] == [False, False, False]
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    for good in (results[0], results[2]):
        assert good["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert tasks_tagged(sf, key) == []


def test_all_or_none_writes_everything_when_all_records_are_good(sf: Any) -> None:
    key = tag()
    records = [task(Subject=f"n{n}", QS_Activity_Id__c=f"{key}-{n}") for n in range(2)]
    results = send(sf, "composite/sobjects", "POST", {"allOrNone": True, "records": records})
    assert all(r["success"] for r in results)
    assert len(tasks_tagged(sf, key)) == 2


def test_more_than_200_records_is_exceeded_id_limit(sf: Any) -> None:
    key = tag()
    records = [task(Subject="x", QS_Activity_Id__c=f"{key}-{n}") for n in range(201)]
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        send(sf, "composite/sobjects", "POST", {"records": records})
    assert excinfo.value.status == 400
    assert first_error(excinfo)["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert tasks_tagged(sf, key) == []


def test_a_collections_request_is_one_api_call_whatever_its_size(sf: Any) -> None:
    key = tag()
    sf.query("SELECT COUNT() FROM Account")
    start = used(sf)
    records = [task(Subject="x", QS_Activity_Id__c=f"{key}-{n}") for n in range(200)]
    results = send(sf, "composite/sobjects", "POST", {"records": records})
    assert len(results) == 200 and all(r["success"] for r in results)
    assert used(sf) == start + 1
    ids = ",".join(r["id"] for r in results)
    deleted = sf.restful("composite/sobjects", method="DELETE", params={"ids": ids})
    assert len(deleted) == 200 and all(r["success"] for r in deleted)
    assert used(sf) == start + 2


# ---------------------------------------------------------------- update


def test_update_changes_records_by_id_and_reports_failures_in_place(sf: Any) -> None:
    key = tag()
    created = send(
        sf,
        "composite/sobjects",
        "POST",
        {"records": [task(Subject=f"n{n}", QS_Activity_Id__c=f"{key}-{n}") for n in range(2)]},
    )
    first, second = (r["id"] for r in created)
    results = send(
        sf,
        "composite/sobjects",
        "PATCH",
        {
            "allOrNone": False,
            "records": [
                task(Id=first, Subject="changed"),
                task(Id=second, TaskSubtype="Call"),
                task(Subject="no id"),
            ],
        },
    )
    assert results[0] == {"id": first, "success": True, "errors": []}
    assert results[1]["success"] is False
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD_FOR_INSERT_UPDATE"
    assert results[2]["success"] is False
    assert results[2]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    subjects = {r["Id"]: r["Subject"] for r in tasks_tagged(sf, key)}
    assert subjects == {first: "changed", second: "n1"}


# ---------------------------------------------------------------- upsert


def test_upsert_by_external_id_reports_created_then_updated(sf: Any) -> None:
    key = tag()
    path = "composite/sobjects/Task/QS_Activity_Id__c"
    records = [task(Subject=f"v1 {n}", QS_Activity_Id__c=f"{key}-{n}") for n in range(3)]
    first = send(sf, path, "PATCH", {"allOrNone": False, "records": records})
    assert [r["created"] for r in first] == [True, True, True]
    assert all(r["success"] for r in first)

    again = [task(Subject=f"v2 {n}", QS_Activity_Id__c=f"{key}-{n}") for n in range(4)]
    second = send(sf, path, "PATCH", {"allOrNone": False, "records": again})
    assert [r["created"] for r in second] == [False, False, False, True]
    assert [r["id"] for r in second[:3]] == [r["id"] for r in first]

    stored = tasks_tagged(sf, key)
    assert len(stored) == 4
    assert sorted(r["Subject"] for r in stored) == ["v2 0", "v2 1", "v2 2", "v2 3"]


def test_retrying_the_same_upsert_creates_no_duplicates(sf: Any) -> None:
    key = tag()
    path = "composite/sobjects/Task/QS_Activity_Id__c"
    body = {"records": [task(Subject="same", QS_Activity_Id__c=f"{key}-{n}") for n in range(5)]}
    send(sf, path, "PATCH", body)
    send(sf, path, "PATCH", body)
    send(sf, path, "PATCH", body)
    assert len(tasks_tagged(sf, key)) == 5


def test_upsert_on_a_field_that_is_not_an_external_id_is_refused(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        send(sf, "composite/sobjects/Task/Subject", "PATCH", {"records": [task(Subject="x")]})
    assert first_error(excinfo)["errorCode"] == "INVALID_FIELD"


def test_upsert_with_all_or_none_rolls_back(sf: Any) -> None:
    key = tag()
    path = "composite/sobjects/Task/QS_Activity_Id__c"
    records = [
        task(Subject="good", QS_Activity_Id__c=f"{key}-0"),
        task(Subject="bad", QS_Activity_Id__c=f"{key}-1", Priority="x" * 41),
    ]
    results = send(sf, path, "PATCH", {"allOrNone": True, "records": records})
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert tasks_tagged(sf, key) == []


# ---------------------------------------------------------------- retrieve and delete


def test_retrieve_returns_the_fields_asked_with_null_for_unknown_ids(sf: Any) -> None:
    key = tag()
    created = send(
        sf,
        "composite/sobjects",
        "POST",
        {"records": [task(Subject=f"n{n}", QS_Activity_Id__c=f"{key}-{n}") for n in range(2)]},
    )
    first, second = (r["id"] for r in created)
    unknown = "00T5g0zzzzzzzzzEAA"
    found = sf.restful(
        "composite/sobjects/Task",
        params={"ids": f"{first},{unknown},{second}", "fields": "Id,Subject"},
    )
    assert found[1] is None
    assert found[0] == {
        "attributes": {"type": "Task", "url": f"/services/data/v62.0/sobjects/Task/{first}"},
        "Id": first,
        "Subject": "n0",
    }
    assert found[2]["Subject"] == "n1"


def test_delete_by_ids_removes_records_and_reports_unknown_ones(sf: Any) -> None:
    key = tag()
    created = send(
        sf,
        "composite/sobjects",
        "POST",
        {"records": [task(Subject=f"n{n}", QS_Activity_Id__c=f"{key}-{n}") for n in range(2)]},
    )
    first, second = (r["id"] for r in created)
    results = sf.restful(
        "composite/sobjects", method="DELETE", params={"ids": f"{first},bogus,{second}"}
    )
    assert results[0] == {"id": first, "success": True, "errors": []}
    assert results[1]["success"] is False
    assert results[1]["errors"][0]["statusCode"] == "MALFORMED_ID"
    assert results[2]["success"] is True
    assert tasks_tagged(sf, key) == []
    everything = sf.query(
        f"SELECT Id, IsDeleted FROM Task WHERE QS_Activity_Id__c LIKE '{key}%'",
        include_deleted=True,
    )
    assert all(r["IsDeleted"] for r in everything["records"])
    assert everything["totalSize"] == 2


def test_delete_with_all_or_none_keeps_everything_when_one_fails(sf: Any) -> None:
    key = tag()
    created = send(
        sf,
        "composite/sobjects",
        "POST",
        {"records": [task(Subject="keep", QS_Activity_Id__c=f"{key}-0")]},
    )
    record_id = created[0]["id"]
    results = sf.restful(
        "composite/sobjects",
        method="DELETE",
        params={"ids": f"{record_id},00T5g0zzzzzzzzzEAA", "allOrNone": "true"},
    )
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["success"] is False
    assert [r["Id"] for r in tasks_tagged(sf, key)] == [record_id]


# ---------------------------------------------------------------- allOrNone and bad input


def test_rolled_back_creates_report_no_id_but_rolled_back_updates_keep_theirs(sf: Any) -> None:
    key = tag()
    created = send(sf, "composite/sobjects", "POST", {"records": [task(Subject="u", QS_Activity_Id__c=f"{key}-u")]})  # fmt: skip
    results = send(
        sf,
        "composite/sobjects",
        "POST",
        {
            "allOrNone": True,
            "records": [task(Subject="new", QS_Activity_Id__c=f"{key}-n"), task(Bogus__c=1)],
        },
    )
    assert results[0] == {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": results[0]["errors"][0]["message"],
                "fields": [],
            }
        ],
    }
    updated = send(
        sf,
        "composite/sobjects",
        "PATCH",
        {
            "allOrNone": True,
            "records": [
                task(Id=created[0]["id"], Subject="v"),
                task(Id=created[0]["id"], Bogus__c=1),
            ],
        },
    )
    assert updated[0]["id"] == created[0]["id"] and updated[0]["success"] is False
    upserted = send(
        sf,
        "composite/sobjects/Task/QS_Activity_Id__c",
        "PATCH",
        {
            "allOrNone": True,
            "records": [
                task(QS_Activity_Id__c=f"{key}-u"),
                task(QS_Activity_Id__c=f"{key}-x"),
                task(QS_Activity_Id__c=f"{key}-y", Bogus__c=1),
            ],
        },
    )
    assert upserted[0]["id"] == created[0]["id"]
    assert "id" not in upserted[1]
    assert [t["QS_Activity_Id__c"] for t in tasks_tagged(sf, key)] == [f"{key}-u"]


def test_a_record_whose_event_times_overflow_fails_alone_and_all_or_none_undoes_the_rest(
    sf: Any,
) -> None:
    key = tag()
    event = {"attributes": {"type": "Event"}, "StartDateTime": "9999-12-31T23:00:00Z", "DurationInMinutes": 120}  # fmt: skip
    results = send(
        sf,
        "composite/sobjects",
        "POST",
        {
            "allOrNone": True,
            "records": [task(Subject="kept?", QS_Activity_Id__c=f"{key}-1"), event],
        },
    )
    assert results[1]["errors"][0]["statusCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert tasks_tagged(sf, key) == []
    # The savepoint was closed: a later plain create is kept.
    send(sf, "composite/sobjects", "POST", {"records": [task(QS_Activity_Id__c=f"{key}-2")]})
    assert len(tasks_tagged(sf, key)) == 1


@pytest.mark.parametrize(
    "body",
    [{"ids": 5, "fields": ["Id"]}, {"ids": [5], "fields": ["Id"]}, {"ids": ["x"], "fields": "Id"}],
)
def test_retrieve_ids_and_fields_must_be_lists_of_strings(sf: Any, body: dict[str, Any]) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        send(sf, "composite/sobjects/Task", "POST", body)
    assert excinfo.value.status == 400
    assert first_error(excinfo)["errorCode"] == "JSON_PARSER_ERROR"
