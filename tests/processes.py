"""Processes a test starts (workers, servers): their output goes to files, not pipes.

A pipe nobody reads until the end holds 64 KiB; a process that logs more than that (a few
tracebacks of a dropped store connection do) blocks on its next write and makes no progress,
which a test then reads as the product being slow. Files take whatever is written."""

from __future__ import annotations

import subprocess
import tempfile
from typing import IO

_LOGS: dict[int, tuple[IO[str], IO[str]]] = {}


def spawn(
    args: list[str], env: dict[str, str], *, stdout_pipe: bool = False
) -> subprocess.Popen[str]:
    """Start `args`; its stderr (and its stdout, unless `stdout_pipe` asks to read it live)
    goes to a file that `finish` reads back."""
    # Closed by `finish`, which reads them back.
    out = tempfile.TemporaryFile("w+")  # noqa: SIM115
    err = tempfile.TemporaryFile("w+")  # noqa: SIM115
    process = subprocess.Popen(
        args,
        env=env,
        stdout=subprocess.PIPE if stdout_pipe else out,
        stderr=err,
        text=True,
    )
    _LOGS[process.pid] = (out, err)
    return process


def finish(process: subprocess.Popen[str], timeout: float = 30) -> tuple[str, str]:
    """Wait for the process to end; what it wrote to stdout and stderr."""
    piped = process.communicate(timeout=timeout)[0]  # waits; reads stdout if it is a pipe
    out, err = _LOGS.pop(process.pid)
    texts = []
    for file in (out, err):
        file.seek(0)
        texts.append(file.read())
        file.close()
    return (piped or "") + texts[0], texts[1]
