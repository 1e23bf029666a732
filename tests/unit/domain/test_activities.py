from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.activities import (
    EMAIL_KINDS,
    FOLLOW_UP_KINDS,
    MEETING_KINDS,
    Activity,
    InvalidActivity,
    Kind,
    Meeting,
    Problem,
    email_address_problem,
    parse_activity,
)
from tests.unit.domain.builders import REP, T0, meeting, payload

TIME_HINT = "ISO-8601 time with a UTC offset, e.g. 2026-11-28T09:30:00+01:00"


def problems_of(raw: object) -> dict[str, str]:
    with pytest.raises(InvalidActivity) as caught:
        parse_activity(raw)
    return {problem.field: problem.message for problem in caught.value.problems}


# Kinds


def test_there_are_seven_kinds_in_an_email_family_and_a_meeting_family() -> None:
    assert len(Kind) == 7
    assert set(Kind) == EMAIL_KINDS | MEETING_KINDS
    assert not EMAIL_KINDS & MEETING_KINDS
    assert set(FOLLOW_UP_KINDS) == {Kind.EMAIL_OPENED, Kind.LINK_CLICKED, Kind.EMAIL_REPLIED}
    assert Kind("meeting_canceled") is Kind.MEETING_CANCELED


# What a valid item becomes


def test_a_sent_email_is_read_with_all_its_fields() -> None:
    activity = parse_activity(
        payload("email_sent", cc=["boss@acme.com"], subject="Pricing", body="Hi")
    )
    assert activity == Activity(
        id="email_sent-1",
        kind=Kind.EMAIL_SENT,
        occurred_at=T0,
        user_email=REP,
        to=("buyer@acme.com",),
        cc=("boss@acme.com",),
        subject="Pricing",
        body="Hi",
    )


def test_times_are_normalised_to_utc() -> None:
    activity = parse_activity(payload("email_sent", occurred_at="2026-11-28T10:30:00+01:00"))
    assert activity.occurred_at == T0
    assert activity.occurred_at.tzinfo is UTC


def test_a_z_suffix_counts_as_a_utc_offset() -> None:
    assert (
        parse_activity(payload("email_sent", occurred_at="2026-11-28T09:30:00Z")).occurred_at == T0
    )


def test_email_addresses_are_lower_cased() -> None:
    activity = parse_activity(
        payload("email_sent", user_email="Rep@Seller.IO", to=["Buyer@ACME.com"], cc=["X@Y.Com"])
    )
    assert (activity.user_email, activity.to, activity.cc) == (
        REP,
        ("buyer@acme.com",),
        ("x@y.com",),
    )


def test_a_booked_meeting_is_read_with_its_times_in_utc_and_attendees_lower_cased() -> None:
    raw = payload(
        "meeting_booked",
        meeting=meeting("2026-12-01T16:00:00+01:00", location="Zoom", attendees=["A@B.com"]),
    )
    assert parse_activity(raw).meeting == Meeting(
        start=datetime(2026, 12, 1, 15, 0, tzinfo=UTC),
        end=datetime(2026, 12, 1, 15, 30, tzinfo=UTC),
        location="Zoom",
        attendees=("a@b.com",),
    )


def test_a_meeting_may_end_when_it_starts() -> None:
    raw = payload("meeting_booked", meeting=meeting(minutes=0))
    activity = parse_activity(raw)
    assert activity.meeting is not None
    assert activity.meeting.start == activity.meeting.end


@pytest.mark.parametrize(
    ("kind", "field", "value"),
    [
        ("email_opened", "email_id", "e1"),
        ("link_clicked", "url", "https://seller.io/pricing"),
        ("meeting_canceled", "meeting_id", "m1"),
    ],
)
def test_each_kind_keeps_the_reference_it_needs(kind: str, field: str, value: str) -> None:
    assert getattr(parse_activity(payload(kind)), field) == value


def test_references_that_do_not_belong_to_the_kind_are_dropped() -> None:
    raw = payload(
        "email_sent",
        email_id="e0",
        url="https://x.io",
        meeting_id="m0",
        meeting=meeting(),
    )
    activity = parse_activity(raw)
    assert (activity.email_id, activity.url, activity.meeting_id, activity.meeting) == (
        None,
        None,
        None,
        None,
    )


def test_null_counts_as_absent() -> None:
    raw = payload("email_sent", cc=None) | {"cc": None, "subject": None, "body": None}
    activity = parse_activity(raw)
    assert (activity.cc, activity.subject, activity.body) == ((), None, None)


def test_unknown_top_level_keys_are_ignored() -> None:
    raw = payload("email_sent") | {"thread_id": "t-9", "tracking": {"pixel": True}}
    assert parse_activity(raw).id == "email_sent-1"


