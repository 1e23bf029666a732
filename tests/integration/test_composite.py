"""Composite (`POST /composite`): subrequests with `@{ref.field}` references, in one API call."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from simple_salesforce import SalesforceMalformedRequest

from tests.integration.support import first_error

BASE = "/services/data/v62.0"


def composite(sf: Any, subrequests: list[dict[str, Any]], **extra: Any) -> Any:
    body = {"compositeRequest": subrequests, **extra}
    return sf.restful("composite", method="POST", data=json.dumps(body))["compositeResponse"]


def used(sf: Any) -> int:
    return int(sf.api_usage["api-usage"].used)


def test_subrequests_use_earlier_results_and_cost_one_call(sf: Any) -> None:
    name = "Composite " + uuid.uuid4().hex[:8]
    sf.query("SELECT COUNT() FROM Account")
    start = used(sf)
    responses = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Account",
                "referenceId": "account",
                "body": {"Name": name},
            },
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Contact",
                "referenceId": "contact",
                "body": {"LastName": "Ref", "AccountId": "@{account.id}"},
            },
            {
                "method": "GET",
                "url": f"{BASE}/sobjects/Contact/@{{contact.id}}?fields=Id,AccountId",
                "referenceId": "read",
            },
            {
                "method": "GET",
                # References sit unencoded in the URL, as in Salesforce's own examples.
                "url": f"{BASE}/query?q="
                + quote("SELECT Id, Account.Name FROM Contact WHERE Id = ")
                + "'@{contact.id}'",
                "referenceId": "query",
            },
        ],
    )
    assert used(sf) == start + 1
    assert [r["referenceId"] for r in responses] == ["account", "contact", "read", "query"]
    assert [r["httpStatusCode"] for r in responses] == [201, 201, 200, 200]
    account_id = responses[0]["body"]["id"]
    assert account_id.startswith("001")
    assert responses[0]["body"]["success"] is True
    assert all(isinstance(r["httpHeaders"], dict) for r in responses)
    assert responses[2]["body"]["AccountId"] == account_id
    assert responses[3]["body"]["records"][0]["Account"]["Name"] == name


def test_a_failed_subrequest_does_not_undo_the_others_without_all_or_none(
    sf: Any,
) -> None:
    key = "k" + uuid.uuid4().hex[:12]
    responses = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Task",
                "referenceId": "good",
                "body": {"Subject": "kept", "QS_Activity_Id__c": key},
            },
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Contact",
                "referenceId": "bad",
                "body": {"FirstName": "No last name"},
            },
        ],
    )
    assert [r["httpStatusCode"] for r in responses] == [201, 400]
    assert responses[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.query(f"SELECT Id FROM Task WHERE QS_Activity_Id__c = '{key}'")["totalSize"] == 1


def test_all_or_none_rolls_back_every_subrequest(sf: Any) -> None:
    key = "k" + uuid.uuid4().hex[:12]
    responses = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Task",
                "referenceId": "first",
                "body": {"Subject": "rolled back", "QS_Activity_Id__c": key},
            },
            {
                "method": "PATCH",
                "url": f"{BASE}/sobjects/Task/@{{first.id}}",
                "referenceId": "second",
                "body": {"Subject": "changed"},
            },
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Task",
                "referenceId": "bad",
                "body": {"Subject": "x", "Bogus__c": 1},
            },
        ],
        allOrNone=True,
    )
    assert [r["httpStatusCode"] for r in responses] == [400, 400, 400]
    assert responses[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert responses[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert responses[2]["body"][0]["errorCode"] == "INVALID_FIELD"
    found = sf.query(f"SELECT Id FROM Task WHERE QS_Activity_Id__c = '{key}'", include_deleted=True)
    assert found["totalSize"] == 0


def test_a_reference_to_a_failed_subrequest_is_processing_halted(sf: Any) -> None:
    responses = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Account",
                "referenceId": "account",
                "body": {},
            },
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Contact",
                "referenceId": "contact",
                "body": {"LastName": "x", "AccountId": "@{account.id}"},
            },
        ],
    )
    assert responses[0]["httpStatusCode"] == 400
    assert responses[1]["httpStatusCode"] == 400
    assert responses[1]["body"][0]["errorCode"] == "PROCESSING_HALTED"


def test_25_subrequests_are_allowed_and_26_are_refused(sf: Any) -> None:
    def read(n: int) -> dict[str, Any]:
        return {"method": "GET", "url": f"{BASE}/limits", "referenceId": f"r{n}"}

    assert len(composite(sf, [read(n) for n in range(25)])) == 25
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        composite(sf, [read(n) for n in range(26)])
    assert excinfo.value.status == 400
    assert first_error(excinfo)["errorCode"]


def collection(records: list[dict[str, Any]], all_or_none: bool) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"{BASE}/composite/sobjects",
        "referenceId": "collection",
        "body": {"allOrNone": all_or_none, "records": records},
    }


def tasks_keyed(sf: Any, key: str) -> int:
    soql = f"SELECT Id FROM Task WHERE QS_Activity_Id__c LIKE '{key}%'"
    return int(sf.query_all(soql, include_deleted=True)["totalSize"])


def test_all_or_none_undoes_a_collection_that_kept_its_own_all_or_none(sf: Any) -> None:
    key = "n" + uuid.uuid4().hex[:12]
    responses = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Task",
                "referenceId": "before",
                "body": {"Subject": "before", "QS_Activity_Id__c": f"{key}-0"},
            },
            collection(
                [
                    {
                        "attributes": {"type": "Task"},
                        "Subject": "in",
                        "QS_Activity_Id__c": f"{key}-1",
                    }
                ],
                all_or_none=True,
            ),
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Task",
                "referenceId": "bad",
                "body": {"Subject": "x", "Bogus__c": 1},
            },
        ],
        allOrNone=True,
    )
    assert [r["httpStatusCode"] for r in responses] == [400, 400, 400]
    assert tasks_keyed(sf, key) == 0


def test_an_all_or_none_composite_makes_its_collections_all_or_none(sf: Any) -> None:
    key = "v" + uuid.uuid4().hex[:12]
    records: list[dict[str, Any]] = [
        {"attributes": {"type": "Task"}, "Subject": "good", "QS_Activity_Id__c": f"{key}-1"},
        {"attributes": {"type": "Task"}, "Subject": "bad", "Bogus__c": 1},
    ]
    responses = composite(sf, [collection(records, all_or_none=False)], allOrNone=True)
    results = responses[0]["body"]
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert tasks_keyed(sf, key) == 0


def test_a_referenced_value_with_quotes_and_backslashes_is_carried_as_data(sf: Any) -> None:
    subject = 'He said "hi" \\ left ' + uuid.uuid4().hex[:8]
    responses = composite(
        sf,
        [
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Task",
                "referenceId": "first",
                "body": {"Subject": subject},
            },
            {
                "method": "GET",
                "url": f"{BASE}/sobjects/Task/@{{first.id}}?fields=Subject",
                "referenceId": "read",
            },
            {
                "method": "POST",
                "url": f"{BASE}/sobjects/Task",
                "referenceId": "copy",
                "body": {"Subject": "@{read.Subject}", "Description": "copy of @{read.Subject}"},
            },
        ],
    )
    assert [r["httpStatusCode"] for r in responses] == [201, 200, 201]
    copy = sf.Task.get(responses[2]["body"]["id"])
    assert copy["Subject"] == subject
    assert copy["Description"] == "copy of " + subject
