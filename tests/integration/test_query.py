"""SOQL over REST (`/query`, `/queryAll`, `nextRecordsUrl`) as simple-salesforce sees it."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from simple_salesforce import SalesforceMalformedRequest

from tests.sandbox_process import SandboxOrg

NEXT_URL = re.compile(r"^/services/data/v62\.0/query/01g[A-Za-z0-9]+-(\d+)$")


def used(sf: Any) -> int:
    return int(sf.api_usage["api-usage"].used)


@pytest.fixture(scope="module")
def people(sf: Any) -> dict[str, Any]:
    contact = sf.query(
        "SELECT Id, Name, Account.Name FROM Contact WHERE AccountId != null LIMIT 1"
    )["records"][0]
    lead = sf.query("SELECT Id, Name FROM Lead LIMIT 1")["records"][0]
    return {"contact": contact, "lead": lead}


@pytest.fixture(scope="module")
def tasks(org: SandboxOrg, people: dict[str, Any]) -> str:
    """Five Tasks of this module's own, told apart by a tag in QS_Activity_Id__c."""
    tag = "q" + uuid.uuid4().hex[:10]
    contact, lead = people["contact"]["Id"], people["lead"]["Id"]
    rows: list[dict[str, Any]] = [
        {
            "Subject": "Alpha call",
            "Status": "Completed",
            "Priority": "High",
            "ActivityDate": "2026-11-01",
            "QS_Opens__c": 5,
            "WhoId": contact,
        },
        {
            "Subject": "beta email",
            "Status": "Not Started",
            "Priority": "Normal",
            "ActivityDate": "2026-11-15",
            "QS_Opens__c": 0,
        },
        {"Subject": "Gamma", "Status": "In Progress", "Priority": "Low", "WhoId": lead},
        {
            "Status": "Deferred",
            "Priority": "Normal",
            "ActivityDate": "2026-12-01",
            "QS_Opens__c": 12.5,
        },
        {
            "Subject": "alpha meeting",
            "Status": "Completed",
            "Priority": "Low",
            "ActivityDate": "2026-11-15",
            "QS_Opens__c": 3,
        },
    ]
    for number, row in enumerate(rows, 1):
        row["QS_Activity_Id__c"] = f"{tag}-{number}"
    results = org.control("POST", "records/Task", rows)
    assert all(r["success"] for r in results)
    return tag


def numbers(records: list[dict[str, Any]]) -> list[int]:
    return [int(r["QS_Activity_Id__c"].rsplit("-", 1)[1]) for r in records]


def where(sf: Any, tag: str, condition: str, tail: str = "") -> list[int]:
    soql = f"SELECT QS_Activity_Id__c FROM Task WHERE QS_Activity_Id__c LIKE '{tag}-%' AND ({condition}) {tail}"
    return numbers(sf.query(soql)["records"])


# ---------------------------------------------------------------- shape and parents


def test_a_query_returns_salesforce_shaped_records(sf: Any, tasks: str) -> None:
    result = sf.query(
        f"SELECT Id, Subject, QS_Opens__c FROM Task WHERE QS_Activity_Id__c = '{tasks}-1'"
    )
    assert result["totalSize"] == 1
    assert result["done"] is True
    assert "nextRecordsUrl" not in result
    (record,) = result["records"]
    assert record["attributes"] == {
        "type": "Task",
        "url": f"/services/data/v62.0/sobjects/Task/{record['Id']}",
    }
    assert record["Id"].startswith("00T") and len(record["Id"]) == 18
    assert record["Subject"] == "Alpha call"
    assert record["QS_Opens__c"] == 5


def test_parent_fields_come_back_as_nested_records(
    sf: Any, people: dict[str, Any], org: SandboxOrg
) -> None:
    contact = people["contact"]
    result = sf.query(
        f"SELECT Id, Account.Name, Owner.Email FROM Contact WHERE Id = '{contact['Id']}'"
    )
    (record,) = result["records"]
    assert record["Account"]["Name"] == contact["Account"]["Name"]
    assert record["Account"]["attributes"]["type"] == "Account"
    assert record["Account"]["attributes"]["url"].startswith(
        "/services/data/v62.0/sobjects/Account/001"
    )
    assert "@" in record["Owner"]["Email"]
    assert record["Owner"]["attributes"]["type"] == "User"