def test_a_cancellation_needs_no_meeting() -> None:
    assert parse_activity(payload("meeting_canceled")).meeting is None


def test_an_update_carries_the_new_meeting() -> None:
    activity = parse_activity(payload("meeting_updated"))
    assert activity.meeting is not None
    assert activity.meeting.start == datetime(2026, 12, 2, 15, 0, tzinfo=UTC)


# Problems


@pytest.mark.parametrize("raw", [[], "email_sent", 3, None, True])
def test_an_item_that_is_not_an_object_is_refused_as_a_whole(raw: object) -> None:
    problems = problems_of(raw)
    assert list(problems) == [""]
    assert "must be a JSON object" in problems[""]


def test_every_problem_of_an_item_is_reported_at_once() -> None:
    raw = {
        "kind": "email_sent",
        "occurred_at": "2026-11-28T09:30:00",
        "user_email": "rep",
        "to": ["ok@acme.com", "not an address", 7],
        "subject": 12,
    }
    assert set(problems_of(raw)) == {"id", "occurred_at", "user_email", "to[1]", "to[2]", "subject"}


def test_the_error_carries_the_item_id_when_it_could_be_read() -> None:
    with pytest.raises(InvalidActivity) as caught:
        parse_activity(payload("email_sent", occurred_at="yesterday"))
    assert caught.value.activity_id == "email_sent-1"
    assert isinstance(caught.value, ValueError)
    assert str(caught.value).startswith("occurred_at: must be an ISO-8601 time")


def test_an_error_without_a_readable_id_carries_none() -> None:
    with pytest.raises(InvalidActivity) as caught:
        parse_activity(payload("email_sent", id=None))
    assert caught.value.activity_id is None


def test_a_missing_id_is_required() -> None:
    assert problems_of(payload("email_sent", id=None)) == {"id": "is required"}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 256, "must be at most 255 characters, got 256"),
        (42, "must be a string, got a number"),
    ],
)
def test_an_id_must_be_a_usable_external_id(value: object, message: str) -> None:
    assert problems_of(payload("email_sent", id=value)) == {"id": message}


def test_an_id_of_255_characters_is_accepted() -> None:
    assert parse_activity(payload("email_sent", id="x" * 255)).id == "x" * 255


def test_a_missing_kind_lists_the_seven_kinds() -> None:
    message = problems_of(payload("email_sent", kind=None))["kind"]
    assert message.startswith("is required: one of email_sent, email_opened")
    assert message.endswith("meeting_canceled")


def test_an_unknown_kind_is_named_in_the_message() -> None:
    message = problems_of(payload("email_sent", kind="email_bounced"))["kind"]
    assert "must be one of email_sent" in message
    assert "'email_bounced'" in message


def test_a_time_without_an_offset_is_refused_and_the_message_says_so() -> None:
    message = problems_of(payload("email_sent", occurred_at="2026-11-28T09:30:00"))["occurred_at"]
    assert message.startswith("has no UTC offset")
    assert TIME_HINT in message


@pytest.mark.parametrize(
    "value", ["yesterday", "28/11/2026 09:30", "2026-13-01T00:00:00Z", 1764322200]
)
def test_a_time_that_is_not_iso_8601_shows_an_example(value: object) -> None:
    assert TIME_HINT in problems_of(payload("email_sent", occurred_at=value))["occurred_at"]


def test_a_date_alone_is_not_a_time() -> None:
    message = problems_of(payload("email_sent", occurred_at="2026-11-28"))["occurred_at"]
    assert "has no UTC offset" in message


def test_a_missing_time_is_required_and_the_format_is_shown() -> None:
    message = problems_of(payload("email_sent", occurred_at=None))["occurred_at"]
    assert message.startswith("is required")
    assert TIME_HINT in message


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("jane", "exactly one @"),
        ("jane@@acme.com", "exactly one @"),
        ("a@b@acme.com", "exactly one @"),
        ("@acme.com", "nothing before the @"),
        ("jane@acme", "domain with a dot"),
        ("jane@acme.", "domain with a dot"),
        ("jane@.com", "domain with a dot"),
        ("jane@acme..com", "domain with a dot"),
        ("Jane Doe <jane@acme.com>", "contains a space"),
        ("jane@acme.com\n", "contains a space"),
        ("j" * 250 + "@acme.com", "longer than 254"),
    ],
)
def test_a_rep_address_must_be_a_plausible_email(address: str, reason: str) -> None:
    message = problems_of(payload("email_sent", user_email=address))["user_email"]
    assert "is not a valid email address" in message
    assert reason in message


def test_the_rep_address_is_required() -> None:
    assert problems_of(payload("email_opened", user_email=None)) == {
        "user_email": "is required: an email address like jane@example.com"
    }


