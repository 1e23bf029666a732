"""From activities to Salesforce records: which record, and which fields.

Every email becomes one Task and every meeting one Event, each keyed in Salesforce by the external
id `QS_Activity_Id__c`: the id of the `email_sent` or `meeting_booked` activity (its *record key*),
after the workspace's prefix (`external_id`). Follow-ups and meeting changes do not make records of
their own; they change their email's Task or their meeting's Event. So:

- `record_key` says which record an activity writes to, and `fold` groups a batch by it, so that
  three opens and a click on one email cost one record write, not four.
- `external_id` is the value a record is upserted and looked up by in the org: several workspaces
  may log into one org, and each one's records must be its own (LOGGING.md: Shared orgs).
- `task_fields` and `event_fields` compute the *whole* record from everything known about it so
  far (not just this batch). Counts are totals and reply lines are all the replies, so sending the
  same upsert twice (a retry after a timeout, a replay after a pause) changes nothing.
- `people_to_match` lists the addresses the matcher looks up in the mirror (Contact, else Lead);
  its answer for one activity comes back as `Links`.
- `Unmatched` is the workspace's choice for recipients the mirror does not know, and
  `lead_fields` is the Lead quotasync creates under `create_lead`.

Salesforce's own limits are applied here, where the text is built: Subject and Location hold 255
characters, Description 32,000. Where text is cut, "…" marks the cut.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from quotasync.domain.activities import (
    EMAIL_KINDS,
    FOLLOW_UP_KINDS,
    MEETING_CHANGE_KINDS,
    Activity,
    Kind,
    Meeting,
    email_address_problem,
)

TASK = "Task"
EVENT = "Event"
EXTERNAL_ID = "QS_Activity_Id__c"
# The field's length in Salesforce.
EXTERNAL_ID_LIMIT = 255
# A workspace made since shared orgs are kept apart writes "<prefix>:<record key>"; its prefix is
# PREFIX_LENGTH lowercase letters and digits (Salesforce may compare external ids without regard
# to case, so the prefix has no case to lose). Workspaces made before keep the raw key (no prefix),
# so that the records they already wrote are still theirs.
PREFIX_LENGTH = 8
PREFIX_SEPARATOR = ":"
_PREFIX = re.compile(rf"[0-9a-z]{{{PREFIX_LENGTH}}}")
# A key too long to follow the prefix whole keeps its head and ends in "~" and this many hex
# digits of its SHA-256: still one value per key, still readable in Salesforce.
DIGEST_LENGTH = 32

SUBJECT_LIMIT = 255
LOCATION_LIMIT = 255
DESCRIPTION_LIMIT = 32_000
# Lead.LastName and Lead.Company lengths in Salesforce.
LAST_NAME_LIMIT = 80
COMPANY_LIMIT = 255
# A reply line summarises one reply; a long subject must not crowd the others out of Description.
REPLY_LINE_LIMIT = 255

CUT = "…"
NOT_PROVIDED = "[not provided]"

# Between the email's body and its reply lines in a Task's Description.
_BODY_REPLIES_SEPARATOR = "\n\n"

# Addresses at these domains belong to people, not companies: "Gmail" is nobody's employer.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        "aol.com",
        "gmail.com",
        "gmx.com",
        "gmx.de",
        "googlemail.com",
        "hotmail.com",
        "icloud.com",
        "live.com",
        "mail.ru",
        "me.com",
        "msn.com",
        "outlook.com",
        "proton.me",
        "protonmail.com",
        "web.de",
        "yahoo.com",
        "yandex.ru",
    }
)


@dataclass(frozen=True)
class Links:
    """The matcher's answer for one activity: the person (Contact 003/Lead 00Q) and the rep (User 005)."""

    who_id: str | None = None
    owner_id: str | None = None


class Unmatched(StrEnum):
    """What to do with a recipient the mirror knows neither as a Contact nor as a Lead."""

    SKIP = "skip"  # write nothing for the activity
    CREATE_LEAD = "create_lead"  # create a Lead (lead_fields), then link the activity to it
    LOG_UNLINKED = "log_unlinked"  # write the activity without a WhoId


