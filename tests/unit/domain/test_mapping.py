from __future__ import annotations

from datetime import UTC, datetime
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quotasync.domain.activities import Activity, Kind
from quotasync.domain.mapping import (
    DEFAULT_UNMATCHED,
    DESCRIPTION_LIMIT,
    EXTERNAL_ID_LIMIT,
    Links,
    Unmatched,
    cut,
    event_fields,
    external_id,
    fold,
    lead_fields,
    people_to_match,
    record_key,
    reply_line,
    salesforce_datetime,
    task_description,
    task_fields,
)
from tests.unit.domain.builders import (
    REP,
    booked,
    build,
    canceled,
    clicked,
    meeting,
    opened,
    replied,
    sent,
    updated,
)

LINKS = Links(who_id="003RO0000035WQgYAM", owner_id="005RO0000012345AAA")
NO_LINKS = Links()


# Which record


@pytest.mark.parametrize(
    ("activity", "key"),
    [
        (sent("e1"), ("Task", "e1")),
        (opened("o1", email_id="e1"), ("Task", "e1")),
        (clicked("c1", email_id="e1"), ("Task", "e1")),
        (replied("r1", email_id="e1"), ("Task", "e1")),
        (booked("m1"), ("Event", "m1")),
        (updated("u1", meeting_id="m1"), ("Event", "m1")),
        (canceled("x1", meeting_id="m1"), ("Event", "m1")),
    ],
)
def test_each_kind_writes_to_its_email_task_or_its_meeting_event(
    activity: Activity, key: tuple[str, str]
) -> None:
    assert record_key(activity) == key


def test_a_follow_up_built_without_its_email_id_is_a_programming_error() -> None:
    orphan = Activity(
        id="o1", kind=Kind.EMAIL_OPENED, occurred_at=datetime.now(UTC), user_email=REP
    )
    with pytest.raises(ValueError, match="has no email_id"):
        record_key(orphan)


def test_a_batch_folds_into_one_group_per_record_in_arrival_order() -> None:
    batch = [
        opened("o1", email_id="e1"),
        booked("m1"),
        clicked("c1", email_id="e1"),
        sent("e2"),
        opened("o2", email_id="e1"),
        canceled("x1", meeting_id="m1"),
    ]
    groups = fold(batch)
    assert list(groups) == [("Task", "e1"), ("Event", "m1"), ("Task", "e2")]
    assert [a.id for a in groups[("Task", "e1")]] == ["o1", "c1", "o2"]
    assert [a.id for a in groups[("Event", "m1")]] == ["m1", "x1"]


def test_an_empty_batch_folds_to_nothing() -> None:
    assert fold([]) == {}


# Who to match


def test_recipients_are_matched_to_then_cc_each_once_without_the_rep() -> None:
    email = sent(
        to=["b@acme.com", "a@acme.com", REP], cc=["a@acme.com", "c@acme.com", "Rep@Seller.io"]
    )
    assert people_to_match(email) == ("b@acme.com", "a@acme.com", "c@acme.com")


def test_meeting_attendees_are_matched_without_the_rep() -> None:
    meeting_ = booked(meeting=meeting(attendees=[REP, "buyer@acme.com", "buyer@acme.com"]))
    assert people_to_match(meeting_) == ("buyer@acme.com",)


def test_a_cancellation_has_nobody_to_match() -> None:
    assert people_to_match(canceled("x1")) == ()


# Whose record: the external id


def test_a_workspace_with_a_prefix_writes_its_own_external_ids() -> None:
    assert external_id("k3x9a2b1", "a-1") == "k3x9a2b1:a-1"
    assert external_id("0000zzzz", "a-1") != external_id("k3x9a2b1", "a-1")


def test_a_workspace_from_before_prefixes_keeps_the_bare_activity_id() -> None:
    # Its records in the org were written under the bare id: a follow-up must still find them.
    assert external_id(None, "a-1") == "a-1"


