"""Inbound: what the mirror's initial load costs, REST against Bulk, and how long a change made in
the org takes to reach the mirror, with Real-Time Sync and in Interval mode (issue 5).

One run prints three tables and rewrites the "inbound" section of BENCHMARKS.md:

1. Initial load. For each size of `--sizes` (Contacts), a fresh sandbox org (`--seed 0`: no
   records but its users) gets that many Contacts through the control API
   (`POST /__sandbox/records/Contact`, lists of 5,000; timed apart and kept out of the
   figures). Two workspaces, each in a store of its own, connect to it as the sandbox's `admin`
   user (View Setup: the Bulk API is used only where `/limits` gives its figures) and run
   `Syncer(connector, workspace_id, clock).run(full=True)`, the initial load of every mirrored
   type: one with `bulk_query_threshold` set out of reach (REST pages of 2,000), one with it at
   100 (the Contacts in a Bulk API 2.0 query job, the org's three Users by REST). Calls per API
   type are the run's report (from quotasync's ledger) and the org's own count; the mirror is
   checked against the org (its live Contacts). Time is wall time of `run()`. The baseline of
   each size is its REST load: `vs REST` gives the Bulk load's Data calls and time as ratios of
   the REST load's.
2. Lag with Real-Time Sync. A workspace connected as `admin` on a fresh org (`--seed 1000` of
   each type, and Contacts enough for table 3; a virtual clock at real speed), its mirror
   loaded, `quotasync.web.app.create_app(runtime)` served by uvicorn in a thread on 127.0.0.1,
   and `RealTime(...).enable(url)`, as tests/integration/test_realtime.py does. Then
   `--changes` times, one at a time: another app ("Data Loader", as `admin`) updates a Contact's
   Title, and the mirror (the store, polled every millisecond) is watched until it holds the
   new Title. The lag is from just before the update is sent to the moment the mirror has it.
3. Interval mode. Another workspace on the same org (pushing switched off), its mirror loaded.
   For each count of `--interval-changes`: that many Contacts are updated by Data Loader
   (sObject Collections, 200 a call), then one interval run (`Syncer(...).run()`) brings them
   in; its calls, what it fetched, and its time are measured. A change waits for the next run:
   with the default interval of 30 minutes that is 15 minutes on average and 30 at most, plus
   the run itself. Between batches the org's clock is moved 5 minutes on and one sentinel
   change is synced, so a run's two-minute lookback (engine/sync.py `LOOKBACK`) holds only the
   sentinel, not the batch before (`fetched` counts it).

Sizes. The REST load of 200,000 Contacts (100 pages, each applied to the SQLite mirror) takes
about 11 s on 2 cores and the whole run about a minute, so all three sizes run by default;
`--sizes` picks others.

Usage: python -m benchmarks.inbound [--sizes 10000,50000,200000] [--changes 50]
       [--interval-changes 1,100,1000,5000,20000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import uvicorn
from simple_salesforce import Salesforce

from benchmarks import report
from quotasync.clock import RealClock
from quotasync.config import Settings
from quotasync.engine import sync
from quotasync.engine.pool import Pool
from quotasync.engine.realtime import RealTime
from quotasync.engine.worker import Progress, Worker
from quotasync.runtime import Runtime, open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.store import workspaces
from quotasync.store.tables import MirrorRecord, Workspace
from tests.integration.test_realtime import free_port
from tests.sandbox_process import SandboxOrg, start_sandbox

SIZES = (10_000, 50_000, 200_000)
SEED_CHUNK = 5_000  # Contacts per control-API request while seeding
REST_ONLY = 1_000_000_000  # a bulk_query_threshold no count reaches
BULK_LOW = 100  # a bulk_query_threshold every size passes, and the org's few Users do not
# (Bulk then goes only where a job costs fewer calls than query pages: above ~22,000 records.)
TARGET_CALLS_50K = 10  # issue 5: the initial load of 50,000 Contacts in at most 10 Data calls
RTS_SEED = 1_000  # records of each type in the lag org
CHANGES = 50
INTERVAL_CHANGES = (1, 100, 1_000, 5_000, 20_000)
INTERVAL = timedelta(minutes=30)  # the default sync interval (Workspace.sync_interval_minutes)
SEPARATION = timedelta(minutes=5)  # org time between batches: more than sync.LOOKBACK
COLLECTION = 200
POLL_SECONDS = 0.001
LAG_TIMEOUT = 30.0  # a change not in the mirror by then is a failure, not a slow machine
APP, OTHER_APP = "quotasync", "Data Loader"


# ---------------------------------------------------------------- the org and the workspaces


@contextmanager
def sandbox(root: Path, name: str, *args: str) -> Iterator[SandboxOrg]:
    org = start_sandbox(
        root / name,
        "--daily-api-requests",
        "50000000",
        "--session-timeout-minutes",
        "0",
        *args,
        process=True,
    )
    try:
        yield org
    finally:
        org.stop()


def seed_contacts(org: SandboxOrg, count: int) -> float:
    """Post `count` Contacts through the control API; returns the seconds it took."""
    started = time.perf_counter()
    for start in range(0, count, SEED_CHUNK):
        rows = [
            {
                "FirstName": f"Load{i % 997}",
                "LastName": f"Contact {i}",
                "Email": f"contact{i}@inbound.example",
                "Title": "Buyer",
            }
            for i in range(start, min(count, start + SEED_CHUNK))
        ]
        org.control("POST", "records/Contact", rows)
    return time.perf_counter() - started


def usage(org: SandboxOrg, app: str = APP) -> dict[str, int]:
    """Calls an app has in the org's window, per quota: Data API and Bulk query jobs."""
    found = org.control("GET", "usage")
    return {
        "data": int(found["DailyApiRequests"]["by_app"].get(app, 0)),
        "bulk_query": int(found["DailyBulkV2QueryJobs"]["by_app"].get(app, 0)),
    }


