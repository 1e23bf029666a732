"""Activity logging: calls and time, quotasync against the path a developer would write.

One run, one seeded sandbox org, the same stream of 10,000 activities from 20 reps (55% sends,
25% opens, 8% clicks, 6% replies, 6% meetings; follow-ups refer to sends made earlier), written
as the default sync user (no View Setup, so no Bulk API):
(a) naive: simple-salesforce, one lookup and one create (or update) per activity;
(b) quotasync's path before composite requests: batches of 200 activities after 2 s, one sObject
    Collections request per call, follow-ups written batch by batch;
(c) quotasync now: records claimed whole, five collections to a `/composite` call (logging
    within 5 s, so the last partial batch does not wait the default minute);
(d) quotasync at a steady 0.5 and 5 activities/s with the default freshness (log within 60 s),
    on a virtual clock (`--speed`): activities per call and time from ingest to the record.
Then the calls of (a) and (c) at a few smaller sizes (`--sizes`, each its own stream), for the
README's plot of calls against activities (docs/benchmarks/calls.png); `--sizes-only` runs just
those (its own section of BENCHMARKS.md, "calls").

Usage: python -m benchmarks.logging [--activities 10000] [--steady-minutes 10] [--speed 5]
       [--sizes 250,500,1000,2000,5000] [--sizes-only]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from simple_salesforce import Salesforce
from simple_salesforce.format import format_soql
from sqlalchemy import select

from benchmarks import plots, report
from quotasync.clock import make_clock
from quotasync.config import Settings
from quotasync.engine.matching import Matcher
from quotasync.engine.pool import Options, Pool
from quotasync.engine.worker import Worker
from quotasync.engine.writer import COLLECTIONS_ONLY, Shape
from quotasync.ingest import Ingest
from quotasync.runtime import Runtime, open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.simulation import ActivityStream
from quotasync.store import workspaces
from quotasync.store.ledger import Ledger
from quotasync.store.tables import Activity
from tests.sandbox_process import SandboxOrg, start_sandbox

TARGET_PER_CALL = 500
STEADY_TARGETS = {0.5: 25, 5.0: 200}  # activities per second -> activities per call
TARGET_P95_SECONDS = 60.0  # the default freshness
# A burst's calls do not depend on the freshness (every call but the last is full), but its
# last, partial batch waits for it: the shortest allowed, so the time measures the writing.
BURST_WITHIN = 5.0
SIZES = (250, 500, 1_000, 2_000, 5_000)
STREAM_START = datetime(2026, 11, 28, tzinfo=UTC)


def people(org: SandboxOrg) -> tuple[list[str], list[str]]:
    users = org.control("GET", "records/User")
    reps = [u["Email"] for u in users if u["Email"].split("@")[0] not in ("admin", "sync", "noapi")]
    recipients = [
        r["Email"] for t in ("Contact", "Lead") for r in org.control("GET", f"records/{t}")
    ]
    return reps, recipients


def used_by_quotasync(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("quotasync", 0))


# ---------------------------------------------------------------- (a) naive


def naive(org: SandboxOrg, stream: list[dict[str, Any]]) -> tuple[int, float]:
    """One lookup and one write per activity, as the simple-salesforce README suggests."""
    sf: Salesforce = org.salesforce(handle="sync", app="Data Loader")
    tasks: Any = sf.Task
    events: Any = sf.Event
    before = int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("Data Loader", 0))
    start = time.perf_counter()
    for activity in stream:
        if activity["kind"] == "email_sent":
            found = sf.query(
                format_soql("SELECT Id FROM Contact WHERE Email = {}", activity["to"][0])
            )
            who = found["records"][0]["Id"] if found["records"] else None
            tasks.create(
                {
                    "Subject": f"Email: {activity['subject']}",
                    "Status": "Completed",
                    "TaskSubtype": "Email",
                    "WhoId": who,
                    "QS_Activity_Id__c": "naive-" + activity["id"],
                }
            )
        elif activity["kind"] in ("email_opened", "link_clicked", "email_replied"):
            task = sf.query(
                format_soql(
                    "SELECT Id, QS_Opens__c FROM Task WHERE QS_Activity_Id__c = {}",
                    "naive-" + activity["email_id"],
                )
            )
            if task["records"]:
                opens = (task["records"][0]["QS_Opens__c"] or 0) + 1
                tasks.update(task["records"][0]["Id"], {"QS_Opens__c": opens})
        else:
            found = sf.query(
                format_soql(
                    "SELECT Id FROM Contact WHERE Email = {}",
                    (activity.get("meeting") or {}).get("attendees", [""])[0] or "",
                )
            )
            meeting = activity.get("meeting")
            if meeting:
                events.upsert(
                    f"QS_Activity_Id__c/naive-{activity.get('meeting_id') or activity['id']}",
                    {
                        "StartDateTime": meeting["start"],
                        "EndDateTime": meeting["end"],
                        "Subject": "Meeting",
                    },
                )
    seconds = time.perf_counter() - start
    after = int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("Data Loader", 0))
    return after - before, seconds


# ---------------------------------------------------------------- (b), (c) quotasync


def connected(
    org: SandboxOrg, data_dir: Path, name: str, *, delay: float | None = None, speed: float = 0
) -> tuple[Runtime, str]:
    # The org's clock and quotasync's agree: the same speed from the same epoch.
    clock = make_clock(speed, STREAM_START.isoformat()) if speed else None
    runtime = open_runtime(Settings(data_dir=data_dir, database_url=None), clock)
    with runtime.sessions.begin() as session:
        ws = workspaces.create(
            session, name, f"admin@{name.lower()}.example", runtime.clock.now()
        ).workspace
        ws.unmatched = "log_unlinked"
        if delay is not None:
            ws.log_within = delay
    runtime.connector.connect_sandbox(ws.id, SandboxLogin.read(org.state_dir / "sandbox.json"))
    Matcher(runtime.sessions, ws.id, runtime.clock).load(runtime.connector.client(ws.id))
    return runtime, ws.id


def burst(
    org: SandboxOrg,
    data_dir: Path,
    stream: list[dict[str, Any]],
    shape: Shape = Shape(),
    delay: float | None = None,
) -> tuple[int, float, dict[str, int]]:
    """The stream accepted at once and written by one worker until idle; the calls the org
    counted, the time taken, the ledger's calls by purpose."""
    runtime, ws = connected(org, data_dir, "Burst", delay=delay)
    before = used_by_quotasync(org)
    start = time.perf_counter()
    ingest = Ingest(runtime.sessions, runtime.clock)
    for i in range(0, len(stream), 1000):
        ingest.accept(ws, stream[i : i + 1000])
    worker = Worker(runtime.connector, runtime.clock, shape=shape)
    Pool(worker, runtime.clock, Options(until_idle=True)).run(threading.Event())
    seconds = time.perf_counter() - start
    return used_by_quotasync(org) - before, seconds, Ledger(runtime.sessions).by_purpose(ws)


