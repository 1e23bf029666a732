"""Shared output for benchmark scripts: a Rich table on the terminal, a section in BENCHMARKS.md."""

from __future__ import annotations

import json
import platform
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"
# Each benchmark's headline figures, for `benchmarks/run.py`'s summary: small, kept in git.
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Figures drawn by `benchmarks/plots.py`, shown in the README.
FIGURES_DIR = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
_HEADER = """# Benchmarks

Figures measured on this project's development machine by the scripts in `benchmarks/`. Each
section is rewritten by its script; figures are quoted as ratios against a baseline measured in the
same run, because absolute numbers move with the machine.
"""


def show(title: str, columns: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column, justify="right" if column != columns[0] else "left")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def markdown_table(columns: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def number_list(text: str) -> list[int]:
    """A command-line list of whole numbers: "250,1_000,2000" (empty: none)."""
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def machine() -> str:
    return f"{platform.machine()}, {cpus()} cores, Python {platform.python_version()}"


def cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def write_section(name: str, body: str) -> None:
    """Replace this script's section of BENCHMARKS.md, leaving the others alone."""
    text = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else _HEADER
    section = f"<!-- {name}:start -->\n{body.strip()}\n\n_Measured {stamp()} on {machine()}._\n<!-- {name}:end -->"
    pattern = re.compile(
        rf"<!-- {re.escape(name)}:start -->.*?<!-- {re.escape(name)}:end -->", re.S
    )
    text = (
        pattern.sub(lambda _: section, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{section}\n"
    )
    BENCHMARKS_MD.write_text(text)


def write_header(text: str) -> None:
    """Replace what stands above the first section of BENCHMARKS.md (the title, the machine and
    the summary), leaving every section alone."""
    old = BENCHMARKS_MD.read_text() if BENCHMARKS_MD.exists() else ""
    first = old.find("<!-- ")
    sections = old[first:] if first >= 0 else ""
    BENCHMARKS_MD.write_text(f"{text.strip()}\n\n{sections}".rstrip() + "\n")


def save_results(name: str, figures: dict[str, Any]) -> Path:
    """Write a benchmark's headline figures to `benchmarks/results/NAME.json`, stamped with the
    time and machine, for `benchmarks/run.py`'s summary and `benchmarks/plots.py`."""
    path = RESULTS_DIR / f"{name}.json"
    RESULTS_DIR.mkdir(exist_ok=True)
    kept = {**rounded(figures), "measured": stamp(), "machine": machine()}
    path.write_text(json.dumps(kept, indent=2, sort_keys=True) + "\n")
    return path


def rounded(value: Any, digits: int = 3) -> Any:
    """Floats cut to `digits` decimals, all the way down: the files stay small and readable."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def load_results(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    found: dict[str, Any] = json.loads(path.read_text())
    return found