def live_contacts(org: SandboxOrg) -> int:
    return len(org.control("GET", "records/Contact"))


@dataclass
class Connected:
    runtime: Runtime
    workspace_id: str

    def close(self) -> None:
        self.runtime.sessions.kw["bind"].dispose()

    def set(self, **values: Any) -> None:
        with self.runtime.sessions.begin() as session:
            workspace = session.get(Workspace, self.workspace_id)
            assert workspace is not None
            for name, value in values.items():
                setattr(workspace, name, value)

    def mirrored(self, sobject: str) -> int:
        with self.runtime.sessions() as session:
            return sync.live_counts(session, self.workspace_id, (sobject,))[sobject]

    def field(self, sobject: str, record_id: str, name: str) -> Any:
        with self.runtime.sessions() as session:
            row = session.get(MirrorRecord, (self.workspace_id, sobject, record_id))
            return None if row is None else row.fields.get(name)

    def syncer(self) -> sync.Syncer:
        return sync.Syncer(self.runtime.connector, self.workspace_id, self.runtime.clock)


def connected(org: SandboxOrg, data_dir: Path, name: str) -> Connected:
    """A workspace in a store of its own, connected as the admin user, its mirror empty."""
    runtime = open_runtime(Settings(data_dir=data_dir, database_url=None), RealClock())
    with runtime.sessions.begin() as session:
        made = workspaces.create(
            session, name, f"admin@{name.lower()}.example", runtime.clock.now()
        )
        workspace_id = made.workspace.id
    login = SandboxLogin.read(org.state_dir / "sandbox.json", "admin")
    runtime.connector.connect_sandbox(workspace_id, login)
    return Connected(runtime, workspace_id)


# ---------------------------------------------------------------- 1. the initial load


@dataclass(frozen=True)
class Load:
    size: int
    path: str  # rest | bulk
    via: str  # how the Contacts came: rest | bulk
    calls: dict[str, int]  # the run's report: API type -> calls
    org_data: int  # Data API calls the org counted for the run
    org_jobs: int  # Bulk query jobs the org counted
    seconds: float
    mirrored: int
    in_org: int

    @property
    def data(self) -> int:
        return self.calls.get("data", 0)

    @property
    def complete(self) -> bool:
        return self.mirrored == self.in_org


