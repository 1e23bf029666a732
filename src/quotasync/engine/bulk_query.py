"""Bulk API 2.0 query jobs for the mirror sync, read in as few calls as the job allows.

A job costs one `DailyBulkV2QueryJobs` unit and, like every Bulk 2.0 request, one Data call per
HTTP request: the create, each look at the job, each result page. So a job is looked at only
through its results (`salesforce.bulk`), and its results are asked for in pages as large as
Salesforce serves, parsed as they arrive and handed on in chunks, so 50,000 records are one page
and never one string in memory.

A create is cheap to do early: `start` creates the job and returns at once, and `rows` reads it
later, so the jobs of several objects run in the org side by side while other pages are read.
The waits between looks are on the injected clock and sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from quotasync.clock import Clock, RealClock
from quotasync.salesforce import bulk
from quotasync.salesforce.bulk import Job
from quotasync.salesforce.connection import Client

# Records per result page. Salesforce sets no upper bound on maxRecords (it cuts a page by size on
# its own, and says where to go on in Sforce-Locator); the rows are parsed as they stream in.
PAGE_RECORDS = 500_000
CHUNK_ROWS = 5_000  # rows handed on at a time, so the mirror applies them in bounded batches


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
        return bulk.start_query(
            self.client, soql, include_deleted=include_deleted, clock=self.clock
        )

    def rows(self, job: Job) -> Iterator[list[dict[str, str]]]:
        """The job's rows (CSV cells as strings, "" for null), a chunk at a time; `bulk.JobFailed`
        when it ended Failed or Aborted or ran too long, `errors.Refused` when the org refused."""
        pages = bulk.query_pages(
            self.client, job, clock=self.clock, sleep=self.sleep, max_records=self.page_records
        )
        for rows in pages:
            yield from _chunks(rows)


def _chunks(rows: Iterator[dict[str, str]]) -> Iterator[list[dict[str, str]]]:
    chunk: list[dict[str, str]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
