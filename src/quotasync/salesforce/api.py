"""Salesforce's REST protocol above the governed seam: composite requests and error bodies.

A `/composite` request is one API call, whatever it carries. Salesforce allows up to 25
subrequests in one, of which at most five may be sObject Collections or query operations (Query,
QueryAll, the next page of a query); a collections subrequest carries up to 200 records. So one
call can write 5 x 200 = 1,000 records, or read five query pages. `pack` cuts a list of
subrequests into composites within those limits, in order; `composite` sends one and hands back
each subrequest's answer. Salesforce answers a failed subrequest inside the composite's own 200;
only a refusal of the whole request (an expired session, a spent quota, an org without API access)
comes back as an error status, and that is raised as `Refused` (`NoApiAccess`), `SessionExpired`
or `Unreachable` (`quotasync.errors`): `send` is where requests' exceptions are translated.

Reading goes the same way: `query` makes a Query or QueryAll subrequest (with its own
`Sforce-Query-Options: batchSize=N` when asked), `more` the next page of a query from its
`nextRecordsUrl`, and `next_page` the next page of the query answered just before it in the same
composite (a reference to that answer's `nextRecordsUrl`), so that one call can read five
successive pages of one query; `page` reads a query's answer.

Writing and reading records: `upsert_collection`, `create_collection` and `delete_collection` make
sObject Collections subrequests (up to 200 records each), `saved` reads each record's result in
their answers, and `describe` asks for an object's fields. Outside a composite, `create_record`
and `update_record` write one record and `first_page` reads a query's first page, one request
each; the Bulk API 2.0's jobs are in `salesforce.bulk`.

Every request leaves through `send`, and so through the client's `GovernedSession`: it is reserved
in the ledger (a Data API call, and what else it spends) before it is sent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode, urlsplit

import requests

from quotasync.domain import batching
from quotasync.errors import Fault, NoAnswer, Refused, SalesforceError, SessionExpired, Unreachable

if TYPE_CHECKING:
    from quotasync.salesforce.connection import Client

MAX_SUBREQUESTS = 25  # subrequests in one composite
# Of those, the collections or query operations (five), the records one collections request
# carries (200), and so the records one call can write: the domain's figures, Salesforce's limits.
MAX_HEAVY = batching.COLLECTIONS_PER_CALL
COLLECTION_SIZE = batching.COLLECTION_SIZE
RECORDS_PER_CALL = batching.RECORDS_PER_CALL
QUERY_PAGE = 2000  # records in a query page, at most (and unless a smaller batchSize is asked)
MIN_BATCH_SIZE = 200  # the smallest batchSize Salesforce takes
_HEAVY_PREFIXES = ("composite/sobjects", "query", "queryall")
_REFERS_TO = re.compile(r"@\{r(\d+)\.")  # a reference to an earlier subrequest's answer
# A query's next page as Salesforce names it: /services/data/vNN.N/query/<locator>.
_NEXT_RECORDS = re.compile(r"/services/data/v\d+\.\d+/(query/[A-Za-z0-9_-]+)")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # an sObject's or a field's API name
JSON = "application/json"


def fault(body: Any) -> Fault:
    """The first error of a body in any of Salesforce's error shapes; the body came from the
    org, so anything else is read as an unknown error rather than trusted."""
    first = body[0] if isinstance(body, list) and body else body
    if isinstance(first, dict):
        code = first.get("errorCode") or first.get("statusCode") or first.get("error")
        message = first.get("message") or first.get("error_description") or ""
        return Fault(str(code or "UNKNOWN_EXCEPTION"), str(message)[:1000])
    return Fault("UNKNOWN_EXCEPTION", str(body)[:500] if body else "")


@dataclass(frozen=True)
class Subrequest:
    """One REST request inside a composite; `path` is below `/services/data/vNN.N/`, or a
    reference to an earlier answer's value that is a whole URL (`@{r0.nextRecordsUrl}`).
    `headers` are the subrequest's own (`Sforce-Query-Options`)."""

    method: str
    path: str
    body: Any = None
    headers: tuple[tuple[str, str], ...] = ()  # (name, value) pairs: a subrequest stays hashable

    @property
    def referenced(self) -> bool:
        return self.path.startswith("@{")

    @property
    def heavy(self) -> bool:
        """A collections or query operation: Salesforce takes five of these per composite. A
        referenced URL counts as one: it is a query's next page wherever this module makes one,
        and Salesforce counts it once it is resolved."""
        return self.referenced or self.path.lower().startswith(_HEAVY_PREFIXES)


