"""Bulk API 2.0 (`/jobs/ingest`, `/jobs/query`) through simple-salesforce's `bulk2`, and raw."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
import requests
from simple_salesforce import SalesforceMalformedRequest

from tests.integration.support import first_error
from tests.sandbox_process import SandboxOrg


def tag() -> str:
    return "b" + uuid.uuid4().hex[:12]


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def header_of(text: str) -> list[str]:
    return next(csv.reader(io.StringIO(text)))


def tagged(sf: Any, key: str, deleted: bool = False) -> list[dict[str, Any]]:
    soql = f"SELECT Id, Subject, Priority, IsDeleted, QS_Activity_Id__c FROM Task WHERE QS_Activity_Id__c LIKE '{key}-%'"
    return list(sf.query_all(soql, include_deleted=deleted)["records"])


def raw(sf: Any, method: str, path: str, **kwargs: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {sf.session_id}", **kwargs.pop("headers", {})}
    return sf.session.request(method, f"{sf.bulk2_url}{path}", headers=headers, **kwargs)


def wait_for(read: Callable[[], dict[str, Any]], states: tuple[str, ...]) -> dict[str, Any]:
    # The org finishes a job in its own thread; no bound here but the test's own timeout.
    while True:
        info = read()
        if info["state"] in states:
            return info
        time.sleep(0.05)


# ---------------------------------------------------------------- ingest through simple-salesforce


def test_insert_reports_successes_and_failures_per_row(sf: Any) -> None:
    key = tag()
    records = [
        {"Subject": "one", "QS_Activity_Id__c": f"{key}-1"},
        {"Subject": "x" * 300, "QS_Activity_Id__c": f"{key}-2"},
        {"Subject": "three", "QS_Activity_Id__c": f"{key}-3"},
    ]
    (result,) = sf.bulk2.Task.insert(records=records, wait=0.1)
    assert result["numberRecordsProcessed"] == 3
    assert result["numberRecordsFailed"] == 1
    assert result["numberRecordsTotal"] == 3
    assert result["job_id"].startswith("750")

    successes = sf.bulk2.Task.get_successful_records(result["job_id"])
    # simple-salesforce orders the uploaded columns as a set does; ours follow sf__ columns.
    assert header_of(successes)[:2] == ["sf__Id", "sf__Created"]
    assert sorted(header_of(successes)[2:]) == ["QS_Activity_Id__c", "Subject"]
    good = rows_of(successes)
    assert [r["Subject"] for r in good] == ["one", "three"]
    assert all(r["sf__Created"] == "true" and r["sf__Id"].startswith("00T") for r in good)

    failures = sf.bulk2.Task.get_failed_records(result["job_id"])
    # simple-salesforce orders the uploaded columns as a set does; ours follow sf__ columns.
    assert header_of(failures)[:2] == ["sf__Id", "sf__Error"]
    assert sorted(header_of(failures)[2:]) == ["QS_Activity_Id__c", "Subject"]
    (bad,) = rows_of(failures)
    assert bad["sf__Error"].startswith("STRING_TOO_LONG:")
    assert bad["QS_Activity_Id__c"] == f"{key}-2"

    unprocessed = sf.bulk2.Task.get_unprocessed_records(result["job_id"])
    assert rows_of(unprocessed) == []
    stored = {r["Id"]: r["Subject"] for r in tagged(sf, key)}
    assert stored == {r["sf__Id"]: r["Subject"] for r in good}


def test_upsert_by_external_id_creates_then_updates_without_duplicates(sf: Any) -> None:
    key = tag()
    records = [{"Subject": f"v1 {n}", "QS_Activity_Id__c": f"{key}-{n}"} for n in range(4)]
    (first,) = sf.bulk2.Task.upsert(
        records=records, external_id_field="QS_Activity_Id__c", wait=0.1
    )
    created = rows_of(sf.bulk2.Task.get_successful_records(first["job_id"]))
    assert [r["sf__Created"] for r in created] == ["true"] * 4

    again = [{"Subject": f"v2 {n}", "QS_Activity_Id__c": f"{key}-{n}"} for n in range(5)]
    (second,) = sf.bulk2.Task.upsert(records=again, external_id_field="QS_Activity_Id__c", wait=0.1)
    assert second["numberRecordsFailed"] == 0
    updated = rows_of(sf.bulk2.Task.get_successful_records(second["job_id"]))
    assert [r["sf__Created"] for r in updated] == ["false"] * 4 + ["true"]
    assert [r["sf__Id"] for r in updated[:4]] == [r["sf__Id"] for r in created]
    stored = tagged(sf, key)
    assert len(stored) == 5
    assert {r["Subject"] for r in stored} == {f"v2 {n}" for n in range(5)}


def test_update_and_delete_by_id(sf: Any) -> None:
    key = tag()
    records = [{"Subject": f"n{n}", "QS_Activity_Id__c": f"{key}-{n}"} for n in range(3)]
    (inserted,) = sf.bulk2.Task.insert(records=records, wait=0.1)
    ids = [r["sf__Id"] for r in rows_of(sf.bulk2.Task.get_successful_records(inserted["job_id"]))]

    changes = [{"Id": record_id, "Priority": "High"} for record_id in ids]
    changes.append({"Id": "00T5g0zzzzzzzzzEAA", "Priority": "High"})
    (updated,) = sf.bulk2.Task.update(records=changes, wait=0.1)
    assert updated["numberRecordsProcessed"] == 4
    assert updated["numberRecordsFailed"] == 1
    assert {r["Priority"] for r in tagged(sf, key)} == {"High"}
    updated_rows = rows_of(sf.bulk2.Task.get_successful_records(updated["job_id"]))
    assert [r["sf__Created"] for r in updated_rows] == ["false"] * 3

    (deleted,) = sf.bulk2.Task.delete(
        records=[{"Id": record_id} for record_id in ids[:2]], wait=0.1
    )
    assert deleted["numberRecordsFailed"] == 0
    assert [r["Id"] for r in tagged(sf, key)] == [ids[2]]
    gone = [r for r in tagged(sf, key, deleted=True) if r["IsDeleted"]]
    assert sorted(r["Id"] for r in gone) == sorted(ids[:2])


def test_a_bad_header_fails_the_whole_job(sf: Any) -> None:
    from simple_salesforce.exceptions import SalesforceOperationError

    with pytest.raises(SalesforceOperationError) as excinfo:
        sf.bulk2.Task.insert(records=[{"Subject": "x", "Nope__c": "1"}], wait=0.1)
    assert "Nope__c" in str(excinfo.value)


# ---------------------------------------------------------------- ingest, raw job states


def test_an_ingest_job_moves_through_its_states(sf: Any) -> None:
    key = tag()
    created = sf.restful(
        "jobs/ingest",
        method="POST",
        data=json.dumps(
            {
                "object": "Task",
                "operation": "upsert",
                "externalIdFieldName": "QS_Activity_Id__c",
                "contentType": "CSV",
                "lineEnding": "LF",
                "columnDelimiter": "COMMA",
            }
        ),
    )
    assert created["state"] == "Open"
    assert created["object"] == "Task" and created["operation"] == "upsert"
    assert created["externalIdFieldName"] == "QS_Activity_Id__c"
    assert created["contentUrl"] == f"services/data/v62.0/jobs/ingest/{created['id']}/batches"
    assert created["apiVersion"] == 62.0
    job = created["id"]

    body = f"Subject,QS_Activity_Id__c\nfirst,{key}-1\nsecond,{key}-2\n"
    upload = raw(
        sf, "PUT", f"ingest/{job}/batches", data=body, headers={"Content-Type": "text/csv"}
    )
    assert upload.status_code == 201
    assert upload.text == ""

    closed = sf.restful(
        f"jobs/ingest/{job}", method="PATCH", data=json.dumps({"state": "UploadComplete"})
    )
    assert closed["state"] in ("UploadComplete", "InProgress", "JobComplete")
    info = wait_for(lambda: sf.restful(f"jobs/ingest/{job}"), ("JobComplete", "Failed"))
    assert info["state"] == "JobComplete"
    assert info["jobType"] == "V2Ingest"
    assert info["numberRecordsProcessed"] == 2
    assert info["numberRecordsFailed"] == 0
    assert len(tagged(sf, key)) == 2


def test_an_ingest_job_can_be_aborted_before_upload_completes(sf: Any) -> None:
    created = sf.restful(
        "jobs/ingest", method="POST", data=json.dumps({"object": "Task", "operation": "insert"})
    )
    aborted = sf.restful(
        f"jobs/ingest/{created['id']}", method="PATCH", data=json.dumps({"state": "Aborted"})
    )
    assert aborted["state"] == "Aborted"
    upload = raw(
        sf,
        "PUT",
        f"ingest/{created['id']}/batches",
        data="Subject\nx\n",
        headers={"Content-Type": "text/csv"},
    )
    assert upload.status_code >= 400
    assert sf.restful(f"jobs/ingest/{created['id']}")["state"] == "Aborted"


@pytest.mark.parametrize(
    "definition",
    [
        {"object": "Task", "operation": "merge"},
        {"object": "Nope__c", "operation": "insert"},
        {"object": "Task", "operation": "upsert", "externalIdFieldName": "Subject"},
    ],
)
def test_a_bad_ingest_job_definition_is_refused(sf: Any, definition: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.restful("jobs/ingest", method="POST", data=json.dumps(definition))
    assert excinfo.value.status == 400
    assert first_error(excinfo)["errorCode"]


# ---------------------------------------------------------------- query


def test_query_returns_csv_pages_of_at_most_max_records(sf: Any) -> None:
    total = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    assert total >= 60
    pages = list(
        sf.bulk2.Contact.query(
            "SELECT Id, LastName, Account.Name FROM Contact", max_records=25, wait=0.1
        )
    )
    assert len(pages) == -(-total // 25)
    rows = [row for page in pages for row in rows_of(page)]
    assert len(rows) == total
    assert all(len(rows_of(page)) <= 25 for page in pages)
    assert header_of(pages[0]) == ["Id", "LastName", "Account.Name"]
    assert len({r["Id"] for r in rows}) == total
    assert all(r["Id"].startswith("003") for r in rows)


def test_query_all_includes_deleted_rows(sf: Any) -> None:
    key = tag()
    kept = sf.Task.create({"Subject": "kept", "QS_Activity_Id__c": f"{key}-1"})["id"]
    gone = sf.Task.create({"Subject": "gone", "QS_Activity_Id__c": f"{key}-2"})["id"]
    sf.Task.delete(gone)
    soql = f"SELECT Id, IsDeleted FROM Task WHERE QS_Activity_Id__c LIKE '{key}-%'"
    live = [row for page in sf.bulk2.Task.query(soql, wait=0.1) for row in rows_of(page)]
    assert live == [{"Id": kept, "IsDeleted": "false"}]
    everything = [row for page in sf.bulk2.Task.query_all(soql, wait=0.1) for row in rows_of(page)]
    assert {r["Id"]: r["IsDeleted"] for r in everything} == {kept: "false", gone: "true"}


def test_query_results_page_with_locator_and_record_count_headers(sf: Any) -> None:
    total = sf.query("SELECT COUNT() FROM Lead")["totalSize"]
    job = sf.restful(
        "jobs/query",
        method="POST",
        data=json.dumps({"operation": "query", "query": "SELECT Id FROM Lead"}),
    )
    assert job["state"] in ("UploadComplete", "InProgress")
    info = wait_for(lambda: sf.restful(f"jobs/query/{job['id']}"), ("JobComplete", "Failed"))
    assert info["state"] == "JobComplete"
    assert info["jobType"] == "V2Query"
    assert info["numberRecordsProcessed"] == total

    seen, locator, pages = 0, "", 0
    while True:
        params: dict[str, Any] = {"maxRecords": 40}
        if locator:
            params["locator"] = locator
        response = raw(sf, "GET", f"query/{job['id']}/results", params=params)
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/csv")
        count = int(response.headers["Sforce-NumberOfRecords"])
        assert count == len(rows_of(response.text)) <= 40
        seen += count
        pages += 1
        locator = response.headers["Sforce-Locator"]
        if locator == "null":
            break
    assert seen == total
    assert pages == -(-total // 40)


def test_query_results_before_the_job_completes_are_412(sf: Any) -> None:
    job = sf.restful(
        "jobs/query",
        method="POST",
        data=json.dumps({"operation": "query", "query": "SELECT Id FROM Contact"}),
    )
    early = raw(sf, "GET", f"query/{job['id']}/results")
    assert early.status_code == 412
    assert early.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    info = wait_for(lambda: sf.restful(f"jobs/query/{job['id']}"), ("JobComplete", "Failed"))
    assert info["state"] == "JobComplete"
    assert raw(sf, "GET", f"query/{job['id']}/results").status_code == 200


def test_a_query_job_can_be_aborted(sf: Any) -> None:
    job = sf.restful(
        "jobs/query",
        method="POST",
        data=json.dumps({"operation": "query", "query": "SELECT Id FROM Contact"}),
    )
    aborted = sf.restful(
        f"jobs/query/{job['id']}", method="PATCH", data=json.dumps({"state": "Aborted"})
    )
    assert aborted["state"] == "Aborted"
    time.sleep(0.3)
    assert sf.restful(f"jobs/query/{job['id']}")["state"] == "Aborted"
    results = raw(sf, "GET", f"query/{job['id']}/results")
    assert results.status_code == 412


@pytest.mark.parametrize(
    ("definition", "code"),
    [
        ({"operation": "upsert", "query": "SELECT Id FROM Contact"}, "INVALIDJOB"),
        ({"operation": "query", "query": "SELECT FROM Contact"}, "MALFORMED_QUERY"),
        ({"operation": "query", "query": "SELECT Id FROM Nope__c"}, "INVALID_TYPE"),
    ],
)
def test_a_bad_query_job_is_refused(sf: Any, definition: Any, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.restful("jobs/query", method="POST", data=json.dumps(definition))
    assert first_error(excinfo)["errorCode"] == code


# ---------------------------------------------------------------- volume


def test_an_ingest_of_25000_rows_succeeds_in_three_batches(
    new_org: Callable[..., SandboxOrg],
) -> None:
    org = new_org()
    sf: Any = org.salesforce()
    records = [
        {"Subject": f"bulk {n}", "Priority": "Low", "QS_Activity_Id__c": f"vol-{n:05d}"}
        for n in range(25_000)
    ]
    # How fast is measured by `python -m benchmarks.sandbox`, not here.
    (result,) = sf.bulk2.Task.insert(records=records, wait=0.1)
    assert result["numberRecordsProcessed"] == 25_000
    assert result["numberRecordsFailed"] == 0
    assert sf.query("SELECT COUNT() FROM Task")["totalSize"] == 25_000
    successes = rows_of(sf.bulk2.Task.get_successful_records(result["job_id"]))
    assert len(successes) == 25_000
    limits = sf.limits()
    batches = limits["DailyBulkApiBatches"]
    assert batches["Max"] - batches["Remaining"] == 3  # one per started 10,000 records


# ---------------------------------------------------------------- jobs always end


def closed_job(sf: Any, upload: bytes, sobject: str = "Task") -> dict[str, Any]:
    job = raw(sf, "POST", "ingest", json={"object": sobject, "operation": "insert"}).json()
    put = raw(sf, "PUT", f"ingest/{job['id']}/batches", data=upload, headers={"Content-Type": "text/csv"})  # fmt: skip
    assert put.status_code == 201
    closed = raw(sf, "PATCH", f"ingest/{job['id']}", json={"state": "UploadComplete"})
    assert closed.status_code == 200, closed.text
    return wait_for(lambda: raw(sf, "GET", f"ingest/{job['id']}").json(), ("JobComplete", "Failed"))


@pytest.mark.parametrize(
    ("upload", "problem"),
    [
        (b"Subject\n\xff\xfe bad\n", "can't decode"),
        (b"Subject\n" + b"x" * 200_000 + b"\n", "field larger than field limit"),
    ],
)
def test_an_upload_that_is_not_readable_csv_fails_the_job(
    sf: Any, upload: bytes, problem: str
) -> None:
    info = closed_job(sf, upload)
    assert info["state"] == "Failed"
    assert info["errorMessage"].startswith("InvalidBatch : ")
    assert problem in info["errorMessage"]


def test_rows_that_blow_up_fail_alone_and_the_job_completes(sf: Any) -> None:
    upload = (
        "Subject,StartDateTime,DurationInMinutes\n"
        "fine,2026-12-01T10:00:00Z,30\n"
        "overflow,9999-12-31T23:00:00Z,120\n"
    )
    info = closed_job(sf, upload.encode(), "Event")
    assert info["state"] == "JobComplete"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    failed = rows_of(raw(sf, "GET", f"ingest/{info['id']}/failedResults").text)
    assert failed[0]["sf__Error"].startswith("FIELD_INTEGRITY_EXCEPTION:")


def test_a_query_job_at_the_calendars_end_completes(sf: Any) -> None:
    job = raw(sf, "POST", "query", json={"operation": "query", "query": "SELECT Id FROM Task WHERE ActivityDate = 9999-12-31"}).json()  # fmt: skip
    info = wait_for(lambda: raw(sf, "GET", f"query/{job['id']}").json(), ("JobComplete", "Failed"))
    assert info["state"] == "JobComplete"
