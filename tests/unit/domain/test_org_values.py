"""The org's values are checked before the mirror takes them: what Salesforce could not have sent
is left out, the rest of the record kept."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain import org_values

GOOD = {
    "attributes": {"type": "Contact"},
    "Id": "0035g00000ABCDEAAA",
    "SystemModstamp": "2026-11-28T12:00:00.000+0000",
    "Name": "Ada Lovelace",
    "Email": "ada@example.com",
    "AccountId": "0015g00000ABCDEAAA",
    "MailingAddress": {"city": "London", "street": None},
    "NumberOfEmployees": 12,
    "IsDeleted": False,
}


def test_a_record_as_salesforce_sends_it_is_kept_whole() -> None:
    assert org_values.check(GOOD) == org_values.Checked(dict(GOOD), [])


def test_a_field_salesforce_could_not_have_sent_is_dropped_and_the_rest_kept() -> None:
    bad = {
        **GOOD,
        "Name": {"first": "not", "a": "string"},
        "Email": "a" * 990 + "@example.com",
        "AccountId": "not an id at all",
        "Title": ["a", "list"],
        "Weird Field": "x",
        "Score__c": float("nan"),
    }
    checked = org_values.check(bad)
    assert checked.row is not None
    assert sorted(checked.dropped) == [
        "AccountId", "Email", "Name", "Score__c", "Title", "Weird Field",
    ]  # fmt: skip
    assert checked.row["Id"] == GOOD["Id"] and checked.row["MailingAddress"] == {
        "city": "London",
        "street": None,
    }


def test_a_record_whose_id_is_not_an_id_is_refused_whole() -> None:
    for wrong in (None, 42, "003", "0035g00000ABCDEAAA" + "X" * 100, "0035g00000ABC\x00EAAA"):
        assert org_values.check({**GOOD, "Id": wrong}) == org_values.Checked(None, ["Id"])


@given(st.dictionaries(st.text(max_size=12), st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
), max_size=8))  # fmt: skip
def test_whatever_the_org_sends_what_is_kept_is_what_the_mirror_can_hold(row: dict) -> None:
    checked = org_values.check({**row, "Id": GOOD["Id"]})
    assert checked.row is not None
    for name, value in checked.row.items():
        if name in ("Name", "Email", "Title"):
            assert value is None or isinstance(value, str)
        assert not isinstance(value, list)
    assert set(checked.row) | set(checked.dropped) >= set(row) - {"Id"}
