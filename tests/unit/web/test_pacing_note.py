"""What the Integrations page says while pacing holds activities longer than "log within"."""

from __future__ import annotations

import pytest

from quotasync.usage import Pacing
from quotasync.web.integrations_page import duration, holding_note


@pytest.mark.parametrize(
    ("seconds", "said"),
    [
        (0, "0 s"),
        (5, "5 s"),
        (60, "1 min"),
        (250, "4 min 10 s"),
        (900, "15 min"),
        (3900, "1 h 5 min"),
    ],
)
def test_a_wait_is_said_as_people_say_it(seconds: float, said: str) -> None:
    assert duration(seconds) == said


def test_while_pacing_holds_activities_the_page_says_how_long_and_why() -> None:
    paced = Pacing(on=True, delay=250.0, avoids_pause=True, why="0.02 calls/s ...")
    assert holding_note(paced) == "Holding activities up to 4 min 10 s so today's share lasts."


def test_when_even_the_longest_hold_may_not_do_the_page_says_the_share_may_run_out() -> None:
    paced = Pacing(on=True, delay=900.0, avoids_pause=False, why="...")
    assert holding_note(paced) == (
        "Holding activities up to 15 min (the longest allowed) to stretch today's share, "
        "which may still run out."
    )


def test_without_pacing_the_page_says_nothing_of_it() -> None:
    assert holding_note(None) is None
    assert holding_note(Pacing(on=False, delay=60.0, avoids_pause=True, why="fits")) is None
