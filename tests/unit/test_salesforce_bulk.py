"""Bulk API 2.0 jobs through the governed seam, against an org in the process: what each request
sends and costs, how results become per-row outcomes, how a running job is waited on (on the
clock, never in real time), and that a job that cannot go on is aborted."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from quotasync.errors import QuotaExhausted, Refused
from quotasync.salesforce import api, bulk
from tests.unit.salesforce_fakes import FakeClient, Reply, Sent, csv_text

JOB = "7505g00000ABC01AAA"  # the first ingest job; the next ones 02, 03...
QUERY_JOB = "7505g00000QRSTUAAA"
KEY = "QS_Activity_Id__c"


@dataclass
class BulkOrg:
    """Jobs as the org keeps them: `runs` looks at a job find it running before it is done;
    `end` is how it ends; a row whose Subject is longer than 10 fails."""

    runs: int = 1
    end: str = "JobComplete"
    uploads: list[bytes] = field(default_factory=list)
    aborted: list[str] = field(default_factory=list)
    jobs: int = 0
    looks: int = 0
    answer_first: Callable[[Sent], Reply | None] = lambda _: None

    def __call__(self, sent: Sent) -> Reply:
        first = self.answer_first(sent)
        if first is not None:
            return first
        route = (sent.method, re.sub(r"750\w+", "{job}", sent.path))
        if route == ("POST", "jobs/ingest"):
            self.jobs += 1
            return Reply(200, {"id": f"7505g00000ABC{self.jobs:02d}AAA", "state": "Open"})
        if route == ("PUT", "jobs/ingest/{job}/batches"):
            self.uploads.append(sent.body)
            return Reply(201, b"")
        if route == ("PATCH", "jobs/ingest/{job}") and b"Aborted" in sent.body:
            self.aborted.append(sent.path)
            return Reply(200, {"state": "Aborted"})
        if route == ("PATCH", "jobs/ingest/{job}"):
            return Reply(200, {"state": "UploadComplete"})
        if route == ("GET", "jobs/ingest/{job}"):
            self.looks += 1
            state = self.end if self.looks > self.runs else "InProgress"
            return Reply(200, {"state": state, "errorMessage": "InvalidBatch : bad"})
        if route == ("GET", "jobs/ingest/{job}/successfulResults"):
            rows = [r for r in self._rows() if len(r.get("Subject", "")) <= 10]
            return Reply(200, self._csv(["sf__Id", "sf__Created"], rows, self._ok), _CSV)
        if route == ("GET", "jobs/ingest/{job}/failedResults"):
            rows = [r for r in self._rows() if len(r.get("Subject", "")) > 10]
            return Reply(200, self._csv(["sf__Id", "sf__Error"], rows, self._failed), _CSV)
        raise AssertionError(f"unexpected {sent.method} {sent.path}")

    def _rows(self) -> list[dict[str, str]]:
        upload = self.uploads[-1].decode()
        return list(csv.DictReader(io.StringIO(upload)))

    @staticmethod
    def _ok(row: dict[str, str]) -> list[str]:
        return [f"00T{row[KEY]}", "true"]

    @staticmethod
    def _failed(row: dict[str, str]) -> list[str]:
        return ["", "STRING_TOO_LONG:Subject: data value too large"]

    @staticmethod
    def _csv(
        head: list[str], rows: list[dict[str, str]], cells: Callable[[dict[str, str]], list[str]]
    ) -> bytes:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        columns = sorted({c for r in rows for c in r})
        writer.writerow(head + columns)
        for row in rows:
            writer.writerow(cells(row) + [row[c] for c in columns])
        return out.getvalue().encode()


_CSV = {"Content-Type": "text/csv"}


def upsert(fake: FakeClient, rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, api.Saved]:
    return bulk.upsert(fake.client, "Task", KEY, rows, clock=fake.clock, sleep=fake.sleep, **kwargs)


# ---------------------------------------------------------------- ingest


def test_an_upsert_job_is_created_uploaded_closed_looked_at_and_its_rows_read() -> None:
    org = BulkOrg(runs=1)
    fake = FakeClient(org)
    rows: list[dict[str, Any]] = [
        {KEY: "a-1", "Subject": "one", "Priority": None},
        {KEY: "a-2", "Subject": "far too long a subject"},
        {KEY: "a-3", "Subject": "three", "Priority": "High"},
    ]
    saved = upsert(fake, rows)

    assert fake.org.requests() == [
        ("POST", "jobs/ingest"),
        ("PUT", f"jobs/ingest/{JOB}/batches"),
        ("PATCH", f"jobs/ingest/{JOB}"),
        ("GET", f"jobs/ingest/{JOB}"),  # InProgress
        ("GET", f"jobs/ingest/{JOB}"),  # JobComplete
        ("GET", f"jobs/ingest/{JOB}/successfulResults"),
        ("GET", f"jobs/ingest/{JOB}/failedResults"),
    ]
    create, put, close = fake.org.sent[:3]
    assert create.json() == {
        "object": "Task",
        "operation": "upsert",
        "externalIdFieldName": KEY,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    assert put.headers["Content-Type"] == "text/csv"
    # Columns sorted; an absent or None field an empty cell, which leaves the field as it is.
    assert put.body == csv_text(
        "Priority,QS_Activity_Id__c,Subject",
        ",a-1,one",
        ",a-2,far too long a subject",
        "High,a-3,three",
    )
    assert close.json() == {"state": "UploadComplete"}
    assert fake.org.sent[-1].headers["Accept"] == "text/csv"

    assert saved == {
        "a-1": api.Saved("00Ta-1"),
        "a-2": api.Saved(None, api.Fault("STRING_TOO_LONG", "Subject: data value too large")),
        "a-3": api.Saved("00Ta-3"),
    }
    # Every request a Data call; the close also the job's Bulk batch (three rows: one).
    assert fake.spent("data") == 7
    (batch,) = [c for c in fake.ledger.calls if c.api == "bulk"]
    assert (batch.method, batch.calls) == ("PATCH", 1)
    # The first look two seconds after the create, the next two seconds later: on the clock.
    assert fake.slept == [bulk.FIRST_LOOK, bulk.FIRST_LOOK]


def test_cells_are_written_as_csv_and_a_whole_float_as_a_whole_number() -> None:
    org = BulkOrg(runs=0)
    fake = FakeClient(org)
    upsert(fake, [{KEY: "a-1", "Subject": 'say "hi", then\nbye', "Duration": 30.0, "N": 2.5}])
    assert org.uploads == [
        b'Duration,N,QS_Activity_Id__c,Subject\n30,2.5,a-1,"say ""hi"", then\nbye"\n'
    ]
    assert bulk.cell(None) == "" and bulk.cell(True) == "True" and bulk.cell(7.0) == "7"


def test_a_row_the_job_did_not_process_has_no_result() -> None:
    org = BulkOrg(runs=0)
    fake = FakeClient(org)
    org.answer_first = lambda sent: (
        Reply(200, csv_text("sf__Id,sf__Created,QS_Activity_Id__c", "00T1,true,a-1"), _CSV)
        if sent.path.endswith("successfulResults")
        else None
    )
    saved = upsert(fake, [{KEY: "a-1", "Subject": "x"}, {KEY: "a-2", "Subject": "y"}])
    assert saved == {"a-1": api.Saved("00T1")}


def test_a_big_upload_goes_as_several_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bulk, "MAX_UPLOAD", 60)
    org = BulkOrg(runs=0)
    fake = FakeClient(org)
    rows = [{KEY: f"a-{n}", "Subject": f"s{n}"} for n in range(5)]
    saved = upsert(fake, rows)
    assert len(org.uploads) == org.jobs > 1
    assert all(u.startswith(b"QS_Activity_Id__c,Subject\n") for u in org.uploads)
    assert all(len(u) <= 60 for u in org.uploads)
    assert sorted(saved) == [f"a-{n}" for n in range(5)]


def test_a_job_that_fails_is_reported_with_the_orgs_message_and_not_aborted() -> None:
    org = BulkOrg(runs=0, end="Failed")
    fake = FakeClient(org)
    with pytest.raises(bulk.JobFailed, match="Failed: InvalidBatch : bad"):
        upsert(fake, [{KEY: "a-1"}])
    assert org.aborted == []
    assert not any(path.endswith("Results") for _, path in fake.org.requests())


def test_a_job_still_running_when_the_wait_is_over_is_aborted() -> None:
    org = BulkOrg(runs=1_000)
    fake = FakeClient(org)
    with pytest.raises(bulk.JobFailed, match="still running after 60 s"):
        upsert(fake, [{KEY: "a-1"}], give_up_after=60)
    assert org.aborted == [f"jobs/ingest/{JOB}"]
    # Waits double up to the longest, and stop once the limit has been waited.
    assert fake.slept == [2.0, 2.0, 4.0, 8.0, 16.0, 30.0]
    assert org.looks == 6


def test_no_room_for_the_jobs_batches_aborts_it_and_says_so() -> None:
    org = BulkOrg()
    fake = FakeClient(org)
    fake.caps = {"bulk": 0}  # the Bulk share is spent; the Data share is not
    with pytest.raises(QuotaExhausted) as no_room:
        upsert(fake, [{KEY: "a-1"}])
    assert no_room.value.api == "bulk"
    assert org.aborted == [f"jobs/ingest/{JOB}"]
    assert fake.org.requests() == [
        ("POST", "jobs/ingest"),
        ("PUT", f"jobs/ingest/{JOB}/batches"),
        ("PATCH", f"jobs/ingest/{JOB}"),  # the abort: the close was never sent
    ]
    assert fake.spent("bulk") == 0


def test_a_refused_upload_aborts_the_job_and_passes_the_fault_on() -> None:
    org = BulkOrg()
    org.answer_first = lambda sent: (
        Reply(400, [{"errorCode": "INVALIDJOBSTATE", "message": "Job is not open"}])
        if sent.method == "PUT"
        else None
    )
    fake = FakeClient(org)
    with pytest.raises(Refused) as refused:
        upsert(fake, [{KEY: "a-1"}])
    assert refused.value.fault.code == "INVALIDJOBSTATE"
    assert org.aborted == [f"jobs/ingest/{JOB}"]


def test_an_expired_session_mid_job_is_renewed_and_the_job_goes_on() -> None:
    org = BulkOrg(runs=0)
    expired: list[bool] = []

    def first(sent: Sent) -> Reply | None:
        if sent.method == "PUT" and not expired:
            expired.append(True)
            return Reply(401, [{"errorCode": "INVALID_SESSION_ID"}])
        return None

    org.answer_first = first
    fake = FakeClient(org)
    assert upsert(fake, [{KEY: "a-1", "Subject": "x"}]) == {"a-1": api.Saved("00Ta-1")}
    assert len(org.uploads) == 1 and fake.tokens == 2


def test_a_new_job_the_org_names_oddly_is_not_used() -> None:
    org = BulkOrg()
    org.answer_first = lambda sent: (
        Reply(200, {"id": "../../sobjects/User"}) if sent.method == "POST" else None
    )
    fake = FakeClient(org)
    with pytest.raises(bulk.JobFailed, match="named a job"):
        upsert(fake, [{KEY: "a-1"}])
    assert len(fake.org.sent) == 1


# ---------------------------------------------------------------- query


def test_a_query_job_is_created_for_query_or_query_all() -> None:
    fake = FakeClient(lambda _: Reply(200, {"id": QUERY_JOB, "state": "UploadComplete"}))
    job = bulk.start_query(
        fake.client, "SELECT Id FROM Contact", include_deleted=True, clock=fake.clock
    )
    assert job == bulk.Job(QUERY_JOB, fake.clock.timestamp())
    (sent,) = fake.org.sent
    assert (sent.method, sent.path) == ("POST", "jobs/query")
    assert sent.json()["operation"] == "queryAll"
    assert sent.json()["query"] == "SELECT Id FROM Contact"
    assert [(c.api, c.calls) for c in fake.ledger.calls] == [("data", 1), ("bulk_query", 1)]


@dataclass
class QueryOrg:
    """A query job that answers 412 `running` times, then its rows in pages of `maxRecords`."""

    rows: int = 5
    running: int = 2
    fail_with: Reply | None = None
    state: str = "JobComplete"

    def __call__(self, sent: Sent) -> Reply:
        if sent.method == "PATCH":
            return Reply(200, {"state": "Aborted"})
        if sent.path == f"jobs/query/{QUERY_JOB}":
            return Reply(200, {"state": self.state, "errorMessage": "INVALID_FIELD: no such field"})
        assert sent.path == f"jobs/query/{QUERY_JOB}/results"
        if self.fail_with is not None:
            return self.fail_with
        if self.running:
            self.running -= 1
            return Reply(412, [{"errorCode": "JOB_NOT_COMPLETE", "message": "InProgress"}])
        start = int(sent.params.get("locator") or 0)
        end = min(self.rows, start + int(sent.params["maxRecords"]))
        lines = ["Id,Name", *(f"003{n:015d},name {n}" for n in range(start, end))]
        locator = str(end) if end < self.rows else "null"
        return Reply(200, csv_text(*lines), {**_CSV, "Sforce-Locator": locator})


def read(fake: FakeClient, **kwargs: Any) -> list[list[dict[str, str]]]:
    job = bulk.Job(QUERY_JOB, fake.clock.timestamp())
    pages = bulk.query_pages(
        fake.client, job, clock=fake.clock, sleep=fake.sleep, max_records=2, **kwargs
    )
    return [list(rows) for rows in pages]


def test_a_query_jobs_results_are_looked_for_until_ready_then_read_page_by_page() -> None:
    fake = FakeClient(QueryOrg(rows=5, running=2))
    pages = read(fake)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert pages[0][0] == {"Id": "003000000000000000", "Name": "name 0"}
    assert [s.params for s in fake.org.sent] == [
        {"maxRecords": "2"},
        {"maxRecords": "2"},
        {"maxRecords": "2"},
        {"maxRecords": "2", "locator": "2"},
        {"maxRecords": "2", "locator": "4"},
    ]
    # The first look two seconds after the create, then waits doubling: all on the clock.
    assert fake.slept == [2.0, 2.0, 4.0]
    assert fake.spent("data") == 5 and fake.spent("bulk_query") == 0


def test_a_job_started_long_before_is_looked_at_without_a_wait() -> None:
    fake = FakeClient(QueryOrg(rows=1, running=0))
    job = bulk.Job(QUERY_JOB, fake.clock.timestamp())
    fake.clock.advance(60)  # other work went on meanwhile
    pages = bulk.query_pages(fake.client, job, clock=fake.clock, sleep=fake.sleep, max_records=2)
    assert [len(list(rows)) for rows in pages] == [1]
    assert fake.slept == []


def test_a_query_job_that_failed_says_why() -> None:
    failed = Reply(400, [{"errorCode": "INVALIDJOBSTATE", "message": "Job is Failed"}])
    fake = FakeClient(QueryOrg(fail_with=failed, state="Failed"))
    with pytest.raises(bulk.JobFailed, match="Failed: INVALID_FIELD: no such field"):
        read(fake)
    assert fake.org.requests()[-1] == ("GET", f"jobs/query/{QUERY_JOB}")


def test_a_refused_results_page_of_a_job_still_going_is_the_refusal() -> None:
    limit = Reply(403, [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests"}])
    fake = FakeClient(QueryOrg(fail_with=limit, state="InProgress"))
    with pytest.raises(Refused) as refused:
        read(fake)
    assert refused.value.fault.code == "REQUEST_LIMIT_EXCEEDED"


def test_a_query_job_still_running_when_the_wait_is_over_is_aborted() -> None:
    fake = FakeClient(QueryOrg(running=1_000))
    with pytest.raises(bulk.JobFailed, match="still running"):
        read(fake, give_up_after=10)
    assert fake.org.requests()[-1] == ("PATCH", f"jobs/query/{QUERY_JOB}")
    assert fake.org.sent[-1].json() == {"state": "Aborted"}
    assert fake.slept == [2.0, 2.0, 4.0, 8.0]