def initial_load(org: SandboxOrg, root: Path, size: int, path: str) -> Load:
    workspace = connected(org, root / f"store-{size}-{path}", f"Load{path.title()}{size}")
    try:
        workspace.set(bulk_query_threshold=REST_ONLY if path == "rest" else BULK_LOW)
        before = usage(org)
        started = time.perf_counter()
        done = workspace.syncer().run(full=True)
        seconds = time.perf_counter() - started
        after = usage(org)
        if not done.complete:
            raise RuntimeError(f"the {path} load of {size:,} did not complete: {done.as_dict()}")
        return Load(
            size=size,
            path=path,
            via=done.objects["Contact"].via or "-",
            calls=dict(done.calls),
            org_data=after["data"] - before["data"],
            org_jobs=after["bulk_query"] - before["bulk_query"],
            seconds=seconds,
            mirrored=workspace.mirrored("Contact"),
            in_org=live_contacts(org),
        )
    finally:
        workspace.close()


def loads(root: Path, sizes: Sequence[int]) -> tuple[list[Load], dict[int, float]]:
    found: list[Load] = []
    seeding: dict[int, float] = {}
    for size in sizes:
        with sandbox(root, f"load-{size}", "--seed", "0") as org:
            seeding[size] = seed_contacts(org, size)
            for path in ("rest", "bulk"):
                found.append(initial_load(org, root, size, path))
                print(f"  {size:,} Contacts by {path}: {found[-1].seconds:.1f} s")
    return found, seeding


# ---------------------------------------------------------------- 2. Real-Time Sync


@contextmanager
def served(runtime: Runtime) -> Iterator[int]:
    """quotasync's web app on 127.0.0.1, in a thread; yields its port."""
    from quotasync.web.app import create_app

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(runtime), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def update_title(sf: Salesforce, record_id: str, title: str) -> None:
    sf.restful(f"sobjects/Contact/{record_id}", method="PATCH", data=json.dumps({"Title": title}))


def wait_for(workspace: Connected, record_id: str, title: str, started: float) -> float:
    while workspace.field("Contact", record_id, "Title") != title:
        if time.perf_counter() - started > LAG_TIMEOUT:
            raise RuntimeError(f"{record_id} did not reach the mirror in {LAG_TIMEOUT:.0f} s")
        time.sleep(POLL_SECONDS)
    return time.perf_counter() - started


def contact_ids(sf: Salesforce, count: int) -> list[str]:
    found = sf.query_all(f"SELECT Id FROM Contact ORDER BY Id LIMIT {count}")
    return [str(r["Id"]) for r in found["records"]]


def realtime_lags(org: SandboxOrg, root: Path, changes: int) -> list[float]:
    workspace = connected(org, root / "store-rts", "Pushed")
    runtime = workspace.runtime
    try:
        # One worker turn reads /limits (the Apex figures pushes are governed by) and loads the
        # mirror (the interval sync's first run).
        Pool(Worker(runtime.connector, runtime.clock), runtime.clock).turn(Progress())
        with served(runtime) as port:
            url = f"http://127.0.0.1:{port}/rts/{workspace.workspace_id}"
            realtime = RealTime(runtime.connector, workspace.workspace_id, runtime.clock)
            realtime.enable(url)
            sf: Salesforce = org.salesforce("admin", OTHER_APP)
            ids = contact_ids(sf, changes)
            lags = []
            for n, record_id in enumerate(ids):
                title = f"Pushed {n}"
                started = time.perf_counter()
                update_title(sf, record_id, title)
                lags.append(wait_for(workspace, record_id, title, started))
            realtime.disable()
        return lags
    finally:
        workspace.close()


# ---------------------------------------------------------------- 3. Interval mode


@dataclass(frozen=True)
class IntervalRun:
    changes: int
    fetched: int
    via: str
    calls: dict[str, int]
    seconds: float
    complete: bool  # every change is in the mirror

    @property
    def data(self) -> int:
        return self.calls.get("data", 0)


