from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.sandbox.soql import (
    OrderItem,
    Query,
    SoqlError,
    matches,
    parse,
    run,
)

NOW = datetime(2026, 11, 27, 15, 30, tzinfo=UTC)


def get(row: dict[str, Any] | None, path: tuple[str, ...]) -> Any:
    value: Any = row
    for name in path:
        if value is None:
            return None
        value = value.get(name)
    return value


def where(condition: str, row: dict[str, Any], now: datetime = NOW) -> bool:
    return matches(parse(f"SELECT Id FROM Contact WHERE {condition}"), row, get, now)


def error_of(text: str) -> SoqlError:
    with pytest.raises(SoqlError) as caught:
        parse(text)
    assert caught.value.code == "MALFORMED_QUERY"
    return caught.value


# --------------------------------------------------------------------------- parsing


def test_it_parses_fields_parent_paths_and_the_object() -> None:
    query = parse("SELECT Id, Name, Account.Name, Account.Owner.Email FROM Contact")
    assert query.sobject == "Contact"
    assert query.fields == (("Id",), ("Name",), ("Account", "Name"), ("Account", "Owner", "Email"))
    assert not query.count_only
    assert query.where is None
    assert (query.order_by, query.limit, query.offset) == ((), None, None)


def test_it_accepts_keywords_in_any_case() -> None:
    query = parse("select Id from Contact Where Name = 'a' aNd Age > 1 order BY Name desc limit 5")
    assert query.sobject == "Contact"
    assert query.order_by == (OrderItem(("Name",), descending=True),)
    assert query.limit == 5


def test_it_accepts_custom_field_names_and_objects_named_like_keywords() -> None:
    query = parse("SELECT QS_Activity_Id__c FROM Order WHERE Note__c = 'x'")
    assert query.sobject == "Order"
    assert query.fields == (("QS_Activity_Id__c",),)


def test_it_parses_count_as_count_only() -> None:
    query = parse("SELECT COUNT() FROM Contact WHERE Name = 'x'")
    assert query.count_only
    assert query.fields == ()


def test_it_lists_where_and_order_paths_once_each() -> None:
    query = parse(
        "SELECT Id FROM Contact WHERE (Name = 'a' OR Account.Name LIKE 'b%') "
        "AND NOT Name IN ('c') ORDER BY Account.Name, Id DESC"
    )
    assert query.where_paths() == (("Name",), ("Account", "Name"))
    assert query.order_paths() == (("Account", "Name"), ("Id",))


def test_it_defaults_null_placement_by_direction() -> None:
    query = parse("SELECT Id FROM C ORDER BY A, B DESC, C ASC NULLS LAST, D DESC NULLS FIRST")
    assert [(item.descending, item.nulls_last) for item in query.order_by] == [
        (False, False),
        (True, True),
        (False, True),
        (True, False),
    ]


def test_it_defaults_null_placement_when_order_items_are_built_directly() -> None:
    assert OrderItem(("Name",), descending=True).nulls_last
    assert not OrderItem(("Name",)).nulls_last


def test_it_parses_limit_and_offset() -> None:
    query = parse("SELECT Id FROM Contact LIMIT 10 OFFSET 2000")
    assert (query.limit, query.offset) == (10, 2000)


def test_it_caches_parses_of_the_same_text() -> None:
    text = "SELECT Id FROM Contact WHERE Name = 'cache me'"
    assert parse(text) is parse(text)


# --------------------------------------------------------------------------- malformed queries


def test_it_reports_an_unexpected_token_with_a_caret_like_salesforce() -> None:
    error = error_of("SELECT Id FORM Contact")
    assert error.message == (
        "\nSELECT Id FORM Contact\n          ^\nERROR at Row:1:Column:11\nunexpected token: FORM"
    )


def test_it_reports_the_row_and_column_on_later_lines() -> None:
    error = error_of('SELECT Id\nFROM Contact\nWHERE Name = "x"')
    assert error.message.endswith('\n             ^\nERROR at Row:3:Column:14\nunexpected token: "')
    assert error.message.startswith("\nWHERE Name")


def test_it_reports_an_unexpected_end_of_query() -> None:
    error = error_of("SELECT Id FROM")
    assert error.message == (
        "\nSELECT Id FROM\n              ^\nERROR at Row:1:Column:15\nunexpected end of query"
    )


