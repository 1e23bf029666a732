"""The fault soak, short: `benchmarks/soak.py` run for a minute of wall time at 10x (so the
5-minute recheck of a guard pause takes 30 seconds), with smaller rates, asserting what the
10-minute soak asserts: every accepted activity in the org exactly once, nothing lost, the mirror
equal to the org, the org's count of quotasync's calls equal to the ledger. It also asserts that
every kind of trouble struck, so a passing run proves something.

PostgreSQL only: the soak is about several worker processes sharing one store by lease, the
deployment PostgreSQL is for (`FOR UPDATE SKIP LOCKED`); without QUOTASYNC_TEST_DATABASE_URL it
is skipped, saying so.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import soak
from tests.databases import postgres_url

pytestmark = pytest.mark.timeout(420)

SHORT = soak.Options(
    minutes=1.0,
    speed=10.0,
    workers=2,
    rate=2.5,
    kill_every=20.0,
    expire_every=15.0,
    change_every=1.0,
    guard_from=0.15,
    guard_until=0.4,
    lease_seconds=3.0,
    claim_seconds=5.0,
    org_seed=60,
    # A call carries up to 1,000 records, so a minute makes few calls: at the 10-minute soak's
    # 2% a dropped connection would strike none in about one run of ten.
    drop_rate=0.08,
)


@pytest.fixture
def postgres() -> Iterator[str]:
    yield from postgres_url()


@pytest.mark.long
def test_a_minute_of_faults_and_killed_workers_loses_nothing_and_writes_nothing_twice(
    postgres: str, tmp_path: Path
) -> None:
    figures = soak.run(SHORT, postgres, tmp_path)

    # Every kind of trouble struck.
    assert all(figures.injected[kind] > 0 for kind in soak.FAULT_KINDS), figures.injected
    assert figures.kills >= 1
    assert figures.resent > 0, "no post went twice: the duplicate path was not tried"
    assert figures.guard.back_at is not None
    assert any(reason.startswith("org_guard") for reason in figures.pauses), figures.pauses
    assert sum(figures.record_changes.values()) > 0

    # And nothing came to harm.
    failed = [(c.name, c.detail) for c in figures.checks if not c.ok]
    assert not failed, (failed, figures.lost_detail[:20], figures.unexpected_in_org[:20])
    assert (figures.duplicates_in_org, figures.lost) == (0, 0)
    assert figures.states == {"logged": figures.accepted}
    assert all(wrong == 0 for _, wrong in figures.mirror.values()), figures.mirror
    assert all(figures.calls_apart(api) == 0 for api in soak.COUNTED), figures.ledger