def update_titles(sf: Salesforce, ids: Sequence[str], title: str) -> None:
    """Another app's change of many Contacts: sObject Collections updates, 200 a call."""
    for start in range(0, len(ids), COLLECTION):
        records = [
            {"attributes": {"type": "Contact"}, "Id": record_id, "Title": title}
            for record_id in ids[start : start + COLLECTION]
        ]
        sf.restful(
            "composite/sobjects",
            method="PATCH",
            data=json.dumps({"allOrNone": True, "records": records}),
        )


def interval_runs(org: SandboxOrg, root: Path, counts: Sequence[int]) -> list[IntervalRun]:
    workspace = connected(org, root / "store-interval", "Interval")
    try:
        workspace.syncer().run(full=True)
        sf: Salesforce = org.salesforce("admin", OTHER_APP)
        ids = contact_ids(sf, max(counts) + 1)
        sentinel, ids = ids[0], ids[1:]
        out = []
        for n, count in enumerate(counts):
            # A lone change synced first, so the next run's lookback holds only it.
            org.control("POST", "clock", {"advance_seconds": SEPARATION.total_seconds()})
            update_title(sf, sentinel, f"Sentinel {n}")
            workspace.syncer().run()
            org.control("POST", "clock", {"advance_seconds": SEPARATION.total_seconds()})
            title = f"Interval {n}"
            update_titles(sf, ids[:count], title)
            started = time.perf_counter()
            done = workspace.syncer().run()
            seconds = time.perf_counter() - started
            contact = done.objects["Contact"]
            landed = sum(1 for i in ids[:count] if workspace.field("Contact", i, "Title") == title)
            out.append(
                IntervalRun(
                    count,
                    contact.fetched,
                    contact.via or "-",
                    dict(done.calls),
                    seconds,
                    landed == count,
                )
            )
            print(f"  interval run with {count:,} changes: {seconds:.2f} s")
        return out
    finally:
        workspace.close()


# ---------------------------------------------------------------- the report


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def calls_text(calls: dict[str, int]) -> str:
    return ", ".join(f"{api} {n:,}" for api, n in sorted(calls.items()))


LOAD_COLUMNS = [
    "Contacts",
    "path",
    "Data calls",
    "Bulk jobs",
    "org count",
    "time",
    "Contacts/s",
    "vs REST",
    "mirror = org",
]
LAG_COLUMNS = ["mode", "changes", "p50", "p95", "max", "vs RTS p50"]
INTERVAL_COLUMNS = [
    "changes",
    "fetched",
    "via",
    "Data calls",
    "run time",
    "lag avg",
    "lag max",
    "complete",
]


def load_rows(found: Sequence[Load]) -> list[list[str]]:
    rest = {load.size: load for load in found if load.path == "rest"}
    rows = []
    for load in found:
        base = rest[load.size]
        ratio = (
            f"calls {load.data / max(1, base.data):.2f}x, time {load.seconds / base.seconds:.2f}x"
        )
        rows.append(
            [
                f"{load.size:,}",
                f"{load.path} (via {load.via})",
                f"{load.data:,}",
                f"{load.calls.get('bulk_query', 0):,}",
                f"{load.org_data:,} + {load.org_jobs:,} jobs",
                f"{load.seconds:.1f} s",
                f"{load.size / load.seconds:,.0f}",
                ratio,
                "yes" if load.complete else f"NO ({load.mirrored:,} of {load.in_org:,})",
            ]
        )
    return rows


def minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"


def interval_rows(runs: Sequence[IntervalRun]) -> list[list[str]]:
    return [
        [
            f"{run.changes:,}",
            f"{run.fetched:,}",
            run.via,
            f"{run.data:,}",
            f"{run.seconds:.2f} s",
            f"{minutes(INTERVAL / 2)} + {run.seconds:.1f} s",
            f"{minutes(INTERVAL)} + {run.seconds:.1f} s",
            "yes" if run.complete else "NO",
        ]
        for run in runs
    ]


