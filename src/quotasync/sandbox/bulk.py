"""Bulk API 2.0: ingest jobs (CSV in, per-record result CSVs out) and query jobs (SOQL in, paged
CSV out). Jobs run in the background on the server's event loop, moving through the states
Salesforce documents, and are charged to the quotas Salesforce charges them to."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import math
import re
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from quotasync.sandbox import editions, rts, schema
from quotasync.sandbox.errors import (
    ApiError,
    RecordError,
    json_parser_error,
    not_found,
    unable_to_lock_row,
)
from quotasync.sandbox.querying import Plan, write_csv
from quotasync.sandbox.rest import Call, Reply, route

RECORDS_PER_BATCH = 10_000
MAX_UPLOAD_BYTES = 150 * 1024 * 1024
DEFAULT_MAX_RECORDS = 50_000
_CHUNK = 1_000  # rows between yields to the event loop, so a big job never stalls other requests
# Salesforce runs a Bulk job's triggers on 200 records at a time: each slice is one DML operation.
_TRIGGER_SLICE = rts.CHANGES_PER_PUSH
# A query job is never done the moment it is created: it stays InProgress this long, so a client
# that asks for results without waiting sees 412 JOB_NOT_COMPLETE, as it would from Salesforce.
QUERY_MIN_SECONDS = 0.2
DELIMITERS = {
    "COMMA": ",",
    "TAB": "\t",
    "PIPE": "|",
    "SEMICOLON": ";",
    "CARET": "^",
    "BACKQUOTE": "`",
}
INGEST_OPERATIONS = ("insert", "upsert", "update", "delete", "hardDelete")
TERMINAL = ("JobComplete", "Failed", "Aborted")


@dataclass
class Job:
    id: str
    kind: str  # "ingest" | "query"
    operation: str
    object: str
    created_by: str
    created: datetime
    version: str
    line_ending: str = "LF"
    delimiter: str = "COMMA"
    external_id_field: str | None = None
    query: str | None = None
    state: str = "Open"
    modstamp: datetime | None = None
    uploads: list[bytes] = field(default_factory=list)
    # An ingest job's rows, parsed from its uploads once when it is closed.
    pending: list[list[str]] = field(default_factory=list)
    plan: Plan | None = None  # a query job's SOQL, planned once when the job is created
    processed: int = 0
    failed: int = 0
    successes: list[list[str]] = field(default_factory=list)
    failures: list[list[str]] = field(default_factory=list)
    unprocessed: list[list[str]] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    error_message: str | None = None
    started: float = 0.0
    finished: float = 0.0

    def info(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "object": self.object,
            "createdById": self.created_by,
            "createdDate": schema.format_datetime(self.created),
            "systemModstamp": schema.format_datetime(self.modstamp or self.created),
            "state": self.state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self.version),
            "lineEnding": self.line_ending,
            "columnDelimiter": self.delimiter,
        }
        if self.kind == "ingest":
            out["externalIdFieldName"] = self.external_id_field
            out["contentUrl"] = f"services/data/v{self.version}/jobs/ingest/{self.id}/batches"
            out["jobType"] = "V2Ingest"
            out["numberRecordsFailed"] = self.failed
        else:
            out["jobType"] = "V2Query"
            out["query"] = self.query
        out["numberRecordsProcessed"] = self.processed
        out["retries"] = 0
        elapsed = (
            int((self.finished or time.monotonic()) - self.started) * 1000 if self.started else 0
        )
        out["totalProcessingTime"] = elapsed
        if self.kind == "ingest":
            out["apiActiveProcessingTime"] = elapsed
            out["apexProcessingTime"] = 0
        if self.error_message:
            out["errorMessage"] = self.error_message
        return out


def _jobs(call: Call) -> dict[str, Job]:
    return call.org.bulk_jobs


def _job(call: Call, job_id: str, kind: str) -> Job:
    job = _jobs(call).get(job_id)
    if job is None or job.kind != kind:
        raise not_found("The requested resource does not exist")
    return job


def _touch(call: Call, job: Job, state: str) -> None:
    job.state = state
    job.modstamp = call.org.now()


def _options(body: dict[str, Any]) -> tuple[str, str]:
    line_ending = str(body.get("lineEnding", "LF"))
    delimiter = str(body.get("columnDelimiter", "COMMA"))
    if line_ending not in ("LF", "CRLF"):
        raise ApiError(400, "INVALIDJOB", f"Invalid line ending: {line_ending}")
    if delimiter not in DELIMITERS:
        raise ApiError(400, "INVALIDJOB", f"Invalid column delimiter: {delimiter}")
    return line_ending, delimiter


def _body(call: Call) -> dict[str, Any]:
    body = call.json()
    if not isinstance(body, dict):
        raise json_parser_error("The job definition must be a JSON object")
    return body


def _listing(call: Call, kind: str) -> Reply:
    jobs = [j.info() for j in _jobs(call).values() if j.kind == kind]
    return Reply(200, {"done": True, "records": jobs, "nextRecordsUrl": None})


# ---------------------------------------------------------------- ingest


@route("GET POST", r"jobs/ingest")
def ingest_jobs(call: Call, _: re.Match[str]) -> Reply:
    if call.method == "GET":
        return _listing(call, "ingest")
    body = _body(call)
    operation = body.get("operation")
    if operation not in INGEST_OPERATIONS:
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
    found = schema.find(str(body.get("object", "")))
    if found is None:
        # A bad object in the job definition is a bad request, not a missing resource.
        raise ApiError(
            400,
            "INVALIDJOB",
            f"InvalidJob : sObject type '{body.get('object')}' is not supported.",
        )
    obj = found
    external = body.get("externalIdFieldName")
    if operation == "upsert":
        f = obj.field(str(external or ""))
        if f is None or not (f.external_id or f.name == "Id"):
            raise ApiError(
                400,
                "INVALIDJOB",
                f"InvalidJob : Field name provided, {external} is not an External ID or indexed field for {obj.name}",
            )
        external = f.name
    if body.get("contentType", "CSV") != "CSV":
        raise ApiError(400, "INVALIDJOB", "InvalidJob : only CSV is supported")
    line_ending, delimiter = _options(body)
    org = call.org
    if not org.usage.has_room(editions.DAILY_BULK_API_BATCHES, 1, org.timestamp()):
        raise ApiError(403, "REQUEST_LIMIT_EXCEEDED", "DailyBulkApiBatches Limit exceeded.")
    job = Job(
        id=org.records.ids.new("750"),
        kind="ingest",
        operation=operation,
        object=obj.name,
        created_by=call.caller.user_id,
        created=org.now(),
        version=call.version,
        line_ending=line_ending,
        delimiter=delimiter,
        external_id_field=external if operation == "upsert" else None,
    )
    _jobs(call)[job.id] = job
    return Reply(200, job.info())


@route("GET PATCH DELETE", r"jobs/ingest/(?P<id>750\w+)")
def ingest_job(call: Call, match: re.Match[str]) -> Reply:
    job = _job(call, match["id"], "ingest")
    if call.method == "GET":
        return Reply(200, job.info())
    if call.method == "DELETE":
        if job.state not in (*TERMINAL, "UploadComplete"):
            raise ApiError(400, "INVALIDJOBSTATE", f"Job in state {job.state} cannot be deleted")
        del _jobs(call)[job.id]
        return Reply(204)
    wanted = _body(call).get("state")
    if wanted == "Aborted":
        if job.state in TERMINAL:
            raise ApiError(400, "INVALIDJOBSTATE", f"Job in state {job.state} cannot be aborted")
        _touch(call, job, "Aborted")
        return Reply(200, job.info())
    if wanted != "UploadComplete":
        raise ApiError(400, "INVALIDJOBSTATE", f"Invalid state transition to {wanted}")
    if job.state != "Open":
        raise ApiError(400, "INVALIDJOBSTATE", f"Job in state {job.state} cannot be closed")
    if not job.uploads:
        return _fail(call, job, "No data was uploaded for this job")
    try:
        _parse_uploads(job)
    except (ValueError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
        return _fail(call, job, str(exc))
    call.org.spend(
        call.caller.app,
        editions.DAILY_BULK_API_BATCHES,
        max(1, math.ceil(len(job.pending) / RECORDS_PER_BATCH)),
    )
    _touch(call, job, "UploadComplete")
    asyncio.get_running_loop().create_task(_run_ingest(call, job))
    return Reply(200, job.info())


@route("PUT", r"jobs/ingest/(?P<id>750\w+)/batches")
def ingest_upload(call: Call, match: re.Match[str]) -> Reply:
    job = _job(call, match["id"], "ingest")
    if job.state != "Open":
        raise ApiError(409, "INVALIDJOBSTATE", f"Job in state {job.state} cannot take data")
    if not call.body:
        raise ApiError(400, "INVALIDBATCH", "InvalidBatch : The request body is empty")
    if sum(map(len, job.uploads)) + len(call.body) > MAX_UPLOAD_BYTES:
        raise ApiError(400, "INVALIDBATCH", "InvalidBatch : The job's data exceeds 150 MB")
    job.uploads.append(call.body)
    return Reply(201, text="", media_type="text/plain")


@route(
    "GET",
    # Salesforce documents `unprocessedrecords` and clients (simple-salesforce) send
    # `unprocessedRecords`; the org takes both.
    r"jobs/ingest/(?P<id>750\w+)/(?P<kind>(?i:successfulResults|failedResults|unprocessedrecords))",
)
def ingest_results(call: Call, match: re.Match[str]) -> Reply:
    job = _job(call, match["id"], "ingest")
    kind = match["kind"].lower()
    if kind != "unprocessedrecords" and job.state not in TERMINAL:
        raise ApiError(400, "INVALIDJOBSTATE", "Job is not complete; results are not available yet")
    if kind == "successfulresults":
        header, rows = ["sf__Id", "sf__Created", *job.header], job.successes
    elif kind == "failedresults":
        header, rows = ["sf__Id", "sf__Error", *job.header], job.failures
    else:
        header, rows = job.header, job.unprocessed
    text = write_csv(header, rows, job.line_ending, DELIMITERS[job.delimiter]) if header else ""
    return Reply(200, text=text, media_type="text/csv")


def _fail(call: Call, job: Job, problem: str) -> Reply:
    job.error_message = f"InvalidBatch : {problem}"
    _touch(call, job, "Failed")
    return Reply(200, job.info())


def _parse_uploads(job: Job) -> None:
    """Read every upload into the job's header and rows: once, as the job closes."""
    rows: list[list[str]] = []
    for number, data in enumerate(job.uploads):
        text = data.decode("utf-8-sig")
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=DELIMITERS[job.delimiter])
        header: list[str] = next(reader, [])
        if number and header != job.header:
            raise ValueError("every upload of a job must have the same header")
        job.header = header
        rows.extend(row for row in reader if row)
    job.pending = rows
    job.uploads.clear()