DEFAULT_UNMATCHED = Unmatched.SKIP


def record_key(activity: Activity) -> tuple[str, str]:
    """The Salesforce record an activity writes to: (sObject, QS_Activity_Id__c)."""
    if activity.kind is Kind.EMAIL_SENT:
        return TASK, activity.id
    if activity.kind in FOLLOW_UP_KINDS:
        return TASK, _reference(activity, activity.email_id, "email_id")
    if activity.kind is Kind.MEETING_BOOKED:
        return EVENT, activity.id
    return EVENT, _reference(activity, activity.meeting_id, "meeting_id")


def external_id(prefix: str | None, key: str) -> str:
    """The `QS_Activity_Id__c` of a workspace's record: `prefix:key`, or the bare key for a
    workspace without a prefix (one made before shared orgs were kept apart).

    Activity ids may be 255 characters, the field's whole length, so a key that does not fit after
    the prefix is cut and ends in a digest of the whole key (see DIGEST_LENGTH).
    """
    if prefix is None:
        return key
    if not _PREFIX.fullmatch(prefix):
        raise ValueError(f"{prefix!r} is not a workspace prefix")
    value = f"{prefix}{PREFIX_SEPARATOR}{key}"
    if len(value) <= EXTERNAL_ID_LIMIT:
        return value
    digest = hashlib.sha256(key.encode()).hexdigest()[:DIGEST_LENGTH]
    head = EXTERNAL_ID_LIMIT - len(prefix) - len(PREFIX_SEPARATOR) - 1 - DIGEST_LENGTH
    return f"{prefix}{PREFIX_SEPARATOR}{key[:head]}~{digest}"


def fold(activities: Sequence[Activity]) -> dict[tuple[str, str], list[Activity]]:
    """Group a batch by the record each activity writes to, keeping arrival order in each group.

    Groups come out in the order their first activity arrived.
    """
    groups: dict[tuple[str, str], list[Activity]] = {}
    for activity in activities:
        groups.setdefault(record_key(activity), []).append(activity)
    return groups


def people_to_match(activity: Activity) -> tuple[str, ...]:
    """The addresses to look up for an activity's WhoId, best candidate first.

    `to` then `cc` for emails, attendees for meetings; each address once, and never the rep's own
    (reps often cc themselves or appear among a meeting's attendees).
    """
    if activity.kind in EMAIL_KINDS:
        candidates: Iterable[str] = (*activity.to, *activity.cc)
    elif activity.meeting is not None:
        candidates = activity.meeting.attendees
    else:
        candidates = ()
    rep = activity.user_email.lower()
    return tuple(dict.fromkeys(c.lower() for c in candidates if c.lower() != rep))


def task_fields(
    sent: Activity,
    follow_ups: Sequence[Activity],
    links: Links,
    *,
    open_tracking: bool,
    prefix: str | None,
) -> dict[str, object]:
    """The full Task upsert for one email, from its `email_sent` and every follow-up known so far;
    `prefix` is the workspace's (`external_id`).

    With open tracking off, opens and clicks are left out entirely (not written as zero), so turning
    tracking off saves calls without erasing counts written earlier.
    """
    _require_kind(sent, Kind.EMAIL_SENT)
    known = _distinct(follow_ups)
    for follow_up in known:
        _require_follow_up_of(follow_up, sent)
    fields: dict[str, object] = {
        EXTERNAL_ID: external_id(prefix, sent.id),
        "TaskSubtype": "Email",
        "Status": "Completed",
        "Subject": cut(_titled("Email", sent.subject), SUBJECT_LIMIT),
        "ActivityDate": sent.occurred_at.astimezone(UTC).date().isoformat(),
    }
    replies = sorted(
        (f for f in known if f.kind is Kind.EMAIL_REPLIED), key=lambda f: f.occurred_at
    )
    description = task_description(sent.body, [reply_line(reply) for reply in replies])
    if description is not None:
        fields["Description"] = description
    fields.update(_link_fields(links))
    if open_tracking:
        # Salesforce number fields travel as JSON numbers; floats say so to every serialiser.
        fields["QS_Opens__c"] = float(_count(known, Kind.EMAIL_OPENED))
        fields["QS_Clicks__c"] = float(_count(known, Kind.LINK_CLICKED))
    return fields


