"""Bulk API 2.0 query jobs, read as they stream in, in as few calls as the job allows.

A job costs one `DailyBulkV2QueryJobs` unit and, like every Bulk 2.0 request, one Data call per
HTTP request: the create, each look at the job, each result page. So a job is looked at only
through its results: the results endpoint itself answers 412 `JOB_NOT_COMPLETE` while the job
runs, so asking for them is the look, and a completed job's first look brings its first page.
The first look waits until `FIRST_LOOK` seconds have passed since the job was created (on the
injected clock, so a job created before other work may need no wait at all); each 412 doubles the
wait, up to `LONGEST_WAIT`. Results are asked for in pages as large as Salesforce serves, parsed
as they arrive, so 50,000 records are one page and never one string in memory.

A create is cheap to do early: `start` creates the job and returns at once, and `rows` reads it
later, so the jobs of several objects run in the org side by side while other pages are read.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import IO, Any, cast

import requests
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession
from simple_salesforce.util import call_salesforce

from quotasync.clock import Clock, RealClock
from quotasync.salesforce import api
from quotasync.salesforce.connection import Client

FIRST_LOOK = 2.0  # seconds from a job's creation to the first look at its results
LONGEST_WAIT = 30.0  # between two looks, at most
GIVE_UP_AFTER = 2 * 3600.0  # seconds waited on one job before it is aborted
# Records per result page. Salesforce sets no upper bound on maxRecords (it cuts a page by size on
# its own, and says where to go on in Sforce-Locator); the rows are parsed as they stream in.
PAGE_RECORDS = 500_000
CHUNK_ROWS = 5_000  # rows handed on at a time, so the mirror applies them in bounded batches
ENDED = ("Failed", "Aborted")
JOB_ID = re.compile(r"750[A-Za-z0-9]{12}(?:[A-Za-z0-9]{3})?")
_NAMES_AN_END = re.compile(r"\b(?:Failed|Aborted)\b")


class BulkJobFailed(Exception):
    """The job ended Failed or Aborted, or did not finish in time; its message says why."""


@dataclass(frozen=True)
class Job:
    id: str
    created: float  # on the clock, POSIX seconds


class BulkQuery:
    def __init__(
        self,
        client: Client,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        page_records: int = PAGE_RECORDS,
    ) -> None:
        self.client = client
        self.clock = clock or RealClock()
        self.sleep = sleep
        self.page_records = page_records

    def start(self, soql: str, *, include_deleted: bool) -> Job:
        """Create the query job (one call); its rows are read by `rows`."""
        answer = self._request(
            "POST",
            "query",
            data=json.dumps(
                {
                    "operation": "queryAll" if include_deleted else "query",
                    "query": soql,
                    "contentType": "CSV",
                    "columnDelimiter": "COMMA",
                    "lineEnding": "LF",
                }
            ),
        )
        try:
            job_id = str(answer.json()["id"])
        except (ValueError, KeyError, TypeError):
            raise BulkJobFailed("the org's answer to a new query job names no job") from None
        if not JOB_ID.fullmatch(job_id):
            raise BulkJobFailed(f"the org named a query job {job_id[:40]!r}")
        return Job(job_id, self.clock.timestamp())

    def rows(self, job: Job) -> Iterator[list[dict[str, str]]]:
        """The job's rows (CSV cells as strings, "" for null), a chunk at a time."""
        wait = job.created + FIRST_LOOK - self.clock.timestamp()
        if wait > 0:
            self.sleep(wait)
        locator = ""
        while True:
            params: dict[str, Any] = {"maxRecords": self.page_records}
            if locator:
                params["locator"] = locator
            response = self._results(job, params)
            with closing(response):
                locator = response.headers.get("Sforce-Locator", "null")
                yield from _chunks(_csv_rows(response))
            if not locator or locator == "null":
                return

    def _results(self, job: Job, params: dict[str, Any]) -> requests.Response:
        """A page of results; while the job runs (412), looked for again with a growing wait."""
        waited, wait = 0.0, FIRST_LOOK
        while True:
            try:
                return self._request(
                    "GET", f"query/{job.id}/results", params=params, stream=True, accept="text/csv"
                )
            except SalesforceError as error:
                why = api.fault(error.content)
                if error.status != 412 or _NAMES_AN_END.search(why.message):
                    self._raise_if_ended(job)  # a job that ended Failed or Aborted says why
                    raise
            if waited >= GIVE_UP_AFTER:
                self._request("PATCH", f"query/{job.id}", data=json.dumps({"state": "Aborted"}))
                raise BulkJobFailed(f"query job {job.id} still running after {waited:.0f} s")
            self.sleep(wait)
            waited += wait
            wait = min(wait * 2, LONGEST_WAIT)

    def _raise_if_ended(self, job: Job) -> None:
        info = self._request("GET", f"query/{job.id}").json()
        state = info.get("state") if isinstance(info, dict) else None
        if state in ENDED:
            message = str(info.get("errorMessage") or "")[:500]
            raise BulkJobFailed(f"query job {job.id} {state}: {message}")

    def _request(
        self, method: str, path: str, *, accept: str = "application/json", **kwargs: Any
    ) -> requests.Response:
        """One request to the Bulk 2.0 API; an expired session is refreshed once."""
        for attempt in range(2):
            sf = self.client.sf
            headers = {
                "Authorization": f"Bearer {sf.session_id}",
                "Content-Type": "application/json",
                "Accept": accept,
            }
            try:
                return call_salesforce(
                    f"{sf.bulk2_url}{path}",
                    method,
                    session=self.client.http,
                    headers=headers,
                    **kwargs,
                )
            except SalesforceExpiredSession:
                if attempt:
                    raise
                self.client.refresh()
        raise AssertionError("unreachable")  # pragma: no cover


def _csv_rows(response: requests.Response) -> Iterator[dict[str, str]]:
    response.raw.decode_content = True
    response.raw.auto_close = False  # io.TextIOWrapper reads on until it sees the end itself
    text = io.TextIOWrapper(cast(IO[bytes], response.raw), encoding="utf-8-sig", newline="")
    yield from csv.DictReader(text)


def _chunks(rows: Iterator[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    chunk: list[dict[str, str]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
