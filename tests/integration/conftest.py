from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.sandbox_process import SandboxOrg, start_sandbox

EPOCH = "2026-11-28T00:00:00Z"


@pytest.fixture(scope="session")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxOrg]:
    """One seeded org shared by tests that only read, or write records of their own."""
    sandbox = start_sandbox(tmp_path_factory.mktemp("org"), "--seed", "60")
    yield sandbox
    sandbox.stop()


@pytest.fixture
def new_org(tmp_path: Path) -> Iterator[Callable[..., SandboxOrg]]:
    """Start an org of a test's own (for quotas, clocks, faults, editions); stopped afterwards."""
    started: list[SandboxOrg] = []

    def start(*args: str, state_dir: Path | None = None) -> SandboxOrg:
        sandbox = start_sandbox(state_dir or tmp_path / f"org{len(started)}", *args)
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.stop()


@pytest.fixture(scope="session", autouse=True)
def close_sandbox_output() -> Iterator[None]:
    """Close each stopped sandbox's stdout pipe once its reader thread has drained it.

    Without this the pipe is left to the garbage collector, and its ResourceWarning fails the run
    under `-W error`.
    """
    import threading

    original = SandboxOrg.stop

    def stop(self: SandboxOrg) -> None:
        original(self)
        for thread in threading.enumerate():
            cells = getattr(getattr(thread, "_target", None), "__closure__", None) or ()
            if any(getattr(c, "cell_contents", None) is self.process for c in cells):
                thread.join(timeout=10)
        if self.process.stdout is not None and not self.process.stdout.closed:
            self.process.stdout.close()

    SandboxOrg.stop = stop  # type: ignore[method-assign]
    yield
    SandboxOrg.stop = original  # type: ignore[method-assign]
