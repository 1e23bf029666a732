"""Activities: what the email product tells quotasync happened.

The email product posts activities to `POST /api/activities` as JSON. `parse_activity` turns one
decoded JSON item into an `Activity`, or raises `InvalidActivity` listing *every* problem found in
that item (not just the first), each naming its field by a dotted path such as `meeting.end` or
`to[2]`. The web layer answers each bad item with one 422 entry and keeps the good items of the
same request.

There are seven kinds, in three families:

- `email_sent` creates the email's Salesforce Task.
- `email_opened`, `link_clicked` and `email_replied` are the email's *follow-ups*: their `email_id`
  is the `id` of the `email_sent` they belong to, and they update that Task.
- `meeting_booked` creates a Salesforce Event; `meeting_updated` and `meeting_canceled` change it.

`meeting_id` is quotasync's addition to the payload the issue describes. An update or a
cancellation must say which meeting it changes, just as a follow-up names its email with
`email_id`; `meeting_id` is the `id` of the `meeting_booked` activity. Keeping the email and meeting
references in separate fields means a reader never has to know the kind to know what an id points
at. It is required for `meeting_updated` and `meeting_canceled` and ignored otherwise.

What parsing normalises, so that nothing downstream has to:

- times become timezone-aware UTC datetimes; a time without a UTC offset is refused rather than
  guessed, since the product's servers and the rep may be in different zones;
- email addresses are lower-cased (Salesforce matches them case-insensitively, and so must we);
- a JSON `null` counts as absent; unknown top-level keys are ignored so that the email product can
  add fields before quotasync knows about them.

Text must be Unicode that can be stored and sent: JSON's `\\ud800` escapes decode to lone
surrogates, which UTF-8 cannot encode, so a string holding one is refused. Ids, which the store
keeps in columns of their own, hold no NUL (PostgreSQL's text cannot), and addresses no control
character.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from urllib.parse import urlsplit

from quotasync.errors import InvalidInput


class Kind(StrEnum):
    EMAIL_SENT = "email_sent"
    EMAIL_OPENED = "email_opened"
    LINK_CLICKED = "link_clicked"
    EMAIL_REPLIED = "email_replied"
    MEETING_BOOKED = "meeting_booked"
    MEETING_UPDATED = "meeting_updated"
    MEETING_CANCELED = "meeting_canceled"


class State(StrEnum):
    """Where an activity is on its way to Salesforce. The store's `state` column holds the value
    (a StrEnum equals its string, so rows and JSON read the same)."""

    PENDING = "pending"  # waiting for a batch, or for a retry
    LOGGED = "logged"  # in Salesforce
    FAILED = "failed"  # Salesforce refused it for good (an admin may retry it)
    SKIPPED = "skipped"  # not logged, by the workspace's settings (an unmatched recipient, ...)


FOLLOW_UP_KINDS: frozenset[Kind] = frozenset(
    {Kind.EMAIL_OPENED, Kind.LINK_CLICKED, Kind.EMAIL_REPLIED}
)
EMAIL_KINDS: frozenset[Kind] = frozenset({Kind.EMAIL_SENT}) | FOLLOW_UP_KINDS
MEETING_CHANGE_KINDS: frozenset[Kind] = frozenset({Kind.MEETING_UPDATED, Kind.MEETING_CANCELED})
MEETING_KINDS: frozenset[Kind] = frozenset({Kind.MEETING_BOOKED}) | MEETING_CHANGE_KINDS

# `id` ends up in QS_Activity_Id__c, an external-id text field of 255 characters.
MAX_ID_LENGTH = 255
# The longest address SMTP can carry (RFC 5321's 256-octet path minus the angle brackets).
MAX_EMAIL_LENGTH = 254

_TIME_FORMAT = "must be an ISO-8601 time with a UTC offset, e.g. 2026-11-28T09:30:00+01:00"
_NOT_UNICODE = (
    "must be Unicode text: it holds a lone surrogate (an unpaired \\ud800-\\udfff escape)"
)
_KIND_VALUES = tuple(kind.value for kind in Kind)
_KIND_LIST = ", ".join(_KIND_VALUES)


@dataclass(frozen=True)
class Meeting:
    start: datetime
    end: datetime
    location: str | None = None
    attendees: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_aware(self.start, "Meeting.start")
        _require_aware(self.end, "Meeting.end")
        if self.end < self.start:
            raise ValueError("Meeting.end is before Meeting.start")


@dataclass(frozen=True)
class Activity:
    id: str
    kind: Kind
    occurred_at: datetime
    user_email: str
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    subject: str | None = None
    body: str | None = None
    email_id: str | None = None
    url: str | None = None
    meeting: Meeting | None = None
    meeting_id: str | None = None

    def __post_init__(self) -> None:
        # Dates written to Salesforce are computed from occurred_at; a naive value would silently
        # mean "the server's local time".
        _require_aware(self.occurred_at, "Activity.occurred_at")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one posted item; `field` is a dotted path ('' for the item itself)."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidActivity(InvalidInput):
    """A posted item that cannot become an Activity, with every problem found in it.

    `activity_id` is the item's `id` when that much could be read, so the 422 entry can name it.
    """

    def __init__(self, problems: Iterable[Problem], activity_id: str | None = None) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.activity_id = activity_id
        super().__init__("; ".join(str(problem) for problem in self.problems))


def parse_activity(raw: object) -> Activity:
    """Validate one decoded JSON item and return it as a normalised Activity.

    Raises InvalidActivity with all of the item's problems.
    """
    if not isinstance(raw, dict):
        raise InvalidActivity(
            [Problem("", f"an activity must be a JSON object, got {_kind_of(raw)}")]
        )
    reader = _Reader()
    activity_id = reader.identifier(raw, "id", required=True)
    kind = reader.kind(raw)
    occurred_at = reader.time(raw, "occurred_at", required=True)
    user_email = reader.email(raw, "user_email", required=True)
    to = reader.emails(raw, "to", path="to", at_least_one=kind is Kind.EMAIL_SENT, kind=kind)
    cc = reader.emails(raw, "cc", path="cc")
    subject = reader.string(raw, "subject")
    body = reader.string(raw, "body")
    email_id = reader.identifier(raw, "email_id", required_for=FOLLOW_UP_KINDS, kind=kind)
    url = reader.url(raw, kind)
    meeting = reader.meeting(raw, kind)
    meeting_id = reader.identifier(raw, "meeting_id", required_for=MEETING_CHANGE_KINDS, kind=kind)
    if reader.problems:
        raise InvalidActivity(reader.problems, activity_id)
    # Every reader above reported a problem whenever it returned None for a required value.
    assert activity_id is not None and kind is not None
    assert occurred_at is not None and user_email is not None
    # References that do not belong to the kind are dropped, so that downstream code can trust
    # that `email_id`, `url`, `meeting` and `meeting_id` mean what the kind says.
    return Activity(
        id=activity_id,
        kind=kind,
        occurred_at=occurred_at,
        user_email=user_email,
        to=to,
        cc=cc,
        subject=subject,
        body=body,
        email_id=email_id if kind in FOLLOW_UP_KINDS else None,
        url=url if kind is Kind.LINK_CLICKED else None,
        meeting=meeting if kind in MEETING_KINDS else None,
        meeting_id=meeting_id if kind in MEETING_CHANGE_KINDS else None,
    )


def email_address_problem(address: str) -> str | None:
    """Why `address` is not a usable email address, or None when it is.

    A practical check, not RFC 5322: it refuses what is plainly a typo or a display name and lets
    through anything a mail server might accept.
    """
    if len(address) > MAX_EMAIL_LENGTH:
        return f"it is longer than {MAX_EMAIL_LENGTH} characters"
    if any(ch.isspace() for ch in address):
        return "it contains a space"
    if not _is_unicode(address):
        return "it holds a lone surrogate (an unpaired \\ud800-\\udfff escape)"
    if any(unicodedata.category(ch) == "Cc" for ch in address):
        return "it contains a control character"
    if address.count("@") != 1:
        return "it must contain exactly one @"
    local, domain = address.split("@")
    if not local:
        return "it has nothing before the @"
    labels = domain.split(".")
    if len(labels) < 2 or not all(labels):
        return "it needs a domain with a dot after the @, like example.com"
    return None


class _Reader:
    """Reads the fields of one item, collecting problems instead of stopping at the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def kind(self, item: Mapping[str, object]) -> Kind | None:
        value = item.get("kind")
        if value is None:
            self.add("kind", f"is required: one of {_KIND_LIST}")
        elif not isinstance(value, str) or value not in _KIND_VALUES:
            self.add("kind", f"must be one of {_KIND_LIST}; got {_show(value)}")
        else:
            return Kind(value)
        return None

    def string(
        self, item: Mapping[str, object], key: str, *, path: str | None = None
    ) -> str | None:
        value = item.get(key)
        if isinstance(value, str) and not _is_unicode(value):
            self.add(path or key, _NOT_UNICODE)
            return None
        if value is None or isinstance(value, str):
            return value
        self.add(path or key, f"must be a string, got {_kind_of(value)}")
        return None

    def identifier(
        self,
        item: Mapping[str, object],
        key: str,
        *,
        required: bool = False,
        required_for: frozenset[Kind] = frozenset(),
        kind: Kind | None = None,
    ) -> str | None:
        value = self.string(item, key)
        if value is None:
            if key not in item or item[key] is None:
                self._missing(key, required=required, required_for=required_for, kind=kind)
            return None
        if not value.strip():
            self.add(key, "must not be empty")
        elif "\x00" in value:
            self.add(key, "must not contain a NUL character")
        elif len(value) > MAX_ID_LENGTH:
            # It is (or points at) an external id in Salesforce, which holds 255 characters.
            self.add(key, f"must be at most {MAX_ID_LENGTH} characters, got {len(value)}")
        else:
            return value
        return None

    def _missing(
        self, key: str, *, required: bool, required_for: frozenset[Kind], kind: Kind | None
    ) -> None:
        if required:
            self.add(key, "is required")
        elif kind in required_for:
            self.add(key, f"is required for {kind}")

    def time(
        self, item: Mapping[str, object], key: str, *, path: str | None = None, required: bool
    ) -> datetime | None:
        path = path or key
        value = item.get(key)
        if value is None:
            if required:
                self.add(path, f"is required; it {_TIME_FORMAT}")
            return None
        if not isinstance(value, str):
            self.add(path, f"{_TIME_FORMAT}; got {_kind_of(value)}")
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            self.add(path, f"{_TIME_FORMAT}; got {_show(value)}")
            return None
        if parsed.tzinfo is None or parsed.utcoffset() is None:
            self.add(path, f"has no UTC offset; it {_TIME_FORMAT} (got {_show(value)})")
            return None
        try:
            return parsed.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 falls before year 1 in UTC
            self.add(path, f"is out of range once in UTC: years 1 to 9999 (got {_show(value)})")
            return None

    def email(
        self, item: Mapping[str, object], key: str, *, path: str | None = None, required: bool
    ) -> str | None:
        path = path or key
        value = item.get(key)
        if value is None:
            if required:
                self.add(path, "is required: an email address like jane@example.com")
            return None
        return self._address(value, path)

    def _address(self, value: object, path: str) -> str | None:
        if not isinstance(value, str):
            self.add(path, f"must be an email address string, got {_kind_of(value)}")
            return None
        problem = email_address_problem(value)
        if problem is not None:
            self.add(path, f"{_show(value)} is not a valid email address: {problem}")
            return None
        return value.lower()

    def emails(
        self,
        item: Mapping[str, object],
        key: str,
        *,
        path: str,
        at_least_one: bool = False,
        kind: Kind | None = None,
    ) -> tuple[str, ...]:
        value = item.get(key)
        if value is None:
            value = []
        if not isinstance(value, list):
            self.add(path, f"must be a list of email addresses, got {_kind_of(value)}")
            return ()
        if at_least_one and not value:
            self.add(path, f"must list at least one recipient address for {kind}")
        addresses = (self._address(entry, f"{path}[{i}]") for i, entry in enumerate(value))
        return tuple(address for address in addresses if address is not None)

    def url(self, item: Mapping[str, object], kind: Kind | None) -> str | None:
        value = self.string(item, "url")
        if value is None:
            if item.get("url") is None and kind is Kind.LINK_CLICKED:
                self.add("url", f"is required for {kind}: the http or https link that was clicked")
            return None
        parts = urlsplit(value)
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc or " " in value:
            self.add("url", f"must be an http or https URL, got {_show(value)}")
            return None
        return value

    def meeting(self, item: Mapping[str, object], kind: Kind | None) -> Meeting | None:
        value = item.get("meeting")
        if value is None:
            if kind in (Kind.MEETING_BOOKED, Kind.MEETING_UPDATED):
                self.add("meeting", f"is required for {kind}: an object with start and end")
            return None
        if not isinstance(value, dict):
            self.add("meeting", f"must be an object with start and end, got {_kind_of(value)}")
            return None
        before = len(self.problems)
        start = self.time(value, "start", path="meeting.start", required=True)
        end = self.time(value, "end", path="meeting.end", required=True)
        location = self.string(value, "location", path="meeting.location")
        attendees = self.emails(value, "attendees", path="meeting.attendees")
        if start is not None and end is not None and end < start:
            self.add("meeting.end", "must not be before meeting.start")
        if len(self.problems) > before or start is None or end is None:
            return None
        return Meeting(start=start, end=end, location=location, attendees=attendees)


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


def _is_unicode(text: str) -> bool:
    """Whether `text` can be encoded as UTF-8 (stored, sent, shown): not so with a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _kind_of(value: object) -> str:
    """The JSON name of a decoded value's type, as the email product's engineers know it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: object, limit: int = 60) -> str:
    """A value quoted for a message, shortened so one huge field cannot flood the 422 body."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
