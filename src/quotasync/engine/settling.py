"""Settling a batch: what each write's answer means for its activities (`Outcomes`), and the
one transaction that records it in the outbox (`settle`).

Rows are updated in groups that share their new values (one statement per record id, per
message, per retry count), so a 10,000-activity Bulk batch is not 10,000 updates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session, sessionmaker

from quotasync import metrics
from quotasync.domain import governor, outcomes
from quotasync.domain.activities import State
from quotasync.domain.outcomes import Outcome
from quotasync.engine import plan as planning
from quotasync.errors import QuotaExhausted
from quotasync.salesforce import api
from quotasync.store import outbox, retrying

WAIT_FOR_EMAIL = timedelta(minutes=10)  # a follow-up whose email never arrives fails after this
WAIT_RECHECK = timedelta(seconds=30)  # how often such a follow-up looks for its email again
_V = TypeVar("_V")


@dataclass
class Outcomes:
    """What the calls of one batch said about its activities, sorted for `settle`."""

    logged: dict[str, str] = field(default_factory=dict)  # activity id -> Salesforce id
    failed: dict[str, str] = field(default_factory=dict)
    retry: list[str] = field(default_factory=list)
    pause: bool = False
    pause_reason: governor.Reason | None = None
    no_room: QuotaExhausted | None = (
        None  # a cap stopped the batch part-way: the rest stays pending
    )
    deferred: list[str] = field(default_factory=list)  # left for the next step's call


def apply(
    results: Outcomes,
    write: planning.Write,
    outcome: Outcome,
    why: str,
    record_id: str | None = None,
    reason: governor.Reason | None = None,
) -> None:
    """Sort the write's activities by the outcome; a pause's reason is `reason` when the caller
    knows it (an expired session), else the outcome's."""
    for activity_id in write.activity_ids:
        if outcome is Outcome.DONE:
            results.logged[activity_id] = record_id or write.salesforce_id or ""
        elif outcome is Outcome.FAILED:
            results.failed[activity_id] = why
        elif outcome is Outcome.PAUSE or outcome is Outcome.NO_API:
            results.retry.append(activity_id)
            results.pause = True
            results.pause_reason = (
                governor.Reason.NO_API_ACCESS
                if outcome is Outcome.NO_API
                else (reason or governor.Reason.SALESFORCE_REFUSED)
            )
        else:  # retry, reauth that did not help
            results.retry.append(activity_id)


def apply_all(
    chunk: Sequence[planning.Write],
    outcome: Outcome,
    why: str,
    results: Outcomes,
    reason: governor.Reason | None = None,
) -> None:
    """The same outcome for every write of a call (or subrequest) answered whole."""
    for write in chunk:
        apply(results, write, outcome, why, reason=reason)


def refused(
    chunk: Sequence[planning.Write], status: int, why: api.Fault, results: Outcomes
) -> None:
    """A request (or subrequest) was refused whole: sort Salesforce's answer into an outcome
    for each of its writes."""
    outcome = outcomes.classify_response(status, why.code)
    apply_all(chunk, outcome, str(why), results)


def saved(results: Outcomes, write: planning.Write, saved: api.Saved) -> None:
    """A record's own result, from a collections answer or a Bulk job's."""
    if saved.fault is None:
        apply(results, write, Outcome.DONE, "", saved.record_id)
    else:
        outcome = outcomes.classify_record_error(saved.fault.code)
        apply(results, write, outcome, str(saved.fault))


def settle(
    sessions: sessionmaker[Session],
    workspace_id: str,
    now: datetime,
    batch: Sequence[Any],
    plan: planning.Plan,
    results: Outcomes,
    *,
    done_at: datetime,
    jitter: float,
    claimed_until: datetime,
) -> None:
    """Record what happened to each activity of the batch, in one transaction. `done_at` is
    when the records were known to be in Salesforce; `jitter` spreads the retries' backoff."""
    attempts = {row.id: row.attempts for row in batch}
    received = {row.id: row.received_at for row in batch}
    ws = workspace_id

    def record(session: Session) -> None:
        outbox.mark_logged(session, ws, results.logged, done_at)
        for why, ids in _grouped({**plan.failed, **results.failed}).items():
            outbox.mark(session, ws, ids, state=State.FAILED, last_error=why[:2000])
        for why, ids in _grouped(plan.skipped).items():
            outbox.mark(session, ws, ids, state=State.SKIPPED, last_error=why)
        outbox.mark(session, ws, plan.done, state=State.LOGGED, logged_at=done_at)
        tries = {i: attempts[i] + 1 for i in results.retry}
        for attempt, ids in _grouped(tries).items():
            delay = outcomes.backoff(attempt, jitter=jitter)
            outbox.mark(
                session,
                ws,
                ids,
                state=State.PENDING,
                attempts=attempt,
                next_attempt_at=now + timedelta(seconds=delay),
            )
        overdue = [i for i in plan.waiting if now - received[i] > WAIT_FOR_EMAIL]
        outbox.mark(
            session,
            ws,
            overdue,
            state=State.FAILED,
            last_error="the email or meeting it belongs to never arrived",
        )
        later = [i for i in plan.waiting if i not in set(overdue)]
        outbox.mark(session, ws, later, next_attempt_at=now + WAIT_RECHECK)
        # What did not go (a cap stopped the batch part-way) is due again at once.
        outbox.release(session, ws, [row.id for row in batch], claimed_until)

    # Salesforce has the records: a store that fails for a moment must not make them go again.
    retrying.transaction(sessions, record)
    logged = [*results.logged, *plan.done]
    metrics.observe_logged((done_at - received[i]).total_seconds() for i in logged)


def _grouped(values: Mapping[str, _V]) -> dict[_V, list[str]]:
    """activity id -> value, turned into value -> activity ids."""
    groups: dict[_V, list[str]] = {}
    for activity_id, value in values.items():
        groups.setdefault(value, []).append(activity_id)
    return groups
