"""The ingest API as the email product uses it: `quotasync serve`, then HTTP posts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.processes import cli

# Its module-scoped org and workspaces are built once: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("ingest_api")

CLI = [sys.executable, "-m", "quotasync.cli"]


def email(activity_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": activity_id,
        "kind": "email_sent",
        "occurred_at": "2026-11-28T09:30:00+01:00",
        "user_email": "rep@acme.io",
        "to": ["buyer@client.com"],
        "subject": "Hi",
        **extra,
    }


@dataclass
class Served:
    url: str
    workspace: str
    token: str
    other_workspace: str
    other_token: str
    env: dict[str, str]

    def post(
        self,
        body: Any,
        token: str | None = None,
        workspace: str | None = None,
        raw: bytes | None = None,
    ) -> requests.Response:
        headers = {"Content-Type": "application/json"}
        if token is not None or self.token:
            headers["Authorization"] = f"Bearer {token if token is not None else self.token}"
        data = raw if raw is not None else json.dumps(body).encode()
        return requests.post(
            f"{self.url}/api/v1/workspaces/{workspace or self.workspace}/activities",
            data=data,
            headers=headers,
            timeout=30,
        )

    def states(self, workspace: str | None = None) -> dict[str, int]:
        out = cli(
            ["activities", "list", "--workspace", workspace or self.workspace, "--json"],
            self.env,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        counts = json.loads(out.stdout)
        assert (
            counts.pop("skipped_by_reason") == {}
        )  # nothing here is ever written, so none skipped
        return {state: int(n) for state, n in counts.items()}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    env.pop("QUOTASYNC_DATABASE_URL", None)

    def create(name: str) -> dict[str, str]:
        out = subprocess.run(
            [*CLI, "workspace", "create", name, "--admin", f"admin@{name.lower()}.io", "--json"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        made: dict[str, str] = json.loads(out.stdout)
        return made

    acme, globex = create("Acme"), create("Globex")
    process = subprocess.Popen(
        [*CLI, "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("quotasync serving on http://127.0.0.1:"), line
    drain = threading.Thread(target=process.stdout.read, daemon=True)
    drain.start()
    url = line.split(" on ", 1)[1].strip()
    try:
        yield Served(
            url,
            acme["workspace"],
            acme["ingest_token"],
            globex["workspace"],
            globex["ingest_token"],
            env,
        )
    finally:
        process.terminate()
        process.wait(timeout=10)
        drain.join(timeout=10)
        process.stdout.close()


def test_a_valid_activity_is_stored_before_the_202(served: Served) -> None:
    answer = served.post(email("api-1"))
    assert answer.status_code == 202
    assert answer.json() == {"accepted": 1, "duplicates": 0, "errors": []}
    assert served.states().get("pending", 0) >= 1


def test_a_repeated_id_is_acknowledged_and_not_stored_again(served: Served) -> None:
    first = served.post([email("api-dup"), email("api-dup")])
    again = served.post(email("api-dup"))
    assert first.json()["accepted"] == 1 and first.json()["duplicates"] == 1
    assert again.status_code == 202 and again.json() == {
        "accepted": 0,
        "duplicates": 1,
        "errors": [],
    }


def test_invalid_items_are_named_and_the_valid_ones_kept(served: Served) -> None:
    before = sum(served.states().values())
    answer = served.post(
        [
            email("api-good-1"),
            {
                "id": "api-bad-1",
                "kind": "email_sent",
                "occurred_at": "2026-11-28T09:30:00",
                "user_email": "rep@acme.io",
                "to": ["x@y.io"],
            },
            email("api-bad-2", to=["not an email"]),
            email("api-good-2"),
        ]
    )
    assert answer.status_code == 202
    body = answer.json()
    assert body["accepted"] == 2
    assert [(e["index"], e["id"], e["status"]) for e in body["errors"]] == [
        (1, "api-bad-1", 422),
        (2, "api-bad-2", 422),
    ]
    assert body["errors"][0]["problems"][0]["field"] == "occurred_at"
    assert "UTC offset" in body["errors"][0]["problems"][0]["message"]
    assert body["errors"][1]["problems"][0]["field"] == "to[0]"
    assert sum(served.states().values()) == before + 2


def test_a_request_of_only_bad_items_is_a_422_and_stores_nothing(served: Served) -> None:
    before = served.states()
    answer = served.post([{"kind": "email_sent"}, "text"])
    assert answer.status_code == 422
    assert answer.json()["accepted"] == 0 and len(answer.json()["errors"]) == 2
    assert served.states() == before


@pytest.mark.parametrize(
    ("raw", "status", "says"),
    [
        (b"{not json", 400, "not JSON"),
        (b'"a string"', 400, "one activity"),
        (json.dumps([email(f"many-{i}") for i in range(1001)]).encode(), 413, "at most 1000"),
    ],
)
def test_malformed_requests_are_refused_with_a_clear_4xx(
    served: Served, raw: bytes, status: int, says: str
) -> None:
    before = served.states()
    answer = served.post(None, raw=raw)
    assert answer.status_code == status
    assert says in answer.json()["detail"]
    assert served.states() == before


def test_a_token_only_opens_its_own_workspace(served: Served) -> None:
    missing = requests.post(
        f"{served.url}/api/v1/workspaces/{served.workspace}/activities", json=email("x"), timeout=30
    )
    assert missing.status_code == 401
    wrong = served.post(email("api-cross"), token=served.other_token)
    assert wrong.status_code == 404
    made_up = served.post(email("api-cross"), token="qsi_made_up")
    # RFC 6750: a token that is nobody's is 401 invalid_token, which a client does not take for
    # a wrong URL; 404 stays for another workspace's token.
    assert made_up.status_code == 401
    assert made_up.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    assert "api-cross" not in json.dumps(served.states(served.other_workspace))
    assert served.states(served.other_workspace) == {}


def test_the_api_is_described_by_openapi(served: Served) -> None:
    spec = requests.get(f"{served.url}/openapi.json", timeout=30).json()
    assert "/api/v1/workspaces/{workspace}/activities" in spec["paths"]
