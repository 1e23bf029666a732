"""Reading query pages: the subrequests `salesforce.api` makes, what it accepts of the org's
answers, and how `engine.pages` shares a call's five query slots."""

from __future__ import annotations

from typing import Any

import pytest

from quotasync.engine import pages
from quotasync.salesforce import api

NEXT = "/services/data/v62.0/query/01gABC123-2000"


def test_a_query_page_and_its_next_page_are_query_operations() -> None:
    first = api.query("SELECT Id FROM Contact", all_rows=True, batch_size=200)
    assert first.path == "queryAll?q=SELECT+Id+FROM+Contact"
    assert dict(first.headers) == {"Sforce-Query-Options": "batchSize=200"}
    assert first.heavy and api.more(NEXT).heavy and api.next_page(0).heavy
    assert api.more(NEXT).path == "query/01gABC123-2000"
    assert api.next_page(3).path == "@{r3.nextRecordsUrl}"
    with pytest.raises(ValueError):
        api.query("SELECT Id FROM Contact", batch_size=5000)  # Salesforce takes 200 to 2,000


@pytest.mark.parametrize(
    "url",
    [
        "https://elsewhere.example/services/data/v62.0/query/01g-2000",
        "/services/data/v62.0/sobjects/Contact/003000000000001",
        "/services/data/v62.0/query/01g-2000?q=x",
        "/services/data/v62.0/query/../composite",
    ],
)
def test_a_next_page_url_that_names_anything_but_a_query_page_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        api.more(url)
    assert api.page({"totalSize": 3, "done": False, "nextRecordsUrl": url, "records": []}) is None


def test_a_page_is_read_only_from_a_query_answer() -> None:
    read = api.page({"totalSize": 3, "done": False, "nextRecordsUrl": NEXT, "records": [{}]})
    assert read is not None and read.total == 3 and read.next_url == NEXT and not read.done
    last = api.page({"totalSize": 1, "done": True, "records": [{"Id": "003"}]})
    assert last is not None and last.done and last.next_url is None
    bodies: list[Any] = [
        None, [], {"records": []}, {"totalSize": "3", "records": []},
        {"totalSize": True, "records": []}, {"totalSize": 1, "records": ["x"]},
    ]  # fmt: skip
    for body in bodies:
        assert api.page(body) is None


def paged(total: int | None, taken: int = 0, *, eager: bool = False) -> pages.Paged:
    query = pages.Paged(api.query("SELECT Id FROM Contact"), eager=eager)
    query.total, query.taken = total, taken
    return query


def test_a_call_gives_each_query_a_page_and_the_spare_slots_to_those_with_more() -> None:
    small, big, bigger = paged(10), paged(24_000, 2_000), paged(50_000, 2_000)
    planned = pages.plan([small, big, bigger])
    # One page each, then the two spare slots in turn to the queries with pages left.
    assert [count for _, count in planned] == [1, 2, 2]


def test_a_lone_query_takes_five_pages_and_never_more_than_it_has() -> None:
    lone = paged(50_000, 2_000)
    assert pages.plan([lone]) == [(lone, 5)]
    short = paged(5_000, 2_000)  # two pages left
    assert pages.plan([short]) == [(short, 2)]
    unknown, eager = paged(None), paged(None, eager=True)
    assert pages.plan([unknown]) == [(unknown, 1)]  # an interval's first page: one
    assert pages.plan([eager]) == [(eager, 5)]  # a full load's first call: as many as fit


def test_a_sixth_query_waits_for_the_next_call() -> None:
    queries = [paged(None) for _ in range(6)]
    planned = pages.plan(queries)
    assert [q for q, _ in planned] == queries[:5]
    queries[0].done = True
    queries[1].fault = api.Fault("INVALID_FIELD", "no such column")
    assert [q for q, _ in pages.plan(queries)] == queries[2:]
