"""Starting a sandbox org as a child process and waiting until it answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class SandboxDidNotStart(RuntimeError):
    pass


@dataclass
class RunningSandbox:
    state_dir: Path
    process: subprocess.Popen[str]
    config: dict[str, Any]
    output: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    def stop(self) -> None:
        stop_process(self.process, timeout=10)
        # The reader sees end-of-file once the process is gone; close the pipe only after it.
        if self.reader is not None:
            self.reader.join(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


def start(state_dir: Path, *args: str, timeout: float = 60) -> RunningSandbox:
    """Run `quotasync sandbox --state-dir DIR ARGS…` and wait for its `sandbox ready:` line."""
    command = [
        sys.executable,
        "-m",
        "quotasync.cli",
        "sandbox",
        "--state-dir",
        str(state_dir),
        *args,
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip("\n"))
            if line.startswith("sandbox ready:"):
                ready.set()
        ready.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    if not ready.wait(timeout) or process.poll() is not None:
        process.kill()
        process.wait()
        reader.join(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        raise SandboxDidNotStart("the sandbox org did not start:\n" + "\n".join(output))
    config = json.loads((state_dir / "sandbox.json").read_text())
    return RunningSandbox(state_dir, process, config, output, reader)


def stop_process(process: subprocess.Popen[Any], timeout: float) -> None:
    """SIGTERM a child process and wait for it; SIGKILL it if it is still there after
    `timeout` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