def lag_rows(lags: Sequence[float], runs: Sequence[IntervalRun]) -> list[list[str]]:
    p50 = statistics.median(lags)
    rows = [
        [
            "Real-Time Sync (measured)",
            f"{len(lags)}",
            f"{p50 * 1000:.0f} ms",
            f"{percentile(lags, 95) * 1000:.0f} ms",
            f"{max(lags) * 1000:.0f} ms",
            "1x",
        ]
    ]
    if runs:
        single = runs[0].seconds
        average = INTERVAL.total_seconds() / 2 + single
        worst = INTERVAL.total_seconds() + single
        rows.append(
            [
                f"Interval, every {minutes(INTERVAL)} (expected)",
                f"{runs[0].changes}",
                f"{average / 60:.1f} min",
                f"{(0.95 * INTERVAL.total_seconds() + single) / 60:.1f} min",
                f"{worst / 60:.1f} min",
                f"{average / p50:,.0f}x",
            ]
        )
    return rows


def run(sizes: Sequence[int], changes: int, interval_changes: Sequence[int]) -> None:
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        print("1. initial loads")
        found, seeding = loads(root, sizes)
        print("2. Real-Time Sync lag, 3. interval runs")
        # A virtual clock at real speed: real time for the pushes, movable for the interval runs.
        with sandbox(root, "lag", "--seed", str(RTS_SEED), "--speed", "1") as org:
            seed_contacts(org, max(0, max(interval_changes, default=0) + 1 - RTS_SEED))
            lags = realtime_lags(org, root, changes)
            runs = interval_runs(org, root, interval_changes)
    seconds = time.perf_counter() - wall

    title_load = "1. Initial load of the mirror: REST against Bulk"
    title_lag = "2. From an org change to the mirror"
    title_interval = "3. Interval mode: one run bringing N changes in"
    rows_load, rows_lag, rows_interval = load_rows(found), lag_rows(lags, runs), interval_rows(runs)
    report.show(title_load, LOAD_COLUMNS, rows_load)
    report.show(title_lag, LAG_COLUMNS, rows_lag)
    report.show(title_interval, INTERVAL_COLUMNS, rows_interval)
    words = [load_words(found, seeding), lag_words(lags), interval_words(runs)]
    for text in words:
        print(text)
    print(f"Whole run: {seconds:.0f} s.")
    report.write_section(
        "inbound",
        "\n\n".join(
            [
                "## Inbound: initial load and lag (`python -m benchmarks.inbound`)",
                "A sandbox org per size with that many Contacts (and nothing else but its "
                "users), loaded by `Syncer(...).run(full=True)` into an empty mirror, connected "
                "as the sandbox's `admin` user (View Setup, so the Bulk API is governed and "
                "may be used). `rest`: `bulk_query_threshold` out of reach, REST query pages "
                f"of 2,000; `bulk`: threshold {BULK_LOW}, the Contacts in a Bulk API 2.0 query "
                "job (the org's three Users still by REST). `Data calls` and "
                "`Bulk jobs` are the run's report (quotasync's ledger), `org count` what the "
                "org counted for quotasync meanwhile; `mirror = org`: the mirror holds the "
                "org's live Contacts.",
                f"### {title_load}",
                report.markdown_table(LOAD_COLUMNS, rows_load),
                words[0],
                f"### {title_lag}",
                report.markdown_table(LAG_COLUMNS, rows_lag),
                words[1],
                f"### {title_interval}",
                report.markdown_table(INTERVAL_COLUMNS, rows_interval),
                words[2],
                f"Whole run: {seconds:.0f} s of wall time.",
            ]
        ),
    )
    target = next((f for f in found if (f.size, f.path) == (50_000, "bulk")), None)
    if target is not None:
        report.save_results(
            "inbound",
            {
                "load_50k_calls": target.data,
                "load_50k_target_calls": TARGET_CALLS_50K,
                "load_50k_meets": target.data <= TARGET_CALLS_50K and target.complete,
                "rts_p50_ms": round(statistics.median(lags) * 1000, 1),
            },
        )