def test_a_bad_recipient_is_named_by_its_position() -> None:
    raw = payload("email_sent", to=["a@acme.com", "b@acme.com", "c-at-acme.com"], cc=["nope"])
    assert set(problems_of(raw)) == {"to[2]", "cc[0]"}


def test_recipients_must_be_a_list() -> None:
    problems = problems_of(payload("email_sent", to="buyer@acme.com"))
    assert problems == {"to": "must be a list of email addresses, got a string"}


def test_a_recipient_that_is_not_a_string_is_refused() -> None:
    problems = problems_of(payload("email_sent", to=[{"email": "buyer@acme.com"}]))
    assert problems == {"to[0]": "must be an email address string, got an object"}


def test_a_sent_email_needs_at_least_one_recipient() -> None:
    expected = {"to": "must list at least one recipient address for email_sent"}
    assert problems_of(payload("email_sent", to=[])) == expected
    assert problems_of(payload("email_sent", to=None)) == expected


def test_a_follow_up_needs_no_recipients() -> None:
    assert parse_activity(payload("email_opened")).to == ()


@pytest.mark.parametrize("field", ["subject", "body"])
def test_subject_and_body_must_be_strings(field: str) -> None:
    assert problems_of(payload("email_sent", **{field: ["Hi"]})) == {
        field: "must be a string, got a list"
    }


@pytest.mark.parametrize("kind", ["email_opened", "link_clicked", "email_replied"])
def test_a_follow_up_must_name_its_email(kind: str) -> None:
    assert problems_of(payload(kind, email_id=None)) == {"email_id": f"is required for {kind}"}


def test_a_click_must_carry_the_url_that_was_clicked() -> None:
    message = problems_of(payload("link_clicked", url=None))["url"]
    assert message.startswith("is required for link_clicked")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://seller.io/file",
        "javascript:alert(1)",
        "seller.io/pricing",
        "https://",
        "https://seller.io/a b",
    ],
)
def test_a_clicked_url_must_be_http_or_https(url: str) -> None:
    message = problems_of(payload("link_clicked", url=url))["url"]
    assert message.startswith("must be an http or https URL")


def test_an_http_url_is_accepted_as_sent() -> None:
    url = "HTTP://seller.io/pricing?utm=x#top"
    assert parse_activity(payload("link_clicked", url=url)).url == url


@pytest.mark.parametrize("kind", ["meeting_booked", "meeting_updated"])
def test_a_booking_or_an_update_must_carry_the_meeting(kind: str) -> None:
    message = problems_of(payload(kind, meeting=None))["meeting"]
    assert message == f"is required for {kind}: an object with start and end"


def test_a_meeting_must_be_an_object() -> None:
    problems = problems_of(payload("meeting_booked", meeting="tomorrow at 4"))
    assert problems == {"meeting": "must be an object with start and end, got a string"}


def test_meeting_problems_are_named_by_their_dotted_path() -> None:
    raw = payload(
        "meeting_booked",
        meeting={
            "start": "2026-12-01T16:00:00",
            "location": 5,
            "attendees": ["a@b.com", "bad"],
        },
    )
    problems = problems_of(raw)
    assert set(problems) == {
        "meeting.start",
        "meeting.end",
        "meeting.location",
        "meeting.attendees[1]",
    }
    assert problems["meeting.start"].startswith("has no UTC offset")
    assert problems["meeting.end"].startswith("is required")


def test_a_meeting_cannot_end_before_it_starts() -> None:
    raw = payload("meeting_booked", meeting=meeting(minutes=-1))
    assert problems_of(raw) == {"meeting.end": "must not be before meeting.start"}


def test_end_before_start_is_compared_as_instants_across_offsets() -> None:
    # 16:30+01:00 is 15:30 UTC, after 15:00 UTC, even though 15:00 < 16:30 on the clock face.
    raw = payload(
        "meeting_booked",
        meeting={"start": "2026-12-01T15:00:00Z", "end": "2026-12-01T16:30:00+01:00"},
    )
    assert parse_activity(raw).meeting is not None


@pytest.mark.parametrize("kind", ["meeting_updated", "meeting_canceled"])
def test_a_meeting_change_must_name_its_meeting(kind: str) -> None:
    assert problems_of(payload(kind, meeting_id=None)) == {"meeting_id": f"is required for {kind}"}


def test_with_an_unknown_kind_the_other_fields_are_still_checked() -> None:
    problems = problems_of(payload("email_sent", kind="fax_sent", to=["nope"]))
    assert set(problems) == {"kind", "to[0]"}