def query(soql: str, *, all_rows: bool = False, batch_size: int | None = None) -> Subrequest:
    """The first page of a SOQL query; `all_rows` (QueryAll) takes in deleted records too."""
    options: tuple[tuple[str, str], ...] = ()
    if batch_size is not None:
        if not MIN_BATCH_SIZE <= batch_size <= QUERY_PAGE:
            raise ValueError(f"a batchSize is {MIN_BATCH_SIZE} to {QUERY_PAGE}")
        options = (("Sforce-Query-Options", f"batchSize={batch_size}"),)
    resource = "queryAll" if all_rows else "query"
    return Subrequest("GET", f"{resource}?{urlencode({'q': soql})}", headers=options)


def more(next_records_url: str) -> Subrequest:
    """The page a query's `nextRecordsUrl` names. The URL came from the org: anything but a
    query page's path is refused (ValueError), so it cannot steer the request elsewhere."""
    found = _NEXT_RECORDS.fullmatch(next_records_url)
    if found is None:
        raise ValueError(f"not a query's next page: {next_records_url[:200]!r}")
    return Subrequest("GET", found[1])


def next_page(index: int) -> Subrequest:
    """The next page of the query the composite's subrequest number `index` (from 0) answered:
    it must come later in the same composite. When that answer was the last page, this one is
    answered with an error (no value to refer to), which the caller reads as "no more"."""
    return Subrequest("GET", f"@{{{_reference(index)}.nextRecordsUrl}}")


def upsert_collection(
    sobject: str, external_id: str, records: Sequence[dict[str, Any]]
) -> Subrequest:
    """Upsert up to 200 records of one type by an external id field; each record's result comes
    back on its own (`allOrNone` false), in order."""
    path = f"composite/sobjects/{_name(sobject)}/{_name(external_id)}"
    return Subrequest("PATCH", path, _collection(sobject, records))


def create_collection(sobject: str, records: Sequence[dict[str, Any]]) -> Subrequest:
    """Create up to 200 records of one type, each with its own result."""
    return Subrequest("POST", "composite/sobjects", _collection(sobject, records))


def delete_collection(ids: Sequence[str]) -> Subrequest:
    """Delete up to 200 records by id, each with its own result."""
    _fits(ids)
    listed = ",".join(quote(i, safe="") for i in ids)
    return Subrequest("DELETE", f"composite/sobjects?ids={listed}&allOrNone=false")


def describe(sobject: str) -> Subrequest:
    """An object's description: its fields and what the user may do with them."""
    return Subrequest("GET", f"sobjects/{_name(sobject)}/describe")