def test_a_missing_parent_reads_as_null(sf: Any) -> None:
    created = sf.Contact.create({"LastName": "Orphan " + uuid.uuid4().hex[:8]})
    result = sf.query(f"SELECT Id, Account.Name FROM Contact WHERE Id = '{created['id']}'")
    assert result["records"][0]["Account"] is None


def test_task_who_name_follows_the_polymorphic_lookup(
    sf: Any, tasks: str, people: dict[str, Any]
) -> None:
    result = sf.query(
        f"SELECT QS_Activity_Id__c, Who.Name FROM Task WHERE QS_Activity_Id__c LIKE '{tasks}-%' "
        "ORDER BY QS_Activity_Id__c"
    )
    who = {numbers([r])[0]: r["Who"] for r in result["records"]}
    assert who[1]["Name"] == people["contact"]["Name"]
    assert who[3]["Name"] == people["lead"]["Name"]
    assert who[1]["attributes"]["url"].endswith(f"/sobjects/Contact/{people['contact']['Id']}")
    assert who[3]["attributes"]["url"].endswith(f"/sobjects/Lead/{people['lead']['Id']}")
    # Salesforce types a polymorphic parent as "Name" and lets the URL name the real object.
    assert who[1]["attributes"]["type"] == who[3]["attributes"]["type"] == "Name"
    assert who[2] is None


# ---------------------------------------------------------------- WHERE


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Priority = 'High'", {1}),
        ("Priority != 'Normal'", {1, 3, 5}),
        ("Priority <> 'Normal'", {1, 3, 5}),
        ("QS_Opens__c < 5", {2, 5}),
        ("QS_Opens__c <= 5", {1, 2, 5}),
        ("QS_Opens__c > 3", {1, 4}),
        ("QS_Opens__c >= 3", {1, 4, 5}),
        ("QS_Opens__c IN (0, 3)", {2, 5}),
        ("Status IN ('Completed', 'Deferred')", {1, 4, 5}),
        ("Subject LIKE 'alpha%'", {1, 5}),
        ("Subject LIKE '%CALL'", {1}),
        ("Priority = 'Low' AND Status = 'Completed'", {5}),
        ("Priority = 'High' OR QS_Opens__c > 10", {1, 4}),
        ("NOT Priority = 'Normal'", {1, 3, 5}),
        ("(Priority = 'Low' OR Priority = 'High') AND Status = 'Completed'", {1, 5}),
        ("Priority = 'Normal' AND (QS_Opens__c = 0 OR ActivityDate = null)", {2}),
        ("ActivityDate = 2026-11-15", {2, 5}),
        ("ActivityDate > 2026-11-01", {2, 4, 5}),
        ("ActivityDate < 2026-11-15", {1}),
        ("ActivityDate = NULL", {3}),
        ("Subject = null", {4}),
        ("Subject != null", {1, 2, 3, 5}),
        ("IsClosed = TRUE", {1, 5}),
        ("IsClosed = false", {2, 3, 4}),
        ("WhoId = null", {2, 4, 5}),
    ],
)
def test_where_filters_like_salesforce(
    sf: Any, tasks: str, condition: str, expected: set[int]
) -> None:
    assert set(where(sf, tasks, condition)) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("Subject != 'Gamma'", {1, 2, 4, 5}),
        ("QS_Opens__c != 0", {1, 3, 4, 5}),
        ("ActivityDate != 2026-11-15", {1, 3, 4}),
        ("Subject NOT IN ('Gamma', 'beta email')", {1, 4, 5}),
        ("QS_Opens__c NOT IN (0, 3)", {1, 3, 4}),
        ("Subject NOT IN ('Gamma', null)", {1, 2, 5}),
    ],
)
def test_not_equal_and_not_in_match_null_fields_as_in_salesforce(
    sf: Any, tasks: str, condition: str, expected: set[int]
) -> None:
    assert set(where(sf, tasks, condition)) == expected


def test_datetime_literals_are_unquoted_iso_8601(sf: Any, tasks: str, org: SandboxOrg) -> None:
    created = sf.query(f"SELECT CreatedDate FROM Task WHERE QS_Activity_Id__c = '{tasks}-1'")
    stamp = created["records"][0]["CreatedDate"]  # 2026-11-28T12:00:00.000+0000
    second = stamp[:19] + "Z"
    assert set(where(sf, tasks, f"SystemModstamp >= {second}")) == {1, 2, 3, 4, 5}
    assert where(sf, tasks, "SystemModstamp > 2099-01-01T00:00:00Z") == []
    assert set(where(sf, tasks, "CreatedDate > 2000-01-01T00:00:00.000+0000")) == {1, 2, 3, 4, 5}
    assert where(sf, tasks, "CreatedDate < 2000-01-01T00:00:00Z") == []


