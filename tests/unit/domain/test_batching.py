from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.batching import batch_due, bulk_batches, channel, chunks, send_after


def test_nothing_pending_is_never_due() -> None:
    assert not batch_due(0, oldest_age=3600.0)


def test_a_full_batch_goes_at_once() -> None:
    assert batch_due(200, oldest_age=0.0)
    assert batch_due(250, oldest_age=0.0)


def test_a_partial_batch_waits_a_minute_unless_told_otherwise() -> None:
    # It goes a few seconds early, so the records are in Salesforce within the minute.
    assert not batch_due(199, oldest_age=54.99)
    assert batch_due(1, oldest_age=55.0)


def test_a_batch_goes_ahead_of_its_freshness_by_the_moment_a_write_takes() -> None:
    assert send_after(60.0) == 55.0
    assert send_after(900.0) == 895.0
    assert send_after(5.0) == 4.0  # never more than a fifth of the wait
    assert send_after(0.0) == 0.0
    for log_within in (5.0, 30.0, 60.0, 900.0):
        assert 0.8 * log_within <= send_after(log_within) < log_within


def test_batch_size_and_log_within_are_settings() -> None:
    assert batch_due(10, oldest_age=0.0, batch_size=10)
    assert not batch_due(1, oldest_age=2.0, log_within=5.0)
    assert batch_due(1, oldest_age=0.0, log_within=0.0)


def test_a_batch_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        batch_due(1, oldest_age=0.0, batch_size=0)


@given(st.integers(0, 1000), st.floats(0, 10), st.integers(1, 300), st.floats(0, 10))
def test_a_batch_is_due_exactly_when_full_or_old_enough(
    pending: int, age: float, size: int, delay: float
) -> None:
    due = batch_due(pending, oldest_age=age, batch_size=size, log_within=delay)
    assert due == (pending >= size or (pending > 0 and age >= send_after(delay)))


def test_a_backlog_above_the_threshold_goes_through_bulk() -> None:
    assert channel(0) == "collections"
    assert channel(2000) == "collections"
    assert channel(2001) == "bulk"
    assert channel(11, bulk_threshold=10) == "bulk"


def test_chunks_are_collections_sized_by_default() -> None:
    assert [len(chunk) for chunk in chunks(list(range(401)))] == [200, 200, 1]


def test_nothing_chunks_to_no_chunks() -> None:
    assert chunks([]) == []


def test_a_chunk_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="size"):
        chunks([1], 0)


@given(st.lists(st.integers()), st.integers(1, 50))
def test_chunks_keep_every_item_in_order_and_only_the_last_is_short(
    items: list[int], size: int
) -> None:
    result = chunks(items, size)
    assert [item for chunk in result for item in chunk] == items
    assert all(len(chunk) == size for chunk in result[:-1])
    assert all(1 <= len(chunk) <= size for chunk in result)


def test_chunks_accept_any_sequence() -> None:
    assert chunks("abcde", 2) == [["a", "b"], ["c", "d"], ["e"]]


@pytest.mark.parametrize(
    ("records", "batches"), [(0, 0), (1, 1), (10_000, 1), (10_001, 2), (20_000, 2), (150_000, 15)]
)
def test_bulk_spends_one_batch_per_started_10000_records(records: int, batches: int) -> None:
    assert bulk_batches(records) == batches


def test_a_negative_record_count_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        bulk_batches(-1)


@given(st.integers(0, 10**9))
def test_bulk_batches_cover_the_records_with_less_than_one_batch_to_spare(records: int) -> None:
    batches = bulk_batches(records)
    assert batches * 10_000 >= records > (batches - 1) * 10_000 or records == batches == 0
