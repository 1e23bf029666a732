"""An org in the process: a transport the governed session sends through, answering each request
with what a test's `answer` says, and a ledger that keeps the calls it is asked to reserve. So
`salesforce.api` and `salesforce.bulk` are tested through the real `GovernedSession` (what each
request costs, QuotaExhausted before anything leaves) without a network or a database."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from urllib3 import HTTPResponse

from quotasync.clock import ManualClock
from quotasync.errors import GrantRefused, QuotaExhausted
from quotasync.salesforce.connection import Client
from quotasync.salesforce.session import GovernedSession
from quotasync.store.ledger import Call, Ledger

INSTANCE = "https://org.test"
VERSION = "62.0"
PREFIX = f"/services/data/v{VERSION}/"
T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Sent:
    """A request as the org received it; `path` is below `/services/data/vNN.N/`."""

    method: str
    path: str
    params: dict[str, str]
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    status: int = 200
    body: Any = None  # JSON, or bytes / str sent as they are
    headers: Mapping[str, str] = field(default_factory=dict)


Answer = Callable[[Sent], Reply]


class FakeOrg(HTTPAdapter):
    def __init__(self, answer: Answer) -> None:
        super().__init__()
        self.answer = answer
        self.sent: list[Sent] = []
        self.down = False  # no answer at all

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        if self.down:
            raise requests.ConnectionError("the org is out of reach")
        url = urlsplit(request.url or "")
        body = request.body or b""
        sent = Sent(
            request.method or "GET",
            url.path.removeprefix(PREFIX),
            dict(parse_qsl(url.query)),
            dict(request.headers),
            body.encode() if isinstance(body, str) else bytes(body),
        )
        self.sent.append(sent)
        reply = self.answer(sent)
        if isinstance(reply.body, bytes):
            data = reply.body
        elif isinstance(reply.body, str):
            data = reply.body.encode()
        else:
            data = b"" if reply.body is None else json.dumps(reply.body).encode()
        raw = HTTPResponse(
            body=io.BytesIO(data),
            headers=dict(reply.headers),
            status=reply.status,
            preload_content=False,
            decode_content=False,
        )
        return self.build_response(request, raw)

    def requests(self) -> list[tuple[str, str]]:
        return [(s.method, s.path) for s in self.sent]


class FakeLedger:
    """Keeps each reserved call; a cap passed (`caps`) raises QuotaExhausted, as the ledger does."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def reserve(self, calls: list[Call], caps: Mapping[str, int]) -> list[int]:
        for call in calls:
            cap = caps.get(call.api)
            used = self.used(call.api)
            if cap is not None and used + call.calls > cap:
                raise QuotaExhausted(call.workspace_id, call.api, used, call.calls, cap)
        first = len(self.calls)
        self.calls += calls
        return list(range(first, len(self.calls)))

    def settle(self, ids: list[int], status: int | None, **_: Any) -> None:
        pass

    def used(self, api: str) -> int:
        return sum(c.calls for c in self.calls if c.api == api)


class FakeClient:
    """What `salesforce.api` uses of a `Client`: `sf` (the session id, the base URL), `http`
    (the governed session) and `refresh`."""

    def __init__(self, answer: Answer, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock(T0)
        self.ledger = FakeLedger()
        self.caps: dict[str, int] = {}
        self.http = GovernedSession(
            cast(Ledger, self.ledger), "ws", self.clock, caps=lambda _now, _purpose: self.caps
        )
        self.org = FakeOrg(answer)
        self.http.mount("https://", self.org)
        self.tokens = 1
        self.renewable = True
        self.slept: list[float] = []
        self.sf = self._salesforce()

    def _salesforce(self) -> Salesforce:
        return Salesforce(
            session_id=f"token-{self.tokens}",
            instance_url=INSTANCE,
            session=self.http,
            version=VERSION,
        )

    def refresh(self) -> None:
        if not self.renewable:
            raise GrantRefused(
                "the grant was revoked", "invalid_grant", "expired access/refresh token"
            )
        self.tokens += 1
        self.sf = self._salesforce()

    @property
    def client(self) -> Client:
        return cast(Client, self)

    def spent(self, api: str = "data") -> int:
        return self.ledger.used(api)

    def sleep(self, seconds: float) -> None:
        """A sleep that moves the clock instead: what a test passes for `sleep`."""
        self.slept.append(seconds)
        self.clock.advance(seconds)


def csv_text(*lines: str) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode()