def test_it_rejects_mixed_and_or_without_parentheses() -> None:
    error = error_of("SELECT Id FROM C WHERE a = 1 AND b = 2 OR c = 3")
    assert "ERROR at Row:1:Column:40\nunexpected token: OR" in error.message


def test_it_accepts_mixed_and_or_with_parentheses() -> None:
    parse("SELECT Id FROM C WHERE a = 1 AND (b = 2 OR c = 3)")
    parse("SELECT Id FROM C WHERE (a = 1 AND b = 2) OR c = 3")


def test_it_rejects_duplicate_fields_case_insensitively() -> None:
    assert error_of("SELECT Id, Name, name FROM C").message == "duplicate field selected: name"


def test_it_rejects_an_offset_above_2000() -> None:
    assert error_of("SELECT Id FROM C OFFSET 2001").message == (
        "maximum SOQL offset allowed is 2000"
    )


def test_it_rejects_a_negative_limit() -> None:
    assert (
        "LIMIT must be a non-negative integer: -1" in error_of("SELECT Id FROM C LIMIT -1").message
    )


def test_it_rejects_count_mixed_with_fields() -> None:
    assert "COUNT() must be the only element" in error_of("SELECT COUNT(), Id FROM C").message


def test_it_rejects_order_by_with_count() -> None:
    assert "ORDER BY" in error_of("SELECT COUNT() FROM C ORDER BY Name").message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SELECT Name FROM C GROUP BY Name", "GROUP BY is not supported"),
        ("SELECT SUM(Amount) FROM C", "aggregate function SUM() is not supported"),
        ("SELECT COUNT(Id) FROM C", "aggregate function COUNT() is not supported"),
        ("SELECT FIELDS(ALL) FROM C", "FIELDS() is not supported"),
        ("SELECT Id, (SELECT Id FROM Contacts) FROM A", "subqueries and semi-joins"),
        ("SELECT Id FROM A WHERE Id IN (SELECT AccountId FROM C)", "subqueries and semi-joins"),
        ("SELECT TYPEOF What WHEN Account THEN Name END FROM Event", "TYPEOF is not supported"),
        ("SELECT Id FROM C WITH SECURITY_ENFORCED", "WITH is not supported"),
        ("SELECT Id FROM C FOR UPDATE", "FOR UPDATE"),
        ("SELECT Id FROM C WHERE CreatedDate = THIS_MONTH", "date literal THIS_MONTH"),
    ],
)
def test_it_names_the_unsupported_feature(text: str, reason: str) -> None:
    error = error_of(text)
    assert "ERROR at Row:1:Column:" in error.message
    assert reason in error.message


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SELECT Id FROM C WHERE Name = 'abc", "unterminated string literal"),
        ("SELECT Id FROM C WHERE Name = 'a\\%'", "invalid escape sequence in string literal: \\%"),
        ("SELECT Id FROM C WHERE Name LIKE 'a\\q'", "invalid escape sequence"),
        ("SELECT Id FROM C WHERE Name = bogus", "unexpected token: bogus"),
        ("SELECT Id FROM C WHERE D = 2026-13-45", "invalid date: 2026-13-45"),
        ("SELECT Id FROM C WHERE D = LAST_N_DAYS", "LAST_N_DAYS needs a number"),
        ("SELECT Id FROM C WHERE Name LIKE 5", "unexpected token: 5"),
        ("SELECT Id FROM C WHERE Id IN :ids", "unexpected token: :"),
        ("SELECT FROM C", "unexpected token: C"),
        ("SELECT Id FROM C LIMIT 5 OFFSET", "unexpected end of query"),
        ("", "unexpected end of query"),
    ],
)
def test_it_rejects_malformed_queries(text: str, reason: str) -> None:
    assert reason in error_of(text).message


def test_soql_errors_carry_a_message_and_a_code() -> None:
    error = SoqlError("nope", "INVALID_FIELD")
    assert (error.message, error.code, str(error)) == ("nope", "INVALID_FIELD", "nope")
    assert SoqlError("nope").code == "MALFORMED_QUERY"


