"""Bulk API 2.0 query jobs, read as they stream in.

A job costs one `DailyBulkV2QueryJobs` unit and, like every Bulk 2.0 request, one Data call per
HTTP request (shared/SALESFORCE.md): the create, each look at the job's state, each result page.
So the state is looked at with a growing backoff (a quarter second doubling up to half a minute),
and results are asked for in pages as large as Salesforce serves, parsed as they arrive, so 50,000
records are one page and never one string in memory.
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import IO, Any, cast

import requests
from simple_salesforce.exceptions import SalesforceExpiredSession
from simple_salesforce.util import call_salesforce

from quotasync.salesforce.connection import Client

FIRST_LOOK = 0.25  # seconds before the first look at a new job's state
LONGEST_WAIT = 30.0  # between two looks, at most
GIVE_UP_AFTER = 2 * 3600.0  # a job still running after this is aborted
# Records per result page. Salesforce sets no upper bound on maxRecords (it cuts a page by size on
# its own, and says where to go on in Sforce-Locator); the rows are parsed as they stream in.
PAGE_RECORDS = 500_000
CHUNK_ROWS = 5_000  # rows handed on at a time, so the mirror applies them in bounded batches
TERMINAL = ("JobComplete", "Failed", "Aborted")


class BulkJobFailed(Exception):
    """The job ended Failed or Aborted, or did not finish in time; its message says why."""


class BulkQuery:
    def __init__(
        self,
        client: Client,
        *,
        sleep: Callable[[float], None] = time.sleep,
        page_records: int = PAGE_RECORDS,
    ) -> None:
        self.client = client
        self.sleep = sleep
        self.page_records = page_records

    def rows(self, soql: str, *, include_deleted: bool) -> Iterator[list[dict[str, str]]]:
        """The query's rows (CSV cells as strings, "" for null), a chunk at a time."""
        job = self._request(
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
        ).json()
        job_id = str(job["id"])
        self._wait(job_id)
        locator = ""
        while True:
            params: dict[str, Any] = {"maxRecords": self.page_records}
            if locator:
                params["locator"] = locator
            response = self._request(
                "GET", f"query/{job_id}/results", params=params, stream=True, accept="text/csv"
            )
            with closing(response):
                locator = response.headers.get("Sforce-Locator", "null")
                yield from _chunks(_csv_rows(response))
            if not locator or locator == "null":
                return

    def _wait(self, job_id: str) -> None:
        started = time.monotonic()
        wait = FIRST_LOOK
        while True:
            self.sleep(wait)
            info = self._request("GET", f"query/{job_id}").json()
            state = info.get("state")
            if state == "JobComplete":
                return
            if state in TERMINAL:
                raise BulkJobFailed(f"query job {job_id} {state}: {info.get('errorMessage', '')}")
            if time.monotonic() - started > GIVE_UP_AFTER:
                self._request("PATCH", f"query/{job_id}", data=json.dumps({"state": "Aborted"}))
                raise BulkJobFailed(f"query job {job_id} still {state} after {GIVE_UP_AFTER:.0f} s")
            wait = min(wait * 2, LONGEST_WAIT)

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
