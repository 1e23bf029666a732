"""Bulk API 2.0: ingest jobs that upsert CSV rows, query jobs read back as CSV pages.

Every request is a REST request below `/services/data/vNN.N/jobs/`, sent with `api.send`: through
the governed session, so each one is a Data API call in the ledger (and an ingest job's close its
Bulk batches, a query job's create its Bulk query job), its session renewed once, its error body a
`Fault`.

An ingest (`upsert`) creates a job, uploads the rows as one CSV, closes the job and looks at it
until it has ended, then reads its successful and failed rows into a result per row. A row in
neither list was not processed (the job stopped short of it): it has no result. A job that cannot
go on (no room in the ledger, no answer, a refusal) is aborted on the way out, so it never runs
half-uploaded.

A query job is created by `start_query` and read by `query_pages`: its results endpoint answers
412 `JOB_NOT_COMPLETE` while the job runs, so asking for them is the look, and a completed job's
first look brings its first page; later pages follow the `Sforce-Locator` header.

Looking at a running job waits on the injected clock and sleep: the first look comes `FIRST_LOOK`
seconds after the job was started (a job started before other work may need no wait at all), each
look that finds it running doubles the wait, up to `LONGEST_WAIT`, and a job still running once
`give_up_after` seconds have been waited is aborted (`JobFailed`).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, cast

import requests

from quotasync.clock import Clock
from quotasync.errors import (
    NoAnswer,
    QuotaExhausted,
    Refused,
    SalesforceError,
    Unreachable,
)
from quotasync.salesforce import api

if TYPE_CHECKING:
    from quotasync.salesforce.connection import Client

FIRST_LOOK = 2.0  # seconds from a job's start to the first look at it
LONGEST_WAIT = 30.0  # between two looks, at most
GIVE_UP_AFTER = 2 * 3600.0  # seconds waited on one job before it is aborted
# A job's upload, at most: Salesforce takes 150 MB of base64, about 100 MB of CSV; a margin for
# the estimate below. A bigger upload goes as several jobs.
MAX_UPLOAD = 99 * 1024 * 1024
ENDED = ("JobComplete", "Failed", "Aborted")
FAILED = ("Failed", "Aborted")
JOB_ID = re.compile(r"750[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?")
CSV = "text/csv"
_NAMES_AN_END = re.compile(r"\b(?:Failed|Aborted)\b")

Sleep = Callable[[float], None]


class JobFailed(SalesforceError):
    """A job ended Failed or Aborted, or did not end in time; the message says why."""


@dataclass(frozen=True)
class Job:
    id: str
    started: float  # on the clock, POSIX seconds


# ---------------------------------------------------------------- ingest


def upsert(
    client: Client,
    sobject: str,
    external_id: str,
    rows: Sequence[Mapping[str, object]],
    *,
    clock: Clock,
    sleep: Sleep,
    give_up_after: float = GIVE_UP_AFTER,
) -> dict[str, api.Saved]:
    """Upsert `rows` (field -> value) by their `external_id`; each processed row's result by its
    external id. A field a row lacks, or holds None for, is left as it is in the org (an empty
    cell). One job, or one per `MAX_UPLOAD` of CSV."""
    columns = sorted({name for row in rows for name in row})
    if external_id not in columns:
        raise ValueError(f"the rows carry no {external_id}")
    results: dict[str, api.Saved] = {}
    for upload in _uploads(columns, rows):
        job = _open(client, sobject, external_id, clock)
        _run(client, job, upload, clock=clock, sleep=sleep, give_up_after=give_up_after)
        results.update(_results(client, job, external_id))
    return results


def _uploads(columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> Iterator[bytes]:
    """The rows as CSV files, each within `MAX_UPLOAD`, the header on each."""
    header = _csv_line(columns)
    upload, size = [header], len(header)
    for row in rows:
        line = _csv_line([cell(row.get(c)) for c in columns])
        if len(upload) > 1 and size + len(line) > MAX_UPLOAD:
            yield b"".join(upload)
            upload, size = [header], len(header)
        upload.append(line)
        size += len(line)
    if len(upload) > 1:
        yield b"".join(upload)


def cell(value: object) -> str:
    """A value as a CSV cell: None is empty (the field is left as it is), a whole float a whole
    number."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _csv_line(cells: Sequence[str]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(cells)
    return out.getvalue().encode()