@pytest.mark.parametrize("prefix", ["", "K3X9A2B1", "k3x9a2b", "k3x9a2b1x", "k3x9:2b1"])
def test_anything_but_a_workspace_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="is not a workspace prefix"):
        external_id(prefix, "a-1")


def test_a_key_too_long_to_follow_the_prefix_keeps_its_head_and_ends_in_its_digest() -> None:
    longest = "x" * 255  # activity ids may take the field's whole length
    value = external_id("k3x9a2b1", longest)
    assert len(value) == EXTERNAL_ID_LIMIT
    assert value.startswith("k3x9a2b1:xxxx")
    assert value[-33] == "~"
    # Two long keys that differ only past the cut are still two records.
    assert external_id("k3x9a2b1", "x" * 254 + "y") != value
    # A key that fits exactly is kept whole.
    fits = "y" * (EXTERNAL_ID_LIMIT - 9)
    assert external_id("k3x9a2b1", fits) == "k3x9a2b1:" + fits


@given(st.text(min_size=1, max_size=255))
def test_every_accepted_id_fits_the_field(key: str) -> None:
    assert len(external_id("k3x9a2b1", key)) <= EXTERNAL_ID_LIMIT


def test_task_and_event_carry_the_workspaces_external_id() -> None:
    task = task_fields(sent("e1"), [], NO_LINKS, open_tracking=False, prefix="k3x9a2b1")
    event = event_fields(booked("m1"), [], NO_LINKS, prefix="k3x9a2b1")
    assert task["QS_Activity_Id__c"] == "k3x9a2b1:e1"
    assert event is not None and event["QS_Activity_Id__c"] == "k3x9a2b1:m1"


# Task


def test_a_sent_email_becomes_a_completed_email_task() -> None:
    fields = task_fields(
        sent(subject="Pricing", body="Hi there"), [], LINKS, open_tracking=True, prefix=None
    )
    assert fields == {
        "QS_Activity_Id__c": "e1",
        "TaskSubtype": "Email",
        "Status": "Completed",
        "Subject": "Email: Pricing",
        "ActivityDate": "2026-11-28",
        "Description": "Hi there",
        "WhoId": LINKS.who_id,
        "OwnerId": LINKS.owner_id,
        "QS_Opens__c": 0.0,
        "QS_Clicks__c": 0.0,
    }


def test_an_email_without_a_subject_is_titled_email() -> None:
    assert (
        task_fields(sent(subject=None), [], NO_LINKS, open_tracking=False, prefix=None)["Subject"]
        == "Email"
    )
    assert (
        task_fields(sent(subject="  \n"), [], NO_LINKS, open_tracking=False, prefix=None)["Subject"]
        == "Email"
    )


def test_a_subject_is_one_line() -> None:
    fields = task_fields(
        sent(subject="Pricing\r\n  for 2027"), [], NO_LINKS, open_tracking=False, prefix=None
    )
    assert fields["Subject"] == "Email: Pricing for 2027"


def test_a_long_subject_is_cut_to_salesforces_255_characters() -> None:
    subject = task_fields(sent(subject="x" * 400), [], NO_LINKS, open_tracking=False, prefix=None)[
        "Subject"
    ]
    assert isinstance(subject, str)
    assert len(subject) == 255
    assert subject.startswith("Email: xxx")
    assert subject.endswith("x…")


def test_the_activity_date_is_the_utc_date() -> None:
    late_evening_in_new_york = sent(occurred_at="2026-11-28T21:30:00-05:00")
    fields = task_fields(late_evening_in_new_york, [], NO_LINKS, open_tracking=False, prefix=None)
    assert fields["ActivityDate"] == "2026-11-29"


def test_unknown_links_are_left_out_not_sent_as_null() -> None:
    fields = task_fields(sent(), [], Links(owner_id="005x"), open_tracking=False, prefix=None)
    assert "WhoId" not in fields
    assert fields["OwnerId"] == "005x"


