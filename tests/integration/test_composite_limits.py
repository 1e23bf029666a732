"""Composite's limits: one API call for the whole request, at most 25 subrequests, and at most five
of them sObject Collections or query operations (Query, QueryAll, query-more)."""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

import pytest
from simple_salesforce import SalesforceMalformedRequest

from tests.integration.test_composite import BASE, composite, tasks_keyed, used
from tests.sandbox_process import SandboxOrg

# The sandbox's wording (a documented choice in docs/SANDBOX.md): quotasync never sends such a
# request, and a client that did would see exactly this.
TOO_MANY = [
    {
        "message": "The request can\u2019t contain more than 5 sObject Collections or query operations.",
        "errorCode": "LIMIT_EXCEEDED",
    }
]


def org_used(org: SandboxOrg) -> int:
    """DailyApiRequests spent, as the control API counts them (not itself a call)."""
    return int(org.control("GET", "usage")["DailyApiRequests"]["used"])


def query(soql: str, reference: str, kind: str = "query") -> dict[str, Any]:
    return {"method": "GET", "url": f"{BASE}/{kind}?q={quote(soql)}", "referenceId": reference}


def create_tasks(key: str, count: int, reference: str) -> dict[str, Any]:
    records = [
        {"attributes": {"type": "Task"}, "Subject": "batch", "QS_Activity_Id__c": f"{key}-{n}"}
        for n in range(count)
    ]
    return {
        "method": "POST",
        "url": f"{BASE}/composite/sobjects",
        "referenceId": reference,
        "body": {"allOrNone": False, "records": records},
    }


def create_task(key: str, reference: str) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"{BASE}/sobjects/Task",
        "referenceId": reference,
        "body": {"Subject": "single", "QS_Activity_Id__c": key},
    }


def refused(sf: Any, subrequests: list[dict[str, Any]]) -> Any:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        composite(sf, subrequests)
    assert excinfo.value.status == 400
    return excinfo.value.content


def test_five_collections_writing_1000_records_and_20_more_subrequests_cost_one_call(
    org: SandboxOrg, sf: Any
) -> None:
    key = "c" + uuid.uuid4().hex[:12]
    sf.query("SELECT COUNT() FROM Account")  # settles the header's figure
    before_header, before_org = used(sf), org_used(org)
    subrequests = [create_tasks(f"{key}-{n}", 200, f"batch{n}") for n in range(5)]
    subrequests += [create_task(f"{key}-single-{n}", f"single{n}") for n in range(20)]
    responses = composite(sf, subrequests)
    assert [r["httpStatusCode"] for r in responses] == [200] * 5 + [201] * 20
    assert all(all(r["success"] for r in responses[n]["body"]) for n in range(5))
    assert used(sf) == before_header + 1
    assert org_used(org) == before_org + 1
    assert tasks_keyed(sf, key) == 1020


def test_five_queries_are_one_call(org: SandboxOrg, sf: Any) -> None:
    before = org_used(org)
    subrequests = [query("SELECT Id FROM Account LIMIT 1", f"q{n}") for n in range(3)]
    subrequests += [query("SELECT Id FROM Contact LIMIT 1", f"a{n}", "queryAll") for n in range(2)]
    responses = composite(sf, subrequests)
    assert [r["httpStatusCode"] for r in responses] == [200] * 5
    assert org_used(org) == before + 1


