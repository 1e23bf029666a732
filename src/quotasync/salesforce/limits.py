"""Reading the org's `/limits`: the Data, Bulk and Apex figures in one call.

The call goes through the governed session like any other (purpose `limits_check`), so it is
ledgered and counted against the share. `/limits` needs "View Setup and Configuration"; without
it the org answers 403 `API_DISABLED_FOR_ORG` with "limits resource is not enabled"
(docs/SANDBOX.md lists the answers), which is told apart here from the same code for an org without API access.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from simple_salesforce.exceptions import SalesforceExpiredSession, SalesforceRefusedRequest

from quotasync.domain.governor import LIMIT_NAMES
from quotasync.salesforce import api
from quotasync.salesforce.connection import LIMITS_CHECK, Client

PURPOSE = LIMITS_CHECK


@dataclass(frozen=True)
class Figure:
    used: int
    max: int


class LimitsClosed(Exception):
    """The sync user cannot read `/limits` (no View Setup): only the Data figure is known."""


def read(client: Client) -> dict[str, Figure]:
    """The org's figures per ledger API type (data, bulk, bulk_query, apex) that it reports.

    Raises LimitsClosed without View Setup; other refusals propagate as simple-salesforce's
    exceptions. An expired session is refreshed once.
    """
    try:
        return parse(_refreshed_once(client, lambda: client.sf.limits()))
    except SalesforceRefusedRequest as error:
        if _limits_closed(error.content):
            raise LimitsClosed(api.fault(error.content).message) from None
        raise


def probe(client: Client) -> None:
    """One cheap Data call (the API's resource list) whose answer carries `Sforce-Limit-Info`:
    how a sync user without View Setup reads the org's Data figure while a pause rechecks. The
    governed session keeps the figure it reports."""
    _refreshed_once(client, lambda: client.sf.restful(""))


def _refreshed_once(client: Client, call: Callable[[], Any]) -> Any:
    """`call` as a `limits_check`; after an expired session, refreshed and called once more.

    `call` reads `client.sf` when it runs, so the retry goes on the refreshed session."""
    try:
        with client.http.purpose(PURPOSE):
            return call()
    except SalesforceExpiredSession:
        client.refresh()
    with client.http.purpose(PURPOSE):
        return call()


def parse(body: Any) -> dict[str, Figure]:
    """The figures a `/limits` body holds; entries missing or malformed are left out."""
    out: dict[str, Figure] = {}
    if not isinstance(body, Mapping):
        return out
    for api_type, name in LIMIT_NAMES.items():
        entry = body.get(name)
        if not isinstance(entry, Mapping):
            continue
        maximum, remaining = entry.get("Max"), entry.get("Remaining")
        if not _whole(maximum) or maximum < 0 or not _whole(remaining):
            continue
        # Remaining goes below zero when use passes the total (Salesforce allows some overage).
        out[api_type.value] = Figure(used=max(0, maximum - remaining), max=maximum)
    return out


def _whole(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _limits_closed(content: Any) -> bool:
    if not isinstance(content, list):  # a request's refusal is a list of errors
        return False
    why = api.fault(content)
    return why.code == "API_DISABLED_FOR_ORG" and "limits" in why.message