def test_an_email_without_a_body_or_replies_has_no_description() -> None:
    assert "Description" not in task_fields(
        sent(body=None), [], NO_LINKS, open_tracking=False, prefix=None
    )


def test_opens_and_clicks_are_counted_as_totals() -> None:
    follow_ups = [opened("o1"), opened("o2"), clicked("c1"), opened("o3"), replied("r1")]
    fields = task_fields(sent(), follow_ups, NO_LINKS, open_tracking=True, prefix=None)
    assert (fields["QS_Opens__c"], fields["QS_Clicks__c"]) == (3.0, 1.0)
    assert isinstance(fields["QS_Opens__c"], float)


def test_a_follow_up_delivered_twice_counts_once() -> None:
    follow_ups = [opened("o1"), opened("o1"), replied("r1"), replied("r1")]
    fields = task_fields(sent(body=None), follow_ups, NO_LINKS, open_tracking=True, prefix=None)
    assert fields["QS_Opens__c"] == 1.0
    assert fields["Description"] == "Reply 2026-11-28 09:31 UTC: Re: Pricing"


def test_with_open_tracking_off_opens_and_clicks_are_not_written() -> None:
    fields = task_fields(
        sent(), [opened("o1"), clicked("c1")], NO_LINKS, open_tracking=False, prefix=None
    )
    assert "QS_Opens__c" not in fields
    assert "QS_Clicks__c" not in fields


def test_with_open_tracking_off_replies_are_still_written() -> None:
    fields = task_fields(
        sent(body="Hi"), [replied("r1")], NO_LINKS, open_tracking=False, prefix=None
    )
    assert fields["Description"] == "Hi\n\nReply 2026-11-28 09:31 UTC: Re: Pricing"


def test_replies_follow_the_body_one_line_each_in_the_order_they_happened() -> None:
    follow_ups = [
        replied("r2", minutes=90, subject="Re: Pricing (2)"),
        replied("r1", minutes=30, subject="Re: Pricing"),
    ]
    fields = task_fields(
        sent(body="Hi there"), follow_ups, NO_LINKS, open_tracking=False, prefix=None
    )
    assert fields["Description"] == (
        "Hi there\n\n"
        "Reply 2026-11-28 10:00 UTC: Re: Pricing\n"
        "Reply 2026-11-28 11:00 UTC: Re: Pricing (2)"
    )


def test_a_reply_without_a_subject_is_summed_up_by_its_first_line() -> None:
    reply = replied("r1", subject=None, body="\n\n  Works for me.  \nThanks, Bo")
    assert reply_line(reply) == "Reply 2026-11-28 09:31 UTC: Works for me."


def test_a_reply_with_nothing_to_show_is_just_its_time() -> None:
    assert reply_line(replied("r1", subject=None, body=None)) == "Reply 2026-11-28 09:31 UTC"


def test_a_reply_line_is_in_utc() -> None:
    reply = build("email_replied", occurred_at="2026-11-28T15:03:00+01:00")
    assert reply_line(reply).startswith("Reply 2026-11-28 14:03 UTC")


def test_a_huge_reply_subject_does_not_crowd_out_the_others() -> None:
    line = reply_line(replied("r1", subject="Re: " + "x" * 1000))
    assert len(line) == 255
    assert line.endswith("…")


def test_a_long_body_is_cut_first_so_every_reply_line_is_kept() -> None:
    follow_ups = [replied(f"r{i}", minutes=i) for i in range(1, 4)]
    fields = task_fields(
        sent(body="b" * 40_000), follow_ups, NO_LINKS, open_tracking=False, prefix=None
    )
    description = fields["Description"]
    assert isinstance(description, str)
    assert len(description) == DESCRIPTION_LIMIT
    assert description.startswith("bbb")
    assert "b…\n\nReply 2026-11-28 09:31 UTC" in description
    assert description.endswith("Reply 2026-11-28 09:33 UTC: Re: Pricing")


