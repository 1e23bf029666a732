"""Prometheus metrics (issue 8, part 3): `GET /metrics` of a served web app shows what the store
holds (calls in the window, pauses, backlogs, leases) and this process's own metrics; it is off
without `QUOTASYNC_METRICS_TOKEN` and closed to a wrong token. A worker's own metrics server
answers too."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import uvicorn
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import make_url

from quotasync import metrics
from quotasync.clock import ManualClock
from quotasync.config import Settings
from quotasync.domain import governor
from quotasync.domain.activities import State
from quotasync.runtime import Runtime, open_runtime
from quotasync.store import db, episodes, outbox, workspaces
from quotasync.store.ledger import Call, Ledger
from quotasync.store.tables import WorkerLease
from quotasync.web.app import create_app
from tests.integration.logging_support import Connect, people, stream
from tests.sandbox_process import SandboxOrg
from tests.servers import start as start_server
from tests.unit.domain.builders import sent

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
TOKEN = "qsm_the-operators-scrape-token"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Store:
    """Three workspaces in a store of their own: Acme and Globex busy, Initech idle."""

    runtime: Runtime
    acme: str
    globex: str
    initech: str


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[Store]:
    if make_url(database_url).get_backend_name() != "sqlite":
        db.upgrade(database_url)
    settings = Settings(
        data_dir=tmp_path / "data", database_url=database_url, metrics_token=SecretStr(TOKEN)
    )
    runtime = open_runtime(settings, ManualClock(NOW))
    with runtime.sessions.begin() as session:
        ids = [
            workspaces.create(session, name, f"admin@{name.lower()}.io", NOW).workspace.id
            for name in ("Acme", "Globex", "Initech")
        ]
    yield Store(runtime, *ids)
    runtime.sessions.kw["bind"].dispose()


@pytest.fixture
def serve() -> Iterator[Callable[[Runtime], str]]:
    """serve(runtime) -> the base URL of its web app, served by uvicorn in a thread."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(runtime: Runtime) -> str:
        server = uvicorn.Server(
            uvicorn.Config(create_app(runtime), host="127.0.0.1", port=0, log_level="error")
        )
        thread = start_server(server)
        servers.append((server, thread))
        port = server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(timeout=10)


def fill(store: Store) -> None:
    """Calls, activities, a pause and leases, through the store's own APIs where it has them."""
    acme, globex, initech = store.acme, store.globex, store.initech
    Ledger(store.runtime.sessions).record(
        [
            call(acme, "data", 3, hours_ago=1),
            call(acme, "data", 2, hours_ago=23.9),
            call(acme, "data", 50, hours_ago=24.5),  # out of the window
            call(acme, "bulk", 1, hours_ago=2),
            call(acme, "auth", 0, hours_ago=1),  # a login: never counted
            call(globex, "data", 5, hours_ago=0.1),
            call(globex, "apex", 7, hours_ago=3),
        ]
    )
    with store.runtime.sessions.begin() as session:
        outbox.accept(session, acme, [sent("a1"), sent("a2")], NOW - timedelta(seconds=90))
        outbox.accept(session, acme, [sent("a3"), sent("a4")], NOW - timedelta(seconds=30))
        outbox.mark(session, acme, ["a1"], state=State.LOGGED, logged_at=NOW)
        outbox.mark(session, acme, ["a4"], state=State.FAILED, last_error="FIELD_INVALID")
        outbox.accept(session, globex, [sent("g1")], NOW - timedelta(minutes=10))
        # A pending retry is backlog too, though not due yet.
        outbox.mark(session, globex, ["g1"], next_attempt_at=NOW + timedelta(minutes=1))

        def pause(workspace_id: str, api: governor.Api, reason: governor.Reason) -> Any:
            episode = governor.Episode(
                api, reason, started_at=NOW - timedelta(minutes=5), next_check=NOW
            )
            return episodes.start(session, workspace_id, episode, resume_at=None)

        pause(globex, governor.Api.DATA, governor.Reason.ORG_GUARD)
        pause(globex, governor.Api.BULK, governor.Reason.ORG_GUARD)
        ended = pause(acme, governor.Api.DATA, governor.Reason.WORKSPACE_LIMIT)
        episodes.end(session, ended, NOW - timedelta(minutes=1))
        session.add_all(
            [
                lease(acme, "worker-1", expires_in=30),
                lease(globex, "worker-2", expires_in=-10),  # its worker died
                lease(initech, None, expires_in=None),
            ]
        )


