"""Starting uvicorn in a thread for a test: with a start-up bound of its own, so that a server
that never comes up is a clear error after `bound` seconds instead of a hang that the per-test
timeout (which covers the test itself, not its fixtures) would have to end."""

from __future__ import annotations

import threading
import time

import uvicorn

START_BOUND = 60.0  # seconds: far beyond a loaded machine's start-up, well short of a hang


def start(server: uvicorn.Server, bound: float = START_BOUND) -> threading.Thread:
    """Run `server` in a daemon thread; return once it listens."""
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + bound
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn stopped before it served")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"uvicorn did not start within {bound:g} s")
        time.sleep(0.01)
    return thread