def test_a_long_body_alone_is_cut_to_32000_characters() -> None:
    description = task_description("b" * 32_001, [])
    assert description == "b" * 31_999 + "…"


def test_a_body_of_exactly_32000_characters_is_not_cut() -> None:
    assert task_description("b" * 32_000, []) == "b" * 32_000


def test_when_replies_alone_overflow_the_oldest_are_dropped_and_counted() -> None:
    lines = [f"Reply {i:05d}" + "." * 240 for i in range(200)]
    description = task_description("the body", lines)
    assert description is not None
    assert len(description) <= DESCRIPTION_LIMIT
    lines_shown = description.split("\n")
    notice = next(i for i, line in enumerate(lines_shown) if "earlier replies not shown" in line)
    kept = lines_shown[notice + 1 :]
    assert lines_shown[notice] == f"… {200 - len(kept)} earlier replies not shown"
    assert kept == lines[-len(kept) :]


def test_when_replies_fill_the_description_the_body_is_cut_to_a_mark() -> None:
    replies = "r" * (DESCRIPTION_LIMIT - 3)
    assert task_description("the body", [replies]) == "…\n\n" + replies


def test_the_body_mark_is_kept_even_when_that_costs_a_reply_line() -> None:
    replies = ["r" * 15_999, "r" * 15_999]  # 31,999 characters with the newline
    description = task_description("the body", replies)
    assert description == "the body\n\n… 1 earlier reply not shown\n" + "r" * 15_999


def test_replies_alone_may_use_the_whole_description() -> None:
    lines = ["r" * 3_199] * 10  # 10 lines and 9 newlines: exactly 32,000 characters
    assert task_description(None, lines) == "\n".join(lines)


@given(
    body=st.none() | st.text(max_size=40_000),
    lines=st.lists(
        st.text(alphabet="Reply: 0123456789abc", min_size=1, max_size=255), max_size=300
    ),
)
def test_a_description_never_exceeds_32000_and_keeps_the_newest_reply(
    body: str | None, lines: list[str]
) -> None:
    description = task_description(body, lines)
    if not body and not lines:
        assert description is None
        return
    assert description is not None
    assert len(description) <= DESCRIPTION_LIMIT
    if lines:
        assert description.endswith(lines[-1])


def test_follow_ups_of_another_email_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a follow-up of email 'e1'"):
        task_fields(
            sent("e1"), [opened("o1", email_id="e2")], NO_LINKS, open_tracking=True, prefix=None
        )


def test_a_meeting_change_among_follow_ups_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not a follow-up"):
        task_fields(sent("e1"), [canceled("x1")], NO_LINKS, open_tracking=True, prefix=None)


def test_a_task_must_start_from_its_sent_email() -> None:
    with pytest.raises(ValueError, match="expected a email_sent activity"):
        task_fields(opened("o1"), [], NO_LINKS, open_tracking=True, prefix=None)


follow_up_sets = st.lists(
    st.tuples(st.sampled_from(["opened", "clicked", "replied"]), st.integers(0, 600)),
    max_size=12,
)


def _follow_ups(specs: list[tuple[str, int]]) -> list[Activity]:
    makers = {"opened": opened, "clicked": clicked, "replied": replied}
    return [makers[name](f"{name}-{i}", minutes=m) for i, (name, m) in enumerate(specs)]


@given(follow_up_sets, st.randoms(use_true_random=False))
def test_the_task_does_not_depend_on_the_order_follow_ups_arrive_in(
    specs: list[tuple[str, int]], random: Random
) -> None:
    follow_ups = _follow_ups(specs)
    shuffled = list(follow_ups)
    random.shuffle(shuffled)
    # Replies at the same minute keep arrival order, so compare counts and the set of lines.
    first = task_fields(sent(), follow_ups, LINKS, open_tracking=True, prefix=None)
    second = task_fields(sent(), shuffled, LINKS, open_tracking=True, prefix=None)
    assert sorted(str(first["Description"]).splitlines()) == sorted(
        str(second["Description"]).splitlines()
    )
    assert {k: v for k, v in first.items() if k != "Description"} == {
        k: v for k, v in second.items() if k != "Description"
    }


