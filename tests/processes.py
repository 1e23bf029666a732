"""Processes a test starts (workers, servers): their output goes to files, not pipes.

A pipe nobody reads until the end holds 64 KiB; a process that logs more than that (a few
tracebacks of a dropped store connection do) blocks on its next write and makes no progress,
which a test then reads as the product being slow. Files take whatever is written."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import tempfile
import traceback
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


# `quotasync` commands a test runs to their end: forked from a server process that imported the
# CLI once, instead of a new interpreter each (about half a CPU-second of imports per command,
# some three hundred commands in the suite). Each command still runs in a process of its own,
# through the same `quotasync.cli.main` as the console script, with its own environment, argv,
# exit status and output; an engine or a thread it opens ends with it.
_CLI_SERVER = multiprocessing.get_context("forkserver")
_CLI_SERVER.set_forkserver_preload(["quotasync.cli", "quotasync.runtime", "quotasync.store.tables"])


def _command(
    argv: list[str], env: dict[str, str], files: tuple[str, str, str | None], cwd: str | None
) -> None:
    """The forked process: redirect its standard streams, run the command, exit with its code."""
    out, err, given = files
    os.environ.clear()
    os.environ.update(env)
    if cwd is not None:
        os.chdir(cwd)
    stdin_fd = os.open(given or os.devnull, os.O_RDONLY)
    os.dup2(stdin_fd, 0)
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_TRUNC)
        os.dup2(target, fd)
        os.close(target)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - fd 0 stays open for the process's life
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    sys.argv = ["quotasync", *argv]
    code = 0
    try:
        from quotasync.cli import main

        main()
    except SystemExit as exit_:
        if isinstance(exit_.code, int):
            code = exit_.code
        elif exit_.code is not None:
            print(exit_.code, file=sys.stderr)
            code = 1
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def cli(
    args: list[str],
    env: dict[str, str],
    timeout: float = 90,
    input: str | None = None,
    cwd: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run `quotasync ARGS` to its end in a process of its own (in `cwd`, if given), as
    `subprocess.run` with `capture_output=True, text=True` would."""
    with tempfile.TemporaryDirectory() as folder:
        out, err = os.path.join(folder, "out"), os.path.join(folder, "err")
        for path in (out, err):
            open(path, "w").close()
        given = None
        if input is not None:
            given = os.path.join(folder, "in")
            with open(given, "w") as file:
                file.write(input)
        process = _CLI_SERVER.Process(
            target=_command, args=(list(args), dict(env), (out, err, given), cwd)
        )
        process.start()
        process.join(timeout)
        if process.exitcode is None:
            process.kill()
            process.join()
            raise subprocess.TimeoutExpired(["quotasync", *args], timeout)
        with open(out) as file_out, open(err) as file_err:
            stdout, stderr = file_out.read(), file_err.read()
        code = process.exitcode
        process.close()
    return subprocess.CompletedProcess(["quotasync", *args], code, stdout, stderr)