# --------------------------------------------------------------------------- literals


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'it\\'s'", "it's"),
        ("'back\\\\slash'", "back\\slash"),
        ("'a\\nb\\rc\\td'", "a\nb\rc\td"),
        ("'say \\\"hi\\\"'", 'say "hi"'),
        ("42", 42),
        ("-7", -7),
        ("3.25", 3.25),
        ("-0.5", -0.5),
        ("TRUE", True),
        ("false", False),
        ("2026-11-27", date(2026, 11, 27)),
        ("2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00.000Z", datetime(2026, 11, 27, 10, tzinfo=UTC)),
        ("2026-11-27T10:00:00+01:00", datetime(2026, 11, 27, 9, tzinfo=UTC)),
        ("2026-11-27T10:00:00-0800", datetime(2026, 11, 27, 18, tzinfo=UTC)),
    ],
)
def test_it_reads_each_literal_kind(literal: str, value: Any) -> None:
    assert where(f"X = {literal}", {"X": value})


def test_it_reads_null() -> None:
    assert where("X = NULL", {"X": None})
    assert where("X = null", {})


# --------------------------------------------------------------------------- operators


def test_string_equality_ignores_case() -> None:
    assert where("Name = 'ADA'", {"Name": "ada"})
    assert not where("Name = 'ada'", {"Name": "adam"})


@pytest.mark.parametrize("operator", ["!=", "<>"])
def test_not_equal_matches_other_values(operator: str) -> None:
    assert where(f"Name {operator} 'ada'", {"Name": "bob"})
    assert not where(f"Name {operator} 'ada'", {"Name": "ADA"})


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Age < 30", True),
        ("Age <= 29", True),
        ("Age > 29", False),
        ("Age >= 29", True),
        ("Age > 28.5", True),
        ("Name < 'B'", True),
        ("Name > 'a'", True),
        ("Name >= 'ADA'", True),
    ],
)
def test_it_orders_numbers_and_strings(condition: str, expected: bool) -> None:
    assert where(condition, {"Age": 29, "Name": "ada"}) is expected


def test_null_checks_work_with_equals_and_not_equals() -> None:
    assert where("Email = null", {"Email": None})
    assert where("Email != null", {"Email": "a@b.c"})
    assert not where("Email != null", {"Email": None})


@pytest.mark.parametrize(
    "condition",
    ["Email = 'x'", "Email < 'x'", "Email > 1", "Email LIKE '%'", "Email IN ('x')"],
)
def test_other_comparisons_with_a_null_value_are_false(condition: str) -> None:
    assert not where(condition, {"Email": None})


@pytest.mark.parametrize(
    "condition",
    ["Email != 'x'", "Email <> 'x'", "Age != 3", "Flag != TRUE", "D != 2026-11-27"],
)
def test_not_equal_treats_null_as_a_value_that_differs(condition: str) -> None:
    assert where(condition, {"Email": None, "Age": None, "Flag": None, "D": None})


def test_not_in_matches_nulls_unless_null_is_listed() -> None:
    assert where("Email NOT IN ('x')", {"Email": None})
    assert where("Age NOT IN (1, 2)", {"Age": None})
    assert not where("Email NOT IN ('x', null)", {"Email": None})
    assert where("Email IN ('x', null)", {"Email": None})


@pytest.mark.parametrize(
    ("condition", "row"),
    [
        ("Name = 5", {"Name": "5"}),
        ("Age = '5'", {"Age": 5}),
        ("Age > 'a'", {"Age": 5}),
        ("Flag = 1", {"Flag": True}),
        ("Age = TRUE", {"Age": 1}),
        ("Flag < TRUE", {"Flag": False}),
        ("Day = 2026-11-27T00:00:00Z", {"Day": date(2026, 11, 27)}),
        ("Name != 5", {"Name": "x"}),
    ],
)
def test_mismatched_types_compare_false(condition: str, row: dict[str, Any]) -> None:
    assert not where(condition, row)


def test_booleans_compare_by_equality() -> None:
    assert where("Active = TRUE", {"Active": True})
    assert where("Active != TRUE", {"Active": False})
    assert not where("Active = FALSE", {"Active": True})


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("'ad%'", "ADA Lovelace", True),
        ("'%love%'", "Ada Lovelace", True),
        ("'a_a'", "ada", True),
        ("'a_a'", "adda", False),
        ("'100\\%'", "100%", True),
        ("'100\\%'", "1000", False),
        ("'a\\_b'", "a_b", True),
        ("'a\\_b'", "acb", False),
        ("'it\\'s%'", "it's here", True),
        ("'a.c'", "abc", False),
    ],
)
def test_like_supports_wildcards_and_escapes(pattern: str, value: str, expected: bool) -> None:
    assert where(f"Name LIKE {pattern}", {"Name": value}) is expected


def test_like_never_matches_non_strings() -> None:
    assert not where("Age LIKE '%'", {"Age": 5})