def steady(
    org: SandboxOrg,
    data_dir: Path,
    stream: list[dict[str, Any]],
    rate: float,
    minutes: float,
    speed: float,
) -> tuple[list[float], int]:
    """The stream arriving at `rate` activities per (virtual) second for `minutes`, a worker
    writing as it comes; each logged activity's ingest-to-record time in virtual seconds, and
    the logging calls spent."""
    runtime, ws = connected(org, data_dir, f"Steady{rate:g}".replace(".", "_"), speed=speed)
    clock = runtime.clock
    ingest = Ingest(runtime.sessions, clock)
    stop = threading.Event()
    pool = Pool(Worker(runtime.connector, clock), clock)
    worker = threading.Thread(target=pool.run, args=(stop,))
    worker.start()
    sent = 0
    start = clock.now()
    while (elapsed := (clock.now() - start).total_seconds()) < minutes * 60:
        due = min(len(stream), int(elapsed * rate) + 1)
        if due > sent:
            ingest.accept(ws, stream[sent:due])
            sent = due
        time.sleep(0.01)
    # Virtual: the freshness twice over. What still waits then is follow-ups whose email the
    # slice of the stream never sent; they are not counted.
    deadline = clock.now().timestamp() + 180
    while clock.now().timestamp() < deadline:
        with runtime.sessions() as session:
            rows = session.execute(
                select(Activity.received_at, Activity.logged_at, Activity.state).where(
                    Activity.workspace_id == ws
                )
            ).all()
        if all(state != "pending" for *_, state in rows):
            break
        time.sleep(0.1)
    stop.set()
    worker.join()
    calls = Ledger(runtime.sessions).by_purpose(ws).get("log_activity", 0)
    latencies = [
        (logged - received).total_seconds()
        for received, logged, state in rows
        if state == "logged" and logged
    ]
    return latencies, calls


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def start_org(root: Path, speed: float = 0) -> SandboxOrg:
    clock = ("--speed", f"{speed:g}", "--epoch", STREAM_START.isoformat()) if speed else ()
    return start_sandbox(
        root / "org",
        "--seed",
        "1000",
        "--daily-api-requests",
        "10000000",
        "--session-timeout-minutes",
        "0",
        *clock,
        process=True,
    )