# ---------------------------------------------------------------- ORDER BY, LIMIT, OFFSET, COUNT


def test_order_by_ascending_puts_nulls_first_by_default(sf: Any, tasks: str) -> None:
    assert where(sf, tasks, "Id != null", "ORDER BY QS_Opens__c") == [3, 2, 5, 1, 4]


def test_order_by_descending_puts_nulls_last_by_default(sf: Any, tasks: str) -> None:
    assert where(sf, tasks, "Id != null", "ORDER BY QS_Opens__c DESC") == [4, 1, 5, 2, 3]


def test_order_by_honours_nulls_last_and_several_keys(sf: Any, tasks: str) -> None:
    assert where(sf, tasks, "Id != null", "ORDER BY QS_Opens__c ASC NULLS LAST") == [
        2,
        5,
        1,
        4,
        3,
    ]
    assert where(sf, tasks, "Id != null", "ORDER BY Priority DESC, Subject ASC NULLS LAST") == [
        2,
        4,
        5,
        3,
        1,
    ]


def test_limit_and_offset_page_through_an_ordered_result(sf: Any, tasks: str) -> None:
    assert where(sf, tasks, "Id != null", "ORDER BY QS_Activity_Id__c LIMIT 2") == [1, 2]
    assert where(sf, tasks, "Id != null", "ORDER BY QS_Activity_Id__c LIMIT 2 OFFSET 2") == [3, 4]
    assert where(sf, tasks, "Id != null", "ORDER BY QS_Activity_Id__c OFFSET 4") == [5]


def test_count_gives_total_size_and_no_records(sf: Any, tasks: str) -> None:
    result = sf.query(f"SELECT COUNT() FROM Task WHERE QS_Activity_Id__c LIKE '{tasks}-%'")
    assert result["totalSize"] == 5
    assert result["done"] is True
    assert result["records"] == []


# ---------------------------------------------------------------- queryAll and deleted rows


def test_query_all_shows_deleted_records_and_query_does_not(sf: Any) -> None:
    tag = "d" + uuid.uuid4().hex[:10]
    kept = sf.Task.create({"Subject": "kept", "QS_Activity_Id__c": f"{tag}-kept"})
    gone = sf.Task.create({"Subject": "gone", "QS_Activity_Id__c": f"{tag}-gone"})
    sf.Task.delete(gone["id"])
    soql = f"SELECT Id, IsDeleted FROM Task WHERE QS_Activity_Id__c LIKE '{tag}-%'"

    live = sf.query(soql)
    assert [r["Id"] for r in live["records"]] == [kept["id"]]

    everything = sf.query(soql, include_deleted=True)
    assert everything["totalSize"] == 2
    deleted = {r["Id"]: r["IsDeleted"] for r in everything["records"]}
    assert deleted == {kept["id"]: False, gone["id"]: True}
    assert sf.query_all(soql, include_deleted=True)["totalSize"] == 2


# ---------------------------------------------------------------- paging


@pytest.fixture(scope="module")
def many(org: SandboxOrg) -> str:
    """2,100 Tasks loaded through the control API (which does not spend quota)."""
    tag = "p" + uuid.uuid4().hex[:10]
    rows = [{"Subject": f"page {n}", "QS_Activity_Id__c": f"{tag}-{n:05d}"} for n in range(2100)]
    results = org.control("POST", "records/Task", rows)
    assert len(results) == 2100 and all(r["success"] for r in results)
    return tag


def test_a_big_result_comes_in_pages_of_2000_each_costing_one_call(sf: Any, many: str) -> None:
    first = sf.query(f"SELECT Id FROM Task WHERE QS_Activity_Id__c LIKE '{many}-%'")
    after_first = used(sf)
    assert first["totalSize"] == 2100
    assert first["done"] is False
    assert len(first["records"]) == 2000
    match = NEXT_URL.match(first["nextRecordsUrl"])
    assert match, first["nextRecordsUrl"]
    assert match[1] == "2000"

    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert used(sf) == after_first + 1
    assert second["totalSize"] == 2100
    assert second["done"] is True
    assert "nextRecordsUrl" not in second
    assert len(second["records"]) == 100
    ids = {r["Id"] for r in first["records"] + second["records"]}
    assert len(ids) == 2100


