"""`quotasync --help` as a newcomer reads it: each command's summary flows as one paragraph."""

from __future__ import annotations

from typer.testing import CliRunner

from quotasync.cli import app


def _help(*args: str) -> str:
    done = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": "240", "NO_COLOR": "1"})
    assert done.exit_code == 0, done.output
    return done.output


def test_a_commands_summary_is_not_broken_where_its_docstring_wraps() -> None:
    rows = _help().splitlines()
    # The demo's docstring wraps after "a seeded sandbox org,": in the list it reads on.
    demo = next(i for i, row in enumerate(rows) if "│ demo " in row)
    assert "a seeded sandbox org, the web app, the worker" in rows[demo]


def test_a_groups_commands_read_the_same_way() -> None:
    rows = _help("workspace").splitlines()
    create = next(row for row in rows if "│ create " in row)
    assert "the ingest token and the admin's first password" in create