def series(org: SandboxOrg, root: Path, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """(a) and (b)'s calls at each size, each size its own stream (other activity ids)."""
    reps, recipients = people(org)
    points = []
    for size in sizes:
        stream = ActivityStream(reps, recipients, STREAM_START, seed=1_000 + size).take(size)
        naive_calls, naive_seconds = naive(org, stream)
        qs_calls, qs_seconds, _ = burst(org, root / f"burst-{size}", stream, delay=BURST_WITHIN)
        points.append(
            {
                "activities": size,
                "naive_calls": naive_calls,
                "quotasync_calls": qs_calls,
                "naive_seconds": round(naive_seconds, 2),
                "quotasync_seconds": round(qs_seconds, 2),
            }
        )
        print(f"{size:,} activities: naive {naive_calls:,} calls, quotasync {qs_calls:,}")
    return points


SERIES_COLUMNS = ["activities", "naive calls", "quotasync calls", "fewer calls"]


def write_series(points: Sequence[dict[str, Any]]) -> None:
    rows = [
        [
            f"{p['activities']:,}",
            f"{p['naive_calls']:,}",
            f"{p['quotasync_calls']:,}",
            f"{p['naive_calls'] / max(1, p['quotasync_calls']):,.0f}x",
        ]
        for p in points
    ]
    report.show("Data API calls against activities", SERIES_COLUMNS, rows)
    report.write_section(
        "calls",
        "\n\n".join(
            [
                "## Calls against activities (`python -m benchmarks.logging --sizes-only`)",
                "(a) and (b) of the logging benchmark at smaller sizes, each size its own stream "
                "of activities into the same seeded org; calls counted by the org.",
                report.markdown_table(SERIES_COLUMNS, rows),
                "![Data API calls against activities, naive and quotasync]"
                "(docs/benchmarks/calls.png)",
            ]
        ),
    )
    report.save_results("calls", {"series": list(points)})
    plots.calls(report.load_results("calls") or {})


def run_sizes(sizes: Sequence[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        org = start_org(root)
        try:
            points = series(org, root, sizes)
        finally:
            org.stop()
    write_series(points)


def steady_arrivals(
    root: Path, steady_minutes: float, speed: float
) -> dict[float, tuple[list[float], int]]:
    """(d): each steady rate against one org on a virtual clock."""
    runs = {}
    clocked = start_org(root / "virtual", speed=speed)
    try:
        reps, recipients = people(clocked)
        for index, rate in enumerate(STEADY_TARGETS):
            arriving = ActivityStream(reps, recipients, STREAM_START, seed=12 + index).take(
                int(steady_minutes * 60 * rate) + 10
            )
            runs[rate] = steady(
                clocked, root / f"steady-{index}", arriving, rate, steady_minutes, speed
            )
    finally:
        clocked.stop()
    return runs


def run(activities: int, steady_minutes: float, speed: float, sizes: Sequence[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        org = start_org(root)
        try:
            reps, recipients = people(org)
            stream = ActivityStream(reps, recipients, STREAM_START, seed=11).take(activities)
            naive_calls, naive_seconds = naive(org, stream)
            old_calls, old_seconds, _ = burst(
                org, root / "before", stream, COLLECTIONS_ONLY, delay=2.0
            )
            qs_calls, qs_seconds, purposes = burst(org, root / "burst", stream, delay=BURST_WITHIN)
            points = series(org, root, sizes)
        finally:
            org.stop()
        steady_runs = steady_arrivals(root, steady_minutes, speed)
    per_call = activities / qs_calls if qs_calls else 0.0
    columns = ["path", "Data API calls", "activities per call", "time", "vs naive", "vs before"]
    rows = [
        [
            "(a) naive: lookup + create per activity",
            f"{naive_calls:,}",
            f"{activities / naive_calls:.2f}",
            f"{naive_seconds:.1f} s",
            "1.00x calls",
            "",
        ],
        [
            "(b) before: collections of 200, one a call",
            f"{old_calls:,}",
            f"{activities / max(1, old_calls):,.1f}",
            f"{old_seconds:.1f} s",
            f"{naive_calls / max(1, old_calls):,.0f}x fewer calls",
            "1.00x calls",
        ],
        [
            "(c) now: five collections a /composite call",
            f"{qs_calls:,}",
            f"{per_call:,.1f}",
            f"{qs_seconds:.1f} s",
            f"{naive_calls / max(1, qs_calls):,.0f}x fewer calls",
            f"{old_calls / max(1, qs_calls):,.1f}x fewer calls",
        ],
    ]
    report.show(f"Logging {activities:,} activities from 20 reps, one burst", columns, rows)
    print(f"(c) calls by purpose: {purposes}")
    steady_columns = ["arrival", "activities", "calls", "per call", "p50", "p95", "target"]
    steady_rows = []
    steady_results = {}
    for rate, (latencies, calls) in steady_runs.items():
        logged = len(latencies)
        p50 = statistics.median(latencies) if latencies else 0.0
        p95 = percentile(latencies, 95) if latencies else 0.0
        each = logged / calls if calls else 0.0
        meets = each >= STEADY_TARGETS[rate] and p95 <= TARGET_P95_SECONDS
        steady_rows.append(
            [
                f"{rate:g}/s for {steady_minutes:g} min",
                f"{logged:,}",
                f"{calls:,}",
                f"{each:,.1f}",
                f"{p50:.1f} s",
                f"{p95:.1f} s",
                f">= {STEADY_TARGETS[rate]}/call, p95 <= {TARGET_P95_SECONDS:g} s: "
                + ("meets" if meets else "MISSES"),
            ]
        )
        steady_results[f"{rate:g}"] = {
            "activities": logged,
            "calls": calls,
            "per_call": round(each, 1),
            "p50_s": round(p50, 1),
            "p95_s": round(p95, 1),
            "meets": meets,
        }
    report.show(
        "(d) steady arrival, default freshness (virtual clock)", steady_columns, steady_rows
    )
    verdict = "meets" if per_call >= TARGET_PER_CALL else "MISSES"
    report.write_section(
        "logging",
        "\n\n".join(
            [
                "## Activity logging (`python -m benchmarks.logging`)",
                f"The same stream of {activities:,} activities from 20 reps (55% sends, 25% opens, "
                "8% clicks, 6% replies, 6% meetings; follow-ups refer to earlier sends) into one "
                "sandbox org seeded with 1,000 of each record type, as the default sync user (no "
                "View Setup, so no Bulk API). (a) is the path a developer writes with "
                "simple-salesforce; (b) is quotasync's path before composite requests (batches of "
                "200 after 2 s, one collections request a call); (c) is quotasync now. Calls are "
                "counted by the org, per connected app, in one run.",
                report.markdown_table(columns, rows),
                "(c) by purpose, as quotasync's ledger has them: "
                + ", ".join(f"{k} {v:,}" for k, v in sorted(purposes.items()))
                + " (the mirror load happens once, at connect, and is not counted here).",
                f"Target: >= {TARGET_PER_CALL} activities per Data API call in (c): measured "
                f"{per_call:,.1f} ({verdict}).",
                f"(d) Activities arriving steadily, written with the default freshness (log "
                f"within 60 s), on a virtual clock at {speed:g}x (sandbox and quotasync share it); "
                "times are from ingest to the record in Salesforce, in virtual seconds.",
                report.markdown_table(steady_columns, steady_rows),
            ]
        ),
    )
    report.save_results(
        "logging",
        {
            "activities": activities,
            "naive_calls": naive_calls,
            "before_calls": old_calls,
            "quotasync_calls": qs_calls,
            "per_call": round(per_call, 1),
            "fewer_calls": round(naive_calls / max(1, qs_calls), 1),
            "fewer_than_before": round(old_calls / max(1, qs_calls), 2),
            "faster": round(naive_seconds / qs_seconds, 2),
            "target_per_call": TARGET_PER_CALL,
            "per_call_meets": per_call >= TARGET_PER_CALL,
            "steady": steady_results,
        },
    )
    if points:
        write_series(points)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--activities", type=int, default=10_000)
    parser.add_argument(
        "--steady-minutes", type=float, default=10.0, help="virtual minutes of each steady run"
    )
    parser.add_argument(
        "--speed", type=float, default=5.0, help="virtual seconds per real second in (d)"
    )
    parser.add_argument(
        "--sizes",
        type=report.number_list,
        default=list(SIZES),
        help="activities at each point of the calls series, comma-separated ('' for none)",
    )
    parser.add_argument(
        "--sizes-only", action="store_true", help="run only the calls series (about a minute here)"
    )
    args = parser.parse_args()
    if args.sizes_only:
        run_sizes(args.sizes)
    else:
        run(args.activities, args.steady_minutes, args.speed, args.sizes)


if __name__ == "__main__":
    main()
