"""The REST protocol: packing subrequests within Salesforce's limits, building them, reading error
bodies and records' results, and single requests through the governed seam (an org in the
process: `salesforce_fakes`)."""

from __future__ import annotations

import pytest

from quotasync.errors import QuotaExhausted, Refused, SessionExpired, Unreachable
from quotasync.salesforce import api
from tests.unit.salesforce_fakes import FakeClient, Reply, Sent


def upsert(n: int = 0) -> api.Subrequest:
    return api.Subrequest("PATCH", f"composite/sobjects/Task/QS_Activity_Id__c#{n}", {})


def test_five_collections_go_in_one_composite_and_a_sixth_starts_the_next() -> None:
    calls = api.pack([upsert(i) for i in range(11)])
    assert [len(call) for call in calls] == [5, 5, 1]
    assert [sub for call in calls for sub in call] == [upsert(i) for i in range(11)]


def test_queries_count_against_the_five_and_plain_subrequests_against_the_25() -> None:
    query = api.Subrequest("GET", "query/?q=SELECT+Id+FROM+Contact")
    more = api.Subrequest("GET", "query/01gxx-2000")
    all_rows = api.Subrequest("GET", "queryAll/?q=SELECT+Id+FROM+Task")
    assert all(s.heavy for s in (query, more, all_rows, upsert()))
    plain = [api.Subrequest("POST", "sobjects/Account", {"Name": str(i)}) for i in range(30)]
    assert not plain[0].heavy
    assert [len(call) for call in api.pack(plain)] == [25, 5]
    # Plain subrequests may fill a composite past its five heavy ones, up to 25 in all.
    mixed = api.pack([query, more, all_rows, upsert(), upsert(1), *plain[:3], upsert(2)])
    assert [len(call) for call in mixed] == [8, 1]
    assert sum(s.heavy for s in mixed[0]) == 5
    assert [len(call) for call in api.pack([*plain[:24], query, more])] == [25, 1]


def test_a_smaller_shape_packs_fewer_and_an_impossible_one_is_refused() -> None:
    assert [len(call) for call in api.pack([upsert(i) for i in range(3)], max_heavy=1)] == [1] * 3
    with pytest.raises(ValueError):
        api.pack([upsert()], max_heavy=6)
    with pytest.raises(ValueError):
        api.pack([upsert()], max_total=0)


def test_error_bodies_of_every_shape_read_as_a_code_and_a_message() -> None:
    request = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    record = [{"statusCode": "STRING_TOO_LONG", "message": "Subject: too long", "fields": []}]
    oauth = {"error": "invalid_grant", "error_description": "expired access/refresh token"}
    assert api.fault(request) == api.Fault(
        "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
    )
    assert str(api.fault(record)) == "STRING_TOO_LONG: Subject: too long"
    assert api.fault(oauth).code == "invalid_grant"
    # The org's answer is untrusted: anything else is an unknown error, never a crash.
    for odd in (None, [], "<html>", 42, [None], [{"errorCode": None}]):
        assert api.fault(odd).code == "UNKNOWN_EXCEPTION"
    assert len(api.fault([{"errorCode": "X", "message": "m" * 5000}]).message) == 1000


# ---------------------------------------------------------------- building subrequests


def test_collections_subrequests_carry_their_records_typed_and_each_answered_alone() -> None:
    sub = api.upsert_collection("Task", "QS_Activity_Id__c", [{"Subject": "a"}, {"Subject": "b"}])
    assert (sub.method, sub.path, sub.heavy) == (
        "PATCH",
        "composite/sobjects/Task/QS_Activity_Id__c",
        True,
    )
    assert sub.body == {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Task"}, "Subject": "a"},
            {"attributes": {"type": "Task"}, "Subject": "b"},
        ],
    }
    created = api.create_collection("Lead", [{"LastName": "x"}])
    assert (created.method, created.path) == ("POST", "composite/sobjects")
    assert created.body["records"] == [{"attributes": {"type": "Lead"}, "LastName": "x"}]
    gone = api.delete_collection(["00T000000000001AAA", "00T000000000002AAA"])
    assert (gone.method, gone.path) == (
        "DELETE",
        "composite/sobjects?ids=00T000000000001AAA,00T000000000002AAA&allOrNone=false",
    )
    assert gone.heavy
    # An id is quoted: whatever the store holds cannot add a parameter to the request.
    assert api.delete_collection(["a&allOrNone=true"]).path.startswith(
        "composite/sobjects?ids=a%26"
    )
    assert api.describe("Event") == api.Subrequest("GET", "sobjects/Event/describe")


def test_a_collection_holds_1_to_200_records_of_a_type_with_an_api_name() -> None:
    assert api.upsert_collection("Task", "QS_Activity_Id__c", [{}] * 200).heavy
    with pytest.raises(ValueError):
        api.upsert_collection("Task", "QS_Activity_Id__c", [{}] * 201)
    with pytest.raises(ValueError):
        api.create_collection("Lead", [])
    with pytest.raises(ValueError):
        api.delete_collection([])
    for name in ("Task/../Event", "Task?x=1", "", "1Task"):
        with pytest.raises(ValueError):
            api.upsert_collection(name, "QS_Activity_Id__c", [{}])
        with pytest.raises(ValueError):
            api.describe(name)


def test_each_records_result_reads_as_its_id_or_its_fault() -> None:
    assert api.saved({"id": "00T1", "success": True, "errors": []}) == api.Saved("00T1")
    assert api.saved({"success": True, "errors": []}) == api.Saved(None)  # a delete's
    failed = api.saved(
        {"success": False, "errors": [{"statusCode": "STRING_TOO_LONG", "message": "Subject"}]}
    )
    assert failed == api.Saved(None, api.Fault("STRING_TOO_LONG", "Subject"))
    assert failed is not None and not failed.ok
    # Anything else from the org is no result at all, or an unknown error: never a crash.
    assert api.saved("<html>") is None
    assert api.saved(None) is None
    odd = api.saved({"success": "yes"})
    assert odd is not None and odd.fault == api.Fault("UNKNOWN_EXCEPTION", "")


