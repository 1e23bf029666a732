"""The people in the demo: 20 reps whose email activity the email product posts to quotasync's
ingest API, and who now and then save a new Lead in Salesforce (a change the org pushes to
quotasync by Real-Time Sync, or that Interval Sync picks up)."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests

from quotasync.clock import Clock
from quotasync.demo.org import DemoOrg
from quotasync.simulation import ActivityStream

log = logging.getLogger("quotasync.demo")

SERVICE_USERS = ("admin@", "sync@", "noapi@")
MAX_POST = 1000  # the ingest API's limit per request
FIRST_NAMES = ("Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia")
LAST_NAMES = ("Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Perlman")
COMPANIES = ("Initech", "Globex", "Hooli", "Umbrella", "Soylent", "Vandelay", "Stark", "Wonka")


def org_people(
    records: Callable[[str], list[dict[str, Any]]],
) -> tuple[dict[str, str], list[str]]:
    """The org's reps (email → User id) and the emails of its Contacts and Leads, from
    `records(sobject)`: a running demo org's, or any sandbox org's (`demo.org.org_records`)."""
    reps = {
        str(u["Email"]).lower(): str(u["Id"])
        for u in records("User")
        if u.get("Email") and not str(u["Email"]).lower().startswith(SERVICE_USERS)
    }
    people = [
        str(r["Email"]).lower()
        for sobject in ("Contact", "Lead")
        for r in records(sobject)
        if r.get("Email")
    ]
    return reps, people


class EmailProduct:
    """Posts the reps' activity as it happens on the virtual clock, as the email product would."""

    def __init__(
        self,
        url: str,
        workspace_id: str,
        ingest_token: str,
        stream: ActivityStream,
        clock: Clock,
    ) -> None:
        self.endpoint = f"{url}/api/v1/workspaces/{workspace_id}/activities"
        self.http = requests.Session()
        self.http.trust_env = False
        self.http.headers["Authorization"] = f"Bearer {ingest_token}"
        self.stream = stream
        self.stream.now = clock.now()
        self.clock = clock
        self.accepted: list[dict[str, Any]] = []
        self.unsent: list[dict[str, Any]] = []  # due, not acknowledged yet
        self.refused = 0  # items the ingest API refused (none, unless something is wrong)

    def post_due(self) -> int:
        """Post every activity whose time has come; how many were accepted."""
        now = self.clock.now()
        while self.stream.now <= now and len(self.unsent) < MAX_POST:
            self.unsent.append(self.stream.next())
        if not self.unsent:
            return 0
        try:
            answer = self.http.post(self.endpoint, json=self.unsent, timeout=60)
            if answer.status_code not in (202, 422):  # 422: every item refused
                answer.raise_for_status()
        except requests.RequestException as error:
            # The same items go again at the next tick: the ingest API acknowledges an id it
            # already stored without storing it twice.
            log.warning("posting %d activities failed, again soon: %s", len(self.unsent), error)
            return 0
        refused = {int(error["index"]) for error in answer.json().get("errors", [])}
        kept = [a for i, a in enumerate(self.unsent) if i not in refused]
        self.accepted += kept
        self.refused += len(refused)
        self.unsent = []
        return len(kept)

    def close(self) -> None:
        self.http.close()


class LeadDesk:
    """Every `every` minutes of the story, a rep saves a new Lead in Salesforce; the reps may
    email it from then on."""

    def __init__(
        self,
        org: DemoOrg,
        reps: dict[str, str],
        stream: ActivityStream,
        start: datetime,
        every_minutes: float,
        seed: int = 11,
    ) -> None:
        self.org = org
        self.owners = sorted(reps.values())
        self.stream = stream
        self.every = timedelta(minutes=every_minutes)
        self.next_at = start + self.every
        self.rng = random.Random(seed)
        self.added: list[str] = []  # Lead ids

    def save_due(self, now: datetime) -> int:
        saved = 0
        while self.next_at <= now:
            self.next_at += self.every
            self._save()
            saved += 1
        return saved

    def _save(self) -> None:
        first, last = self.rng.choice(FIRST_NAMES), self.rng.choice(LAST_NAMES)
        company = self.rng.choice(COMPANIES)
        email = f"{first}.{last}.{len(self.added) + 1}@{company}.example".lower()
        lead_id = self.org.insert(
            "Lead",
            {
                "FirstName": first,
                "LastName": last,
                "Company": f"{company} Inc.",
                "Email": email,
                "LeadSource": "Web",
                "OwnerId": self.rng.choice(self.owners),
            },
        )
        self.added.append(lead_id)
        self.stream.people.append(email)