def test_in_and_not_in_compare_case_insensitively() -> None:
    assert where("Stage IN ('Open', 'Won')", {"Stage": "open"})
    assert not where("Stage NOT IN ('Open', 'Won')", {"Stage": "WON"})
    assert where("Stage NOT IN ('Open', 'Won')", {"Stage": "Lost"})


def test_in_accepts_mixed_literal_kinds() -> None:
    assert where("Age IN (1, 2.5, 'x')", {"Age": 2.5})
    assert where("Age NOT IN (1, 2)", {"Age": 3})


def test_and_or_not_and_parentheses_combine() -> None:
    row = {"A": 1, "B": 2, "C": 3}
    assert where("A = 1 AND B = 2 AND C = 3", row)
    assert where("A = 9 OR B = 9 OR C = 3", row)
    assert where("A = 9 OR (B = 2 AND C = 3)", row)
    assert not where("(A = 9 OR B = 2) AND C = 9", row)
    assert where("NOT A = 9", row)
    assert where("NOT (A = 1 AND B = 9)", row)
    assert not where("NOT A = 1 AND B = 2", row)
    assert where("A = 1 AND NOT B = 9", row)


def test_parent_paths_read_through_the_getter() -> None:
    row = {"Account": {"Name": "Acme", "Owner": {"Email": "o@acme.test"}}}
    assert where("Account.Name = 'acme'", row)
    assert where("Account.Owner.Email LIKE '%@acme.test'", row)


def test_a_missing_parent_reads_as_null() -> None:
    assert where("Account.Name = null", {"Account": None})
    assert not where("Account.Name = 'Acme'", {"Account": None})


def test_a_query_without_where_matches_everything() -> None:
    assert matches(parse("SELECT Id FROM Contact"), {}, get, NOW)


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("condition", "day", "expected"),
    [
        ("D = TODAY", date(2026, 11, 27), True),
        ("D = TODAY", date(2026, 11, 26), False),
        ("D = YESTERDAY", date(2026, 11, 26), True),
        ("D = TOMORROW", date(2026, 11, 28), True),
        ("D < TODAY", date(2026, 11, 26), True),
        ("D > YESTERDAY", date(2026, 11, 27), True),
        ("D >= TOMORROW", date(2026, 11, 27), False),
        ("D = LAST_N_DAYS:3", date(2026, 11, 24), True),
        ("D = LAST_N_DAYS:3", date(2026, 11, 23), False),
        ("D = LAST_N_DAYS:3", date(2026, 11, 27), True),
        ("D = LAST_N_DAYS:3", date(2026, 11, 28), False),
        ("D = NEXT_N_DAYS:2", date(2026, 11, 27), False),
        ("D = NEXT_N_DAYS:2", date(2026, 11, 29), True),
        ("D = NEXT_N_DAYS:2", date(2026, 11, 30), False),
        ("D < LAST_N_DAYS:3", date(2026, 11, 23), True),
        ("D > NEXT_N_DAYS:2", date(2026, 11, 30), True),
        ("D != TODAY", date(2026, 11, 26), True),
        ("D = 2026-11-27", date(2026, 11, 27), True),
        ("D < 2026-11-27", date(2026, 11, 26), True),
        ("D <= 2026-11-27", date(2026, 11, 28), False),
    ],
)
def test_date_literals_against_a_date_field(condition: str, day: date, expected: bool) -> None:
    assert where(condition, {"D": day}) is expected


