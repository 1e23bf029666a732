"""Reading the org's `/limits`: the Data, Bulk and Apex figures in one call.

The call goes through the governed session like any other (purpose `limits_check`), so it is
ledgered and counted against the share. `/limits` needs "View Setup and Configuration"; without
it the org answers 403 `API_DISABLED_FOR_ORG` with "limits resource is not enabled"
(docs/SANDBOX.md lists the answers), which is told apart here from the same code for an org without API access.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from quotasync.domain.governor import LIMIT_NAMES
from quotasync.errors import Fault, Refused
from quotasync.salesforce import api
from quotasync.salesforce.connection import LIMITS_CHECK, Client

PURPOSE = LIMITS_CHECK


@dataclass(frozen=True)
class Figure:
    used: int
    max: int


class LimitsClosed(Refused):
    """The sync user cannot read `/limits` (no View Setup): only the Data figure is known."""


def read(client: Client) -> dict[str, Figure]:
    """The org's figures per ledger API type (data, bulk, bulk_query, apex) that it reports.

    Raises LimitsClosed without View Setup; other failures as `api.send` raises them (an expired
    session is renewed once there).
    """
    try:
        with client.http.purpose(PURPOSE), api.send(client, "GET", "limits") as answer:
            return parse(api.json_of(answer))
    except Refused as refused:
        if _limits_closed(refused.fault):
            raise LimitsClosed(refused.status, refused.fault, refused.fault.message) from None
        raise


def probe(client: Client) -> None:
    """One cheap Data call (the API's resource list) whose answer carries `Sforce-Limit-Info`:
    how a sync user without View Setup reads the org's Data figure while a pause rechecks. The
    governed session keeps the figure it reports."""
    with client.http.purpose(PURPOSE):
        api.send(client, "GET", "").close()


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


def _limits_closed(why: Fault) -> bool:
    """The refusal of `/limits` to a user without View Setup, told apart from the same code for
    an org without API access ("The REST API is not enabled for this Organization")."""
    return why.code == "API_DISABLED_FOR_ORG" and "limits" in why.message