def reply_line(reply: Activity) -> str:
    """One line of a Task's Description for one reply: when, and its subject or first line."""
    when = reply.occurred_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
    line = f"Reply {when} UTC"
    summary = _one_line(reply.subject) or _first_line(reply.body)
    return cut(f"{line}: {summary}", REPLY_LINE_LIMIT) if summary else line


def task_description(body: str | None, reply_lines: Sequence[str]) -> str | None:
    """The body, then the reply lines, in at most 32,000 characters.

    Reply lines are what a rep scans for, so the body is cut first. Only when the reply lines alone
    overflow are the oldest of them dropped, with a line saying how many.
    """
    if not body:
        return _reply_block(reply_lines, DESCRIPTION_LIMIT) or None
    # Leave the body room for at least "…", so a reader can tell there was one.
    replies = _reply_block(reply_lines, DESCRIPTION_LIMIT - len(CUT) - len(_BODY_REPLIES_SEPARATOR))
    if not replies:
        return cut(body, DESCRIPTION_LIMIT)
    room = DESCRIPTION_LIMIT - len(replies) - len(_BODY_REPLIES_SEPARATOR)
    return cut(body, room) + _BODY_REPLIES_SEPARATOR + replies


def event_fields(
    booked: Activity, changes: Sequence[Activity], links: Links, *, prefix: str | None
) -> dict[str, object] | None:
    """The full Event upsert for one meeting, or None when the meeting is canceled; `prefix` is
    the workspace's (`external_id`).

    Changes apply in `occurred_at` order (ties keep arrival order). An update's start and end
    always win; its location, attendees, subject and body win when it carries them, so an update
    that only moves the time keeps the rest (an empty-string location clears it). A cancellation followed by a later update revives the meeting.
    `Location` and `Description` are always sent (None when empty) so an update can clear them.
    """
    _require_kind(booked, Kind.MEETING_BOOKED)
    meeting = _meeting_of(booked)
    subject, body = booked.subject, booked.body
    ordered = sorted(_distinct(changes), key=lambda change: change.occurred_at)
    for change in ordered:
        _require_change_of(change, booked)
        if change.kind is Kind.MEETING_UPDATED:
            meeting = _updated(meeting, _meeting_of(change))
            subject = change.subject if change.subject is not None else subject
            body = change.body if change.body is not None else body
    if ordered and ordered[-1].kind is Kind.MEETING_CANCELED:
        return None
    fields: dict[str, object] = {
        EXTERNAL_ID: external_id(prefix, booked.id),
        "Subject": cut(_titled("Meeting", subject), SUBJECT_LIMIT),
        "StartDateTime": salesforce_datetime(meeting.start),
        "EndDateTime": salesforce_datetime(meeting.end),
        "Location": cut(meeting.location, LOCATION_LIMIT) if meeting.location else None,
        "Description": cut(body, DESCRIPTION_LIMIT) if body else None,
    }
    fields.update(_link_fields(links))
    return fields


def lead_fields(email: str, user_email: str, owner_id: str | None) -> dict[str, object]:
    """The Lead to create for an unmatched recipient under `create_lead`.

    All quotasync knows is the address, so the name and company are guesses from it:
    `jane.doe+news@acme-corp.com` becomes LastName "Jane Doe", Company "Acme-Corp".
    """
    problem = email_address_problem(email)
    if problem is not None:
        raise ValueError(f"cannot make a Lead from {email!r}: {problem}")
    local, domain = email.lower().split("@")
    fields: dict[str, object] = {
        "LastName": cut(_name_from(local), LAST_NAME_LIMIT),
        "Company": cut(_company_from(domain), COMPANY_LIMIT),
        "Email": email.lower(),
        "LeadSource": "Other",
        "Description": f"Created by quotasync from email activity of {user_email.lower()}.",
    }
    if owner_id is not None:
        fields["OwnerId"] = owner_id
    return fields