# ---------------------------------------------------------------- one request, through the seam


def test_a_record_is_created_and_updated_one_governed_call_each() -> None:
    def answer(sent: Sent) -> Reply:
        if sent.method == "POST":
            return Reply(201, {"id": "a0B000000000001AAA", "success": True, "errors": []})
        return Reply(204)

    fake = FakeClient(answer)
    fields = {"Name": "quotasync", "Enabled__c": True}
    assert api.create_record(fake.client, "QS_Sync_Setting__c", fields) == "a0B000000000001AAA"
    api.update_record(fake.client, "QS_Sync_Setting__c", "a0B000000000001AAA", {"x": 1})
    assert fake.org.requests() == [
        ("POST", "sobjects/QS_Sync_Setting__c"),
        ("PATCH", "sobjects/QS_Sync_Setting__c/a0B000000000001AAA"),
    ]
    assert [s.json() for s in fake.org.sent] == [fields, {"x": 1}]
    assert fake.org.sent[0].headers["Authorization"] == "Bearer token-1"
    assert [(c.api, c.calls, c.method) for c in fake.ledger.calls] == [
        ("data", 1, "POST"),
        ("data", 1, "PATCH"),
    ]


def test_a_create_answered_without_an_id_is_unanswered() -> None:
    fake = FakeClient(lambda _: Reply(201, {"success": True}))
    with pytest.raises(Unreachable):
        api.create_record(fake.client, "QS_Sync_Setting__c", {})


def test_a_querys_first_page_is_read_on_its_own() -> None:
    body = {"totalSize": 1, "done": True, "records": [{"Id": "a0B1"}]}
    fake = FakeClient(lambda _: Reply(200, body))
    assert api.first_page(fake.client, "SELECT Id FROM X__c").records == [{"Id": "a0B1"}]
    (sent,) = fake.org.sent
    assert (sent.method, sent.path, sent.params) == ("GET", "query/", {"q": "SELECT Id FROM X__c"})
    odd = FakeClient(lambda _: Reply(200, {"records": "none"}))
    with pytest.raises(Unreachable):
        api.first_page(odd.client, "SELECT Id FROM X__c")


def test_an_expired_session_is_renewed_once_and_the_request_sent_again() -> None:
    def answer(sent: Sent) -> Reply:
        if sent.headers["Authorization"] == "Bearer token-1":
            return Reply(401, [{"errorCode": "INVALID_SESSION_ID", "message": "expired"}])
        return Reply(204)

    fake = FakeClient(answer)
    api.update_record(fake.client, "Task", "00T1", {})
    assert [s.headers["Authorization"] for s in fake.org.sent] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    # A second expiry in a row, or a renewal the org refuses: the grant is gone.
    always = FakeClient(lambda _: Reply(401, [{"errorCode": "INVALID_SESSION_ID"}]))
    with pytest.raises(SessionExpired):
        api.update_record(always.client, "Task", "00T1", {})
    assert len(always.org.sent) == 2
    revoked = FakeClient(answer)
    revoked.renewable = False
    with pytest.raises(SessionExpired):
        api.update_record(revoked.client, "Task", "00T1", {})
    assert len(revoked.org.sent) == 1


def test_a_refusal_carries_its_fault_and_no_answer_is_unanswered() -> None:
    limit = [{"errorCode": "REQUEST_LIMIT_EXCEEDED", "message": "TotalRequests Limit exceeded."}]
    fake = FakeClient(lambda _: Reply(403, limit))
    with pytest.raises(Refused) as refused:
        api.create_record(fake.client, "Task", {})
    assert refused.value.status == 403
    assert refused.value.fault == api.Fault(
        "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."
    )
    html = FakeClient(lambda _: Reply(503, "<html>down for maintenance</html>"))
    with pytest.raises(Refused) as unavailable:
        api.update_record(html.client, "Task", "00T1", {})
    assert unavailable.value.fault.code == "UNKNOWN_EXCEPTION"
    assert "maintenance" in unavailable.value.fault.message
    down = FakeClient(lambda _: Reply())
    down.org.down = True
    with pytest.raises(Unreachable):
        api.update_record(down.client, "Task", "00T1", {})
    assert [c.api for c in down.ledger.calls] == ["data"]  # reserved before it was sent


def test_no_room_in_the_ledger_sends_nothing() -> None:
    fake = FakeClient(lambda _: Reply(204))
    fake.caps = {"data": 0}
    with pytest.raises(QuotaExhausted):
        api.update_record(fake.client, "Task", "00T1", {})
    assert fake.org.sent == []


def test_a_composite_goes_as_one_call_and_answers_each_subrequest() -> None:
    def answer(sent: Sent) -> Reply:
        subrequests = sent.json()["compositeRequest"]
        return Reply(
            200,
            {
                "compositeResponse": [
                    {"referenceId": s["referenceId"], "httpStatusCode": 200, "body": s["url"]}
                    for s in subrequests
                ]
            },
        )

    fake = FakeClient(answer)
    answers = api.composite(fake.client, [api.describe("Task"), api.query("SELECT Id FROM Task")])
    assert [a.body for a in answers] == [
        "/services/data/v62.0/sobjects/Task/describe",
        "/services/data/v62.0/query?q=SELECT+Id+FROM+Task",
    ]
    assert fake.org.requests() == [("POST", "composite")]
    assert fake.spent() == 1
