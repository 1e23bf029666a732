"""Reads: what `quotasync connect` and the first `quotasync sync --full` cost an org in calls.

One sandbox org seeded with `--seed N` (N Accounts, Contacts, Leads and Opportunities, and the
seed's 20 reps among its 23 Users; N = 50,000 by default, seeded in about 10 s). Two workspaces,
each in a store of its own, connect to it in turn as a sync user would, and run what an admin
runs next:

1. connect: `connector.connect_sandbox` and `Matcher(...).load(client)`, the mirror's load, as
   `quotasync connect` does;
2. the first full sync: `Syncer(connector, workspace, clock).run(full=True)`, as
   `quotasync sync --full` does.

One workspace connects as the sandbox's `sync` user (no View Setup: the Bulk API cannot be
governed, so every record comes by query pages), the other as `admin` (View Setup: a type costs
fewer calls by a Bulk query job reads by one). For each, the calls by purpose as quotasync's
ledger has them (`Ledger(runtime.sessions).by_purpose(workspace)`), the calls the org counted for
quotasync meanwhile, the Bulk query jobs, what each step fetched, and whether the mirror then
equals the org (every type's live Ids and SystemModstamps). Wall time is for reading: the
targets are in calls.

Before this change the same two steps cost 204 Data calls as `sync` (102 to load, 102 to load
again) and 29 as `admin` (14 + 14 + one `/limits` reading); measured on this machine at commit
58c5027 with the same org and steps, and quoted here rather than run again (the old path is
gone from the code).

Usage: python -m benchmarks.reads [--records 50000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import report
from quotasync.config import Settings
from quotasync.engine import sync
from quotasync.engine.matching import Matcher
from quotasync.runtime import Runtime, open_runtime
from quotasync.salesforce.connection import SandboxLogin
from quotasync.store import mirror, workspaces
from quotasync.store.ledger import Ledger
from tests.sandbox_process import SandboxOrg, start_sandbox

RECORDS = 50_000
TARGETS = {"sync": 30, "admin": 10}  # Data calls for connect + the first full sync
BEFORE = {"sync": 204, "admin": 29}  # the same, before reads went five pages to a call
USERS = {"sync": "sync (no View Setup)", "admin": "admin (View Setup)"}
COLUMNS = [
    "sync user", "step", "Data calls", "by purpose", "Bulk jobs", "fetched", "time",
]  # fmt: skip
SUMMARY_COLUMNS = [
    "sync user", "Data calls", "org count", "before", "fewer", "target", "verdict", "mirror = org",
]  # fmt: skip


@dataclass
class Step:
    name: str
    purposes: dict[str, int]
    bulk_jobs: int
    fetched: int | None  # None: the step does not say (the load at connect)
    seconds: float

    @property
    def data(self) -> int:
        return sum(self.purposes.values())


@dataclass
class Connected:
    user: str
    steps: list[Step] = field(default_factory=list)
    org_count: int = 0
    mirror_equals_org: bool = False

    @property
    def data(self) -> int:
        return sum(step.data for step in self.steps)

    @property
    def meets(self) -> bool:
        return self.data <= TARGETS[self.user] and self.mirror_equals_org


def used_by_quotasync(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("quotasync", 0))


def ledger_now(runtime: Runtime, workspace_id: str) -> tuple[dict[str, int], int]:
    """Data calls by purpose, and Bulk query jobs, so far."""
    from sqlalchemy import func, select

    from quotasync.store.tables import LedgerEntry

    with runtime.sessions() as session:
        jobs = session.scalar(
            select(func.coalesce(func.sum(LedgerEntry.calls), 0)).where(
                LedgerEntry.workspace_id == workspace_id, LedgerEntry.api == "bulk_query"
            )
        )
    return Ledger(runtime.sessions).by_purpose(workspace_id), int(jobs or 0)


def since(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    spent = {p: n - before.get(p, 0) for p, n in after.items()}
    return {p: n for p, n in sorted(spent.items()) if n}


def connect_and_sync(org: SandboxOrg, root: Path, user: str) -> Connected:
    runtime = open_runtime(Settings(data_dir=root / user, database_url=None))
    with runtime.sessions.begin() as session:
        ws = workspaces.create(session, user, f"ops@{user}.example", runtime.clock.now())
        workspace_id = ws.workspace.id
    done = Connected(user)
    org_before = used_by_quotasync(org)

    started = time.perf_counter()
    runtime.connector.connect_sandbox(
        workspace_id, SandboxLogin.read(org.state_dir / "sandbox.json", user)
    )
    Matcher(runtime.sessions, workspace_id, runtime.clock).load(
        runtime.connector.client(workspace_id)
    )
    purposes, jobs = ledger_now(runtime, workspace_id)
    done.steps.append(Step("connect", purposes, jobs, None, time.perf_counter() - started))

    started = time.perf_counter()
    synced = sync.Syncer(runtime.connector, workspace_id, runtime.clock).run(full=True)
    after, jobs_after = ledger_now(runtime, workspace_id)
    fetched = sum(o.fetched for o in synced.objects.values())
    done.steps.append(
        Step(
            "first sync --full",
            since(purposes, after),
            jobs_after - jobs,
            fetched,
            time.perf_counter() - started,
        )
    )
    done.org_count = used_by_quotasync(org) - org_before
    done.mirror_equals_org = synced.complete and mirror_equals_org(org, runtime, workspace_id)
    runtime.sessions.kw["bind"].dispose()
    return done


def mirror_equals_org(org: SandboxOrg, runtime: Runtime, workspace_id: str) -> bool:
    """Every type's live records: the same Ids, each with the org's SystemModstamp."""
    for sobject in sync.OBJECTS:
        in_org = {
            r["Id"]: mirror.modstamp(r["SystemModstamp"])
            for r in org.control("GET", f"records/{sobject}")
        }
        with runtime.sessions() as session:
            here = {
                i: r.modstamp
                for i, r in mirror.records(session, workspace_id, sobject, live=True).items()
            }
        if here != in_org:
            print(f"{sobject}: the mirror differs from the org ({len(here):,} / {len(in_org):,})")
            return False
    return True


def purposes_text(purposes: dict[str, int]) -> str:
    return ", ".join(f"{p} {n:,}" for p, n in purposes.items() if n) or "none"


def run(records: int) -> None:
    wall = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        started = time.perf_counter()
        org = start_sandbox(root / "org", "--seed", str(records), timeout=1800, process=True)
        seeding = time.perf_counter() - started
        try:
            counts = {s: len(org.control("GET", f"records/{s}")) for s in sync.OBJECTS}
            print(
                f"seeded in {seeding:.0f} s: " + ", ".join(f"{n:,} {s}" for s, n in counts.items())
            )
            found = [connect_and_sync(org, root, user) for user in USERS]
        finally:
            org.stop()
    seconds = time.perf_counter() - wall

    rows = [
        [
            USERS[c.user],
            step.name,
            f"{step.data:,}",
            purposes_text(step.purposes),
            f"{step.bulk_jobs:,}",
            "-" if step.fetched is None else f"{step.fetched:,}",
            f"{step.seconds:.1f} s",
        ]
        for c in found
        for step in c.steps
    ]
    summary = [
        [
            USERS[c.user],
            f"{c.data:,}",
            f"{c.org_count:,}",
            f"{BEFORE[c.user]:,}" if records == RECORDS else "-",
            f"{BEFORE[c.user] / max(1, c.data):.1f}x" if records == RECORDS else "-",
            f"<= {TARGETS[c.user]}",
            "meets" if c.meets else "MISSES",
            "yes" if c.mirror_equals_org else "NO",
        ]
        for c in found
    ]
    title = f"Connect, then the first full sync: {records:,} records of each type"
    report.show(title, COLUMNS, rows)
    report.show("Against the targets", SUMMARY_COLUMNS, summary)
    words = explain(found, counts, seeding, seconds)
    print(words)
    report.write_section(
        "reads",
        "\n\n".join(
            [
                "## Reads: connect and the first full sync (`python -m benchmarks.reads`)",
                f"One sandbox org seeded with `--seed {records}` "
                + "("
                + ", ".join(f"{n:,} {s}s" for s, n in counts.items())
                + "). Each sync user's workspace connects (`connect_sandbox` and "
                "`Matcher.load`, as `quotasync connect` does), then runs the first "
                "`Syncer.run(full=True)` (as `quotasync sync --full` does). Calls are "
                "quotasync's ledger by purpose; `org count` is what the org counted for "
                "quotasync over both steps; `before` is the same two steps before reads went "
                "five query pages to a call (measured on this machine at commit 58c5027).",
                f"### {title}",
                report.markdown_table(COLUMNS, rows),
                "### Against the targets",
                report.markdown_table(SUMMARY_COLUMNS, summary),
                words,
            ]
        ),
    )
    report.save_results(
        "reads",
        {
            "records": records,
            "calls": {c.user: c.data for c in found},
            "org_counts": {c.user: c.org_count for c in found},
            "before": BEFORE,
            "targets": TARGETS,
            "meets": {c.user: c.meets for c in found},
            "mirror_equals_org": all(c.mirror_equals_org for c in found),
        },
    )


def explain(found: list[Connected], counts: dict[str, int], seeding: float, seconds: float) -> str:
    by = {c.user: c for c in found}
    pages = sum(-(-n // 2000) for n in counts.values())
    load, first = by["sync"].steps
    admin_load = by["admin"].steps[0]
    words = [
        f"The org's records make {pages:,} query pages of 2,000, {-(-pages // 5):,} calls at five "
        f"a call; the load at connect took {load.data:,} as `sync` (every type's first page in "
        "the first call, then the next pages of the types still going, side by side, with "
        "successive pages of one type chained within a call).",
        f"As `admin`: {admin_load.data:,} ({purposes_text(admin_load.purposes)}), with "
        f"{admin_load.bulk_jobs} Bulk query jobs, one per type that a job reads in fewer calls "
        "than pages would (its create and one results page, 2 calls, against 5 for 50,000 "
        "records by pages).",
        "The first full sync right after is incremental from the load's watermarks (a full "
        "load asked for within the sync interval of the last one fetches nothing twice): "
        f"{first.data:,} call looking at the five types, {first.fetched or 0:,} records fetched.",
    ]
    for c in found:
        in_step = "equals" if c.org_count == c.data else "DIFFERS FROM"
        words.append(
            f"{USERS[c.user]}: {c.data:,} Data calls (target {TARGETS[c.user]}: "
            f"{'meets' if c.meets else 'MISSES'}); the org's count {in_step} the ledger's."
        )
    if not by["admin"].meets:
        words.append(
            "With View Setup and four types of 50,000 the floor under Salesforce's rules is 11: "
            "a Bulk job per big type (a create and a results page, 8 calls; by query pages each "
            "type would take 5), the first call that finds how big each type is (and loads the "
            "Users), the `/limits` reading without which no Bulk job may be governed, and the "
            "first sync's one look."
        )
    words.append(f"Seeding took {seeding:.0f} s; the whole run {seconds:.0f} s.")
    return " ".join(words)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--records", type=int, default=RECORDS, help="records of each type (default 50000)"
    )
    args = parser.parse_args()
    run(max(1, args.records))


if __name__ == "__main__":
    main()
