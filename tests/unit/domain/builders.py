"""Activities for tests, built the way the email product sends them: as JSON through parse_activity.

Each builder takes the JSON fields to change; `None` removes a field, so a test can say what is
missing as plainly as what is there.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from quotasync.domain.activities import Activity, parse_activity

T0 = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
REP = "rep@seller.io"


def at(minutes: float) -> str:
    """An ISO-8601 time `minutes` after T0, as the email product would send it."""
    return (T0 + timedelta(minutes=minutes)).isoformat()


def payload(kind: str, /, **changes: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": f"{kind}-1",
        "kind": kind,
        "occurred_at": at(0),
        "user_email": REP,
        **_DEFAULTS.get(kind, {}),
    }
    for key, value in changes.items():
        if value is None:
            item.pop(key, None)
        else:
            item[key] = value
    return item


def build(kind: str, /, **changes: Any) -> Activity:
    return parse_activity(payload(kind, **changes))


def sent(id: str = "e1", **changes: Any) -> Activity:
    return build("email_sent", id=id, **changes)


def opened(id: str, email_id: str = "e1", minutes: float = 1, **changes: Any) -> Activity:
    return build("email_opened", id=id, email_id=email_id, occurred_at=at(minutes), **changes)


def clicked(id: str, email_id: str = "e1", minutes: float = 1, **changes: Any) -> Activity:
    return build("link_clicked", id=id, email_id=email_id, occurred_at=at(minutes), **changes)


def replied(id: str, email_id: str = "e1", minutes: float = 1, **changes: Any) -> Activity:
    return build("email_replied", id=id, email_id=email_id, occurred_at=at(minutes), **changes)


def booked(id: str = "m1", **changes: Any) -> Activity:
    return build("meeting_booked", id=id, **changes)


def updated(id: str, meeting_id: str = "m1", minutes: float = 1, **changes: Any) -> Activity:
    return build(
        "meeting_updated", id=id, meeting_id=meeting_id, occurred_at=at(minutes), **changes
    )


def canceled(id: str, meeting_id: str = "m1", minutes: float = 1, **changes: Any) -> Activity:
    return build(
        "meeting_canceled", id=id, meeting_id=meeting_id, occurred_at=at(minutes), **changes
    )


def meeting(
    start: str = "2026-12-01T16:00:00+01:00", minutes: int = 30, **extra: Any
) -> dict[str, Any]:
    end = (datetime.fromisoformat(start) + timedelta(minutes=minutes)).isoformat()
    return {"start": start, "end": end, **extra}


_DEFAULTS: dict[str, dict[str, Any]] = {
    "email_sent": {"to": ["buyer@acme.com"], "subject": "Pricing", "body": "Hi there"},
    "email_opened": {"email_id": "e1"},
    "link_clicked": {"email_id": "e1", "url": "https://seller.io/pricing"},
    "email_replied": {"email_id": "e1", "subject": "Re: Pricing", "body": "Sounds good"},
    "meeting_booked": {
        "subject": "Demo",
        "meeting": {
            "start": "2026-12-01T16:00:00+01:00",
            "end": "2026-12-01T16:30:00+01:00",
            "location": "Zoom",
            "attendees": ["buyer@acme.com"],
        },
    },
    "meeting_updated": {
        "meeting_id": "m1",
        "meeting": {"start": "2026-12-02T16:00:00+01:00", "end": "2026-12-02T17:00:00+01:00"},
    },
    "meeting_canceled": {"meeting_id": "m1"},
}
