"""A realistic stream of email-product activity, for the demo, tests and benchmarks.

Deterministic for a given seed: reps send emails to known people (and a few strangers); some
emails are opened, clicked and replied to, some lead to meetings that are later moved or canceled.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

SUBJECTS = (
    "Quick question about {company}",
    "Following up on our call",
    "Pricing for your team",
    "Intro: quotasync x {company}",
    "Re: next steps",
    "A case study you asked for",
    "Can we find 20 minutes?",
    "Your trial is ready",
    "Notes from today's demo",
)
BODIES = (
    "Hi {first},\n\nthanks for the time today. As promised, here is a summary of what we discussed "
    "and the next steps on our side.\n\nBest,\n{rep}",
    "Hi {first},\n\nI wanted to follow up on my last note. Would next week work for a short call?"
    "\n\nThanks,\n{rep}",
    "Hello {first},\n\nattached is the proposal for {company}. Happy to walk you through it.\n\n"
    "{rep}",
)
LOCATIONS = ("Zoom", "Google Meet", "Phone", "Customer office", "Microsoft Teams")


class ActivityStream:
    def __init__(
        self,
        reps: Sequence[str],
        people: Sequence[str],
        start: datetime,
        seed: int = 7,
        strangers: float = 0.0,
    ) -> None:
        if not reps or not people:
            raise ValueError("a stream needs at least one rep and one recipient")
        self.reps = list(reps)
        self.people = list(people)
        self.rng = random.Random(seed)
        self.now = start
        self.strangers = strangers
        self.counter = 0
        self._emails: list[dict[str, Any]] = []
        self._meetings: list[dict[str, Any]] = []

    def take(self, count: int) -> list[dict[str, Any]]:
        return [self.next() for _ in range(count)]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        while True:
            yield self.next()

    def next(self) -> dict[str, Any]:
        self.now += timedelta(seconds=self.rng.randint(1, 20))
        self.counter += 1
        roll = self.rng.random()
        if self._emails and roll < 0.30:
            return self._follow_up("email_opened")
        if self._emails and roll < 0.38:
            return self._follow_up(
                "link_clicked", url=f"https://example.com/p/{self.rng.randint(1, 40)}"
            )
        if self._emails and roll < 0.43:
            return self._follow_up(
                "email_replied", subject="Re: " + self.rng.choice(self._emails)["subject"]
            )
        if roll < 0.47:
            return self._meeting()
        if self._meetings and roll < 0.49:
            return self._meeting_change()
        return self._email()

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{self.rng.getrandbits(48):012x}-{self.counter}"

    def _recipient(self) -> str:
        if self.strangers and self.rng.random() < self.strangers:
            return (
                f"stranger{self.rng.randint(1, 10**6)}@unknown-{self.rng.randint(1, 999)}.example"
            )
        return self.rng.choice(self.people)

    def _email(self) -> dict[str, Any]:
        rep, to = self.rng.choice(self.reps), self._recipient()
        first = to.split("@")[0].split(".")[0].title()
        company = to.split("@")[1].split(".")[0].title()
        activity = {
            "id": self._id("em"),
            "kind": "email_sent",
            "occurred_at": self.now.isoformat(),
            "user_email": rep,
            "to": [to],
            "cc": [],
            "subject": self.rng.choice(SUBJECTS).format(company=company),
            "body": self.rng.choice(BODIES).format(
                first=first, company=company, rep=rep.split("@")[0].title()
            ),
        }
        self._emails.append(activity)
        return activity

    def _follow_up(self, kind: str, **extra: Any) -> dict[str, Any]:
        email = self.rng.choice(self._emails[-500:])
        return {
            "id": self._id(kind[:2]),
            "kind": kind,
            "occurred_at": self.now.isoformat(),
            "user_email": email["user_email"],
            "to": email["to"],
            "email_id": email["id"],
            **extra,
        }

    def _meeting(self) -> dict[str, Any]:
        rep, attendee = self.rng.choice(self.reps), self._recipient()
        start = (self.now + timedelta(days=self.rng.randint(1, 14))).replace(
            minute=0, second=0, microsecond=0
        )
        activity = {
            "id": self._id("mt"),
            "kind": "meeting_booked",
            "occurred_at": self.now.isoformat(),
            "user_email": rep,
            "subject": "Intro call",
            "meeting": {
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=30)).isoformat(),
                "location": self.rng.choice(LOCATIONS),
                "attendees": [attendee],
            },
        }
        self._meetings.append(activity)
        return activity

    def _meeting_change(self) -> dict[str, Any]:
        meeting = self.rng.choice(self._meetings)
        if self.rng.random() < 0.3:
            return {
                "id": self._id("mc"),
                "kind": "meeting_canceled",
                "occurred_at": self.now.isoformat(),
                "user_email": meeting["user_email"],
                "meeting_id": meeting["id"],
            }
        start = datetime.fromisoformat(meeting["meeting"]["start"]) + timedelta(days=1)
        return {
            "id": self._id("mu"),
            "kind": "meeting_updated",
            "occurred_at": self.now.isoformat(),
            "user_email": meeting["user_email"],
            "meeting_id": meeting["id"],
            "meeting": {
                **meeting["meeting"],
                "start": start.isoformat(),
                "end": (start + timedelta(minutes=45)).isoformat(),
            },
        }
