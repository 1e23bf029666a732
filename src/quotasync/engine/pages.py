"""Reading several SOQL queries at once: up to five query pages in one call.

Salesforce takes five query operations (a query's first page, or the next page of one) in a
`/composite` request, which costs one API call whatever it carries. A query's pages come one
after another: the next page is named by the one before (`nextRecordsUrl`). Within one composite a
subrequest may refer to an earlier subrequest's answer, so the pages of one query can follow each
other in the same call (`api.next_page`).

`read` sends composites until every query is read through or has failed. Each call gives each
query still going one page, in order (a sixth query waits for the next call), and hands the slots
left over to the queries known to have more pages (from the first page's `totalSize`), one at a
time in turn; before its first page, a query marked `eager` gets them too (a full load, likely to
have many pages). A page planned beyond a query's last one is answered with an error by the org
(nothing to refer to) and costs nothing more: the call was made anyway.

A query whose own first page (or the page it went on from) is answered with an error is marked
`fault` and left: its object's trouble, not the other queries'. A refusal of the whole composite
(`errors.Refused`, `errors.SessionExpired`, `errors.Unreachable`) and the ledger's
`QuotaExhausted` pass through.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from quotasync.salesforce import api
from quotasync.salesforce.connection import Client


@dataclass(eq=False)
class Paged:
    """One query, read page by page, and how far it has come."""

    first: api.Subrequest  # its first page (`api.query`)
    eager: bool = False  # before its first page, take spare slots for pages 2, 3...
    total: int | None = None  # its totalSize, once the first page is in
    taken: int = 0  # records read so far
    page_size: int = api.QUERY_PAGE  # records a full page holds, as seen (for planning)
    next: api.Subrequest | None = None  # the page it goes on from
    done: bool = False
    fault: api.Fault | None = None
    status: int | None = None  # the HTTP status that came with the fault
    pages: int = 0  # pages read

    @property
    def going(self) -> bool:
        return not self.done and self.fault is None

    def pages_left(self) -> int | None:
        """Pages still to read, from the totalSize; None before the first page."""
        if self.total is None:
            return None
        return max(1, math.ceil((self.total - self.taken) / self.page_size))


Take = Callable[[Paged, api.Page], None]


def read(client: Client, queries: Sequence[Paged], take: Take) -> int:
    """Read every query through (or to its fault), handing each page to `take` as it comes;
    returns the calls made."""
    calls = 0
    while step(client, queries, take):
        calls += 1
    return calls


def step(client: Client, queries: Sequence[Paged], take: Take) -> bool:
    """One composite of the next pages; False when no query was still going (nothing sent)."""
    planned = plan(queries)
    if not planned:
        return False
    subrequests: list[api.Subrequest] = []
    chains: list[tuple[Paged, int]] = []  # each query, with the number of its pages planned
    for query, count in planned:
        subrequests.append(query.next or query.first)
        subrequests += [api.next_page(len(subrequests) + n - 1) for n in range(count - 1)]
        chains.append((query, count))
    answers = api.composite(client, subrequests)
    start = 0
    for query, count in chains:
        _take_chain(query, answers[start : start + count], take)
        start += count
    return True


def plan(queries: Sequence[Paged]) -> list[tuple[Paged, int]]:
    """The queries the next call reads, each with its number of pages (five pages in all)."""
    going = [q for q in queries if q.going][: api.MAX_HEAVY]
    counts = [1] * len(going)
    spare = api.MAX_HEAVY - len(going)
    while spare:
        wanting = [i for i, q in enumerate(going) if _wants(q, counts[i] + 1)]
        if not wanting:
            break
        for i in wanting[:spare]:
            counts[i] += 1
        spare -= min(spare, len(wanting))
    return list(zip(going, counts, strict=True))


def _wants(query: Paged, pages: int) -> bool:
    left = query.pages_left()
    return query.eager if left is None else pages <= left


def _take_chain(query: Paged, answers: Sequence[api.Answer], take: Take) -> None:
    for position, answer in enumerate(answers):
        if not query.going:
            return  # the page before was the last: this one had nothing to refer to
        page = api.page(answer.body) if answer.ok else None
        if page is None:
            if position == 0:
                query.status = answer.status
                query.fault = (
                    answer.fault
                    if not answer.ok
                    else api.Fault("UNKNOWN_EXCEPTION", "an answer that is not a query page")
                )
            # A later page the org could not serve: the next call goes on from the last read.
            return
        query.total = page.total
        query.taken += len(page.records)
        query.pages += 1
        if not page.done:
            query.page_size = max(1, len(page.records))
        query.next = api.more(page.next_url) if page.next_url else None
        query.done = page.done
        take(query, page)
