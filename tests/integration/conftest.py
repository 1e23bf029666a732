from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from quotasync.clock import Clock
from tests.integration.logging_support import Connect, Setup, connect
from tests.sandbox_process import SandboxOrg, start_sandbox

EPOCH = "2026-11-28T00:00:00Z"


@pytest.fixture(scope="session")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxOrg]:
    """One seeded org shared by tests that only read, or write records of their own."""
    sandbox = start_sandbox(tmp_path_factory.mktemp("org"), "--seed", "60")
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def sf(org: SandboxOrg) -> Any:
    """The shared org's admin, logged in through the quotasync connected app."""
    return org.salesforce()


@pytest.fixture
def new_org(tmp_path: Path) -> Iterator[Callable[..., SandboxOrg]]:
    """Start an org of a test's own (for quotas, clocks, faults, editions); stopped afterwards.
    `process=True` serves it from a process of its own, for an org whose object definitions
    differ (`--without-package`, or changed by a deploy): an org in this process shares its
    objects with the rest."""
    started: list[SandboxOrg] = []

    def start(*args: str, state_dir: Path | None = None, process: bool = False) -> SandboxOrg:
        sandbox = start_sandbox(
            state_dir or tmp_path / f"org{len(started)}", *args, process=process
        )
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Connect]:
    """connect(org, database_url=None, clock=None, user="sync", load=True) -> a connected
    workspace (its mirror loaded unless `load` is False), closed afterwards.

    Request it after `database_url`, so its engine is closed before a PostgreSQL schema is dropped.
    """
    made: list[Setup] = []

    def make(
        org: SandboxOrg,
        database_url: str | None = None,
        clock: Clock | None = None,
        user: str = "sync",
        load: bool = True,
    ) -> Setup:
        setup = connect(org, tmp_path / f"ws{len(made)}", database_url, clock, user, load)
        made.append(setup)
        return setup

    yield make
    for setup in made:
        setup.close()
