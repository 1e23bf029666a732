from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quotasync.sandbox import ids

ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def test_the_checksum_matches_real_salesforce_ids() -> None:
    assert ids.to18("001D000000IRFma") == "001D000000IRFmaIAH"
    assert ids.to18("003RO0000035WQg") == "003RO0000035WQgYAM"


def test_new_ids_carry_their_key_prefix_and_a_valid_checksum() -> None:
    factory = ids.IdFactory()
    made = [factory.new("00T") for _ in range(500)]
    assert len(set(made)) == 500
    assert all(i.startswith("00T") and len(i) == 18 and ids.is_valid(i) for i in made)


def test_a_restarted_factory_carries_on_after_the_highest_id_it_has_seen() -> None:
    first = ids.IdFactory()
    made = [first.new("003") for _ in range(70)]
    second = ids.IdFactory()
    for record_id in reversed(made):  # the state file returns rows in any order
        second.resume("003", second.sequence_of(record_id))
    assert second.new("003") not in made
    assert second.sequence_of(second.new("003")) == 72


def test_a_mangled_checksum_is_not_a_valid_id() -> None:
    assert not ids.is_valid("001D000000IRFmaIAA")
    assert not ids.is_valid("001D000000IRFm")
    assert not ids.is_valid("001D000000IRFma!AH")
    assert ids.is_valid("001D000000IRFma")


@given(st.text(alphabet=ALNUM, min_size=15, max_size=15))
def test_every_15_character_id_extends_to_a_valid_18_character_one(id15: str) -> None:
    full = ids.to18(id15)
    assert full[:15] == id15
    assert ids.is_valid(full)
    # The suffix tells ids apart that differ only in letter case.
    assert ids.checksum(id15.swapcase()) != ids.checksum(id15) or id15.swapcase() == id15
