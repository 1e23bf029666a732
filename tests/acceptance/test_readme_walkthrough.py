"""The README's walkthrough ("Logging activity into an org") runs as written: each line of its
code block, in a fresh folder, in order, with `ws_…` replaced by the workspace the second line
created. The sandbox line (`… &`) starts the org as a process of its own; a `> file` writes the
command's output there. A line that fails fails the test with its output, so the README cannot
drift from what quotasync does."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest

from tests.processes import cli
from tests.sandbox_process import start_sandbox

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> list[list[str]]:
    text = README.read_text()
    section = text[text.index("## Logging activity into an org") :]
    start = section.index("```sh\n") + 6
    block = section[start : section.index("\n```", start)]
    lines = [line.split("  #")[0].strip() for line in block.splitlines()]
    return [shlex.split(line) for line in lines if line]


@pytest.mark.long
def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    env = {**os.environ, "QUOTASYNC_DATA_DIR": str(tmp_path / ".quotasync")}
    env.pop("QUOTASYNC_DATABASE_URL", None)
    steps = walkthrough()
    assert [s[:2] for s in steps][:3] == [
        ["quotasync", "sandbox"],
        ["quotasync", "workspace"],
        ["quotasync", "connect"],
    ]
    org = None
    workspace = "ws_…"
    try:
        for step in steps:
            words = [w.replace("ws_…", workspace) for w in step]
            if words[-1] == "&":  # the org, in the background
                args = words[2:-1]
                at = args.index("--state-dir")
                org = start_sandbox(
                    tmp_path / args[at + 1], *args[:at], *args[at + 2 :], process=True
                )
                continue
            target = None
            if ">" in words:
                at = words.index(">")
                words, target = words[:at], words[at + 1]
            assert words[0] == "quotasync"
            done = cli(words[1:], env, timeout=240, cwd=str(tmp_path))
            said = f"{' '.join(words)}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
            assert done.returncode == 0, said
            assert "Traceback" not in done.stderr, said
            if target is not None:
                (tmp_path / target).write_text(done.stdout)
            if words[1:3] == ["workspace", "create"]:
                found = re.search(r"workspace (ws_\w+)", done.stdout)
                assert found is not None, done.stdout
                workspace = found.group(1)
        # What the walkthrough promised happened: the sample was logged, and the org pushes.
        shown = json.loads(
            cli(
                ["activities", "list", "--workspace", workspace, "--json"], env, cwd=str(tmp_path)
            ).stdout
        )
        assert shown.get("logged", 0) > 0 and shown.get("pending", 0) == 0, shown
        assert org is not None and org.control("GET", "rts")["enabled"] is True
    finally:
        if org is not None:
            org.stop()