async def _run_ingest(call: Call, job: Job) -> None:
    org = call.org
    await asyncio.sleep(0)
    if job.state == "Aborted":
        return
    _touch(call, job, "InProgress")
    job.started = time.monotonic()
    obj = schema.OBJECTS[job.object]
    try:
        _check_header(job, obj, job.header)
        rows, job.pending = job.pending, []
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start : start + _CHUNK]
            if job.state == "Aborted":
                job.unprocessed.extend(chunk)
                continue
            now = org.now()  # one timestamp per chunk, as Salesforce stamps a batch
            for offset, row in enumerate(chunk, start):
                if offset % _TRIGGER_SLICE == 0:
                    org.records.next_operation()
                _ingest_row(call, job, obj, row, now)
            org.commit()
            await asyncio.sleep(0)
    except Exception as exc:  # a job must end, whatever went wrong
        job.error_message = f"InvalidBatch : {exc}"
        _touch(call, job, "Failed")
        org.commit()
        return
    job.finished = time.monotonic()
    if job.state != "Aborted":
        _touch(call, job, "JobComplete")
    org.commit()


def _check_header(job: Job, obj: schema.SObject, header: list[str]) -> None:
    names = {h.lower() for h in header}
    for name in header:
        if obj.field(name) is None:
            raise ValueError(f"Field name not found : {name}")
    if job.operation in ("update", "delete", "hardDelete") and "id" not in names:
        raise ValueError("Id is required for update and delete")
    if job.operation == "upsert" and (job.external_id_field or "").lower() not in names:
        raise ValueError(f"The external id field {job.external_id_field} is missing")