@given(follow_up_sets)
def test_sending_the_same_task_again_changes_nothing(specs: list[tuple[str, int]]) -> None:
    follow_ups = _follow_ups(specs)
    once = task_fields(sent(), follow_ups, LINKS, open_tracking=True, prefix=None)
    again = task_fields(sent(), follow_ups + follow_ups, LINKS, open_tracking=True, prefix=None)
    assert once == again


# Event


def test_a_booked_meeting_becomes_an_event_in_utc() -> None:
    fields = event_fields(booked(body="Agenda: pricing"), [], LINKS, prefix=None)
    assert fields == {
        "QS_Activity_Id__c": "m1",
        "Subject": "Meeting: Demo",
        "StartDateTime": "2026-12-01T15:00:00Z",
        "EndDateTime": "2026-12-01T15:30:00Z",
        "Location": "Zoom",
        "Description": "Agenda: pricing",
        "WhoId": LINKS.who_id,
        "OwnerId": LINKS.owner_id,
    }


def test_a_meeting_without_subject_location_or_body_is_plain() -> None:
    fields = event_fields(
        booked(subject=None, body=None, meeting=meeting()), [], NO_LINKS, prefix=None
    )
    assert fields is not None
    assert (fields["Subject"], fields["Location"], fields["Description"]) == ("Meeting", None, None)
    assert "WhoId" not in fields
    assert "OwnerId" not in fields


def test_an_update_moves_the_meeting() -> None:
    change = updated("u1", meeting=meeting("2026-12-03T10:00:00+00:00", minutes=45))
    fields = event_fields(booked(), [change], NO_LINKS, prefix=None)
    assert fields is not None
    assert (fields["StartDateTime"], fields["EndDateTime"]) == (
        "2026-12-03T10:00:00Z",
        "2026-12-03T10:45:00Z",
    )


def test_an_update_that_only_moves_the_time_keeps_the_location_and_subject() -> None:
    fields = event_fields(booked(), [updated("u1", subject=None)], NO_LINKS, prefix=None)
    assert fields is not None
    assert (fields["Location"], fields["Subject"]) == ("Zoom", "Meeting: Demo")


def test_an_update_can_change_location_subject_and_body() -> None:
    change = updated("u1", subject="Demo v2", body="New agenda", meeting=meeting(location="Room 4"))
    fields = event_fields(booked(body="Old agenda"), [change], NO_LINKS, prefix=None)
    assert fields is not None
    assert (fields["Location"], fields["Subject"], fields["Description"]) == (
        "Room 4",
        "Meeting: Demo v2",
        "New agenda",
    )


def test_an_update_can_clear_the_location_with_an_empty_string() -> None:
    fields = event_fields(
        booked(), [updated("u1", meeting=meeting(location=""))], NO_LINKS, prefix=None
    )
    assert fields is not None
    assert fields["Location"] is None


def test_updates_apply_in_the_order_they_happened_not_the_order_they_arrived() -> None:
    later = updated("u2", minutes=20, meeting=meeting("2026-12-05T09:00:00Z"))
    earlier = updated("u1", minutes=10, meeting=meeting("2026-12-04T09:00:00Z"))
    fields = event_fields(booked(), [later, earlier], NO_LINKS, prefix=None)
    assert fields is not None
    assert fields["StartDateTime"] == "2026-12-05T09:00:00Z"


def test_a_canceled_meeting_has_no_event_to_write() -> None:
    assert (
        event_fields(
            booked(), [updated("u1", minutes=5), canceled("x1", minutes=10)], LINKS, prefix=None
        )
        is None
    )


