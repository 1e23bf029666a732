from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from quotasync.sandbox import ids, schema
from quotasync.sandbox.errors import RecordError
from quotasync.sandbox.records import RecordStore

NOW = datetime(2026, 11, 28, 12, tzinfo=UTC)
TASK, EVENT, CONTACT = schema.OBJECTS["Task"], schema.OBJECTS["Event"], schema.OBJECTS["Contact"]
EXTERNAL = TASK.fields["QS_Activity_Id__c"]


@pytest.fixture
def store() -> RecordStore:
    return RecordStore(ids.IdFactory())


@pytest.fixture
def owner(store: RecordStore) -> str:
    profile = store.insert(schema.OBJECTS["Profile"], {"Name": "Standard User"}, "005", NOW)
    user = store.insert(
        schema.OBJECTS["User"],
        {"Username": "a@x.io", "LastName": "A", "Email": "a@x.io", "ProfileId": profile["Id"]},
        "005",
        NOW,
    )
    return str(user["Id"])


def failure(call: object) -> RecordError:
    with pytest.raises(RecordError) as caught:
        call()  # type: ignore[operator]
    return caught.value


def test_a_new_record_gets_system_fields_defaults_and_a_derived_name(
    store: RecordStore, owner: str
) -> None:
    contact = store.insert(CONTACT, {"FirstName": "Ada", "LastName": "Lovelace"}, owner, NOW)
    assert contact["Id"].startswith("003") and ids.is_valid(contact["Id"])
    assert contact["Name"] == "Ada Lovelace"
    assert contact["OwnerId"] == owner
    assert contact["CreatedDate"] == contact["SystemModstamp"] == NOW
    assert contact["IsDeleted"] is False


def test_required_unknown_and_read_only_fields_are_refused_with_salesforce_codes(
    store: RecordStore, owner: str
) -> None:
    missing = failure(lambda: store.insert(CONTACT, {"FirstName": "Ada"}, owner, NOW))
    assert (missing.code, missing.fields) == ("REQUIRED_FIELD_MISSING", ["LastName"])
    unknown = failure(lambda: store.insert(CONTACT, {"LastName": "L", "Shoe": 9}, owner, NOW))
    assert unknown.code == "INVALID_FIELD"
    read_only = failure(lambda: store.insert(CONTACT, {"LastName": "L", "CreatedDate": "2020-01-01T00:00:00Z"}, owner, NOW))  # fmt: skip
    assert read_only.code == "INVALID_FIELD_FOR_INSERT_UPDATE"
    too_long = failure(lambda: store.insert(CONTACT, {"LastName": "L" * 81}, owner, NOW))
    assert too_long.code == "STRING_TOO_LONG"


def test_lookups_must_point_at_a_live_record_of_an_allowed_type(
    store: RecordStore, owner: str
) -> None:
    assert failure(lambda: store.insert(TASK, {"WhoId": "nope"}, owner, NOW)).code == "MALFORMED_ID"
    wrong_type = failure(lambda: store.insert(TASK, {"WhoId": owner}, owner, NOW))
    assert wrong_type.code == "FIELD_INTEGRITY_EXCEPTION"
    ghost = ids.to18("003000000000009")
    assert failure(lambda: store.insert(TASK, {"WhoId": ghost}, owner, NOW)).code == "INVALID_CROSS_REFERENCE_KEY"  # fmt: skip


def test_an_upsert_creates_once_then_updates_matching_the_external_id_case_insensitively(
    store: RecordStore, owner: str
) -> None:
    first, created = store.upsert(TASK, EXTERNAL, "Evt-1", {"Subject": "a"}, owner, NOW)
    later = NOW + timedelta(seconds=5)
    second, created_again = store.upsert(TASK, EXTERNAL, "evt-1", {"Subject": "b"}, owner, later)
    assert (created, created_again) == (True, False)
    assert first["Id"] == second["Id"]
    assert second["Subject"] == "b" and second["SystemModstamp"] == later
    assert store.count("Task") == 1


def test_task_subtype_is_set_on_create_only_but_an_upsert_may_repeat_it(
    store: RecordStore, owner: str
) -> None:
    task, _ = store.upsert(TASK, EXTERNAL, "e1", {"TaskSubtype": "Email"}, owner, NOW)
    store.upsert(TASK, EXTERNAL, "e1", {"TaskSubtype": "Email", "Subject": "x"}, owner, NOW)
    changed = failure(lambda: store.upsert(TASK, EXTERNAL, "e1", {"TaskSubtype": "Call"}, owner, NOW))  # fmt: skip
    assert changed.code == "INVALID_FIELD_FOR_INSERT_UPDATE"
    bad = failure(lambda: store.insert(TASK, {"TaskSubtype": "Fax"}, owner, NOW))
    assert bad.code == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert task["TaskSubtype"] == "Email"


def test_a_completed_task_is_closed_with_a_completion_time(store: RecordStore, owner: str) -> None:
    task = store.insert(TASK, {"Status": "Completed"}, owner, NOW)
    assert task["IsClosed"] is True and task["CompletedDateTime"] == NOW
    assert task["Priority"] == "Normal"


