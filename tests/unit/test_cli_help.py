"""`quotasync --help` as a newcomer reads it: each command's summary flows as one paragraph,
options read `--host HOST` (no `<str>` tags), nothing is cut at 80 columns, and `--version`
answers."""

from __future__ import annotations

from click.testing import CliRunner

from quotasync import __version__
from quotasync.cli import command


def _help(*args: str, columns: int = 240) -> str:
    done = CliRunner().invoke(
        command(), [*args, "--help"], env={"COLUMNS": str(columns), "NO_COLOR": "1"}
    )
    assert done.exit_code == 0, done.output
    return done.output


def test_a_commands_summary_is_not_broken_where_its_docstring_wraps() -> None:
    # The demo's docstring wraps after "a seeded sandbox org,": in the list it reads on, the
    # summary wrapped as one paragraph wherever the screen ends.
    assert "a seeded sandbox org, the web app, the worker" in " ".join(_help().split())


def test_a_groups_commands_read_the_same_way() -> None:
    text = " ".join(_help("workspace").split())
    assert "the ingest token and the admin's first password" in text


def test_options_name_their_value_and_nothing_is_cut_at_80_columns() -> None:
    text = _help("sandbox", columns=80)
    assert "<str>" not in text and "<int" not in text and "<bool>" not in text
    assert "--state-dir STATE_DIR" in text and "--host HOST" in text
    # Every option's name is there whole, the longest one included.
    assert "--daily-api-requests DAILY_API_REQUESTS" in text
    assert "[default: enterprise on a first start;" in " ".join(text.split())


def test_version() -> None:
    done = CliRunner().invoke(command(), ["--version"])
    assert done.exit_code == 0 and done.output == f"quotasync {__version__}\n"
