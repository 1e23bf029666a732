"""The mirror follows the org whatever happens on the way (issue 5, "Done when", last item).

A hypothesis property: random sequences of changes made in the org by another app (single
records and sObject Collections, so several records change in one operation), pushes delivered
twice, late and out of order, the org's Apex quota spent (to the 90% guard, or whole) and the
day rolling it back, and time passing so that the worker rolls over to Interval Sync, syncs, and
rolls back. After each sequence the system is brought to rest as a deployment would be (every
push delivered, an hour of worker cycles) and the live mirror equals the org: the same ids of
each pushed type and, for each record, the same mirrored fields and SystemModstamp.

One org and one workspace serve every example of the test (a sandbox per example would be far
too slow); each example starts from Real-Time Sync with Apex room and no delivery faults, so a
shrunk example replays from the same kind of state, and checks the mirror against the org as it
is then, whatever earlier examples did to it.
"""

from __future__ import annotations

import json
import string
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
import uvicorn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from simple_salesforce import Salesforce

from quotasync.clock import ManualClock
from quotasync.engine import sync
from quotasync.engine.notifier import Notifier
from quotasync.engine.realtime import RealTime
from quotasync.engine.worker import Progress, Worker
from quotasync.store import mirror
from quotasync.web.app import create_app
from tests.integration.logging_support import Connect, records
from tests.integration.test_auth import sobject
from tests.integration.test_logging import OrgFactory
from tests.integration.test_realtime import EPOCH, Pushed, free_port

PUSHED = ("Contact", "Lead", "Account", "Opportunity")
# Every field the mirror keeps of a type (Name, Email, Title, AccountId, StageName, Amount,
# IsClosed and the rest), compared with the org's; SystemModstamp is compared as a time.
COMPARED = {
    s: tuple(f for f in sync.FIELDS[s] if f not in ("IsDeleted", "SystemModstamp")) for s in PUSHED
}
APEX = "DailyAsyncApexExecutions"
MINUTE, HOUR = 60, 3600
# A clock jump this short keeps every push within the 5-minute freshness tolerance even while
# it is on the way, so pushes may still be queued (late) when it happens; a longer jump first
# waits for every push to be delivered, as the pushes of a real org would be long before.
UNFLUSHED_JUMP_MINUTES = 4


# ---------------------------------------------------------------- the steps


@dataclass
class Create:
    """Records created in one operation: one REST create, or one sObject Collections request."""

    sobject: str
    rows: list[dict[str, Any]]  # AccountId: an index into the live Accounts, or None


@dataclass
class Update:
    """Live records (picked by index) updated in one operation."""

    sobject: str
    picks: list[int]
    rows: list[dict[str, Any]]


@dataclass
class Delete:
    sobject: str
    picks: list[int]


@dataclass
class Faults:
    """The org's delivery faults from here on (docs/SANDBOX.md, "Real-Time Sync pushes")."""

    duplicate_rate: float
    max_delay_ms: int
    reorder: bool


@dataclass
class SpendApex:
    """Other apps spend the org's Apex executions until this share of the allowance is used:
    0.95 is past quotasync's 90% guard with pushes still possible, 1.0 stops them."""

    to: float


@dataclass
class Tick:
    """Time passes and the worker cycles once (limits check, rollover or back, interval sync)."""

    minutes: int


@dataclass
class DayPasses:
    """A day passes with the worker running: an hour (the longest wait between two `/limits`
    readings, so the worker sees the Apex spent as it would while running), then the rest."""


Step = Create | Update | Delete | Faults | SpendApex | Tick | DayPasses

word = st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=10)
name = word.map(str.capitalize)
email = st.builds(lambda user, host: f"{user}@{host}.example", word, word)
account = st.none() | st.integers(0, 10_000)
STAGES = (
    "Prospecting",
    "Qualification",
    "Needs Analysis",
    "Proposal/Price Quote",
    "Negotiation/Review",
    "Closed Won",
    "Closed Lost",
)
close_date = st.dates(date(2026, 1, 1), date(2028, 12, 31)).map(date.isoformat)

# Per type: the fields a create needs, and those it or an update may set.
REQUIRED: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "Contact": {"LastName": name},
    "Lead": {"LastName": name, "Company": name},
    "Account": {"Name": name},
    "Opportunity": {
        "Name": name,
        "StageName": st.sampled_from(STAGES),
        "CloseDate": close_date,
    },
}
OPTIONAL: dict[str, dict[str, st.SearchStrategy[Any]]] = {
    "Contact": {
        "FirstName": st.none() | name,
        "Email": st.none() | email,
        "Title": st.none() | word,
        "AccountId": account,
    },
    "Lead": {"FirstName": st.none() | name, "Email": st.none() | email, "Title": st.none() | word},
    "Account": {},
    "Opportunity": {"Amount": st.none() | st.integers(0, 10**7), "AccountId": account},
}