def _ingest_row(call: Call, job: Job, obj: schema.SObject, row: list[str], now: datetime) -> None:
    org, user = call.org, job.created_by
    values: dict[str, Any] = {}
    for name, cell in zip(job.header, row, strict=False):
        if cell == "":
            continue  # an empty cell leaves the field as it is; #N/A clears it
        f = obj.field(name)
        assert f is not None
        values[f.name] = None if cell == "#N/A" else cell  # typed by the DML step, per record
    try:
        if org.faults.lock_hit():
            raise unable_to_lock_row(values.get("Id"))
        created = False
        if job.operation == "insert":
            values.pop("Id", None)
            record = org.records.insert(obj, values, user, now)
            created = True
        elif job.operation == "upsert":
            f = obj.field(job.external_id_field or "")
            assert f is not None
            if f.name == "Id":
                record = org.records.update(obj, str(values.pop("Id", "")), values, user, now)
            else:
                record, created = org.records.upsert(obj, f, values.get(f.name), values, user, now)
        elif job.operation == "update":
            record = org.records.update(obj, str(values.pop("Id", "")), values, user, now)
        else:
            record = org.records.delete(obj, str(values.get("Id", "")), user, now)
    except RecordError as error:
        _row_failed(job, row, f"{error.code}:{error.message}:{','.join(error.fields)} --")
        return
    except Exception as exc:  # one bad row fails alone, as any other row error would
        _row_failed(job, row, f"UNKNOWN_EXCEPTION:{type(exc).__name__}: {exc}: --")
        return
    job.processed += 1
    job.successes.append([record["Id"], "true" if created else "false", *row])


