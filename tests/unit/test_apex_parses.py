"""The org package's Apex parses: every class and trigger goes through the Apex Dev Tools parser
(npm's @apexdevtools/apex-parser, the grammar that tracks Salesforce's compiler), so a syntax
error is found here rather than by the admin's first deploy. No org compiles it here: what the
parser cannot see (types, methods that do not exist) waits for a real org's deploy."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from quotasync.salesforce.package import DEFAULT_DIR

CHECKS = Path(__file__).resolve().parents[1] / "apex"
APEX = sorted(
    [*DEFAULT_DIR.glob("force-app/**/*.cls"), *DEFAULT_DIR.glob("force-app/**/*.trigger")]
)

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None
    or not (CHECKS / "node_modules" / "@apexdevtools" / "apex-parser").is_dir(),
    reason="the Apex parser is not installed: run `npm ci --prefix tests/apex` (.ci/run does)",
)


def parse(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    assert node is not None
    return subprocess.run(
        [node, str(CHECKS / "check.cjs"), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=CHECKS,
        check=False,
    )


def test_every_class_and_trigger_of_the_package_parses() -> None:
    assert {p.suffix for p in APEX} == {".cls", ".trigger"}
    assert len(APEX) >= 9  # four classes and five triggers at least
    done = parse(*APEX)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == ""


def test_a_syntax_error_is_reported_with_its_file_and_line(tmp_path: Path) -> None:
    # The check must be able to fail: a class with a broken statement and a trigger on nothing.
    broken = tmp_path / "Broken.cls"
    broken.write_text("public class Broken {\n    void f() { Integer x = ; }\n}\n")
    trigger = tmp_path / "Broken.trigger"
    trigger.write_text("trigger Broken (after insert) {}\n")
    done = parse(broken, trigger)
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert any(line.startswith(f"{broken}:2:") for line in lines), lines
    assert any(line.startswith(f"{trigger}:1:") for line in lines), lines