def load_words(found: Sequence[Load], seeding: dict[int, float]) -> str:
    by = {(load.size, load.path): load for load in found}
    words = []
    for size in sorted({load.size for load in found}):
        rest, bulk = by[(size, "rest")], by[(size, "bulk")]
        words.append(
            f"{size:,} Contacts: Bulk {bulk.data:,} Data calls + {bulk.calls.get('bulk_query', 0)} "
            f"query job against REST's {rest.data:,} ({rest.data / max(1, bulk.data):.1f}x fewer "
            f"Data calls), {bulk.seconds:.1f} s against {rest.seconds:.1f} s (time "
            f"{bulk.seconds / rest.seconds:.2f}x REST's)."
        )
    target = by.get((50_000, "bulk"))
    if target is not None:
        ok = target.data <= TARGET_CALLS_50K and target.complete
        words.append(
            f"Issue 5's target, the initial load of 50,000 Contacts in at most "
            f"{TARGET_CALLS_50K} Data API calls with the mirror equal to the org: "
            f"{target.data} calls ({'meets' if ok else 'MISSES'})."
        )
    in_step = all(load.org_data == load.data for load in found)
    words.append(
        "Calls by purpose and type, as the runs reported them: "
        + "; ".join(f"{load.size:,} {load.path}: {calls_text(load.calls)}" for load in found)
        + f". The org's count equals the ledger's in every run: {'yes' if in_step else 'NO'} "
        "(the Bulk load's Data calls include one `/limits` reading, which tells that the Bulk "
        "API may be used)."
    )
    words.append(
        "Seeding, kept out of these figures: "
        + ", ".join(f"{size:,} Contacts in {s:.1f} s" for size, s in seeding.items())
        + f" (control API, {SEED_CHUNK:,} a request)."
    )
    return " ".join(words)


def lag_words(lags: Sequence[float]) -> str:
    return (
        f"Real-Time Sync: {len(lags)} changes, one at a time, each a Contact's Title updated by "
        f'another app ("{OTHER_APP}", as `admin`), timed from just before the update was sent '
        "until the mirror held it (the org pushes from a background thread; quotasync's web "
        "app, served by uvicorn in the benchmark's process, verifies the signature and applies "
        f"the push; the store was polled every {POLL_SECONDS * 1000:.0f} ms). Interval mode: a "
        f"change waits for the next run, {minutes(INTERVAL)} apart by default, so "
        f"{minutes(INTERVAL / 2)} on average and {minutes(INTERVAL)} at most (p95 at 95% of "
        "the interval), plus the run that brings it in (table 3's smallest run); measured "
        "p50 of the pushes is the baseline."
    )


def interval_words(runs: Sequence[IntervalRun]) -> str:
    if not runs:
        return "No interval runs were asked for."
    return (
        "Each run looks at every mirrored type in one composite call, then fetches the Contacts "
        "changed since the watermark (query pages of 2,000, five to a call, or a Bulk query job "
        "where that costs fewer calls); `fetched` includes the sentinel change at the watermark. "
        "Lag is the wait for the run (the interval) plus the run: "
        f"`lag avg` = interval / 2 + run time, `lag max` = interval + run time, with the default "
        f"interval of {minutes(INTERVAL)}. Calls: "
        + "; ".join(f"{r.changes:,} changed: {calls_text(r.calls)}" for r in runs)
        + "."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        type=report.number_list,
        default=list(SIZES),
        help="Contacts in each initial load, comma-separated (default 10000,50000,200000)",
    )
    parser.add_argument(
        "--changes", type=int, default=CHANGES, help="org changes timed with Real-Time Sync"
    )
    parser.add_argument(
        "--interval-changes",
        type=report.number_list,
        default=list(INTERVAL_CHANGES),
        help="changes brought in by each interval run, comma-separated",
    )
    args = parser.parse_args()
    run(args.sizes, max(1, args.changes), args.interval_changes)


if __name__ == "__main__":
    main()