def test_query_more_also_takes_the_locator_alone(sf: Any, many: str) -> None:
    first = sf.query(f"SELECT Id FROM Task WHERE QS_Activity_Id__c LIKE '{many}-%'")
    locator = first["nextRecordsUrl"].rsplit("/", 1)[1]
    second = sf.query_more(locator)
    assert second["done"] is True and len(second["records"]) == 100


def test_query_all_follows_every_page(sf: Any, many: str) -> None:
    before = sf.query("SELECT COUNT() FROM Account")  # settles api_usage
    assert before["totalSize"] > 0
    start = used(sf)
    result = sf.query_all(
        f"SELECT Id, QS_Activity_Id__c FROM Task WHERE QS_Activity_Id__c LIKE '{many}-%' "
        "ORDER BY QS_Activity_Id__c"
    )
    assert result["totalSize"] == 2100
    assert [r["QS_Activity_Id__c"] for r in result["records"]] == [
        f"{many}-{n:05d}" for n in range(2100)
    ]
    assert used(sf) == start + 2


def test_the_batch_size_query_option_shrinks_pages(sf: Any, many: str) -> None:
    headers = {"Sforce-Query-Options": "batchSize=500"}
    first = sf.query(
        f"SELECT Id FROM Task WHERE QS_Activity_Id__c LIKE '{many}-%'", headers=headers
    )
    assert len(first["records"]) == 500
    assert NEXT_URL.match(first["nextRecordsUrl"])[1] == "500"  # type: ignore[index]
    pages = [first]
    while not pages[-1]["done"]:
        pages.append(sf.query_more(pages[-1]["nextRecordsUrl"], identifier_is_url=True))
    assert [len(p["records"]) for p in pages] == [500, 500, 500, 500, 100]


# ---------------------------------------------------------------- errors


def error_of(excinfo: pytest.ExceptionInfo[SalesforceMalformedRequest]) -> dict[str, Any]:
    assert excinfo.value.status == 400
    content = excinfo.value.content
    assert isinstance(content, list) and len(content) == 1
    return dict(content[0])


def test_bad_soql_is_malformed_query_with_the_position(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query("SELECT Id FROM Contact WHERE Name = ")
    error = error_of(excinfo)
    assert error["errorCode"] == "MALFORMED_QUERY"
    assert "ERROR at Row:1:Column:" in error["message"]
    assert "^" in error["message"]


def test_mixing_and_with_or_without_parentheses_is_malformed(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query("SELECT Id FROM Contact WHERE Name = 'a' AND Name = 'b' OR Name = 'c'")
    assert error_of(excinfo)["errorCode"] == "MALFORMED_QUERY"


def test_an_unknown_field_is_invalid_field(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query("SELECT Id, Nope__c FROM Contact")
    error = error_of(excinfo)
    assert error["errorCode"] == "INVALID_FIELD"
    assert "Nope__c" in error["message"]


def test_an_unknown_object_is_invalid_type(sf: Any) -> None:
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query("SELECT Id FROM Nope__c")
    error = error_of(excinfo)
    assert error["errorCode"] == "INVALID_TYPE"
    assert "Nope__c" in error["message"]


def test_fetching_a_next_records_url_again_gives_the_same_page(sf: Any, many: str) -> None:
    # A client whose connection dropped retries the same URL, and must not skip records.
    first = sf.query(f"SELECT Id FROM Task WHERE QS_Activity_Id__c LIKE '{many}-%'")
    url = first["nextRecordsUrl"]
    second = sf.query_more(url, identifier_is_url=True)
    again = sf.query_more(url, identifier_is_url=True)
    assert again["records"] == second["records"] and len(again["records"]) == 100
    # The cursor outlives its last page, and the first page can be read through it too.
    restart = sf.query_more(url.rsplit("-", 1)[0] + "-0", identifier_is_url=True)
    assert restart["records"] == first["records"]
    assert restart["nextRecordsUrl"] == url


@pytest.mark.parametrize("offset", ["2100", "99999"])
def test_a_locator_offset_beyond_the_result_is_invalid(sf: Any, many: str, offset: str) -> None:
    first = sf.query(f"SELECT Id FROM Task WHERE QS_Activity_Id__c LIKE '{many}-%'")
    url = first["nextRecordsUrl"].rsplit("-", 1)[0] + "-" + offset
    with pytest.raises(SalesforceMalformedRequest) as excinfo:
        sf.query_more(url, identifier_is_url=True)
    content: Any = excinfo.value.content
    assert content[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