def created(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(REQUIRED[kind], optional=OPTIONAL[kind])


def changed(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    every = {**REQUIRED[kind], **OPTIONAL[kind]}
    return st.fixed_dictionaries({}, optional=every).filter(bool)


@st.composite
def updates(draw: st.DrawFn, kind: str) -> Update:
    picks = draw(st.lists(st.integers(0, 10_000), min_size=1, max_size=4))
    rows = draw(st.lists(changed(kind), min_size=len(picks), max_size=len(picks)))
    return Update(kind, picks, rows)


kinds = st.sampled_from(PUSHED)
steps: st.SearchStrategy[Step] = st.one_of(
    kinds.flatmap(lambda k: st.builds(Create, st.just(k), st.lists(created(k), min_size=1, max_size=4))),
    kinds.flatmap(updates),
    kinds.flatmap(lambda k: st.builds(Delete, st.just(k), st.lists(st.integers(0, 10_000), min_size=1, max_size=3))),
    st.builds(
        Faults,
        st.sampled_from([0.0, 0.5, 1.0]),
        st.sampled_from([0, 50, 300]),
        st.booleans(),
    ),
    st.builds(SpendApex, st.sampled_from([0.95, 1.0])),
    st.builds(Tick, st.sampled_from([1, 4, 10, 31, 61])),
    st.just(DayPasses()),
)  # fmt: skip


# ---------------------------------------------------------------- running them


class Run:
    """One example: the steps applied to the org, quotasync following it."""

    def __init__(self, world: Pushed) -> None:
        self.world = world
        self.org = world.org
        self.admin: Salesforce = world.admin  # the Data Loader app: other apps' changes
        self.live = {s: sorted(r["Id"] for r in records(self.org, s)) for s in PUSHED}

    # ------------------------------------------------------------ the org changing

    def step(self, step: Step) -> None:
        if isinstance(step, Create):
            self.changes_later()
            self.create(step)
        elif isinstance(step, Update):
            self.changes_later()
            self.update(step)
        elif isinstance(step, Delete):
            self.changes_later()
            self.delete(step)
        elif isinstance(step, Faults):
            self.org.control(
                "POST",
                "rts",
                {
                    "duplicate_rate": step.duplicate_rate,
                    "max_delay_ms": step.max_delay_ms,
                    "reorder": step.reorder,
                },
            )
        elif isinstance(step, SpendApex):
            self.spend_apex(step.to)
        elif isinstance(step, Tick):
            self.jump(step.minutes * MINUTE)
            self.world.cycle()
        else:
            self.jump(HOUR)
            self.world.cycle()
            self.jump(24 * HOUR)
            self.world.cycle()

    def changes_later(self) -> None:
        """Each change is made a second after the one before: the org's SystemModstamp tells
        them apart, as it does for writes made one after another in a real org. (Two writes
        of one record within the same second: see the test at the end.)"""
        self.world.advance(1)

    def resolve(self, row: dict[str, Any]) -> dict[str, Any]:
        values = dict(row)
        if "AccountId" in values and values["AccountId"] is not None:
            accounts = self.live["Account"]
            values["AccountId"] = accounts[values["AccountId"] % len(accounts)] if accounts else None
        return values

    def picked(self, kind: str, picks: list[int]) -> list[str]:
        ids = self.live[kind]
        return list(dict.fromkeys(ids[p % len(ids)] for p in picks)) if ids else []

    def create(self, step: Create) -> None:
        rows = [self.resolve(row) for row in step.rows]
        if len(rows) == 1:
            answer = sobject(self.admin, step.sobject).create(rows[0])
            made = [str(answer["id"])]
        else:
            results = send(
                self.admin,
                "composite/sobjects",
                "POST",
                {
                    "allOrNone": True,
                    "records": [{"attributes": {"type": step.sobject}, **r} for r in rows],
                },
            )
            assert all(r["success"] for r in results), results
            made = [str(r["id"]) for r in results]
        self.live[step.sobject] = sorted([*self.live[step.sobject], *made])

    def update(self, step: Update) -> None:
        ids = self.picked(step.sobject, step.picks)
        rows = [self.resolve(row) for row in step.rows[: len(ids)]]
        if len(ids) == 1:
            sobject(self.admin, step.sobject).update(ids[0], rows[0])
        elif ids:
            results = send(
                self.admin,
                "composite/sobjects",
                "PATCH",
                {
                    "allOrNone": True,
                    "records": [
                        {"attributes": {"type": step.sobject}, "id": record_id, **row}
                        for record_id, row in zip(ids, rows, strict=True)
                    ],
                },
            )
            assert all(r["success"] for r in results), results

    def delete(self, step: Delete) -> None:
        ids = self.picked(step.sobject, step.picks)
        if len(ids) == 1:
            sobject(self.admin, step.sobject).delete(ids[0])
        elif ids:
            results = send(
                self.admin,
                f"composite/sobjects?ids={','.join(ids)}&allOrNone=true",
                "DELETE",
            )
            assert all(r["success"] for r in results), results
        self.live[step.sobject] = [i for i in self.live[step.sobject] if i not in ids]

    def spend_apex(self, to: float) -> None:
        apex = self.org.control("GET", "usage")[APEX]
        calls = int(apex["max"] * to) - int(apex["used"])
        if calls > 0:
            self.org.control(
                "POST", "consume", {"app": "Marketing Cloud", "api": "apex", "calls": calls}
            )

    # ------------------------------------------------------------ time

    def jump(self, seconds: float) -> None:
        """Move both clocks; a long jump waits for the pushes on the way first, so none is
        signed on one side of the jump and checked on the other (stale, and rightly refused)."""
        if seconds > UNFLUSHED_JUMP_MINUTES * MINUTE:
            self.delivered()
        self.world.advance(seconds)

    def delivered(self) -> dict[str, Any]:
        counters = self.world.delivered()
        assert counters["pending"] == 0, counters
        return counters

    def at_rest(self) -> None:
        """What a deployment comes to once the org is quiet: every push delivered, and an hour
        of worker cycles, which holds a `/limits` reading (one at least every 60 minutes), so a
        spent Apex quota has rolled the workspace over to Interval Sync, and an interval sync."""
        self.delivered()
        for _ in range(2):
            self.jump(31 * MINUTE)
            self.world.cycle()
        self.delivered()


def send(sf: Salesforce, path: str, method: str, body: Any = None) -> Any:
    data = json.dumps(body) if body is not None else None
    return sf.restful(path, method=method, data=data)


def others_apex(world: Pushed) -> int:
    """Apex executions other apps have in the org's rolling window."""
    by_app = world.org.control("GET", "usage")[APEX]["by_app"]
    return sum(int(n) for app, n in by_app.items() if app != "quotasync")


def start_fresh(world: Pushed) -> None:
    """Real-Time Sync on, Apex room, no delivery faults: where every example starts."""
    world.org.control("POST", "rts", {"duplicate_rate": 0, "max_delay_ms": 0, "reorder": False})
    for _ in range(3):
        if world.mode() == "realtime" and others_apex(world) == 0:
            return
        world.delivered()
        world.advance(25 * HOUR)
        for _ in range(3):
            world.cycle()
            if world.mode() == "realtime":
                break
            world.advance(31 * MINUTE)
    assert world.mode() == "realtime" and others_apex(world) == 0, "Real-Time Sync did not return"


def assert_mirror_equals_org(world: Pushed, history: list[Step]) -> None:
    rts = world.org.control("GET", "rts")
    for kind in PUSHED:
        in_org = {r["Id"]: r for r in records(world.org, kind)}
        with world.setup.runtime.sessions() as session:
            here = mirror.records(session, world.setup.workspace_id, kind, live=True)
        context = f"{kind} (mode {world.mode()}; rts {rts}; steps {history})"
        missing, extra = sorted(set(in_org) - set(here)), sorted(set(here) - set(in_org))
        assert not missing and not extra, f"missing {missing}, extra {extra}: {context}"
        for record_id, row in here.items():
            org_row = in_org[record_id]
            want = {f: org_row.get(f) for f in COMPARED[kind]}
            got = {f: row.fields.get(f) for f in COMPARED[kind]}
            assert got == want, f"{record_id}: {context}"
            assert row.modstamp == mirror.modstamp(org_row["SystemModstamp"]), (
                f"{record_id}: {context}"
            )


# ---------------------------------------------------------------- the org and the workspace


@pytest.fixture
def world(new_org: OrgFactory, workspace: Connect) -> Iterator[Pushed]:
    """As test_realtime's `pushed`: a workspace on Real-Time Sync, its web app taking the pushes
    of a sandbox org whose frozen clock (--speed 0) moves with quotasync's, and whose sessions
    never expire (--session-timeout-minutes 0), so they survive the days the test jumps."""
    org = new_org(
        "--seed", "40", "--speed", "0", "--epoch", EPOCH, "--session-timeout-minutes", "0"
    )
    clock = ManualClock(datetime.fromisoformat(EPOCH.replace("Z", "+00:00")))
    setup = workspace(org, clock=clock, user="admin")  # View Setup: the Apex figures are read
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(setup.runtime), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    notifier = Notifier(setup.runtime.sessions, setup.runtime.settings, clock)
    worker = setup.worker = Worker(setup.runtime.connector, clock, notifier)
    worker.cycle(Progress())
    url = f"http://127.0.0.1:{port}/rts/{setup.workspace_id}"
    RealTime(setup.runtime.connector, setup.workspace_id, clock).enable(url)
    try:
        yield Pushed(org, setup, clock, url, worker, org.salesforce("admin", "Data Loader"))
    finally:
        server.should_exit = True
        thread.join(timeout=10)


# ---------------------------------------------------------------- the property


# Each example drives a real org over HTTP and a worker through whole cycles (~0.5 s), so a few
# dozen examples fill the time this test may take; `deadline=None` because an example's time
# depends on its steps (an hour of cycles, a rollback's catch-up sync), not on a regression.
# The org and workspace are the test function's, shared by its examples on purpose (starting a
# sandbox per example would take longer than the whole test): hence function_scoped_fixture.
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=1, max_size=12))
def test_after_any_sequence_of_changes_faults_and_apex_trouble_the_mirror_equals_the_org(
    world: Pushed, sequence: list[Step]
) -> None:
    start_fresh(world)
    run = Run(world)
    for step in sequence:
        run.step(step)
    run.at_rest()
    assert_mirror_equals_org(world, sequence)