def _collection(sobject: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    _fits(records)
    typed = {"type": _name(sobject)}
    return {"allOrNone": False, "records": [{"attributes": typed, **r} for r in records]}


def _fits(records: Sequence[Any]) -> None:
    if not 1 <= len(records) <= COLLECTION_SIZE:
        raise ValueError(f"a collection holds 1 to {COLLECTION_SIZE} records, not {len(records)}")


def _name(name: str) -> str:
    """An API name, checked: it goes into a path."""
    if _NAME.fullmatch(name) is None:
        raise ValueError(f"not an API name: {name[:80]!r}")
    return name


@dataclass(frozen=True)
class Saved:
    """One record's result in a write: its id, or the fault that kept it out."""

    record_id: str | None
    fault: Fault | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None


def saved(item: Any) -> Saved | None:
    """A collections answer's result for one record (`{"success": true, "id": ...}` or
    `{"success": false, "errors": [...]}`); None when it is not one."""
    if not isinstance(item, dict):
        return None
    if item.get("success") is True:
        record_id = item.get("id")
        return Saved(str(record_id) if record_id else None)
    return Saved(None, fault(item.get("errors")))


@dataclass(frozen=True)
class Page:
    """One page of a query's answer."""

    total: int  # the query's totalSize: every record it matches, on all its pages
    records: list[dict[str, Any]]
    next_url: str | None  # None: this was the last page

    @property
    def done(self) -> bool:
        return self.next_url is None


def page(body: Any) -> Page | None:
    """A query answer's page, or None when the body is not one (the org's answer is untrusted)."""
    if not isinstance(body, dict):
        return None
    total, records = body.get("totalSize"), body.get("records")
    if not isinstance(total, int) or isinstance(total, bool) or not isinstance(records, list):
        return None
    if not all(isinstance(r, dict) for r in records):
        return None
    next_url = body.get("nextRecordsUrl")
    done = body.get("done", True) is not False or not next_url
    if not done and (not isinstance(next_url, str) or _NEXT_RECORDS.fullmatch(next_url) is None):
        return None
    return Page(total, records, None if done else str(next_url))


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def fault(self) -> Fault:
        return fault(self.body)


def pack(
    subrequests: Sequence[Subrequest],
    *,
    max_heavy: int = MAX_HEAVY,
    max_total: int = MAX_SUBREQUESTS,
) -> list[list[Subrequest]]:
    """`subrequests` in order, cut into composites within Salesforce's limits."""
    if not 1 <= max_heavy <= MAX_HEAVY or not 1 <= max_total <= MAX_SUBREQUESTS:
        raise ValueError(f"need 1..{MAX_HEAVY} heavy and 1..{MAX_SUBREQUESTS} subrequests")
    calls: list[list[Subrequest]] = []
    heavy = 0
    for sub in subrequests:
        if not calls or len(calls[-1]) == max_total or (sub.heavy and heavy == max_heavy):
            calls.append([])
            heavy = 0
        calls[-1].append(sub)
        heavy += sub.heavy
    return calls


def composite(
    client: Client, subrequests: Sequence[Subrequest], *, all_or_none: bool = False
) -> list[Answer]:
    """Send one composite (one API call) and return each subrequest's answer, in order.

    An expired session is renewed once and the request sent again; raises `SessionExpired`
    when that fails, `Refused` for any other error status, `Unreachable` when no readable answer
    came. The ledger's `QuotaExhausted` passes through: then nothing was sent.
    """
    if not subrequests or len(pack(subrequests)) != 1:
        raise ValueError(f"{len(subrequests)} subrequests do not make one composite")
    for index, sub in enumerate(subrequests):
        refers_to = _REFERS_TO.match(sub.path)
        if sub.referenced and (refers_to is None or int(refers_to[1]) >= index):
            raise ValueError(f"subrequest {index} refers to no earlier answer: {sub.path}")
    prefix = f"/services/data/v{client.sf.sf_version}/"
    body = json.dumps(
        {
            "allOrNone": all_or_none,
            "compositeRequest": [
                {
                    "method": sub.method,
                    "url": sub.path if sub.referenced else prefix + sub.path,
                    "referenceId": _reference(index),
                    **({"body": sub.body} if sub.body is not None else {}),
                    **({"httpHeaders": dict(sub.headers)} if sub.headers else {}),
                }
                for index, sub in enumerate(subrequests)
            ],
        }
    )
    return _answers(json_of(send(client, "POST", "composite", data=body)), len(subrequests))


def _reference(index: int) -> str:
    return f"r{index}"


def send(
    client: Client,
    method: str,
    path: str,
    *,
    data: str | bytes | None = None,
    params: dict[str, Any] | None = None,
    content_type: str = JSON,
    accept: str = JSON,
    stream: bool = False,
) -> requests.Response:
    """One REST request to `path` below `/services/data/vNN.N/`, through the governed session.

    An expired session (401) is renewed once and the request sent again; raises
    `SessionExpired` when that fails, `Refused` with the body's fault for any other status from
    300 on (`NoApiAccess` for the codes that close the API), `Unreachable` when no answer came.
    The ledger's `QuotaExhausted` passes through: nothing was sent.
    """
    for attempt in range(2):
        sf = client.sf  # renewed: a new session id
        headers = {
            "Authorization": f"Bearer {sf.session_id}",
            "Content-Type": content_type,
            "Accept": accept,
        }
        try:
            response = client.http.request(
                method, sf.base_url + path, headers=headers, data=data, params=params, stream=stream
            )
        except requests.RequestException as error:
            host = urlsplit(sf.base_url).hostname
            raise Unreachable(f"no answer: {error}", NoAnswer.NETWORK, host) from error
        if response.status_code < 300:
            return response
        with response:
            if response.status_code != 401:
                raise Refused.of(response.status_code, fault(error_body(response)))
        if attempt == 0 and renewed(client):
            continue  # once: a second expiry in a row means the grant itself is gone
        raise SessionExpired("the session expired and could not be renewed")
    raise AssertionError("unreachable")


def renewed(client: Client) -> bool:
    """A new session for the client; False when the org refuses one (revoked or expired grant),
    which only an admin connecting again can mend."""
    try:
        client.refresh()
    except SalesforceError:  # refused, unreachable, or nothing to renew with
        return False
    return True


def error_body(response: requests.Response) -> Any:
    """An error answer's body: JSON when it is, its text otherwise."""
    try:
        return response.json()
    except ValueError:
        return response.text


def json_of(response: requests.Response) -> Any:
    """A 2xx answer's JSON body."""
    try:
        return response.json()
    except ValueError as error:
        raise Unreachable(f"an unreadable answer: {error}", NoAnswer.UNREADABLE) from error


def create_record(client: Client, sobject: str, fields: dict[str, Any]) -> str:
    """Create one record (one call); its id."""
    answer = json_of(send(client, "POST", f"sobjects/{_name(sobject)}", data=json.dumps(fields)))
    record_id = answer.get("id") if isinstance(answer, dict) else None
    if not isinstance(record_id, str) or not record_id:
        raise Unreachable(f"the org's answer names no new {sobject} record", NoAnswer.UNREADABLE)
    return record_id


def update_record(client: Client, sobject: str, record_id: str, fields: dict[str, Any]) -> None:
    """Update one record's fields (one call)."""
    path = f"sobjects/{_name(sobject)}/{quote(record_id, safe='')}"
    send(client, "PATCH", path, data=json.dumps(fields)).close()


def first_page(client: Client, soql: str) -> Page:
    """A query's first page, asked for on its own (one call)."""
    answer = page(json_of(send(client, "GET", "query/", params={"q": soql})))
    if answer is None:
        raise Unreachable("the org's answer is not a query page", NoAnswer.UNREADABLE)
    return answer


def _answers(answer: Any, expected: int) -> list[Answer]:
    """The composite's sub-answers, checked: the org's answer is untrusted input."""
    items = answer.get("compositeResponse") if isinstance(answer, dict) else None
    by_reference: dict[str, Answer] = {}
    for item in items if isinstance(items, list) else []:
        status = item.get("httpStatusCode") if isinstance(item, dict) else None
        if isinstance(status, int) and not isinstance(status, bool):
            by_reference[str(item.get("referenceId"))] = Answer(status, item.get("body"))
    try:
        return [by_reference[_reference(index)] for index in range(expected)]
    except KeyError:
        missing = "the composite's answer lacks a subrequest's answer"
        raise Unreachable(missing, NoAnswer.UNREADABLE) from None