def _row_failed(job: Job, row: list[str], error: str) -> None:
    job.failed += 1
    job.processed += 1
    job.failures.append(["", error, *row])


# ---------------------------------------------------------------- query


@route("GET POST", r"jobs/query")
def query_jobs(call: Call, _: re.Match[str]) -> Reply:
    if call.method == "GET":
        return _listing(call, "query")
    body = _body(call)
    operation = body.get("operation", "query")
    if operation not in ("query", "queryAll"):
        raise ApiError(400, "INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
    text = body.get("query")
    if not isinstance(text, str) or not text.strip():
        raise ApiError(400, "INVALIDJOB", "InvalidJob : a query is required")
    line_ending, delimiter = _options(body)
    org = call.org
    plan = org.queries.resolver.plan(text)  # refuses bad SOQL now, as Salesforce does
    if plan.query.count_only:
        raise ApiError(400, "INVALIDJOB", "InvalidJob : Aggregate queries are not supported")
    org.spend(call.caller.app, editions.DAILY_BULK_V2_QUERY_JOBS, 1)
    job = Job(
        id=org.records.ids.new("750"),
        kind="query",
        operation=operation,
        object=plan.sobject.name,
        created_by=call.caller.user_id,
        created=org.now(),
        version=call.version,
        line_ending=line_ending,
        delimiter=delimiter,
        query=text,
        state="UploadComplete",
        plan=plan,
    )
    _jobs(call)[job.id] = job
    asyncio.get_running_loop().create_task(_run_query(call, job))
    return Reply(200, job.info())


@route("GET PATCH DELETE", r"jobs/query/(?P<id>750\w+)")
def query_job(call: Call, match: re.Match[str]) -> Reply:
    job = _job(call, match["id"], "query")
    if call.method == "GET":
        return Reply(200, job.info())
    if call.method == "DELETE":
        del _jobs(call)[job.id]
        return Reply(204)
    if _body(call).get("state") != "Aborted" or job.state in TERMINAL:
        raise ApiError(400, "INVALIDJOBSTATE", f"Job in state {job.state} cannot be changed")
    _touch(call, job, "Aborted")
    return Reply(200, job.info())


@route("GET", r"jobs/query/(?P<id>750\w+)/results")
def query_results(call: Call, match: re.Match[str]) -> Reply:
    job = _job(call, match["id"], "query")
    if job.state != "JobComplete":
        raise ApiError(
            412, "JOB_NOT_COMPLETE", f"Job {job.id} is not complete; its state is {job.state}"
        )
    try:
        start = int(base64.b64decode(_pad(call.params.get("locator", "") or "MA")).decode())
        size = int(call.params.get("maxRecords", DEFAULT_MAX_RECORDS))
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "INVALIDLOCATOR", "Invalid locator or maxRecords") from None
    if size <= 0 or start < 0:
        raise ApiError(400, "INVALIDLOCATOR", "maxRecords must be positive")
    rows = job.rows[start : start + size]
    end = start + len(rows)
    locator = (
        base64.b64encode(str(end).encode()).decode().rstrip("=") if end < len(job.rows) else "null"
    )
    text = write_csv(job.header, rows, job.line_ending, DELIMITERS[job.delimiter])
    headers = {"Sforce-Locator": locator, "Sforce-NumberOfRecords": str(len(rows))}
    return Reply(200, text=text, media_type="text/csv", headers=headers)


def _pad(text: str) -> str:
    return text + "=" * (-len(text) % 4)


async def _run_query(call: Call, job: Job) -> None:
    await asyncio.sleep(0)
    if job.state == "Aborted":
        return
    _touch(call, job, "InProgress")
    job.started = time.monotonic()
    org = call.org
    try:
        assert job.plan is not None
        job.header, job.rows = org.queries.csv(
            job.plan, include_deleted=job.operation == "queryAll", now=org.now()
        )
    except ApiError as error:
        job.error_message = error.message
        _touch(call, job, "Failed")
        return
    except Exception as exc:  # a job must end, whatever went wrong
        job.error_message = f"{type(exc).__name__}: {exc}"
        _touch(call, job, "Failed")
        return
    job.processed = len(job.rows)
    await asyncio.sleep(max(0.0, job.started + QUERY_MIN_SECONDS - time.monotonic()))
    job.finished = time.monotonic()
    if job.state != "Aborted":
        _touch(call, job, "JobComplete")
