"""The README's configuration reference names every setting quotasync reads."""

from __future__ import annotations

from pathlib import Path

from quotasync.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_environment_variable_is_in_the_readme() -> None:
    text = README.read_text()
    missing = [
        f"QUOTASYNC_{name.upper()}"
        for name in Settings.model_fields
        if f"`QUOTASYNC_{name.upper()}`" not in text
    ]
    assert missing == []
