"""Activity logging: calls and time, quotasync against the path a developer would write.

One run, one seeded sandbox org, the same stream of 10,000 activities from 20 reps:
(a) naive: simple-salesforce, one lookup and one create (or update) per activity;
(b) quotasync: the stream ingested as one burst, written by the worker;
(c) quotasync at a steady 5 activities/s: time from ingest to the record being in Salesforce.
Then the calls of (a) and (b) at a few smaller sizes (`--sizes`, each its own stream), for the
README's plot of calls against activities (docs/benchmarks/calls.png); `--sizes-only` runs just
those (its own section of BENCHMARKS.md, "calls").

Usage: python -m benchmarks.logging [--activities 10000] [--steady-seconds 60]
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
from quotasync.config import Settings
from quotasync.engine.matching import Matcher
from quotasync.engine.worker import Worker
from quotasync.ingest import Ingest
from quotasync.runtime import Runtime, open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.simulation import ActivityStream
from quotasync.store import workspaces
from quotasync.store.ledger import Ledger
from quotasync.store.tables import Activity
from tests.sandbox_process import SandboxOrg, start_sandbox

TARGET_PER_CALL = 150
TARGET_P95_SECONDS = 5.0
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


def connected(org: SandboxOrg, data_dir: Path, name: str) -> tuple[Runtime, str]:
    runtime = open_runtime(Settings(data_dir=data_dir, database_url=None))
    with runtime.sessions.begin() as session:
        ws = workspaces.create(
            session, name, f"admin@{name.lower()}.example", runtime.clock.now()
        ).workspace
        ws.unmatched = "log_unlinked"
    runtime.connector.connect_sandbox(ws.id, SandboxLogin.read(org.state_dir / "sandbox.json"))
    Matcher(runtime.sessions, ws.id, runtime.clock).load(runtime.connector.client(ws.id))
    return runtime, ws.id


def burst(
    org: SandboxOrg, data_dir: Path, stream: list[dict[str, Any]]
) -> tuple[int, float, dict[str, int]]:
    runtime, ws = connected(org, data_dir, "Burst")
    before = used_by_quotasync(org)
    start = time.perf_counter()
    ingest = Ingest(runtime.sessions, runtime.clock)
    for i in range(0, len(stream), 1000):
        ingest.accept(ws, stream[i : i + 1000])
    Worker(runtime.connector, runtime.clock).run(threading.Event(), until_idle=True)
    seconds = time.perf_counter() - start
    return used_by_quotasync(org) - before, seconds, Ledger(runtime.sessions).by_purpose(ws)


def steady(
    org: SandboxOrg, data_dir: Path, stream: list[dict[str, Any]], rate: float, seconds: float
) -> list[float]:
    runtime, ws = connected(org, data_dir, "Steady")
    ingest = Ingest(runtime.sessions, runtime.clock)
    stop = threading.Event()
    worker = threading.Thread(target=Worker(runtime.connector, runtime.clock).run, args=(stop,))
    worker.start()
    sent = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        due = int((time.perf_counter() - start) * rate) + 1
        if due > sent:
            ingest.accept(ws, stream[sent:due])
            sent = due
        time.sleep(0.02)
    deadline = time.perf_counter() + 60
    while time.perf_counter() < deadline:
        with runtime.sessions() as session:
            rows = session.execute(
                select(Activity.received_at, Activity.logged_at, Activity.state).where(
                    Activity.workspace_id == ws
                )
            ).all()
        if all(state != "pending" for *_, state in rows):
            break
        time.sleep(0.2)
    stop.set()
    worker.join()
    return [
        (logged - received).total_seconds()
        for received, logged, state in rows
        if state == "logged" and logged
    ]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def start_org(root: Path) -> SandboxOrg:
    return start_sandbox(
        root / "org",
        "--seed",
        "1000",
        "--daily-api-requests",
        "10000000",
        "--session-timeout-minutes",
        "0",
    )


def series(org: SandboxOrg, root: Path, sizes: Sequence[int]) -> list[dict[str, Any]]:
    """(a) and (b)'s calls at each size, each size its own stream (other activity ids)."""
    reps, recipients = people(org)
    points = []
    for size in sizes:
        stream = ActivityStream(reps, recipients, STREAM_START, seed=1_000 + size).take(size)
        naive_calls, naive_seconds = naive(org, stream)
        qs_calls, qs_seconds, _ = burst(org, root / f"burst-{size}", stream)
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


