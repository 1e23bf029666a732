"""What a request to Salesforce costs, known before it is sent (docs/RULES.md: No overshoot)."""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass

RECORDS_PER_BULK_BATCH = 10_000
_DATA = re.compile(r"^/services/data/v\d+\.\d+(/.*)?$")


@dataclass(frozen=True)
class Cost:
    api: str
    calls: int


def of_request(method: str, path: str, body: bytes | None, uploaded_rows: int = 0) -> list[Cost]:
    """The quota units one HTTP request spends, by API type.

    `uploaded_rows` is what this client uploaded to an ingest job before closing it: the Bulk
    batches are charged when the job is closed.
    """
    if path.startswith(("/services/oauth2/", "/id/")) or path.rstrip("/") == "/services/data":
        return [Cost("auth", 0)]
    if not _DATA.match(path):
        return [Cost("data", 1)]
    costs = [Cost("data", 1)]  # every Bulk 2.0 request is also a REST request
    tail = path.split("/", 4)[-1] if path.count("/") >= 4 else ""
    if method == "POST" and re.fullmatch(r"jobs/query/?", tail):
        costs.append(Cost("bulk_query", 1))
    if method == "PATCH" and re.fullmatch(r"jobs/ingest/\w+/?", tail) and body and b"UploadComplete" in body:  # fmt: skip
        costs.append(Cost("bulk", max(1, math.ceil(uploaded_rows / RECORDS_PER_BULK_BATCH))))
    return costs


def csv_rows(body: bytes) -> int:
    """Data rows in an uploaded CSV, its header excluded (quoted values may hold line breaks)."""
    reader = csv.reader(io.StringIO(body.decode("utf-8-sig"), newline=""))
    return max(0, sum(1 for row in reader if row) - 1)
