"""Sending a big backlog's writes as Bulk API 2.0 upsert jobs, one per sObject; the few deletes
(canceled meetings) go the collections way (`engine/composites.py`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

from quotasync.clock import Clock
from quotasync.domain import governor, mapping
from quotasync.domain.outcomes import Outcome
from quotasync.engine import plan as planning
from quotasync.engine import settling
from quotasync.engine.composites import Composites, shares, upserts_by_object
from quotasync.engine.settling import Outcomes
from quotasync.errors import QuotaExhausted, Refused, SessionExpired, Unreachable
from quotasync.salesforce import bulk

JOB_LIMIT = 10_000  # activities in one Bulk job: one DailyBulkApiBatches unit
# How long the writer waits on a Bulk job before aborting it: well within the claim, so that no
# other writer takes its records while it runs; they are written again later.
WAIT = timedelta(minutes=10)
AUTH = governor.Reason.AUTH


def send(
    composites: Composites,
    writes: Sequence[planning.Write],
    clock: Clock,
    sleep: Callable[[float], None],
) -> Outcomes:
    results = Outcomes()
    for sobject, items in upserts_by_object(writes).items():
        _job(composites, sobject, items, results, clock, sleep)
    deletes = [w for w in writes if w.fields is None]
    if deletes:  # a handful at most: canceled meetings go the collections way
        composites.send(deletes, results)
    return results


def _job(
    composites: Composites,
    sobject: str,
    items: Sequence[planning.Write],
    results: Outcomes,
    clock: Clock,
    sleep: Callable[[float], None],
) -> None:
    client = composites.client
    try:
        with client.http.purpose("log_activity", shares(items)):
            saved = bulk.upsert(
                client,
                sobject,
                mapping.EXTERNAL_ID,
                [w.fields or {} for w in items],
                clock=clock,
                sleep=sleep,
                give_up_after=WAIT.total_seconds(),
            )
    except SessionExpired as error:
        settling.apply_all(items, Outcome.PAUSE, f"auth: {error}", results, AUTH)
        return
    except Refused as refused:
        settling.refused(items, refused.status, refused.fault, results)
        return
    except QuotaExhausted as no_room:
        results.no_room = no_room
        return
    except (Unreachable, bulk.JobFailed) as error:
        # No answer, or a job that failed or ran too long: the whole job is tried again later.
        settling.apply_all(items, Outcome.RETRY, f"Bulk job did not finish: {error}", results)
        return
    for write in items:
        if write.external_id in saved:  # the job's results are keyed by external id
            settling.saved(results, write, saved[write.external_id])
        else:  # the job did not process it
            settling.apply(results, write, Outcome.RETRY, "not in the Bulk job's results")
