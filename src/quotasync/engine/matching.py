"""Matching emails to Salesforce records: the mirror first, then the org in batches.

Recipient email → Contact, else Lead; the rep's email → User (for OwnerId). An email the mirror
does not know is looked up with one SOQL `IN` query per 100 emails and the answer is kept, found or
not, so the same email never costs a call twice within `UNKNOWN_TTL`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from simple_salesforce.format import format_soql
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.engine import sync
from quotasync.salesforce.connection import Client
from quotasync.store import mirror

LOOKUP_BATCH = 100
UNKNOWN_TTL = timedelta(hours=6)
PEOPLE = ("Contact", "Lead")
# The mirror's fields (with SystemModstamp), so a lookup's answer is a mirror row like any other.
_FIELDS = {sobject: sync.select_list(sobject) for sobject in ("User", *PEOPLE)}


@dataclass
class Matches:
    people: dict[str, str] = field(default_factory=dict)  # recipient email -> Contact/Lead id
    users: dict[str, str] = field(default_factory=dict)  # rep email -> User id
    lookups: int = 0  # calls spent finding emails the mirror did not know


class Matcher:
    def __init__(self, sessions: sessionmaker[Session], workspace_id: str, clock: Clock) -> None:
        self.sessions = sessions
        self.workspace_id = workspace_id
        self.clock = clock

    def load(self, client: Client) -> dict[str, int]:
        """Fill the mirror with the org's people and deals: the full initial load of every
        mirrored type (`engine.sync`), so the interval sync goes on from its watermarks. Returns
        the live Users, Contacts and Leads the mirror then holds."""
        sync.Syncer(
            client.connector,
            self.workspace_id,
            self.clock,
            client=client,
            purpose=sync.LOAD_PURPOSE,
        ).run(full=True)
        with self.sessions() as session:
            return sync.live_counts(session, self.workspace_id, ("User", *PEOPLE))

    def match(self, client: Client, recipients: Iterable[str], reps: Iterable[str]) -> Matches:
        matches = Matches()
        recipients, reps = set(recipients), set(reps)
        with self.sessions() as session:
            for sobject in PEOPLE:
                found = mirror.ids_by_email(
                    session, self.workspace_id, sobject, recipients - set(matches.people)
                )
                matches.people.update(found)
            matches.users.update(mirror.ids_by_email(session, self.workspace_id, "User", reps))
            unknown_people = recipients - set(matches.people)
            unknown_users = reps - set(matches.users)
            cached = mirror.recently_unknown(
                session,
                self.workspace_id,
                unknown_people | unknown_users,
                self.clock.now(),
                UNKNOWN_TTL,
            )
        self._look_up(client, PEOPLE, unknown_people - cached, matches.people, matches)
        self._look_up(client, ("User",), unknown_users - cached, matches.users, matches)
        return matches

    def _look_up(
        self,
        client: Client,
        sobjects: tuple[str, ...],
        emails: set[str],
        into: dict[str, str],
        matches: Matches,
    ) -> None:
        remaining = set(emails)
        for sobject in sobjects:
            ordered = sorted(remaining)
            for start in range(0, len(ordered), LOOKUP_BATCH):
                batch = ordered[start : start + LOOKUP_BATCH]
                soql = format_soql(
                    f"SELECT {_FIELDS[sobject]} FROM {sobject} WHERE Email IN {{}}", batch
                )
                with client.http.purpose("lookup"):
                    records = client.sf.query_all(soql)["records"]
                matches.lookups += 1
                with self.sessions.begin() as session:
                    mirror.put(session, self.workspace_id, sobject, records, self.clock.now())
                for record in sorted(records, key=lambda r: r["Id"]):
                    email = str(record.get("Email") or "").lower()
                    if email in remaining:
                        into.setdefault(email, record["Id"])
            remaining -= set(into)
        if remaining:
            with self.sessions.begin() as session:
                mirror.remember_unknown(session, self.workspace_id, remaining, self.clock.now())