def call(workspace_id: str, api: str, calls: int, hours_ago: float) -> Call:
    at = NOW - timedelta(hours=hours_ago)
    return Call(workspace_id, api, "log_activity", calls, at, "PATCH", "/composite", {})


def lease(workspace_id: str, holder: str | None, expires_in: float | None) -> WorkerLease:
    expires = NOW + timedelta(seconds=expires_in) if expires_in is not None else None
    return WorkerLease(
        workspace_id=workspace_id, holder=holder, expires_at=expires, due_at=NOW, stepped_at=None
    )


def scrape(url: str, authorization: str | None = f"Bearer {TOKEN}") -> requests.Response:
    headers = {"Authorization": authorization} if authorization is not None else {}
    return requests.get(f"{url}/metrics", headers=headers, timeout=30)


def samples(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def of(found: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of one name whose labels include these."""
    wanted = set(labels.items())
    return {key: value for (n, key), value in found.items() if n == name and wanted <= key}


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_a_scrape_shows_what_the_store_holds(store: Store, serve: Callable[[Runtime], str]) -> None:
    fill(store)
    answer = scrape(serve(store.runtime))
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=")
    found = samples(answer.text)
    acme, globex = store.acme, store.globex

    calls = "quotasync_api_calls_24h"
    assert of(found, calls) == {
        frozenset({("workspace", acme), ("api", "data")}): 5,
        frozenset({("workspace", acme), ("api", "bulk")}): 1,
        frozenset({("workspace", globex), ("api", "data")}): 5,
        frozenset({("workspace", globex), ("api", "apex")}): 7,
    }

    # Globex is paused on two API types for the org guard; Acme's pause has ended.
    assert of(found, "quotasync_paused") == {
        frozenset({("workspace", globex), ("reason", "org_guard")}): 2
    }
    paused = of(found, "quotasync_paused_workspaces")
    assert paused[frozenset({("reason", "org_guard")})] == 1
    assert {key: n for key, n in paused.items() if n} == {frozenset({("reason", "org_guard")}): 1}
    assert {dict(key)["reason"] for key in paused} == {r.value for r in governor.Reason}

    assert of(found, "quotasync_backlog") == {
        frozenset({("workspace", acme)}): 2,  # a2 and a3: a1 is logged, a4 failed
        frozenset({("workspace", globex)}): 1,
    }
    assert value(found, "quotasync_backlog_oldest_seconds", workspace=acme) == 90
    assert value(found, "quotasync_backlog_oldest_seconds", workspace=globex) == 600

    assert value(found, "quotasync_leases", state="held") == 1
    assert value(found, "quotasync_leases", state="expired") == 1
    assert value(found, "quotasync_leases", state="free") == 1
    assert value(found, "quotasync_lease_holders") == 1


def test_an_empty_store_still_answers_every_family(
    store: Store, serve: Callable[[Runtime], str]
) -> None:
    found = samples(scrape(serve(store.runtime)).text)
    assert of(found, "quotasync_api_calls_24h") == {}
    assert of(found, "quotasync_backlog") == {}
    assert sum(of(found, "quotasync_paused_workspaces").values()) == 0
    assert of(found, "quotasync_leases") == {
        frozenset({("state", state)}): 0 for state in ("held", "free", "expired")
    }
    assert value(found, "quotasync_lease_holders") == 0


def test_the_scrape_carries_this_processs_own_metrics(
    store: Store, serve: Callable[[Runtime], str]
) -> None:
    url = serve(store.runtime)
    before = samples(scrape(url).text)
    metrics.observe_batch("bulk", 2500)
    metrics.observe_logged([0.05, 40.0, 4000.0])
    after = samples(scrape(url).text)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - before.get((name, frozenset(labels.items())), 0)

    assert grew("quotasync_batch_size_count", api="bulk") == 1
    assert grew("quotasync_batch_size_sum", api="bulk") == 2500
    assert grew("quotasync_batch_size_bucket", api="bulk", le="2000.0") == 0
    assert grew("quotasync_batch_size_bucket", api="bulk", le="5000.0") == 1
    latency = "quotasync_ingest_to_salesforce_seconds"
    assert grew(f"{latency}_count") == 3
    assert grew(f"{latency}_bucket", le="0.1") == 1
    assert grew(f"{latency}_bucket", le="60.0") == 2
    assert grew(f"{latency}_bucket", le="3600.0") == 2
    assert grew(f"{latency}_bucket", le="+Inf") == 3
    assert ("quotasync_worker_steps_total", frozenset()) in after
    assert ("quotasync_worker_leases_held", frozenset()) in after


def test_metrics_are_off_without_the_setting(store: Store, serve: Callable[[Runtime], str]) -> None:
    for setting in (None, SecretStr("")):  # an empty token must not open them either
        settings = store.runtime.settings.model_copy(update={"metrics_token": setting})
        url = serve(dataclasses.replace(store.runtime, settings=settings))
        for authorization in (None, "Bearer ", f"Bearer {TOKEN}"):
            answer = scrape(url, authorization)
            assert answer.status_code == 404
            assert answer.json() == {"detail": "metrics are off: set QUOTASYNC_METRICS_TOKEN"}


def test_a_scrape_without_the_token_is_refused(
    store: Store, serve: Callable[[Runtime], str]
) -> None:
    url = serve(store.runtime)
    wrong = ["Bearer wrong", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", TOKEN, f"Basic {TOKEN}"]
    for authorization in [None, "", "Bearer", "Bearer ", *wrong]:
        answer = scrape(url, authorization)
        assert answer.status_code == 401, authorization
        assert answer.headers["www-authenticate"] == "Bearer"
        assert TOKEN not in answer.text
        assert "quotasync_" not in answer.text
    assert scrape(url, f"bearer  {TOKEN} ").status_code == 200  # the scheme is case-blind


def test_a_scrape_is_four_queries_however_many_workspaces(store: Store) -> None:
    fill(store)
    with store.runtime.sessions.begin() as session:
        for n in range(10):
            made = workspaces.create(session, f"Team {n}", f"admin@team{n}.io", NOW)
            outbox.accept(session, made.workspace.id, [sent(f"t{n}")], NOW)
    engine = store.runtime.sessions.kw["bind"]
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(engine, "before_cursor_execute", count)
    try:
        found = list(metrics.StoreCollector(store.runtime.sessions, store.runtime.clock).collect())
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 4
    backlog = next(f for f in found if f.name == "quotasync_backlog")
    assert len(backlog.samples) == 12


def test_the_writer_counts_its_batches_and_each_logged_activitys_latency(
    new_org: Callable[..., SandboxOrg], workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    activities = stream(people(org), 300, seed=11)
    latency = "quotasync_ingest_to_salesforce_seconds"

    def local(name: str, **labels: str) -> float:
        return metrics.REGISTRY.get_sample_value(name, labels) or 0.0

    batches = local("quotasync_batch_size_count", api="data")
    carried = local("quotasync_batch_size_sum", api="data")
    logged, waited = local(f"{latency}_count"), local(f"{latency}_sum")
    bulk = local("quotasync_batch_size_count", api="bulk")
    within = local("quotasync_batch_size_bucket", api="data", le="1000.0")
    setup.ingest(activities)
    setup.drive()

    assert setup.states() == {"logged": len(activities)}
    assert local(f"{latency}_count") - logged == len(activities)
    # The manual clock moved through each batch delay: latencies are virtual seconds, not none.
    assert local(f"{latency}_sum") - waited > 0
    # The sync user cannot read /limits, so the Bulk API is never used; a composite batch
    # carries a call's worth of records (1,000 at most), so the 300 went in one.
    assert local("quotasync_batch_size_count", api="bulk") == bulk
    went = local("quotasync_batch_size_count", api="data") - batches
    assert went == 1
    assert local("quotasync_batch_size_bucket", api="data", le="1000.0") - within == went
    assert local("quotasync_batch_size_sum", api="data") - carried >= len(activities)


def test_a_worker_serves_its_own_metrics() -> None:
    port = metrics.serve_worker_metrics("127.0.0.1", 0)
    held = metrics.LEASES_HELD._value.get()
    metrics.LEASES_HELD.set(3)
    metrics.STEPS.inc()
    try:
        answer = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
    finally:
        metrics.LEASES_HELD.set(held)
    assert answer.status_code == 200
    found = samples(answer.text)
    assert value(found, "quotasync_worker_leases_held") == 3
    assert value(found, "quotasync_worker_steps_total") >= 1
    # A worker's own metrics name no workspace: only the web's scrape reads the store.
    assert not any(name.startswith("quotasync_backlog") for name, _ in found)
