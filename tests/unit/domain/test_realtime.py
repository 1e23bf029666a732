"""Real-Time Sync pushes: only the org's, only fresh ones, read exactly (issue 5, item 4)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.realtime import PushInvalid, PushRefused, parse, rows, sign, verify

SECRET = "s3cret-of-this-workspace"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ORG = "00D000000000001AAA"
CONTACT = "003000000000001AAA"


def push_body(**change: Any) -> bytes:
    item = {
        "sobject": "Contact",
        "id": CONTACT,
        "change": "updated",
        "systemModstamp": "2026-11-28T11:59:00.000+0000",
        "fields": {"Email": "ada@example.com", "Title": "CTO"},
        **change,
    }
    return json.dumps({"organizationId": ORG, "changes": [item]}).encode()


def stamp(at: datetime = NOW) -> str:
    return str(int(at.timestamp()))


def test_a_push_signed_with_the_secret_now_is_taken() -> None:
    body = push_body()
    verify(SECRET, stamp(), sign(SECRET, stamp(), body), body, NOW)


def test_a_push_signed_with_another_secret_is_refused() -> None:
    body = push_body()
    with pytest.raises(PushRefused, match="signature"):
        verify(SECRET, stamp(), sign("not-the-secret", stamp(), body), body, NOW)


def test_a_changed_body_breaks_the_signature() -> None:
    body = push_body()
    signature = sign(SECRET, stamp(), body)
    with pytest.raises(PushRefused, match="signature"):
        verify(SECRET, stamp(), signature, push_body(change="deleted"), NOW)


def test_a_push_replayed_ten_minutes_later_is_refused_as_stale() -> None:
    body = push_body()
    sent = stamp(NOW - timedelta(minutes=10))
    with pytest.raises(PushRefused, match="stale"):
        verify(SECRET, sent, sign(SECRET, sent, body), body, NOW)


def test_a_push_from_a_clock_slightly_ahead_is_taken() -> None:
    body = push_body()
    sent = stamp(NOW + timedelta(minutes=4))
    verify(SECRET, sent, sign(SECRET, sent, body), body, NOW)


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [(None, "sha256=00"), ("1700000000", None), ("", ""), ("-5", "sha256=00"), ("1e9", "x")],
)
def test_a_push_without_a_readable_signature_is_refused(
    timestamp: str | None, signature: str | None
) -> None:
    with pytest.raises(PushRefused):
        verify(SECRET, timestamp, signature, push_body(), NOW)


def test_a_signature_beyond_ascii_is_refused_not_an_error() -> None:
    with pytest.raises(PushRefused, match="signature"):
        verify(SECRET, stamp(), "sha256=é", push_body(), NOW)


@pytest.mark.parametrize("timestamp", ["²", "999999999999"])
def test_a_signed_timestamp_that_is_no_unix_second_is_refused(timestamp: str) -> None:
    body = push_body()
    with pytest.raises(PushRefused, match="unix seconds"):
        verify(SECRET, timestamp, sign(SECRET, timestamp, body), body, NOW)


def test_the_org_packages_signing_vector_is_what_the_intake_computes() -> None:
    # The same secret, timestamp and body are asserted by the org package's Apex test
    # (QS_RealtimeSyncTest.theSigningVectorIsTheOneQuotasyncChecks): the sides cannot drift.
    body = b'{"organizationId":"00D5g0000000001AAA","changes":[]}'
    expected = "sha256=fe92de0381770902fcbb07ff5df2bbd254d8d0f4cca60b64ad1a15a22794008e"
    assert sign("qs-signing-vector", 1764331200, body) == expected
    verify(
        "qs-signing-vector", "1764331200", expected, body, datetime.fromtimestamp(1764331200, UTC)
    )


def test_a_user_change_is_pushed_like_the_other_mirrored_objects() -> None:
    user = "005000000000001AAA"
    [row] = rows(parse(push_body(sobject="User", id=user, fields={"IsActive": False})))["User"]
    assert row["Id"] == user and row["IsActive"] is False


def test_a_push_becomes_mirror_rows_with_its_modstamp_and_deletes_as_tombstones() -> None:
    updated = parse(push_body())
    [row] = rows(updated)["Contact"]
    assert row["Id"] == CONTACT and row["Email"] == "ada@example.com"
    assert row["IsDeleted"] is False
    assert datetime.fromisoformat(row["SystemModstamp"]) == datetime(
        2026, 11, 28, 11, 59, tzinfo=UTC
    )
    [gone] = rows(parse(push_body(change="deleted", fields={})))["Contact"]
    assert gone["IsDeleted"] is True


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"sobject": "Task"}, "sobject"),
        ({"id": "003short"}, "id"),
        ({"change": "merged"}, "change"),
        ({"systemModstamp": "yesterday"}, "systemModstamp"),
        ({"systemModstamp": "2026-11-28T11:59:00"}, "systemModstamp"),  # no offset
        ({"fields": ["Email"]}, "fields"),
        ({"systemModstamp": "0001-01-01T00:00:00+01:00"}, "systemModstamp"),  # before year 1
    ],
)
def test_an_unreadable_change_is_named(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(PushInvalid, match=rf"changes\[0\]\.{problem}"):
        parse(push_body(**change))


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"organizationId": "00D", "changes": []}',
        json.dumps({"organizationId": ORG, "changes": []}).encode(),
        b"[" * 100_000,  # deeper than json.loads can go
    ],
)
def test_a_body_that_is_not_a_push_is_invalid(body: bytes) -> None:
    with pytest.raises(PushInvalid):
        parse(body)


@given(st.binary(max_size=300))
def test_any_bytes_are_read_or_refused_with_a_reason(body: bytes) -> None:
    try:
        parse(body)
    except PushInvalid as problem:
        assert str(problem)