def test_an_update_after_a_cancellation_revives_the_meeting() -> None:
    changes = [updated("u1", minutes=20), canceled("x1", minutes=10)]
    fields = event_fields(booked(), changes, LINKS, prefix=None)
    assert fields is not None
    assert fields["StartDateTime"] == "2026-12-02T15:00:00Z"


def test_event_text_is_cut_to_salesforces_limits() -> None:
    activity = booked(subject="s" * 300, body="b" * 40_000, meeting=meeting(location="l" * 300))
    fields = event_fields(activity, [], NO_LINKS, prefix=None)
    assert fields is not None
    assert [len(str(fields[k])) for k in ("Subject", "Location", "Description")] == [
        255,
        255,
        32_000,
    ]


def test_changes_of_another_meeting_are_a_programming_error() -> None:
    with pytest.raises(ValueError, match="does not change meeting 'm1'"):
        event_fields(booked("m1"), [canceled("x1", meeting_id="m2")], NO_LINKS, prefix=None)


def test_an_update_built_without_a_meeting_is_a_programming_error() -> None:
    bare = Activity(
        id="u1",
        kind=Kind.MEETING_UPDATED,
        occurred_at=datetime(2026, 12, 1, tzinfo=UTC),
        user_email=REP,
        meeting_id="m1",
    )
    with pytest.raises(ValueError, match="has no meeting"):
        event_fields(booked(), [bare], NO_LINKS, prefix=None)


def test_an_event_must_start_from_its_booking() -> None:
    with pytest.raises(ValueError, match="expected a meeting_booked activity"):
        event_fields(updated("u1"), [], NO_LINKS, prefix=None)


# Unmatched recipients and Leads


def test_unmatched_recipients_are_skipped_unless_the_workspace_says_otherwise() -> None:
    assert DEFAULT_UNMATCHED is Unmatched.SKIP
    assert [u.value for u in Unmatched] == ["skip", "create_lead", "log_unlinked"]


def test_a_lead_is_named_after_the_address() -> None:
    assert lead_fields("jane.doe@acme-corp.com", REP, "005x") == {
        "LastName": "Jane Doe",
        "Company": "Acme-Corp",
        "Email": "jane.doe@acme-corp.com",
        "LeadSource": "Other",
        "Description": f"Created by quotasync from email activity of {REP}.",
        "OwnerId": "005x",
    }


@pytest.mark.parametrize(
    ("email", "last_name", "company"),
    [
        ("BOB_SMITH@Widgets.co.uk", "Bob Smith", "Widgets"),
        ("jane+newsletter@acme.com", "Jane", "Acme"),
        ("info@acme.com", "Info", "Acme"),
        ("+x@acme.com", "+x", "Acme"),
        ("jane@gmail.com", "Jane", "[not provided]"),
    ],
)
def test_lead_names_and_companies_are_guessed_from_the_address(
    email: str, last_name: str, company: str
) -> None:
    fields = lead_fields(email, REP, None)
    assert (fields["LastName"], fields["Company"]) == (last_name, company)
    assert "OwnerId" not in fields


def test_a_lead_name_fits_salesforces_80_characters() -> None:
    assert len(str(lead_fields("a" * 100 + "@acme.com", REP, None)["LastName"])) == 80


def test_a_lead_cannot_be_made_from_a_non_address() -> None:
    with pytest.raises(ValueError, match="cannot make a Lead"):
        lead_fields("jane", REP, None)


# Helpers


def test_cutting_marks_the_cut_and_leaves_short_text_alone() -> None:
    assert cut("abcdef", 4) == "abc…"
    assert cut("abcd", 4) == "abcd"


def test_salesforce_times_are_whole_utc_seconds_with_z() -> None:
    moment = datetime(2026, 12, 1, 15, 0, 0, 999_999, tzinfo=UTC)
    assert salesforce_datetime(moment) == "2026-12-01T15:00:00Z"


def test_builders_are_real_parsed_activities() -> None:
    assert build("email_opened").email_id == "e1"
