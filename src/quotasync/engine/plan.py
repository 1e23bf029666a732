"""Turning a batch of outbox rows into record writes: which activities wait, which are skipped,
and the one upsert each touched Task or Event gets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from quotasync.domain import mapping
from quotasync.domain.activities import FOLLOW_UP_KINDS, Activity, Kind, State
from quotasync.domain.mapping import Links, Unmatched
from quotasync.store.outbox import OPEN_TRACKING_OFF, UNMATCHED_PREFIXES
from quotasync.store.tables import Activity as Row

OPEN_KINDS = frozenset({Kind.EMAIL_OPENED, Kind.LINK_CLICKED})
_NEVER = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Write:
    """One record write and the batch activities it carries."""

    sobject: str
    key: str  # the record key (the email's or meeting's activity id)
    # The record's QS_Activity_Id__c in the org: the key in the workspace's form
    # (`mapping.external_id`), what upserts go by and what look-ups and Bulk results come back with.
    external_id: str
    fields: dict[str, object] | None  # None: delete the record (a canceled meeting)
    salesforce_id: str | None  # the record's id when known (needed to delete)
    activity_ids: tuple[str, ...]
    user_email: str
    # A delete whose record may exist under an id quotasync never learned: find it by its
    # external id first (see `unanswered`).
    look_up: bool = False


@dataclass
class Plan:
    writes: list[Write] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)  # follow-ups whose email is not known yet
    skipped: dict[str, str] = field(default_factory=dict)  # activity id -> why
    failed: dict[str, str] = field(default_factory=dict)  # activity id -> why
    done: list[str] = field(default_factory=list)  # nothing to write (e.g. canceled before booked)


@dataclass(frozen=True)
class Group:
    """Everything stored about one record, and which of it is in this batch."""

    sobject: str
    key: str
    origin: Row | None  # the email_sent or meeting_booked row
    rows: list[Row]  # every stored row for the record
    batch: list[Row]  # the rows of this batch


def group(batch: Sequence[Row], stored: Sequence[Row]) -> list[Group]:
    by_key: dict[tuple[str, str], list[Row]] = {}
    for row in stored:
        by_key.setdefault((row.record_type, row.record_key), []).append(row)
    in_batch: dict[tuple[str, str], list[Row]] = {}
    for row in batch:
        in_batch.setdefault((row.record_type, row.record_key), []).append(row)
    groups = []
    for (sobject, key), rows in in_batch.items():
        everything = by_key.get((sobject, key), rows)
        origin = next((r for r in everything if r.id == key), None)
        groups.append(Group(sobject, key, origin, everything, rows))
    return groups


def recipients(
    groups: Sequence[Group], parsed: Mapping[str, Activity]
) -> tuple[set[str], set[str]]:
    """Emails to match: the people each origin activity names, and the reps who sent them."""
    people: set[str] = set()
    reps: set[str] = set()
    for g in groups:
        if g.origin is not None:
            origin = parsed[g.origin.id]
            people.update(mapping.people_to_match(origin))
            reps.add(origin.user_email)
    return people, reps


def first_unmatched(
    groups: Sequence[Group], parsed: Mapping[str, Activity], people: Mapping[str, str]
) -> dict[str, str]:
    """recipient email -> the rep who wrote to them, for origins none of whose people is known."""
    out: dict[str, str] = {}
    for g in groups:
        if g.origin is None:
            continue
        origin = parsed[g.origin.id]
        candidates = mapping.people_to_match(origin)
        if candidates and not any(c in people for c in candidates):
            out.setdefault(candidates[0], origin.user_email)
    return out


def build(
    groups: Sequence[Group],
    parsed: Mapping[str, Activity],
    people: Mapping[str, str],
    users: Mapping[str, str],
    *,
    open_tracking: bool,
    unmatched: Unmatched,
    prefix: str | None,
) -> Plan:
    """`prefix`: the workspace's, for its records' external ids (`mapping.external_id`)."""
    plan = Plan()
    for g in groups:
        _plan_group(plan, g, parsed, people, users, open_tracking, unmatched, prefix)
    return plan


def _plan_group(
    plan: Plan,
    g: Group,
    parsed: Mapping[str, Activity],
    people: Mapping[str, str],
    users: Mapping[str, str],
    open_tracking: bool,
    unmatched: Unmatched,
    prefix: str | None,
) -> None:
    batch_ids = [r.id for r in g.batch]
    if g.origin is None:
        plan.waiting += batch_ids  # the email or meeting they belong to has not arrived yet
        return
    if g.origin.state in (State.FAILED, State.SKIPPED) and g.origin.id not in batch_ids:
        reason = f"its {'email' if g.sobject == mapping.TASK else 'meeting'} {g.key} was {g.origin.state}: {g.origin.last_error}"
        target = plan.failed if g.origin.state == State.FAILED else plan.skipped
        target.update(dict.fromkeys(batch_ids, reason))
        return
    origin = parsed[g.origin.id]
    if not open_tracking:
        quiet = [r.id for r in g.batch if parsed[r.id].kind in OPEN_KINDS]
        plan.skipped.update(dict.fromkeys(quiet, OPEN_TRACKING_OFF))
        batch_ids = [i for i in batch_ids if i not in plan.skipped]
        if not batch_ids:
            return
    candidates = mapping.people_to_match(origin)
    who = next((people[e] for e in candidates if e in people), None)
    if who is None and candidates and unmatched is not Unmatched.LOG_UNLINKED:
        # With create_lead the writer has made Leads for unknown recipients before planning;
        # a recipient still unmatched is one whose Lead Salesforce refused.
        no_contact, no_lead = UNMATCHED_PREFIXES
        reason = no_contact if unmatched is Unmatched.SKIP else no_lead
        plan.skipped.update(dict.fromkeys(batch_ids, f"{reason} {candidates[0]}"))
        return
    links = Links(who_id=who, owner_id=users.get(origin.user_email))
    others = [parsed[r.id] for r in g.rows if r.id != g.origin.id and r.id in parsed]
    if g.sobject == mapping.TASK:
        follow_ups = [a for a in others if a.kind in FOLLOW_UP_KINDS]
        fields: dict[str, object] | None = mapping.task_fields(
            origin, follow_ups, links, open_tracking=open_tracking, prefix=prefix
        )
    else:
        fields = mapping.event_fields(origin, others, links, prefix=prefix)
    record_id = current_record_id(g)
    look_up = fields is None and unanswered(g)
    if fields is None and not record_id and not look_up:
        plan.done += batch_ids  # canceled before it was ever written: nothing to delete
        return
    plan.writes.append(
        Write(
            g.sobject,
            g.key,
            mapping.external_id(prefix, g.key),
            fields,
            record_id,
            tuple(batch_ids),
            origin.user_email,
            look_up,
        )
    )


def unanswered(g: Group) -> bool:
    """Whether a write of the record may have reached Salesforce without quotasync learning
    what became of it: one of its activities went out and is still pending, to be retried after
    no answer (a dropped connection, a timeout) or held by the claim of a worker that died
    mid-call. Its record may then exist with an id nobody knows, or the id last logged may be
    stale (a deleted meeting revived by an update whose answer was lost).

    Pending rows that were claimed before carry a `next_attempt_at`; the batch's own rows are
    taken as `outbox.claim` loaded them, before this claim set it."""
    rows = {r.id: r for r in g.rows}
    rows.update({r.id: r for r in g.batch})
    return any(
        r.state == State.PENDING and (r.attempts > 0 or r.next_attempt_at is not None)
        for r in rows.values()
    )


def current_record_id(g: Group) -> str | None:
    """The id of the record as last written: the origin's id can be missing (a meeting canceled
    before it was written, then canceled again) or stale (deleted, then revived by an update that
    made a new record), so the most recently logged row of the record that carries an id decides."""
    written = [r for r in g.rows if r.salesforce_id and r.state == State.LOGGED]
    if not written:
        return None
    return max(written, key=lambda r: (r.logged_at or _NEVER, r.id == g.key)).salesforce_id