def test_a_long_bad_value_is_shortened_in_the_message() -> None:
    message = problems_of(payload("email_sent", occurred_at="x" * 10_000))["occurred_at"]
    assert len(message) < 200
    assert "…" in message


def test_a_problem_reads_as_field_then_message() -> None:
    assert str(Problem("meeting.end", "is required")) == "meeting.end: is required"
    assert (
        str(Problem("", "an activity must be a JSON object")) == "an activity must be a JSON object"
    )


# Text that cannot be stored or sent (each was a 500 in the ingest API)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-00:01"])
def test_a_time_out_of_range_once_in_utc_is_refused(value: str) -> None:
    message = problems_of(payload("email_sent", occurred_at=value))["occurred_at"]
    assert message.startswith("is out of range once in UTC")
    start = meeting(start="2026-12-01T16:00:00+01:00") | {"start": value}
    assert "meeting.start" in problems_of(payload("meeting_booked", meeting=start))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", "\ud800"),
        ("subject", "Hi \udfff"),
        ("body", "\udc80"),
        ("email_id", "e\ud800"),
        ("meeting_id", "m\ud800"),
    ],
)
def test_a_string_with_a_lone_surrogate_is_refused(field: str, value: str) -> None:
    kind = {"email_id": "email_opened", "meeting_id": "meeting_canceled"}.get(field, "email_sent")
    assert "lone surrogate" in problems_of(payload(kind, **{field: value}))[field]


def test_an_address_with_a_lone_surrogate_or_a_control_character_is_refused() -> None:
    problems = problems_of(payload("email_sent", user_email="rep\ud800@acme.io", to=["a\x00@b.io"]))
    assert "lone surrogate" in problems["user_email"]
    assert "control character" in problems["to[0]"]


def test_an_id_with_a_nul_is_refused() -> None:
    assert problems_of(payload("email_sent", id="a\x00b")) == {
        "id": "must not contain a NUL character"
    }


@given(
    st.sampled_from(["id", "user_email", "to", "subject", "body", "occurred_at"]),
    st.text(st.sampled_from("a@.\x00\x07\ud800\udfffé"), max_size=12),
)
def test_whatever_is_accepted_can_be_encoded_as_utf_8(field: str, text: str) -> None:
    raw = payload("email_sent") | {field: [text] if field == "to" else text}
    try:
        activity = parse_activity(raw)
    except InvalidActivity:
        return
    assert str(activity).encode("utf-8")
    assert "\x00" not in activity.id + activity.user_email


# The dataclasses' own guards (for code that builds activities without parsing)


def test_an_activity_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Activity(id="a", kind=Kind.EMAIL_SENT, occurred_at=datetime(2026, 1, 1), user_email=REP)


def test_a_meeting_refuses_to_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before"):
        Meeting(start=T0, end=T0 - timedelta(seconds=1))


# Properties

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)
field_names = st.sampled_from(
    [
        "id",
        "kind",
        "occurred_at",
        "user_email",
        "to",
        "cc",
        "subject",
        "body",
        "email_id",
        "url",
        "meeting",
        "meeting_id",
    ]
)


@given(st.dictionaries(field_names, json_values) | json_values)
def test_any_json_value_is_either_an_activity_or_a_list_of_problems(raw: Any) -> None:
    try:
        parse_activity(raw)
    except InvalidActivity as error:
        assert error.problems
        assert all(problem.message for problem in error.problems)


@given(st.sampled_from(list(Kind)), st.dictionaries(field_names, json_values, max_size=3))
def test_breaking_fields_of_a_valid_item_never_raises_anything_but_invalid_activity(
    kind: Kind, changes: dict[str, Any]
) -> None:
    raw = payload(kind.value) | changes
    try:
        parse_activity(raw)
    except InvalidActivity as error:
        assert error.problems


@given(
    st.datetimes(
        min_value=datetime(1970, 1, 2),
        max_value=datetime(9999, 12, 30),
        timezones=st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
            lambda minutes: timezone(timedelta(minutes=minutes))
        ),
    )
)
def test_any_offset_time_is_read_as_the_same_instant_in_utc(moment: datetime) -> None:
    activity = parse_activity(payload("email_sent", occurred_at=moment.isoformat()))
    assert activity.occurred_at == moment
    assert activity.occurred_at.utcoffset() == timedelta(0)


@given(
    st.from_regex(r"[A-Za-z0-9._%+-]{1,20}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9-]{1,15}(\.[A-Za-z]{2,6}){1,2}", fullmatch=True),
)
def test_any_plain_address_is_accepted_and_lower_cased(local: str, domain: str) -> None:
    address = f"{local}@{domain}"
    assert email_address_problem(address) is None
    assert parse_activity(payload("email_sent", to=[address])).to == (address.lower(),)
