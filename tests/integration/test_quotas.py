"""The daily API quota as a client of the sandbox org sees it: the Sforce-Limit-Info header, refusals
once it is spent, the rolling 24-hour window on a virtual clock, per-app accounting, other apps'
consumption and background load, and the bulk quotas."""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from simple_salesforce import Salesforce, SFType
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from tests.sandbox_process import SandboxOrg

EPOCH = "2026-11-28T00:00:00Z"
ORG_QUERY = "SELECT Id FROM Organization"
LIMIT_EXCEEDED = [
    {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
]

OrgFactory = Callable[..., SandboxOrg]


@pytest.fixture
def new_org(new_org: OrgFactory) -> Iterator[OrgFactory]:
    """The conftest factory, dropping this test's client connections before the orgs stop: an
    idle keep-alive TLS connection otherwise holds the sandbox's shutdown for its grace period."""
    yield new_org
    gc.collect()


def usage(org: SandboxOrg, api: str = "DailyApiRequests") -> dict[str, Any]:
    result: dict[str, Any] = org.control("GET", "usage")[api]
    return result


def used(org: SandboxOrg, api: str = "DailyApiRequests") -> int:
    return int(usage(org, api)["used"])


def header_used(sf: Salesforce) -> tuple[int, int]:
    figure = sf.api_usage["api-usage"]
    return figure.used, figure.total


def advance(org: SandboxOrg, seconds: float) -> None:
    org.control("POST", "clock", {"advance_seconds": seconds})


def raw_get(org: SandboxOrg, token: str, path: str, **params: str) -> Any:
    return org.http().get(
        f"{org.instance_url}/services/data/v62.0/{path}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )


def sobject(sf: Salesforce, name: str) -> SFType:
    """`sf.<name>`, typed."""
    return cast(SFType, getattr(sf, name))


def content(error: SalesforceError) -> Any:
    """The parsed JSON body simple-salesforce attached to an error."""
    body: Any = error.content
    return body


# ---------------------------------------------------------------- the usage header


def test_every_counted_response_carries_the_usage_header_even_errors(
    new_org: OrgFactory,
) -> None:
    org = new_org("--daily-api-requests", "500")
    token = org.token()["access_token"]
    responses = [
        raw_get(org, token, "query", q=ORG_QUERY),
        raw_get(org, token, "sobjects/Contact/describe"),
        raw_get(org, token, "limits"),
        raw_get(org, token, "sobjects/NoSuchThing__c/describe"),  # 404 NOT_FOUND
        raw_get(org, token, "query", q="SELEKT nonsense"),  # 400 MALFORMED_QUERY
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 404, 400]
    figures = []
    for response in responses:
        match = re.fullmatch(r"api-usage=(\d+)/(\d+)", response.headers["Sforce-Limit-Info"])
        assert match, response.headers["Sforce-Limit-Info"]
        figures.append((int(match[1]), int(match[2])))
    assert figures == [(n, 500) for n in range(1, 6)]
    assert used(org) == 5


def test_api_usage_grows_by_exactly_one_per_call(new_org: OrgFactory) -> None:
    org = new_org()
    sf = org.salesforce()
    assert sf.api_usage == {}  # logging in is not a counted call
    sf.query(ORG_QUERY)
    first, total = header_used(sf)
    assert (first, total) == (1, 120_000)  # enterprise, 20 licenses
    calls: list[Callable[[], Any]] = [
        lambda: sf.query("SELECT Id, Name FROM Account LIMIT 5"),
        lambda: sf.restful("sobjects/Contact/describe"),
        lambda: sf.describe(),
        lambda: sf.limits(),
        lambda: sf.query_all("SELECT Id FROM User"),
    ]
    for step, call in enumerate(calls, start=2):
        call()
        assert header_used(sf) == (step, total)
    contact = sobject(sf, "Contact")
    created = contact.create({"LastName": "Counted"})
    assert contact.api_usage["api-usage"].used == len(calls) + 2
    contact.get(created["id"])
    assert contact.api_usage["api-usage"].used == len(calls) + 3
    assert used(org) == len(calls) + 3


# ---------------------------------------------------------------- a spent quota


def test_a_spent_quota_answers_request_limit_exceeded_until_the_window_rolls_on(
    new_org: OrgFactory,
) -> None:
    org = new_org("--daily-api-requests", "20", "--speed", "1", "--epoch", EPOCH)
    sf = org.salesforce()
    for n in range(1, 21):
        sf.query(ORG_QUERY)
        assert header_used(sf) == (n, 20)

    for _ in range(3):
        with pytest.raises(SalesforceRefusedRequest) as refused:
            sf.query(ORG_QUERY)
        assert refused.value.status == 403
        assert content(refused.value) == LIMIT_EXCEEDED
    response = raw_get(org, org.token()["access_token"], "query", q=ORG_QUERY)
    assert response.status_code == 403
    assert response.headers["Sforce-Limit-Info"] == "api-usage=20/20"
    assert used(org) == 20  # refused calls are not counted

    advance(org, 24 * 60 * 60)
    assert used(org) == 0
    # A day of inactivity outlasts the 2-hour session timeout: log in again.
    with pytest.raises(SalesforceExpiredSession):
        sf.query(ORG_QUERY)
    sf = org.salesforce()
    sf.query(ORG_QUERY)
    assert header_used(sf) == (1, 20)


def test_calls_leave_the_window_exactly_24_hours_after_each_was_made(
    new_org: OrgFactory,
) -> None:
    # --speed 0: virtual time stands still except when advanced, so the steps are exact.
    org = new_org(
        "--daily-api-requests",
        "100",
        "--speed",
        "0",
        "--epoch",
        EPOCH,
        "--session-timeout-minutes",
        "0",
    )
    sf = org.salesforce()
    for _ in range(3):
        sf.query(ORG_QUERY)  # at t0
    advance(org, 3600)
    for _ in range(2):
        sf.query(ORG_QUERY)  # at t0 + 1 h
    advance(org, 3600)
    sf.query(ORG_QUERY)  # at t0 + 2 h
    assert used(org) == 6

    steps = [
        (86400 - 7200 - 1, 6),  # t0 + 24 h - 1 s: everything still counts
        (1, 3),  # t0 + 24 h: the first three leave
        (3600 - 1, 3),
        (1, 1),  # t0 + 25 h: the next two
        (3600 - 1, 1),
        (1, 0),  # t0 + 26 h: the last one
    ]
    for seconds, expected in steps:
        advance(org, seconds)
        assert used(org) == expected
    # The session survived a day without a timeout, and the header agrees.
    sf.query(ORG_QUERY)
    assert header_used(sf) == (1, 100)


# ---------------------------------------------------------------- per app, other apps


def test_two_apps_are_counted_separately_and_the_org_total_is_their_sum(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    ours = org.salesforce(app="quotasync")
    theirs = org.salesforce("sync", app="Data Loader")
    for _ in range(3):
        ours.query(ORG_QUERY)
    for _ in range(2):
        theirs.query(ORG_QUERY)
    window = usage(org)
    assert window["by_app"] == {"Data Loader": 2, "quotasync": 3}
    assert window["used"] == 5
    assert header_used(theirs)[0] == 5  # the header shows the org-wide figure
    ours.query(ORG_QUERY)
    assert header_used(ours)[0] == 6


def test_calls_consumed_by_another_app_show_in_the_header_and_in_limits(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    sf = org.salesforce()
    sf.query(ORG_QUERY)
    result = org.control(
        "POST", "consume", {"app": "Marketing Cloud", "api": "DailyApiRequests", "calls": 500}
    )
    assert (result["spent"], result["refused"]) == (500, 0)
    sf.query(ORG_QUERY)
    assert header_used(sf) == (502, 120_000)

    limits = sf.limits()["DailyApiRequests"]
    assert limits["Max"] == 120_000
    assert limits["Remaining"] == 120_000 - 503  # the /limits call itself counts
    assert "Marketing Cloud" in limits
    assert usage(org)["by_app"] == {"Marketing Cloud": 500, "quotasync": 3}


def test_consuming_beyond_the_remaining_room_spends_only_up_to_the_max(
    new_org: OrgFactory,
) -> None:
    org = new_org("--daily-api-requests", "20")
    sf = org.salesforce()
    sf.query(ORG_QUERY)
    sf.query(ORG_QUERY)
    result = org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 30})
    assert (result["spent"], result["refused"]) == (18, 12)
    assert result["usage"]["used"] == 20
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query(ORG_QUERY)
    assert content(refused.value) == LIMIT_EXCEEDED
    again = org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 1})
    assert (again["spent"], again["refused"]) == (0, 1)