def run(activities: int, steady_seconds: float, sizes: Sequence[int]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        org = start_org(root)
        try:
            reps, recipients = people(org)
            stream = ActivityStream(reps, recipients, STREAM_START, seed=11).take(activities)
            naive_calls, naive_seconds = naive(org, stream)
            qs_calls, qs_seconds, purposes = burst(org, root / "burst", stream)
            steady_stream = ActivityStream(reps, recipients, STREAM_START, seed=12).take(
                int(steady_seconds * 5) + 10
            )
            latencies = steady(org, root / "steady", steady_stream, 5.0, steady_seconds)
            points = series(org, root, sizes)
        finally:
            org.stop()
    logging_calls = purposes.get("log_activity", 0)
    per_call = activities / qs_calls if qs_calls else 0.0
    ratio = naive_calls / qs_calls if qs_calls else 0.0
    p50, p95 = statistics.median(latencies), percentile(latencies, 95)
    columns = ["path", "Data API calls", "activities per call", "time", "vs naive"]
    rows = [
        [
            "(a) naive: lookup + create per activity",
            f"{naive_calls:,}",
            f"{activities / naive_calls:.2f}",
            f"{naive_seconds:.1f} s",
            "1.00x calls",
        ],
        [
            "(b) quotasync, one burst",
            f"{qs_calls:,}",
            f"{per_call:,.1f}",
            f"{qs_seconds:.1f} s",
            f"{ratio:,.0f}x fewer calls, {naive_seconds / qs_seconds:.1f}x faster",
        ],
    ]
    report.show(f"Logging {activities:,} activities from 20 reps", columns, rows)
    print(
        f"(b) calls by purpose: {purposes}; activities per logging call: {activities / max(1, logging_calls):,.1f}"
    )
    print(
        f"(c) steady 5 activities/s for {steady_seconds:g} s: {len(latencies)} logged, p50 {p50:.2f} s, p95 {p95:.2f} s (target <= {TARGET_P95_SECONDS} s)"
    )
    verdict_calls = "meets" if per_call >= TARGET_PER_CALL and ratio >= 300 else "MISSES"
    verdict_p95 = "meets" if p95 <= TARGET_P95_SECONDS else "MISSES"
    report.write_section(
        "logging",
        "\n\n".join(
            [
                "## Activity logging (`python -m benchmarks.logging`)",
                f"The same stream of {activities:,} activities from 20 reps (emails, opens, clicks, replies, "
                "meetings) into one sandbox org seeded with 1,000 of each record type. (a) is the path a "
                "developer writes with simple-salesforce; (b) is quotasync with the stream arriving as one "
                "burst. Calls are counted by the org, per connected app.",
                report.markdown_table(columns, rows),
                "(b) by purpose, as quotasync's ledger has them: "
                + ", ".join(f"{k} {v:,}" for k, v in sorted(purposes.items()))
                + " (the mirror load happens once, at connect, and is not in (b)'s count).",
                f"Targets: >= {TARGET_PER_CALL} activities per Data API call and >= 300x fewer calls than (a): "
                f"measured {per_call:,.1f} and {ratio:,.0f}x ({verdict_calls}). "
                f"(c) At a steady 5 activities/s for {steady_seconds:g} s, time from ingest to the record in "
                f"Salesforce: p50 {p50:.2f} s, p95 {p95:.2f} s over {len(latencies)} activities; target "
                f"p95 <= {TARGET_P95_SECONDS:g} s ({verdict_p95}).",
            ]
        ),
    )
    report.save_results(
        "logging",
        {
            "activities": activities,
            "naive_calls": naive_calls,
            "quotasync_calls": qs_calls,
            "per_call": round(per_call, 1),
            "fewer_calls": round(ratio, 1),
            "faster": round(naive_seconds / qs_seconds, 2),
            "target_per_call": TARGET_PER_CALL,
            "per_call_meets": per_call >= TARGET_PER_CALL,
            "steady_p50_s": round(p50, 2),
            "steady_p95_s": round(p95, 2),
            "steady_p95_meets": p95 <= TARGET_P95_SECONDS,
        },
    )
    if points:
        write_series(points)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--activities", type=int, default=10_000)
    parser.add_argument("--steady-seconds", type=float, default=60.0)
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
        run(args.activities, args.steady_seconds, args.sizes)


if __name__ == "__main__":
    main()