@pytest.mark.parametrize(
    "sixth",
    [
        pytest.param(lambda key: query("SELECT Id FROM Lead LIMIT 1", "sixth"), id="query"),
        pytest.param(
            lambda key: query("SELECT Id FROM Lead LIMIT 1", "sixth", "queryAll"), id="queryAll"
        ),
        pytest.param(lambda key: create_tasks(key, 1, "sixth"), id="collections-create"),
        pytest.param(
            lambda key: {
                "method": "PATCH",
                "url": f"{BASE}/composite/sobjects/Task/QS_Activity_Id__c",
                "referenceId": "sixth",
                "body": {"records": [{"attributes": {"type": "Task"}, "QS_Activity_Id__c": key}]},
            },
            id="collections-upsert",
        ),
        pytest.param(
            lambda key: {
                "method": "GET",
                "url": f"{BASE}/composite/sobjects/Account?ids=001000000000000AAA&fields=Id",
                "referenceId": "sixth",
            },
            id="collections-retrieve",
        ),
        pytest.param(
            lambda key: {
                "method": "DELETE",
                "url": f"{BASE}/composite/sobjects?ids=00T000000000000AAA",
                "referenceId": "sixth",
            },
            id="collections-delete",
        ),
        pytest.param(
            lambda key: {
                "method": "GET",
                "url": f"{BASE}/query/01gABCDEF-2000",
                "referenceId": "sixth",
            },
            id="query-more",
        ),
    ],
)
def test_a_sixth_collections_or_query_subrequest_refuses_the_whole_request(
    org: SandboxOrg, sf: Any, sixth: Any
) -> None:
    key = "s" + uuid.uuid4().hex[:12]
    five = [create_tasks(f"{key}-{n}", 2, f"batch{n}") for n in range(3)]
    five += [query("SELECT Id FROM Account LIMIT 1", f"q{n}") for n in range(2)]
    before = org_used(org)
    content = refused(sf, [create_task(f"{key}-single", "single"), *five, sixth(f"{key}-x")])
    assert content == TOO_MANY
    # Admitted, then refused by the resource: counted once, like any other malformed request.
    assert org_used(org) == before + 1
    assert tasks_keyed(sf, key) == 0  # nothing ran


def test_a_referenced_url_that_makes_a_sixth_query_is_refused_and_undone(
    org: SandboxOrg, sf: Any
) -> None:
    """A URL that is wholly a reference can only be told once resolved: the request is then
    refused half-way, and what its earlier subrequests wrote is undone."""
    key, listed = "r" + uuid.uuid4().hex[:12], "l" + uuid.uuid4().hex[:12]
    org.control(
        "POST", "records/Task", [{"QS_Activity_Id__c": f"{listed}-{n}"} for n in range(201)]
    )
    paged = query(f"SELECT Id FROM Task WHERE QS_Activity_Id__c LIKE '{listed}-%'", "paged")
    paged["httpHeaders"] = {"Sforce-Query-Options": "batchSize=200"}  # so it has a next page
    subrequests = [
        create_task(f"{key}-single", "single"),
        create_tasks(key, 3, "batch"),
        paged,
        *[query("SELECT Id FROM Lead LIMIT 1", f"q{n}") for n in range(3)],
        {"method": "GET", "url": "@{paged.nextRecordsUrl}", "referenceId": "more"},
    ]
    before = org_used(org)
    assert refused(sf, subrequests) == TOO_MANY
    assert org_used(org) == before + 1
    assert tasks_keyed(sf, key) == 0


def test_26_subrequests_are_refused_with_limit_exceeded(org: SandboxOrg, sf: Any) -> None:
    key = "t" + uuid.uuid4().hex[:12]
    before = org_used(org)
    content = refused(sf, [create_task(f"{key}-{n}", f"r{n}") for n in range(26)])
    assert content == [
        {
            "message": "The request can\u2019t contain more than 25 operations.",
            "errorCode": "LIMIT_EXCEEDED",
        }
    ]
    assert org_used(org) == before + 1
    assert tasks_keyed(sf, key) == 0


def test_a_nested_composite_is_refused_in_its_own_answer(sf: Any) -> None:
    key = "n" + uuid.uuid4().hex[:12]
    nested = {
        "method": "POST",
        "url": f"{BASE}/composite",
        "referenceId": "nested",
        "body": {"compositeRequest": [create_task(f"{key}-inner", "inner")]},
    }
    responses = composite(sf, [create_task(f"{key}-outer", "outer"), nested])
    assert [r["httpStatusCode"] for r in responses] == [201, 400]
    assert responses[1]["body"][0]["errorCode"] == "INVALID_API_INPUT"
    assert tasks_keyed(sf, f"{key}-inner") == 0
    assert tasks_keyed(sf, f"{key}-outer") == 1


def test_a_refused_request_spends_the_call_the_header_reports(sf: Any) -> None:
    """What a client reading only Sforce-Limit-Info sees: the refusal carries the new figure."""
    sf.query("SELECT COUNT() FROM Account")
    before = used(sf)
    body = {"compositeRequest": [query("SELECT Id FROM User LIMIT 1", f"q{n}") for n in range(6)]}
    response = sf.session.post(
        f"{sf.base_url}composite",
        data=json.dumps(body),
        headers={**sf.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json() == TOO_MANY
    assert response.headers["Sforce-Limit-Info"].startswith(f"api-usage={before + 1}/")
