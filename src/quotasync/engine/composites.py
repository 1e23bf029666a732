"""Sending a batch's writes as `/composite` requests: upserts and deletes as sObject Collections
subrequests of 200 records, up to five to a call (one API call for up to 1,000 records), and the
query subrequests that find the records a delete is in doubt about. What each answer says is
sorted into the batch's `Outcomes` (`engine/settling.py`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

from simple_salesforce import format_soql

from quotasync.domain import batching, governor, mapping
from quotasync.domain.outcomes import Outcome
from quotasync.engine import plan as planning
from quotasync.engine import settling
from quotasync.engine.settling import Outcomes
from quotasync.errors import QuotaExhausted, Refused, SessionExpired, Unreachable
from quotasync.salesforce import api
from quotasync.salesforce.connection import Client

AUTH = governor.Reason.AUTH


@dataclass(frozen=True)
class Part:
    """One subrequest of a composite, and the writes whose outcome its answer tells."""

    sub: api.Subrequest
    writes: Sequence[planning.Write] = ()
    deleting: bool = False


class Composites:
    """One batch's composite calls to the workspace's org, `per_call` heavy subrequests each."""

    def __init__(self, client: Client, per_call: int) -> None:
        self.client = client
        self.per_call = per_call

    def send(self, writes: Sequence[planning.Write], results: Outcomes | None = None) -> Outcomes:
        """Upserts and deletes as sObject Collections subrequests of 200 records, five to a
        `/composite` call (one API call for up to 1,000 records)."""
        results = results if results is not None else Outcomes()
        for write in writes:
            if write.fields is None and not write.salesforce_id and not write.look_up:
                settling.apply(results, write, Outcome.DONE, "")  # never written: nothing to delete
        deletes = [w for w in writes if w.fields is None and (w.salesforce_id or w.look_up)]
        parts = [
            Part(
                api.upsert_collection(
                    sobject, mapping.EXTERNAL_ID, [w.fields or {} for w in chunk]
                ),
                chunk,
            )
            for sobject, items in upserts_by_object(writes).items()
            for chunk in batching.chunks(items)
        ]
        parts += [
            Part(
                api.delete_collection([w.salesforce_id or "" for w in chunk]),
                chunk,
                deleting=True,
            )
            for chunk in batching.chunks(self._found(deletes, results))
        ]
        # One call a step, its fullest subrequests first: what does not fit waits for the next
        # step, where it joins the next claim's records, so every call goes out as full as the
        # backlog allows instead of a thin last call per step.
        parts.sort(key=lambda part: len(part.writes), reverse=True)
        first, *rest = self.calls(parts) or [[]]
        results.deferred += [
            i for call in rest for part in call for w in part.writes for i in w.activity_ids
        ]
        for part, answer in self._answers(first, results):
            if answer.ok and isinstance(answer.body, list):
                _record_results(part.writes, answer.body, results, deleting=part.deleting)
            else:
                _sub_refused(part, answer, results)
        return results

    def calls(self, parts: Sequence[Part]) -> list[Sequence[Part]]:
        """The parts packed into as few composite calls as `per_call` allows."""
        calls: list[Sequence[Part]] = []
        for call in api.pack([part.sub for part in parts], max_heavy=self.per_call):
            start = sum(len(c) for c in calls)
            calls.append(parts[start : start + len(call)])
        return calls

    def _found(self, deletes: Sequence[planning.Write], results: Outcomes) -> list[planning.Write]:
        """The deletes with the ids their records have now. Those whose id is in doubt (a write
        went unanswered) are looked up by external id, 200 to a query subrequest; one the org
        does not have is done (nothing to delete), one the query could not tell about is sorted
        like any failed call."""
        found = [w for w in deletes if not w.look_up]
        parts = [
            Part(
                api.query(
                    format_soql(
                        f"SELECT Id, {mapping.EXTERNAL_ID} FROM {chunk[0].sobject} "
                        f"WHERE {mapping.EXTERNAL_ID} IN {{}}",
                        [w.external_id for w in chunk],
                    )
                ),
                chunk,
            )
            for chunk in batching.chunks([w for w in deletes if w.look_up])
        ]
        for part, answer in self._answers(parts, results):
            records = answer.body.get("records") if isinstance(answer.body, dict) else None
            if not answer.ok or not isinstance(records, list):
                _sub_refused(part, answer, results)
                continue
            ids = {
                str(r.get(mapping.EXTERNAL_ID)): str(r.get("Id"))
                for r in records
                if isinstance(r, dict)
            }
            for write in part.writes:
                if write.external_id in ids:
                    found.append(
                        replace(write, salesforce_id=ids[write.external_id], look_up=False)
                    )
                else:
                    settling.apply(results, write, Outcome.DONE, "")  # never written after all
        return found

    def _answers(
        self, parts: Sequence[Part], results: Outcomes
    ) -> Iterator[tuple[Part, api.Answer]]:
        """Each part with its answer, the parts sent as few composites as the shape allows. A
        composite refused whole sorts all its writes; one the ledger has no room for stops the
        rest, which stay pending, untouched."""
        for call in self.calls(parts):
            if results.no_room is not None:
                return
            writes = [w for part in call for w in part.writes]
            try:
                with self.client.http.purpose("log_activity", shares(writes)):
                    answers = api.composite(self.client, [part.sub for part in call])
            except SessionExpired as error:
                settling.apply_all(writes, Outcome.PAUSE, f"auth: {error}", results, AUTH)
            except Refused as refused:
                settling.refused(writes, refused.status, refused.fault, results)
            except Unreachable as error:
                settling.apply_all(writes, Outcome.RETRY, str(error), results)
            except QuotaExhausted as no_room:
                results.no_room = no_room  # not sent
                return
            else:
                yield from zip(call, answers, strict=True)


def upserts_by_object(writes: Sequence[planning.Write]) -> dict[str, list[planning.Write]]:
    grouped: dict[str, list[planning.Write]] = {}
    for write in writes:
        if write.fields is not None:
            grouped.setdefault(write.sobject, []).append(write)
    return grouped


def shares(writes: Sequence[planning.Write]) -> dict[str, float]:
    """A batched call is split across the reps whose records it carries."""
    counts = Counter(w.user_email for w in writes)
    total = sum(counts.values()) or 1
    return {user: n / total for user, n in counts.items()}


def _sub_refused(part: Part, answer: api.Answer, results: Outcomes) -> None:
    """A subrequest answered with an error (or with nothing a client can read)."""
    if answer.ok:
        settling.apply_all(part.writes, Outcome.RETRY, "an unreadable answer", results)
        return
    settling.refused(part.writes, answer.status, answer.fault, results)


def _record_results(
    chunk: Sequence[planning.Write],
    answer: Sequence[Any],
    results: Outcomes,
    deleting: bool = False,
) -> None:
    for write, item in zip(chunk, answer, strict=False):
        saved = api.saved(item)
        if saved is None:
            settling.apply(results, write, Outcome.RETRY, "an unreadable answer")
        elif deleting and (saved.fault is None or saved.fault.code == "ENTITY_IS_DELETED"):
            settling.apply(
                results, write, Outcome.DONE, ""
            )  # gone, or already gone: what it wanted
        else:
            settling.saved(results, write, saved)