def test_an_event_needs_a_start_and_an_end_or_duration_that_agree(
    store: RecordStore, owner: str
) -> None:
    start = "2026-12-01T15:00:00Z"
    assert failure(lambda: store.insert(EVENT, {"Subject": "Demo"}, owner, NOW)).code == "REQUIRED_FIELD_MISSING"  # fmt: skip
    assert failure(lambda: store.insert(EVENT, {"StartDateTime": start}, owner, NOW)).code == "REQUIRED_FIELD_MISSING"  # fmt: skip
    disagree = {"StartDateTime": start, "EndDateTime": "2026-12-01T16:00:00Z", "DurationInMinutes": 30}  # fmt: skip
    assert failure(lambda: store.insert(EVENT, disagree, owner, NOW)).code == "FIELD_INTEGRITY_EXCEPTION"  # fmt: skip
    event = store.insert(EVENT, {"StartDateTime": start, "DurationInMinutes": 45}, owner, NOW)
    assert event["EndDateTime"] == datetime(2026, 12, 1, 15, 45, tzinfo=UTC)
    moved = store.update(EVENT, event["Id"], {"EndDateTime": "2026-12-01T17:00:00Z"}, owner, NOW)
    assert moved["DurationInMinutes"] == 120


def test_a_deleted_record_is_kept_for_query_all_but_cannot_be_updated(
    store: RecordStore, owner: str
) -> None:
    task = store.insert(TASK, {"Subject": "x", "QS_Activity_Id__c": "gone"}, owner, NOW)
    store.delete(TASK, task["Id"], owner, NOW)
    assert store.count("Task") == 0 and len(list(store.all("Task"))) == 1
    assert failure(lambda: store.update(TASK, task["Id"], {"Subject": "y"}, owner, NOW)).code == "ENTITY_IS_DELETED"  # fmt: skip
    # An upsert after a delete makes a new record rather than reviving the deleted one.
    revived, created = store.upsert(TASK, EXTERNAL, "gone", {"Subject": "z"}, owner, NOW)
    assert created and revived["Id"] != task["Id"]


def test_a_rollback_undoes_inserts_updates_and_deletes(store: RecordStore, owner: str) -> None:
    kept = store.insert(TASK, {"Subject": "kept", "QS_Activity_Id__c": "k"}, owner, NOW)
    store.drain_dirty()
    store.begin()
    store.insert(TASK, {"Subject": "new", "QS_Activity_Id__c": "n"}, owner, NOW)
    store.update(TASK, kept["Id"], {"Subject": "changed", "QS_Activity_Id__c": "k2"}, owner, NOW)
    store.rollback()
    assert [t["Subject"] for t in store.live("Task")] == ["kept"]
    assert store.find_by_external_id(TASK, EXTERNAL, "k")[0]["Id"] == kept["Id"]
    assert store.find_by_external_id(TASK, EXTERNAL, "n") == []
    assert store.find_by_external_id(TASK, EXTERNAL, "k2") == []


def test_savepoints_nest_so_an_outer_rollback_undoes_a_released_inner_one(
    store: RecordStore, owner: str
) -> None:
    store.begin()
    store.insert(TASK, {"Subject": "outer", "QS_Activity_Id__c": "o"}, owner, NOW)
    store.begin()
    store.insert(TASK, {"Subject": "inner", "QS_Activity_Id__c": "i"}, owner, NOW)
    store.release()
    store.rollback()
    assert list(store.live("Task")) == []
    assert store.find_by_external_id(TASK, EXTERNAL, "o") == []
    assert not store.in_savepoint


def test_an_inner_rollback_keeps_what_the_outer_savepoint_did(
    store: RecordStore, owner: str
) -> None:
    store.begin()
    store.insert(TASK, {"Subject": "outer"}, owner, NOW)
    store.begin()
    store.insert(TASK, {"Subject": "inner"}, owner, NOW)
    store.rollback()
    store.release()
    assert [t["Subject"] for t in store.live("Task")] == ["outer"]


@pytest.mark.parametrize("value", ["inf", "-Infinity", "nan", "1e999", 1e999])
def test_numbers_that_are_not_finite_are_refused_as_the_wrong_type(
    store: RecordStore, owner: str, value: object
) -> None:
    account = schema.OBJECTS["Account"]
    for field in ("NumberOfEmployees", "AnnualRevenue"):
        error = failure(lambda: store.insert(account, {"Name": "A", field: value}, owner, NOW))  # noqa: B023
        assert (error.code, error.fields) == ("INVALID_TYPE_ON_FIELD_IN_RECORD", [field])


@pytest.mark.parametrize(
    "values",
    [
        {"StartDateTime": "2026-12-01T15:00:00Z", "DurationInMinutes": 10_000_000_000},
        {"StartDateTime": "9999-12-31T23:00:00Z", "DurationInMinutes": 120},
        {"StartDateTime": "9999-12-31T23:00:00Z", "DurationInMinutes": 120, "IsAllDayEvent": True},
        {"StartDateTime": "2026-12-01T15:00:00Z", "DurationInMinutes": -5},
    ],
)
def test_an_event_time_past_what_a_calendar_holds_is_refused(
    store: RecordStore, owner: str, values: dict[str, object]
) -> None:
    error = failure(lambda: store.insert(EVENT, values, owner, NOW))
    assert error.code == "FIELD_INTEGRITY_EXCEPTION"
    assert error.fields == ["DurationInMinutes"]
