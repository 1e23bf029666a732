"""Matching emails to Salesforce records: the mirror first, then the org in batches.

Recipient email → Contact, else Lead; the rep's email → User (for OwnerId). The emails the mirror
does not know are looked up with SOQL `IN` queries of up to 100 emails each, Contacts, Leads and
Users side by side: up to five queries go in one `/composite` call (`engine.pages`), so a batch's
unknown recipients and reps usually cost one call. Leads are asked for every unknown recipient
at once rather than after the Contacts' answer (a Contact still wins): the Leads that turn out
not to be needed only go into the mirror, where the sync would bring them anyway. The answer is
kept, found or not, so the same email never costs a call twice within `UNKNOWN_TTL`.

Why 100 emails: a query subrequest is a GET, and Salesforce takes URLs of up to 16,384
characters. 100 typical addresses make a URL of about 4,000; a batch is also cut short where its
URL-encoded SOQL would pass `LOOKUP_URL_CHARS`, so 100 long addresses (up to 254 characters each,
tripled by encoding) never make a URL the org refuses. More per query would save no call while
five queries of 100 fit one call.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote_plus

from simple_salesforce.format import format_soql
from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.domain import governor
from quotasync.engine import pages, sync
from quotasync.salesforce import api
from quotasync.salesforce.connection import Client
from quotasync.store import mirror, unknown_emails

LOOKUP_BATCH = 100  # emails per IN query
LOOKUP_URL_CHARS = 8_000  # URL-encoded SOQL of one lookup, at most: half of what the org takes
_EMAIL_CHARS = LOOKUP_URL_CHARS - 1_000  # the rest is for the SELECT list
UNKNOWN_TTL = timedelta(hours=6)
PEOPLE = ("Contact", "Lead")
# The mirror's fields (with SystemModstamp), so a lookup's answer is a mirror row like any other.
_FIELDS = {sobject: sync.select_list(sobject) for sobject in ("User", *PEOPLE)}


@dataclass
class Matches:
    people: dict[str, str] = field(default_factory=dict)  # recipient email -> Contact/Lead id
    users: dict[str, str] = field(default_factory=dict)  # rep email -> User id
    lookups: int = 0  # calls spent finding emails the mirror did not know


@dataclass(frozen=True)
class Loaded:
    """What a load left in the mirror: live records by type, and why it stopped, if it did."""

    counts: dict[str, int]
    stopped: str | None = None
    # The org will not serve the connected user at all (no API access, a grant it refuses).
    refused: governor.Reason | None = None


class Matcher:
    def __init__(self, sessions: sessionmaker[Session], workspace_id: str, clock: Clock) -> None:
        self.sessions = sessions
        self.workspace_id = workspace_id
        self.clock = clock

    def load(self, client: Client) -> Loaded:
        """Fill the mirror with the org's people and deals: the full initial load of every
        mirrored type (`engine.sync`), so the interval sync goes on from its watermarks (a type
        loaded in full within the sync interval, by a connect moments ago, only catches up).
        Returns the live records of each type the mirror then holds, and whether the load got
        through (the quota or the org may stop it part way: the interval sync finishes it)."""
        report = sync.Syncer(
            client.connector,
            self.workspace_id,
            self.clock,
            client=client,
            purpose=sync.LOAD_PURPOSE,
        ).run(full=True)
        with self.sessions() as session:
            counts = sync.live_counts(session, self.workspace_id, sync.OBJECTS)
        stopped = None
        if not report.complete:
            stopped = report.error or (
                f"{report.paused.reason}" if report.paused is not None else "stopped part way"
            )
        refused = None
        if report.paused is not None and report.paused.reason in (
            governor.Reason.NO_API_ACCESS,
            governor.Reason.AUTH,
        ):
            refused = report.paused.reason
            stopped = report.paused.message
        return Loaded(counts, stopped, refused)

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
            cached = unknown_emails.recently_unknown(
                session,
                self.workspace_id,
                unknown_people | unknown_users,
                self.clock.now(),
                UNKNOWN_TTL,
            )
        self._look_up(client, unknown_people - cached, unknown_users - cached, matches)
        return matches

    def _look_up(self, client: Client, people: set[str], reps: set[str], matches: Matches) -> None:
        """Ask the org about emails the mirror does not know: recipients among Contacts and
        Leads, reps among Users, up to five `IN` queries a call."""
        asked = [(sobject, batch) for sobject in PEOPLE for batch in _batches(people)]
        asked += [("User", batch) for batch in _batches(reps)]
        if not asked:
            return
        queries = {pages.Paged(api.query(_lookup_soql(s, batch))): s for s, batch in asked}
        found: dict[str, list[dict[str, Any]]] = {sobject: [] for sobject in (*PEOPLE, "User")}

        def take(query: pages.Paged, page: api.Page) -> None:
            found[queries[query]].extend(page.records)

        with client.http.purpose("lookup"):
            matches.lookups += pages.read(client, list(queries), take)
        for query in queries:
            if query.fault is not None:
                raise api.Refused(query.status or 400, query.fault)
        with self.sessions.begin() as session:
            for sobject, records in found.items():
                mirror.put(session, self.workspace_id, sobject, records, self.clock.now())
        for sobject, emails, into in (
            *((s, people, matches.people) for s in PEOPLE),  # a Contact before a Lead
            ("User", reps, matches.users),
        ):
            for record in sorted(found[sobject], key=lambda r: str(r.get("Id"))):
                email = str(record.get("Email") or "").lower()
                if email in emails:
                    into.setdefault(email, str(record["Id"]))
        unknown = (people - set(matches.people)) | (reps - set(matches.users))
        if unknown:
            with self.sessions.begin() as session:
                unknown_emails.remember_unknown(
                    session, self.workspace_id, unknown, self.clock.now()
                )


def _lookup_soql(sobject: str, emails: list[str]) -> str:
    return format_soql(f"SELECT {_FIELDS[sobject]} FROM {sobject} WHERE Email IN {{}}", emails)


def _batches(emails: set[str]) -> Iterator[list[str]]:
    """The emails in sorted batches of `LOOKUP_BATCH`, each cut short where its query's
    URL-encoded SOQL would pass `LOOKUP_URL_CHARS`."""
    batch: list[str] = []
    length = 0
    for email in sorted(emails):
        size = len(quote_plus(f"'{email}',"))
        if batch and (len(batch) == LOOKUP_BATCH or length + size > _EMAIL_CHARS):
            yield batch
            batch, length = [], 0
        batch.append(email)
        length += size
    if batch:
        yield batch