def test_background_load_adds_about_its_hourly_rate_as_the_clock_advances(
    new_org: OrgFactory,
) -> None:
    org = new_org("--speed", "1", "--epoch", EPOCH, "--session-timeout-minutes", "0")
    sf = org.salesforce()
    org.control(
        "POST",
        "load",
        {"app": "Marketing Cloud", "api": "DailyApiRequests", "calls_per_hour": 1200},
    )
    advance(org, 3600)
    loaded = usage(org)["by_app"]["Marketing Cloud"]
    assert 1200 <= loaded <= 1210
    sf.query(ORG_QUERY)
    assert header_used(sf)[0] == loaded + 1

    org.control("POST", "load", {"app": "Marketing Cloud", "calls_per_hour": 0})
    advance(org, 3600)
    assert usage(org)["by_app"]["Marketing Cloud"] == loaded  # stopped


def test_background_load_stops_at_the_limit_and_refuses_our_calls(new_org: OrgFactory) -> None:
    org = new_org(
        "--daily-api-requests",
        "1000",
        "--speed",
        "1",
        "--epoch",
        EPOCH,
        "--session-timeout-minutes",
        "0",
    )
    sf = org.salesforce()
    org.control("POST", "load", {"app": "Marketing Cloud", "calls_per_hour": 5000})
    advance(org, 3600)
    assert used(org) == 1000
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query(ORG_QUERY)
    assert content(refused.value) == LIMIT_EXCEEDED


