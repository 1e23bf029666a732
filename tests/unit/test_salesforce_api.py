"""The composite protocol's pure parts: packing subrequests within Salesforce's limits and reading
its error bodies."""

from __future__ import annotations

import pytest

from quotasync.salesforce import api


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
