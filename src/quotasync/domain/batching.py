"""Batch planning for the writer: when a batch goes, and by which API.

Pending record writes of one workspace are sent as sObject Collections upserts of up to 200
records (one Data API call each). A batch goes as soon as it is full, or once its oldest write has
waited `log_within` seconds (the workspace's freshness setting, a minute unless its admin chose
otherwise), so a quiet workspace still sees its activity within that time while steady traffic
gathers many activities into each call instead of spending about one call per activity.

A large backlog (after a pause, say) is cheaper through one Bulk API 2.0 upsert job: it spends
Bulk batches (one per started 10,000 records) instead of one Data call per 200 records. `channel`
makes that choice and `bulk_batches` prices the job before it is reserved in the ledger.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

T = TypeVar("T")

COLLECTION_SIZE = 200  # sObject Collections' limit on records per request
# Salesforce takes five collections (or query) subrequests in one `/composite`, which counts as
# one API call: what one call can write.
COLLECTIONS_PER_CALL = 5
RECORDS_PER_CALL = COLLECTIONS_PER_CALL * COLLECTION_SIZE
LOG_WITHIN = 60.0  # seconds: a new workspace's freshness setting
# Seconds before the freshness runs out that a batch goes (at most a fifth of it): a write takes
# a few seconds, and "logged within a minute" means in Salesforce within the minute.
SEND_AHEAD = 5.0
BULK_THRESHOLD = 2_000
BULK_RECORDS_PER_BATCH = 10_000  # how Salesforce counts DailyBulkApiBatches for Bulk 2.0 ingest

Channel = Literal["collections", "bulk"]


def batch_due(
    pending: int,
    oldest_age: float,
    *,
    batch_size: int = COLLECTION_SIZE,
    log_within: float = LOG_WITHIN,
) -> bool:
    """Whether a batch should go now: it is full, or its oldest write is about to have waited
    `log_within` seconds (the writer passes the delay pacing chose, which is never shorter)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    return pending >= batch_size or (pending > 0 and oldest_age >= send_after(log_within))


def send_after(log_within: float) -> float:
    """How long the oldest write waits before its batch goes: the freshness, less the moment the
    write itself takes, so the record is in Salesforce within `log_within`."""
    return max(0.0, log_within - min(SEND_AHEAD, log_within / 5))


def channel(backlog: int, *, bulk_threshold: int = BULK_THRESHOLD) -> Channel:
    """Collections for ordinary traffic; one Bulk job for a backlog above the threshold."""
    return "bulk" if backlog > bulk_threshold else "collections"


def chunks(items: Sequence[T], size: int = COLLECTION_SIZE) -> list[list[T]]:
    """`items` in order, in lists of `size` (the last one may be shorter)."""
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


def bulk_batches(records: int) -> int:
    """The Bulk batches a Bulk API 2.0 ingest job of `records` records spends."""
    if records < 0:
        raise ValueError(f"records must not be negative, got {records}")
    return -(-records // BULK_RECORDS_PER_BATCH)  # ceiling division without floats
