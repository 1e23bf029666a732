"""The one seam between quotasync and Salesforce.

`GovernedSession` is the `requests.Session` handed to simple-salesforce. Every request goes through
its `send`: the call is written to the ledger (workspace, API type, purpose, the users whose records
it carries) before it leaves, and `Sforce-Limit-Info` is read from the answer. Code that wants to
reach Salesforce has no other way to do it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import requests

from quotasync.clock import Clock
from quotasync.salesforce import api, costs
from quotasync.store.ledger import Call, Ledger

_LIMIT_INFO = re.compile(r"api-usage=(\d+)/(\d+)")
_INGEST_JOB = re.compile(r"/jobs/ingest/(\w+)")


@dataclass(frozen=True)
class OrgUsage:
    """The org-wide DailyApiRequests figure Salesforce reported in the answer to a request sent
    at `observed_at`; that figure includes the request's own `own_calls`."""

    used: int
    max: int
    observed_at: datetime
    own_calls: int = 0
    own_ids: tuple[int, ...] = ()  # the request's own ledger rows, counted in `own_calls`


@dataclass(frozen=True)
class Purpose:
    name: str
    users: Mapping[str, float]


class GovernedSession(requests.Session):
    def __init__(
        self,
        ledger: Ledger,
        workspace_id: str,
        clock: Clock,
        ca_file: str | None = None,
        timeout: float = 60.0,
        on_usage: Callable[[OrgUsage], None] | None = None,
        caps: Callable[[datetime, str], Mapping[str, int]] | None = None,
    ) -> None:
        super().__init__()
        # REQUESTS_CA_BUNDLE would otherwise override `verify` for every request.
        self.trust_env = False
        self.verify = ca_file or True
        self.ledger = ledger
        self.workspace_id = workspace_id
        self.clock = clock
        self.timeout = timeout
        self.org_usage: OrgUsage | None = None
        self.on_usage = on_usage  # keeps each figure the org reports (the store's org_figures)
        # The most calls of each type quotasync may have in the window, for a call of a purpose.
        self.caps = caps
        self._local = threading.local()
        self._uploaded: dict[str, int] = {}  # ingest job id -> rows uploaded so far

    @contextmanager
    def purpose(self, name: str, users: Mapping[str, float] | None = None) -> Iterator[None]:
        """Calls made inside are ledgered with this purpose and split across these users."""
        previous = getattr(self._local, "purpose", None)
        self._local.purpose = Purpose(name, dict(users or {}))
        try:
            yield
        finally:
            self._local.purpose = previous

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = urlsplit(request.url or "").path
        body = _body_bytes(request.body)
        job = _INGEST_JOB.search(path)
        uploaded = self._uploaded.get(job.group(1), 0) if job else 0
        purpose: Purpose = getattr(self._local, "purpose", None) or Purpose("other", {})
        now = self.clock.now()
        method = request.method or "GET"
        calls = [
            Call(
                self.workspace_id,
                cost.api,
                purpose.name,
                cost.calls,
                now,
                method,
                path,
                purpose.users,
            )
            for cost in costs.of_request(method, path, body, uploaded)
        ]
        # Reserved before it is sent: past a cap, QuotaExhausted is raised and nothing leaves.
        caps = self.caps(now, purpose.name) if self.caps is not None else {}
        ids = self.ledger.reserve(calls, caps)
        kwargs.setdefault("timeout", self.timeout)
        try:
            response = super().send(request, **kwargs)
        except requests.RequestException:
            self.ledger.settle(ids, None)
            raise
        answered = self.clock.now()
        refused = _uncharged(response)
        charged = [i for i, c in zip(ids, calls, strict=True) if c.api not in refused]
        uncharged = [i for i, c in zip(ids, calls, strict=True) if c.api in refused]
        self.ledger.settle(charged, response.status_code, at=answered)
        self.ledger.settle(uncharged, response.status_code, charged=False, at=answered)
        if job and method == "PUT" and response.status_code == 201 and body:
            self._uploaded[job.group(1)] = uploaded + costs.csv_rows(body)
        own = sum(c.calls for c in calls if c.api == "data" and c.api not in refused)
        self._observe(response, now, own, tuple(ids))
        return response

    def _observe(
        self, response: requests.Response, sent_at: datetime, own_calls: int, ids: tuple[int, ...]
    ) -> None:
        match = _LIMIT_INFO.search(response.headers.get("Sforce-Limit-Info", ""))
        if match:
            used, maximum = int(match.group(1)), int(match.group(2))
            self.org_usage = OrgUsage(used, maximum, sent_at, own_calls, ids)
            if self.on_usage is not None:
                self.on_usage(self.org_usage)


# Refusals Salesforce answers before it counts the request against any quota.
_UNCHARGED_CODES = frozenset(
    {"INVALID_SESSION_ID", "API_DISABLED_FOR_ORG", "API_CURRENTLY_DISABLED"}
)
_ALL = frozenset({"data", "bulk", "bulk_query", "apex", "auth"})


def _uncharged(response: requests.Response) -> frozenset[str]:
    """The API types the org did not charge for this request."""
    if response.status_code == 503:
        return _ALL  # the org was unavailable: nothing was served, nothing counted
    if response.status_code not in (401, 403):
        return frozenset()
    why = api.fault(api.error_body(response))  # a body that is not JSON is no code of these
    code, message = why.code, why.message
    if code in _UNCHARGED_CODES or (
        code == "REQUEST_LIMIT_EXCEEDED" and message.startswith("TotalRequests")
    ):
        return _ALL
    if code == "REQUEST_LIMIT_EXCEEDED":
        return frozenset(
            {"bulk", "bulk_query"}
        )  # a Bulk quota refused the job; the request counted
    return frozenset()


def _body_bytes(body: Any) -> bytes | None:
    if body is None:
        return None
    if isinstance(body, bytes):
        return body
    if isinstance(body, str):
        return body.encode()
    return None  # a stream: its size is not needed to price the call
