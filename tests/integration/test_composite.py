"""Composite (`POST /composite`): subrequests with `@{ref.field}` references, in one API call."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from simple_salesforce import SalesforceMalformedRequest

from tests.integration.support import first_error
from tests.sandbox_process import SandboxOrg

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


def keyed_task(key: str) -> dict[str, Any]:
    return {"attributes": {"type": "Task"}, "Subject": "in a batch", "QS_Activity_Id__c": key}


BAD_TASK: dict[str, Any] = {"attributes": {"type": "Task"}, "Subject": "bad", "Bogus__c": 1}


def test_a_failing_record_in_a_collection_undoes_every_subrequest_under_all_or_none(
    sf: Any,
) -> None:
    key = "w" + uuid.uuid4().hex[:12]
    single = {
        "method": "POST",
        "url": f"{BASE}/sobjects/Task",
        "referenceId": "single",
        "body": {"Subject": "single", "QS_Activity_Id__c": f"{key}-0"},
    }
    good = collection([keyed_task(f"{key}-1"), keyed_task(f"{key}-2")], all_or_none=False)
    good["referenceId"] = "good"
    mixed = collection([keyed_task(f"{key}-3"), BAD_TASK], all_or_none=False)
    mixed["referenceId"] = "mixed"
    after = collection([keyed_task(f"{key}-4")], all_or_none=False)
    after["referenceId"] = "after"
    responses = composite(sf, [single, good, mixed, after], allOrNone=True)
    halted = "PROCESSING_HALTED"
    assert [r["referenceId"] for r in responses] == ["single", "good", "mixed", "after"]
    assert responses[0]["body"][0]["errorCode"] == halted
    assert responses[1]["body"][0]["errorCode"] == halted
    assert responses[3]["body"][0]["errorCode"] == halted
    assert [r["errors"][0]["statusCode"] for r in responses[2]["body"]] == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INVALID_FIELD",
    ]
    assert tasks_keyed(sf, key) == 0


def test_a_collection_s_own_all_or_none_holds_inside_a_composite_that_is_not(sf: Any) -> None:
    key = "o" + uuid.uuid4().hex[:12]
    strict = collection([keyed_task(f"{key}-strict-1"), BAD_TASK], all_or_none=True)
    strict["referenceId"] = "strict"
    lenient = collection([keyed_task(f"{key}-lenient-1"), BAD_TASK], all_or_none=False)
    lenient["referenceId"] = "lenient"
    single = {
        "method": "POST",
        "url": f"{BASE}/sobjects/Task",
        "referenceId": "single",
        "body": {"Subject": "single", "QS_Activity_Id__c": f"{key}-single"},
    }
    responses = composite(sf, [strict, lenient, single], allOrNone=False)
    assert [r["httpStatusCode"] for r in responses] == [200, 200, 201]
    strict_results, lenient_results = responses[0]["body"], responses[1]["body"]
    assert strict_results[0] == {
        "success": False,
        "errors": [
            {
                "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                "message": "Record rolled back because not all records were valid and the request was using AllOrNone header",
                "fields": [],
            }
        ],
    }
    assert strict_results[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert lenient_results[0]["success"] is True
    assert lenient_results[1]["errors"][0]["statusCode"] == "INVALID_FIELD"
    assert tasks_keyed(sf, f"{key}-strict") == 0
    assert tasks_keyed(sf, f"{key}-lenient") == 1
    assert tasks_keyed(sf, f"{key}-single") == 1


def test_a_created_record_s_sub_answer_says_where_it_lives(sf: Any) -> None:
    key = "l" + uuid.uuid4().hex[:12]
    responses = composite(
        sf,
        [
            {
                "method": "POST",
                # The type as the client spells it; the Location names the object properly.
                "url": f"{BASE}/sobjects/account",
                "referenceId": "account",
                "body": {"Name": "Located " + key},
            },
            collection([keyed_task(f"{key}-1")], all_or_none=False),
            {
                "method": "GET",
                "url": f"{BASE}/sobjects/Account/@{{account.id}}?fields=Name",
                "referenceId": "read",
            },
        ],
    )
    account_id = responses[0]["body"]["id"]
    assert responses[0]["httpHeaders"] == {"Location": f"{BASE}/sobjects/Account/{account_id}"}
    assert responses[1]["httpHeaders"] == {}
    assert responses[2]["httpHeaders"] == {}
    location = responses[0]["httpHeaders"]["Location"]
    fetched = sf.restful(location.removeprefix(f"{BASE}/"), params={"fields": "Name"})
    assert fetched["Name"] == "Located " + key


# ---------------------------------------------------------------- query pages


@pytest.fixture(scope="module")
def many(org: SandboxOrg) -> str:
    """2,100 Tasks loaded through the control API (which does not spend quota)."""
    tag = "m" + uuid.uuid4().hex[:10]
    rows = [{"Subject": f"page {n}", "QS_Activity_Id__c": f"{tag}-{n:05d}"} for n in range(2100)]
    results = org.control("POST", "records/Task", rows)
    assert len(results) == 2100 and all(r["success"] for r in results)
    return tag


def ordered_query(tag: str, kind: str = "query") -> str:
    soql = f"SELECT QS_Activity_Id__c FROM Task WHERE QS_Activity_Id__c LIKE '{tag}-%' ORDER BY QS_Activity_Id__c"
    return f"{BASE}/{kind}?q={quote(soql)}"


def keys(page: dict[str, Any]) -> list[str]:
    return [r["QS_Activity_Id__c"] for r in page["records"]]


@pytest.mark.parametrize("kind", ["query", "queryAll"])
def test_a_query_subrequest_pages_like_the_query_resource(sf: Any, many: str, kind: str) -> None:
    expected = [f"{many}-{n:05d}" for n in range(2100)]
    sf.query("SELECT COUNT() FROM Account")
    start = used(sf)
    [first] = composite(
        sf, [{"method": "GET", "url": ordered_query(many, kind), "referenceId": "q"}]
    )
    page = first["body"]
    assert first["httpStatusCode"] == 200
    assert (page["totalSize"], page["done"]) == (2100, False)
    assert keys(page) == expected[:2000]
    assert page["nextRecordsUrl"].startswith(f"{BASE}/query/01g")
    assert used(sf) == start + 1
    # The cursor answers the plain resource and a later composite alike, page for page.
    plain = sf.query_more(page["nextRecordsUrl"], identifier_is_url=True)
    [more] = composite(
        sf, [{"method": "GET", "url": page["nextRecordsUrl"], "referenceId": "more"}]
    )
    assert used(sf) == start + 3
    assert more["httpStatusCode"] == 200
    assert more["body"] == plain
    assert (plain["totalSize"], plain["done"]) == (2100, True)
    assert "nextRecordsUrl" not in plain
    assert keys(plain) == expected[2000:]


def test_a_query_subrequest_takes_its_batch_size_from_its_own_headers(sf: Any, many: str) -> None:
    subrequest = {
        "method": "GET",
        "url": ordered_query(many),
        "referenceId": "q",
        "httpHeaders": {"Sforce-Query-Options": "batchSize=500"},
    }
    pages = [composite(sf, [subrequest])[0]["body"]]
    while not pages[-1]["done"]:
        [more] = composite(
            sf, [{"method": "GET", "url": pages[-1]["nextRecordsUrl"], "referenceId": "more"}]
        )
        pages.append(more["body"])
    assert [len(p["records"]) for p in pages] == [500, 500, 500, 500, 100]
    assert [k for p in pages for k in keys(p)] == [f"{many}-{n:05d}" for n in range(2100)]


def test_a_query_and_its_next_page_in_one_composite(sf: Any, many: str) -> None:
    """query-more by reference: `@{q.nextRecordsUrl}` as the whole URL of a later subrequest."""
    responses = composite(
        sf,
        [
            {"method": "GET", "url": ordered_query(many), "referenceId": "q"},
            {"method": "GET", "url": "@{q.nextRecordsUrl}", "referenceId": "more"},
        ],
    )
    assert [r["httpStatusCode"] for r in responses] == [200, 200]
    assert len(responses[0]["body"]["records"]) == 2000
    assert responses[1]["body"]["done"] is True
    assert keys(responses[1]["body"]) == [f"{many}-{n:05d}" for n in range(2000, 2100)]