def salesforce_datetime(moment: datetime) -> str:
    """A datetime as Salesforce writes them back: UTC, whole seconds, `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def cut(text: str, limit: int) -> str:
    """`text` in at most `limit` characters, ending in "…" when something was cut."""
    if len(text) <= limit:
        return text
    return text[: limit - len(CUT)] + CUT


def _reference(activity: Activity, value: str | None, name: str) -> str:
    if value is None:
        raise ValueError(f"{activity.kind} activity {activity.id!r} has no {name}")
    return value


def _require_kind(activity: Activity, kind: Kind) -> None:
    if activity.kind is not kind:
        raise ValueError(f"expected a {kind} activity, got {activity.kind} {activity.id!r}")


def _require_follow_up_of(follow_up: Activity, sent: Activity) -> None:
    # The caller loads follow-ups by email id; anything else here is a bug upstream, and writing it
    # would put one email's opens on another email's Task.
    if follow_up.kind not in FOLLOW_UP_KINDS or follow_up.email_id != sent.id:
        raise ValueError(
            f"{follow_up.kind} {follow_up.id!r} (email_id={follow_up.email_id!r}) "
            f"is not a follow-up of email {sent.id!r}"
        )


def _require_change_of(change: Activity, booked: Activity) -> None:
    if change.kind not in MEETING_CHANGE_KINDS or change.meeting_id != booked.id:
        raise ValueError(
            f"{change.kind} {change.id!r} (meeting_id={change.meeting_id!r}) "
            f"does not change meeting {booked.id!r}"
        )


def _meeting_of(activity: Activity) -> Meeting:
    if activity.meeting is None:
        raise ValueError(f"{activity.kind} activity {activity.id!r} has no meeting")
    return activity.meeting


def _updated(current: Meeting, change: Meeting) -> Meeting:
    return Meeting(
        start=change.start,
        end=change.end,
        location=change.location if change.location is not None else current.location,
        attendees=change.attendees or current.attendees,
    )


def _distinct(activities: Iterable[Activity]) -> list[Activity]:
    """Activities with repeats of one id dropped: a re-delivered open must not count twice."""
    first: dict[str, Activity] = {}
    for activity in activities:
        first.setdefault(activity.id, activity)
    return list(first.values())


def _count(activities: Iterable[Activity], kind: Kind) -> int:
    return sum(1 for activity in activities if activity.kind is kind)


def _link_fields(links: Links) -> dict[str, object]:
    # Unknown links are left out rather than sent as null, so a write never unlinks a record
    # that someone linked by hand in Salesforce.
    fields: dict[str, object] = {}
    if links.who_id is not None:
        fields["WhoId"] = links.who_id
    if links.owner_id is not None:
        fields["OwnerId"] = links.owner_id
    return fields


def _titled(prefix: str, subject: str | None) -> str:
    text = _one_line(subject)
    return f"{prefix}: {text}" if text else prefix


def _one_line(text: str | None) -> str:
    """Whitespace (newlines included) collapsed to single spaces: a Subject is one line."""
    return " ".join(text.split()) if text else ""


def _first_line(text: str | None) -> str:
    if not text:
        return ""
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _reply_block(lines: Sequence[str], limit: int) -> str:
    """The reply lines in at most `limit` characters, the oldest giving way to a count of them."""
    block = "\n".join(lines)
    dropped = 0
    while len(block) > limit:
        dropped += 1
        notice = f"{CUT} {dropped} earlier {'reply' if dropped == 1 else 'replies'} not shown"
        block = "\n".join([notice, *lines[dropped:]])
    return block


def _name_from(local: str) -> str:
    # A sub-address tag (jane+news) is a mailbox filter, not part of the name.
    name = local.split("+", 1)[0]
    words = [word for word in re.split(r"[._\-]+", name) if word]
    return " ".join(words).title() if words else local or NOT_PROVIDED


def _company_from(domain: str) -> str:
    if domain in FREE_MAIL_DOMAINS:
        return NOT_PROVIDED
    return domain.split(".", 1)[0].title()
