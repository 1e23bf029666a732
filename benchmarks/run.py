"""Every benchmark in turn, then BENCHMARKS.md's header: the machine, the date, and a summary of
the targets (a)-(f) with the figures each benchmark kept in benchmarks/results/NAME.json.

Each benchmark runs as its own process (`python -m benchmarks.NAME`), one after another (two at
once would share the machine's cores and spoil each other's figures), and writes its own section
of BENCHMARKS.md as it does when run alone. `--quick` is passed to those that have it (governor,
scaling: they then leave BENCHMARKS.md and results/ alone, and so does this script); the others
run in full. `--summary-only` runs nothing and writes the header from the kept results.

Usage: python -m benchmarks.run [--only NAME ...] [--quick] [--summary-only]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import plots, report
from benchmarks.postgres import postgres_version
from benchmarks.scaling import DEFAULT_DATABASE_URL

BENCHMARKS = ("sandbox", "logging", "governor", "inbound", "reads", "scaling")
HAS_QUICK = {"governor", "scaling"}
ROOT = Path(__file__).resolve().parent.parent
INTRO = """# Benchmarks

Figures measured on this project's development machine by the scripts in `benchmarks/`
(`python -m benchmarks.run` runs them all, each also runs alone). Each section is rewritten by its
script; figures are quoted as ratios against a baseline measured in the same run where they can
be, because absolute numbers move with the machine."""
SUMMARY_COLUMNS = ["", "what", "measured", "target", "verdict", "from"]


def run_one(name: str, quick: bool) -> tuple[int, float]:
    command = [sys.executable, "-m", f"benchmarks.{name}"]
    if quick and name in HAS_QUICK:
        command.append("--quick")
    print(f"\n=== {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    code = subprocess.call(command, cwd=ROOT)
    return code, time.perf_counter() - started


# ---------------------------------------------------------------- the summary

Row = list[str]
Measured = tuple[str, bool | None]  # the figures in words, and whether they meet the target


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("meets" if ok else "MISSES")


def logging_calls(found: dict[str, Any]) -> Measured:
    steady = found["steady"]
    return (
        f"{found['per_call']:,.1f} per call ({found['activities']:,} activities in "
        f"{found['quotasync_calls']:,} calls); {found['fewer_than_before']:,.1f}x fewer calls "
        f"than collections alone ({found['before_calls']:,}), {found['fewer_calls']:,.0f}x fewer "
        f"than the naive path ({found['naive_calls']:,}); steady 0.5/s: "
        f"{steady['0.5']['per_call']:,.1f} per call, 5/s: {steady['5']['per_call']:,.1f}",
        found["per_call_meets"] and all(run["meets"] for run in steady.values()),
    )


def rates(runs: Sequence[dict[str, Any]], latency: int) -> str:
    line = sorted(
        (r["processes"], r["per_second"])
        for r in runs
        if r["latency_ms"] == latency and r["threads"] == 1
    )
    return f"{latency} ms: " + ", ".join(f"{rate:,.0f}" for _, rate in line)


def throughput(found: dict[str, Any]) -> Measured:
    runs = found["throughput"]
    latencies = sorted({r["latency_ms"] for r in runs})
    return (
        "; ".join(rates(runs, latency) for latency in latencies)
        + f" activities/s; 4 against 1 at 100 ms: {found['scaling_4_vs_1_at_100ms']:.2f}x",
        found["scaling_meets"],
    )


def scheduler(found: dict[str, Any]) -> Measured:
    s = found["scheduler"]
    return (
        f"a take + give back {s['postgresql_cycle_ms']:.2f} ms (PostgreSQL), "
        f"{s['sqlite_cycle_ms']:.2f} ms (SQLite); longest wait {s['max_wait_s']:.2f} s "
        f"beyond a {s['batch_delay_s']:g} s delay (p99 {s['p99_wait_s']:.2f} s; stand-in steps)",
        s["meets"],
    )


def overshoot(found: dict[str, Any]) -> Measured:
    guard = ", ".join(str(n) for n in found["past_guard"])
    peer = ", ".join(str(n) for n in found["peer_past_guard"])
    return (
        f"{found['past_share']} past the share, {guard} past the 90% guard (a peer reading the "
        f"usage header: {found['peer_past_share']}; {peer})",
        found["overshoot_meets"],
    )


def resume(found: dict[str, Any]) -> Measured:
    guard = [d for d in found["guard_resume_delays_s"] if d is not None]
    words = f"share pause: {found['share_resume_delay_s']} s after the predicted resume"
    if guard:
        words += f"; guard pause: at most {max(guard) / 60:.0f} min after room came back"
    return words, found["resume_meets"]


def memory(found: dict[str, Any]) -> Measured:
    m = found["memory"]
    return f"{m['rss_mb']:.0f} MB resident (VmHWM {m['hwm_mb']:.0f} MB)", m["meets"]


def upsert(found: dict[str, Any]) -> Measured:
    return f"{found['upsert_records_per_second']:,} records/s", found["meets"]


def initial_load(found: dict[str, Any]) -> Measured:
    return (
        f"{found['load_50k_calls']} Data API calls (Real-Time Sync p50 "
        f"{found['rts_p50_ms']:.0f} ms)",
        found["load_50k_meets"],
    )


def reads(found: dict[str, Any]) -> Measured:
    calls, before = found["calls"], found["before"]
    return (
        f"{calls['sync']} Data API calls as the sync user (before: {before['sync']}), "
        f"{calls['admin']} with View Setup (before: {before['admin']}); the mirror equals the org: "
        f"{'yes' if found['mirror_equals_org'] else 'NO'}",
        all(found["meets"].values()),
    )


def sustained(found: dict[str, Any]) -> Measured:
    twice, stated = found["100000"], found["20000"]
    return (
        f"{twice['emails']} emails for a backlog of twice the share (100,000 activities, "
        f"{twice['written']:,} written, at most {twice['max_window']} calls in a window for a "
        f"share of {twice['share']}); the first-measured 20,000: {stated['emails']} (it no "
        "longer meets the share)",
        twice["meets"] and stated["meets"],
    )


# (key, benchmark, what, target, the figures from its results)
ROWS: list[tuple[str, str, str, str, Callable[[dict[str, Any]], Measured]]] = [
    ("(a)", "logging", "activities per Data API call, against the naive path",
     ">= 500 per call in a burst; steady >= 25 (0.5/s), >= 200 (5/s)", logging_calls),
    ("(b)", "scaling", "activities/s with 1, 2, 4 worker processes on PostgreSQL, the sandbox "
     "adding 0 and 100 ms per call", ">= 3x one at 100 ms", throughput),
    ("(c)", "scaling", "1,000 workspaces, light traffic: the scheduler's cost per cycle, the "
     "longest wait beyond a workspace's own batch delay", "<= 2 batch delays", scheduler),
    ("(d)", "governor", "calls beyond the share (and the 90% guard), four workers at once",
     "0", overshoot),
    ("(e)", "governor", "resume delay after a pause", "0 s; <= 30 min", resume),
    ("(f)", "scaling", "worker memory, `quotasync worker --concurrency 4` during (b)",
     "<= 150 MB", memory),
    ("", "sustained", "emails over 43 h while a backlog keeps meeting the share (500 calls a "
     "day, 10%, 600x)", "<= 6 (34 before)", sustained),
    ("", "sandbox", "sandbox org: sObject Collections upsert", ">= 10,000 records/s", upsert),
    ("", "inbound", "initial load of 50,000 Contacts into the mirror", "<= 10 calls",
     initial_load),
    ("", "reads", "connect + the first full sync, 50,000 records of each type",
     "<= 30 calls; <= 10 with View Setup", reads),
]  # fmt: skip


def summary_rows() -> list[Row]:
    rows = []
    for key, name, what, target, measure in ROWS:
        found = report.load_results(name)
        try:
            words, ok = measure(found or {})
            since = f"{name}, {found.get('measured', '?')}" if found else name
        except KeyError:  # not measured since results were kept, or by an older version
            words, ok, since = f"see its section below (`python -m benchmarks.{name}`)", None, name
        rows.append([key, what, words, target, verdict(ok), since])
    return rows


def postgres() -> str:
    try:
        return f"PostgreSQL {postgres_version(DEFAULT_DATABASE_URL)}"
    except Exception:  # no server here: say so rather than fail the summary
        return "PostgreSQL not reachable"


def write_header() -> None:
    rows = summary_rows()
    report.show("Summary", SUMMARY_COLUMNS, rows)
    report.write_header(
        "\n\n".join(
            [
                INTRO,
                f"Machine: {report.machine()}, {postgres()}. Summary written {report.stamp()} "
                "by `python -m benchmarks.run`; each section says when it was measured, and "
                "`from` below when the figure was.",
                "## Summary",
                report.markdown_table(SUMMARY_COLUMNS, rows),
            ]
        )
    )
    plots.main()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--only", nargs="+", choices=BENCHMARKS, metavar="NAME", help="run only these"
    )
    parser.add_argument("--quick", action="store_true", help="--quick to those that have it")
    parser.add_argument(
        "--summary-only", action="store_true", help="run nothing; write the header and plots"
    )
    args = parser.parse_args()
    failed = []
    if not args.summary_only:
        for name in args.only or BENCHMARKS:
            code, seconds = run_one(name, args.quick)
            print(f"=== {name}: exit {code} after {seconds:.0f} s", flush=True)
            if code:
                failed.append(name)
    if args.quick and not args.summary_only:
        print("BENCHMARKS.md's header left as it is (--quick).")
    else:
        write_header()
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