# ---------------------------------------------------------------- bulk quotas


def bulk_request(
    org: SandboxOrg, token: str, method: str, path: str, body: Any, content_type: str
) -> Any:
    response = org.http().request(
        method,
        f"{org.instance_url}/services/data/v62.0/{path}",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": content_type},
        timeout=60,
    )
    assert response.status_code < 300, response.text
    return response


def test_a_bulk_ingest_job_spends_one_batch_per_started_10000_records(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    sf = org.salesforce()
    bulk: Any = sf.bulk2
    results = bulk.Task.insert(records=[{"Subject": f"Bulk call {i}"} for i in range(3)], wait=0.1)
    assert sum(int(r["numberRecordsProcessed"]) for r in results) == 3
    assert used(org, "DailyBulkApiBatches") == 1

    token = org.token()["access_token"]
    calls_before = used(org)
    job = bulk_request(
        org,
        token,
        "POST",
        "jobs/ingest",
        json.dumps({"object": "Task", "operation": "insert", "lineEnding": "LF"}),
        "application/json",
    ).json()
    csv = "Subject\n" + "".join(f"Big job {i}\n" for i in range(10_001))
    bulk_request(org, token, "PUT", f"jobs/ingest/{job['id']}/batches", csv, "text/csv")
    assert used(org, "DailyBulkApiBatches") == 1  # nothing is spent before the job is closed
    bulk_request(
        org,
        token,
        "PATCH",
        f"jobs/ingest/{job['id']}",
        json.dumps({"state": "UploadComplete"}),
        "application/json",
    )
    assert used(org, "DailyBulkApiBatches") == 3  # 10,001 records: two batches
    assert used(org) == calls_before + 3  # each bulk HTTP request is also an API call
    assert used(org, "DailyBulkV2QueryJobs") == 0


def test_a_bulk_query_job_spends_one_query_job_and_no_batches(new_org: OrgFactory) -> None:
    org = new_org("--seed", "5")
    sf = org.salesforce()
    job: Any = sf.restful(
        "jobs/query",
        method="POST",
        data=json.dumps({"operation": "query", "query": "SELECT Id, LastName FROM Contact"}),
    )
    assert job["id"].startswith("750")
    assert used(org, "DailyBulkV2QueryJobs") == 1
    assert used(org, "DailyBulkApiBatches") == 0
    limits = sf.limits()
    assert limits["DailyBulkV2QueryJobs"]["Remaining"] == limits["DailyBulkV2QueryJobs"]["Max"] - 1


def test_a_spent_bulk_query_quota_refuses_new_query_jobs(new_org: OrgFactory) -> None:
    org = new_org()
    sf = org.salesforce()
    org.control("POST", "consume", {"app": "Data Loader", "api": "bulk_query", "calls": 10_000})
    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.restful(
            "jobs/query",
            method="POST",
            data=json.dumps({"operation": "query", "query": "SELECT Id FROM Contact"}),
        )
    assert content(refused.value)[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert used(org, "DailyBulkV2QueryJobs") == 10_000


def test_an_unknown_job_is_not_found_and_still_counted(new_org: OrgFactory) -> None:
    org = new_org()
    sf = org.salesforce()
    with pytest.raises(SalesforceResourceNotFound):
        sf.restful("jobs/ingest/750000000000000AAA")
    assert used(org) == 1


def test_a_limits_call_refused_for_lacking_view_setup_is_not_counted(
    new_org: OrgFactory,
) -> None:
    org = new_org()
    token = org.token("sync")["access_token"]
    raw_get(org, token, "query", q=ORG_QUERY)
    before = used(org)
    refused = raw_get(org, token, "limits")
    assert refused.status_code == 403
    assert refused.json()[0]["errorCode"] == "API_DISABLED_FOR_ORG"
    assert used(org) == before
    assert refused.headers["Sforce-Limit-Info"] == f"api-usage={before}/120000"


def test_background_load_keeps_accruing_across_a_restart(
    new_org: OrgFactory, tmp_path: Any
) -> None:
    state = tmp_path / "loaded"
    first = new_org("--speed", "0", "--epoch", EPOCH, state_dir=state)
    first.control("POST", "load", {"app": "Marketing Cloud", "calls_per_hour": 3600})
    advance(first, 3600)
    assert used(first) == 3600
    first.stop()
    # The clock moves on while the org is down: a later epoch, plus the hour advanced before.
    second = new_org("--speed", "0", "--epoch", "2026-11-28T02:00:00Z", state_dir=state)
    assert second.control("GET", "clock")["now"].startswith("2026-11-28T03:00:00")
    assert used(second) == 3 * 3600