def _open(client: Client, sobject: str, external_id: str, clock: Clock) -> Job:
    definition = {
        "object": sobject,
        "operation": "upsert",
        "externalIdFieldName": external_id,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    return _created(api.send(client, "POST", "jobs/ingest", data=json.dumps(definition)), clock)


def _run(
    client: Client, job: Job, upload: bytes, *, clock: Clock, sleep: Sleep, give_up_after: float
) -> None:
    """Upload, close, and look until the job has ended; a job stopped on the way is aborted."""
    path = f"jobs/ingest/{job.id}"
    try:
        api.send(client, "PUT", f"{path}/batches", data=upload, content_type=CSV).close()
        api.send(client, "PATCH", path, data=json.dumps({"state": "UploadComplete"})).close()
        _first_look(job, clock, sleep)
        for _ in _looks(sleep, give_up_after):
            state, message = _state(client, path)
            if state in FAILED:
                raise JobFailed(f"ingest job {job.id} {state}: {message}")
            if state == "JobComplete":
                return
    except (QuotaExhausted, Refused, Unreachable):
        _abort(client, path)
        raise
    _abort(client, path)
    raise JobFailed(f"ingest job {job.id} still running after {give_up_after:.0f} s")


def _results(client: Client, job: Job, external_id: str) -> dict[str, api.Saved]:
    results: dict[str, api.Saved] = {}
    for kind in ("successfulResults", "failedResults"):
        answer = api.send(client, "GET", f"jobs/ingest/{job.id}/{kind}", accept=CSV)
        with closing(answer):
            for row in csv.DictReader(io.StringIO(_text(answer))):
                key = row.get(external_id)
                if key:
                    results[key] = _saved(row)
    return results


def _text(answer: requests.Response) -> str:
    """An answer's body as text; a body cut short on the way is `Unreachable` (requests'
    exception goes no further than here)."""
    try:
        return answer.content.decode("utf-8-sig")
    except requests.RequestException as error:
        raise Unreachable(f"an answer cut short: {error}", NoAnswer.NETWORK) from error


def _saved(row: Mapping[str, str]) -> api.Saved:
    """A result row: `sf__Id`, and for a failed one `sf__Error` ("CODE:message")."""
    record_id = row.get("sf__Id") or None
    if "sf__Error" not in row:
        return api.Saved(record_id)
    code, _, message = (row.get("sf__Error") or "").partition(":")
    return api.Saved(record_id, api.Fault(code.strip() or "UNKNOWN_EXCEPTION", message.strip()))


# ---------------------------------------------------------------- query


def start_query(client: Client, soql: str, *, include_deleted: bool, clock: Clock) -> Job:
    """Create a query job (one call, one Bulk query job); its rows are read by `query_pages`."""
    definition = {
        "operation": "queryAll" if include_deleted else "query",
        "query": soql,
        "contentType": "CSV",
        "columnDelimiter": "COMMA",
        "lineEnding": "LF",
    }
    return _created(api.send(client, "POST", "jobs/query", data=json.dumps(definition)), clock)


def query_pages(
    client: Client,
    job: Job,
    *,
    clock: Clock,
    sleep: Sleep,
    max_records: int,
    give_up_after: float = GIVE_UP_AFTER,
) -> Iterator[Iterator[dict[str, str]]]:
    """The job's result pages, each its rows (CSV cells as strings, "" for null) as they stream
    in; a page is read through before the next is asked for."""
    _first_look(job, clock, sleep)
    locator = ""
    while True:
        params: dict[str, Any] = {"maxRecords": max_records}
        if locator:
            params["locator"] = locator
        response = _result_page(client, job, params, sleep, give_up_after)
        with closing(response):
            locator = response.headers.get("Sforce-Locator", "null")
            yield _streamed_rows(response)
        if not locator or locator == "null":
            return


def _result_page(
    client: Client, job: Job, params: dict[str, Any], sleep: Sleep, give_up_after: float
) -> requests.Response:
    """A page of results; while the job runs (412), asked for again after a growing wait."""
    path = f"jobs/query/{job.id}"
    for _ in _looks(sleep, give_up_after):
        try:
            return api.send(
                client, "GET", f"{path}/results", params=params, accept=CSV, stream=True
            )
        except Refused as refused:
            if refused.status != 412 or _NAMES_AN_END.search(refused.fault.message):
                state, message = _state(client, path)  # a job that ended says why
                if state in FAILED:
                    raise JobFailed(f"query job {job.id} {state}: {message}") from refused
                raise
    _abort(client, path)
    raise JobFailed(f"query job {job.id} still running after {give_up_after:.0f} s")


def _streamed_rows(response: requests.Response) -> Iterator[dict[str, str]]:
    response.raw.decode_content = True
    response.raw.auto_close = False  # io.TextIOWrapper reads on until it sees the end itself
    text = io.TextIOWrapper(cast(IO[bytes], response.raw), encoding="utf-8-sig", newline="")
    yield from csv.DictReader(text)


# ---------------------------------------------------------------- both kinds


def _created(answer: requests.Response, clock: Clock) -> Job:
    """The job a create answered with; its id is checked, since it goes into paths."""
    with closing(answer):
        try:
            job_id = str(answer.json()["id"])
        except (ValueError, KeyError, TypeError):
            raise JobFailed("the org's answer to a new job names no job") from None
    if not JOB_ID.fullmatch(job_id):
        raise JobFailed(f"the org named a job {job_id[:40]!r}")
    return Job(job_id, clock.timestamp())


def _first_look(job: Job, clock: Clock, sleep: Sleep) -> None:
    wait = job.started + FIRST_LOOK - clock.timestamp()
    if wait > 0:
        sleep(wait)


def _looks(sleep: Sleep, give_up_after: float) -> Iterator[float]:
    """A look now, then one after each wait (doubling, up to `LONGEST_WAIT`) while fewer than
    `give_up_after` seconds have been waited; yields the seconds waited so far."""
    waited, wait = 0.0, FIRST_LOOK
    yield waited
    while waited < give_up_after:
        sleep(wait)
        waited += wait
        wait = min(wait * 2, LONGEST_WAIT)
        yield waited


def _state(client: Client, path: str) -> tuple[str | None, str]:
    """A job's state and error message (one call)."""
    with closing(api.send(client, "GET", path)) as answer:
        try:
            info = answer.json()
        except ValueError:
            return None, ""
    if not isinstance(info, dict):
        return None, ""
    state = info.get("state")
    return (str(state) if state is not None else None), str(info.get("errorMessage") or "")[:500]


def _abort(client: Client, path: str) -> None:
    """Abort a job that cannot go on, if the org takes it: the job's own trouble is what the
    caller hears about, not this."""
    with contextlib.suppress(QuotaExhausted, SalesforceError):
        api.send(client, "PATCH", path, data=json.dumps({"state": "Aborted"})).close()