@pytest.mark.parametrize(
    ("condition", "instant", "expected"),
    [
        ("T = TODAY", datetime(2026, 11, 27, 0, 0, tzinfo=UTC), True),
        ("T = TODAY", datetime(2026, 11, 27, 23, 59, 59, tzinfo=UTC), True),
        ("T = TODAY", datetime(2026, 11, 28, 0, 0, tzinfo=UTC), False),
        ("T > YESTERDAY", datetime(2026, 11, 26, 23, 59, tzinfo=UTC), False),
        ("T > YESTERDAY", datetime(2026, 11, 27, 0, 0, tzinfo=UTC), True),
        ("T < TODAY", datetime(2026, 11, 26, 23, 59, tzinfo=UTC), True),
        ("T <= TODAY", datetime(2026, 11, 27, 23, 59, tzinfo=UTC), True),
        ("T >= TOMORROW", datetime(2026, 11, 28, 0, 0, tzinfo=UTC), True),
        ("T = LAST_N_DAYS:1", datetime(2026, 11, 26, 0, 0, tzinfo=UTC), True),
        ("T = LAST_N_DAYS:1", datetime(2026, 11, 25, 23, 59, tzinfo=UTC), False),
        ("T = 2026-11-27", datetime(2026, 11, 27, 12, 0, tzinfo=UTC), True),
        ("T > 2026-11-27", datetime(2026, 11, 27, 12, 0, tzinfo=UTC), False),
        ("T = 2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, 0, tzinfo=UTC), True),
        ("T > 2026-11-27T10:00:00+01:00", datetime(2026, 11, 27, 9, 30, tzinfo=UTC), True),
        ("T < 2026-11-27T10:00:00-0800", datetime(2026, 11, 27, 17, 59, tzinfo=UTC), True),
        ("T != 2026-11-27T10:00:00Z", datetime(2026, 11, 27, 10, 1, tzinfo=UTC), True),
    ],
)
def test_date_literals_against_a_datetime_field(
    condition: str, instant: datetime, expected: bool
) -> None:
    assert where(condition, {"T": instant}) is expected


def test_relative_dates_follow_the_now_given_to_each_call() -> None:
    query = parse("SELECT Id FROM C WHERE D = TODAY")
    row = {"D": date(2026, 11, 27)}
    assert matches(query, row, get, NOW)
    assert not matches(query, row, get, NOW + timedelta(days=1))


def test_today_is_the_utc_day_of_now() -> None:
    late_in_los_angeles = datetime.fromisoformat("2026-11-26T23:00:00-08:00")
    assert where("D = TODAY", {"D": date(2026, 11, 27)}, now=late_in_los_angeles)


# --------------------------------------------------------------------------- run


PEOPLE: list[dict[str, Any]] = [
    {"Id": "1", "Name": "carol", "Age": 30},
    {"Id": "2", "Name": "Alice", "Age": None},
    {"Id": "3", "Name": "bob", "Age": 25},
    {"Id": "4", "Name": None, "Age": 30},
]


def ids(text: str, rows: list[dict[str, Any]] = PEOPLE) -> list[str]:
    return [row["Id"] for row in run(parse(text), rows, get, NOW)]


def test_run_filters_rows() -> None:
    assert ids("SELECT Id FROM C WHERE Age = 30") == ["1", "4"]


def test_run_sorts_strings_case_insensitively_with_nulls_first() -> None:
    assert ids("SELECT Id FROM C ORDER BY Name") == ["4", "2", "3", "1"]


def test_run_sorts_descending_with_nulls_last() -> None:
    assert ids("SELECT Id FROM C ORDER BY Name DESC") == ["1", "3", "2", "4"]


def test_run_honours_explicit_null_placement() -> None:
    assert ids("SELECT Id FROM C ORDER BY Age ASC NULLS LAST") == ["3", "1", "4", "2"]
    assert ids("SELECT Id FROM C ORDER BY Age DESC NULLS FIRST") == ["2", "1", "4", "3"]


def test_run_sorts_by_several_keys_and_keeps_ties_stable() -> None:
    assert ids("SELECT Id FROM C ORDER BY Age DESC, Name") == ["4", "1", "3", "2"]
    assert ids("SELECT Id FROM C WHERE Age = 30 ORDER BY Age") == ["1", "4"]


def test_run_sorts_mixed_value_kinds_without_raising() -> None:
    rows: list[dict[str, Any]] = [
        {"Id": "1", "V": "b"},
        {"Id": "2", "V": 3},
        {"Id": "3", "V": date(2026, 1, 1)},
    ]
    assert ids("SELECT Id FROM C ORDER BY V", rows) == ["2", "1", "3"]


def test_run_applies_offset_then_limit_after_sorting() -> None:
    assert ids("SELECT Id FROM C ORDER BY Id DESC LIMIT 2 OFFSET 1") == ["3", "2"]
    assert ids("SELECT Id FROM C LIMIT 2 OFFSET 1") == ["2", "3"]
    assert ids("SELECT Id FROM C OFFSET 3") == ["4"]
    assert ids("SELECT Id FROM C LIMIT 0") == []


def test_run_returns_matching_rows_for_count_queries() -> None:
    assert len(run(parse("SELECT COUNT() FROM C WHERE Age != null"), PEOPLE, get, NOW)) == 3


def test_run_accepts_a_query_built_by_hand() -> None:
    query = Query(sobject="C", fields=(("Id",),), order_by=(OrderItem(("Age",), True),), limit=1)
    assert [row["Id"] for row in run(query, PEOPLE, get, NOW)] == ["1"]


def test_run_filters_100000_rows() -> None:
    rows = [{"Stage": "Open" if i % 2 else "Closed", "Amount": i % 1000} for i in range(100_000)]
    query = parse("SELECT Id FROM Opportunity WHERE Stage = 'open' AND Amount > 500")
    found = run(query, rows, get, NOW)
    assert len(found) == 25_000


# --------------------------------------------------------------------------- properties

values = st.one_of(st.none(), st.integers(-50, 50), st.text(alphabet="aAbBcC", max_size=3))
tables = st.lists(st.fixed_dictionaries({"V": values}), max_size=40)


@given(tables, st.integers(0, 50), st.integers(0, 50))
def test_limit_never_returns_more_than_asked(
    rows: list[dict[str, Any]], limit: int, offset: int
) -> None:
    found = run(parse(f"SELECT Id FROM C LIMIT {limit} OFFSET {offset}"), rows, get, NOW)
    assert len(found) <= limit
    assert found == rows[offset : offset + limit]


@given(st.lists(st.fixed_dictionaries({"V": st.one_of(st.none(), st.text("aAbB"))}), max_size=40))
def test_order_by_gives_sorted_output_with_nulls_in_place(rows: list[dict[str, Any]]) -> None:
    for direction, nulls in [("ASC", "FIRST"), ("DESC", "LAST"), ("ASC", "LAST")]:
        found = run(parse(f"SELECT Id FROM C ORDER BY V {direction} NULLS {nulls}"), rows, get, NOW)
        assert sorted(map(id, found)) == sorted(map(id, rows))
        present = [row["V"].lower() for row in found if row["V"] is not None]
        assert present == sorted(present, reverse=direction == "DESC")
        flags = [row["V"] is None for row in found]
        assert flags == sorted(flags, reverse=nulls == "FIRST")


@given(tables, st.integers(-50, 50))
def test_a_comparison_and_its_negation_split_the_non_null_rows(
    rows: list[dict[str, Any]], threshold: int
) -> None:
    above = run(parse(f"SELECT Id FROM C WHERE V > {threshold}"), rows, get, NOW)
    not_above = run(parse(f"SELECT Id FROM C WHERE NOT V > {threshold}"), rows, get, NOW)
    assert len(above) + len(not_above) == len(rows)
    assert all(isinstance(row["V"], int) and row["V"] > threshold for row in above)


# --------------------------------------------------------------------------- the calendar's ends


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("ActivityDate = 9999-12-31", False),
        ("ActivityDate <= 9999-12-31", True),
        ("ActivityDate > 9999-12-31", False),
        ("CreatedDate = 9999-12-31", False),
        ("CreatedDate < 9999-12-31", True),
        ("ActivityDate = LAST_N_DAYS:99999999", True),
        ("CreatedDate = LAST_N_DAYS:9999999999", True),
        ("ActivityDate = NEXT_N_DAYS:9999999999", False),
        ("CreatedDate > 0001-01-01", True),
    ],
)
def test_date_literals_at_the_ends_of_the_calendar_are_held_there(
    condition: str, expected: bool
) -> None:
    row = {"ActivityDate": date(2026, 11, 1), "CreatedDate": datetime(2026, 11, 1, 9, tzinfo=UTC)}
    assert where(condition, row) is expected


def test_the_last_day_there_is_matches_a_datetime_on_it() -> None:
    row = {"CreatedDate": datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)}
    assert where("CreatedDate = 9999-12-31", row)
    assert not where("CreatedDate > 9999-12-31", row)


def test_a_datetime_literal_past_year_9999_in_utc_is_malformed() -> None:
    error = error_of("SELECT Id FROM Task WHERE CreatedDate > 9999-12-31T23:59:59-05:00")
    assert "invalid datetime" in error.message


def test_a_thousand_or_terms_filter_without_recursing() -> None:
    terms = " OR ".join(f"LastName = 'n{i}'" for i in range(1500))
    query = parse(f"SELECT Id FROM Contact WHERE ({terms}) AND Email != NULL")
    rows = [{"LastName": "n1499", "Email": "a@b.c"}, {"LastName": "x", "Email": "a@b.c"}]
    assert run(query, rows, get, NOW) == rows[:1]
