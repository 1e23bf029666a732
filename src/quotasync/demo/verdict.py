"""Is every accepted activity in the org exactly once? Read from the org's own records.

Each activity is looked for where it must show (LOGGING.md): an `email_sent` is one Task; an open
or a click is one in that Task's `QS_Opens__c` / `QS_Clicks__c`; a reply is its line in the Task's
Description; a meeting's booking, updates and cancellation are one Event as they leave it (or no
Event once canceled). An activity quotasync has not written yet (still pending when the demo
stopped) is `waiting`, not missing.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from quotasync.domain import mapping
from quotasync.domain.activities import Activity, Kind, State, parse_activity


@dataclass
class Verdict:
    accepted: int = 0
    once: int = 0
    waiting: int = 0  # accepted, not written yet when the demo stopped
    missing: int = 0
    duplicated: int = 0

    @property
    def exact(self) -> bool:
        """Nothing missing, nothing twice (waiting activities are neither)."""
        return self.missing == 0 and self.duplicated == 0


def check(
    accepted: Iterable[Mapping[str, Any]],
    states: Mapping[str, str],
    tasks: Sequence[Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    prefix: str | None,
) -> Verdict:
    """`states`: each activity's outbox state by id; `tasks`, `events`: the org's records;
    `prefix`: the workspace's, which its records' external ids carry (`mapping.external_id`)."""
    verdict = Verdict()
    groups: dict[tuple[str, str], list[Activity]] = defaultdict(list)
    for raw in accepted:
        activity = parse_activity(dict(raw))
        groups[mapping.record_key(activity)].append(activity)
        verdict.accepted += 1
    task_records = _by_external_id(tasks)
    event_records = _by_external_id(events)
    for (sobject, key), group in groups.items():
        value = mapping.external_id(prefix, key)
        if sobject == mapping.TASK:
            _email(verdict, group, task_records.get(value, []), states)
        else:
            _meeting(verdict, group, event_records.get(value, []), states, prefix)
    return verdict


def _by_external_id(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    found: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for record in records:
        key = record.get(mapping.EXTERNAL_ID)
        if key:
            found[str(key)].append(record)
    return found


def _email(
    verdict: Verdict,
    group: list[Activity],
    records: list[Mapping[str, Any]],
    states: Mapping[str, str],
) -> None:
    sent = [a for a in group if a.kind is Kind.EMAIL_SENT]
    follow_ups = [a for a in group if a.kind is not Kind.EMAIL_SENT]
    _tally(verdict, sent, len(records), states)
    if not records:
        _tally(verdict, follow_ups, 0, states)
        return
    task = records[0]
    for kind, field in ((Kind.EMAIL_OPENED, "QS_Opens__c"), (Kind.LINK_CLICKED, "QS_Clicks__c")):
        counted = [a for a in follow_ups if a.kind is kind]
        _tally(verdict, counted, int(float(task.get(field) or 0)), states)
    description = str(task.get("Description") or "")
    replies: dict[str, list[Activity]] = defaultdict(list)
    for reply in (a for a in follow_ups if a.kind is Kind.EMAIL_REPLIED):
        replies[mapping.reply_line(reply)].append(reply)
    for line, same in replies.items():
        _tally(verdict, same, description.count(line), states)


def _meeting(
    verdict: Verdict,
    group: list[Activity],
    records: list[Mapping[str, Any]],
    states: Mapping[str, str],
    prefix: str | None,
) -> None:
    booked = next((a for a in group if a.kind is Kind.MEETING_BOOKED), None)
    if booked is None:  # changes of a meeting never booked: nothing for them to show in
        _tally(verdict, group, 0, states)
        return
    expected = mapping.event_fields(
        booked, [a for a in group if a is not booked], mapping.Links(), prefix=prefix
    )
    if len(records) > 1:
        verdict.duplicated += 1  # the booking, written twice
        _tally(verdict, [a for a in group if a is not booked], len(group) - 1, states)
        return
    if _matches(expected, records[0] if records else None):
        verdict.once += len(group)
        return
    # The org shows an older state: the changes after it are waiting, or missing.
    unwritten = [a for a in group if states.get(a.id) == State.PENDING] or [group[-1]]
    verdict.once += len(group) - len(unwritten)
    _tally(verdict, unwritten, 0, states)


def _matches(expected: dict[str, object] | None, record: Mapping[str, Any] | None) -> bool:
    if expected is None or record is None:
        return expected is None and record is None
    return (
        _instant(record.get("StartDateTime")) == _instant(expected["StartDateTime"])
        and _instant(record.get("EndDateTime")) == _instant(expected["EndDateTime"])
        and (record.get("Location") or None) == expected.get("Location")
    )


def _instant(value: object) -> datetime | None:
    """A Salesforce datetime in either form it travels in (`...Z`, `....000+0000`)."""
    if not isinstance(value, str):
        return None
    text = value.replace("Z", "+00:00")
    if text.endswith("+0000"):
        text = text[:-5] + "+00:00"
    return datetime.fromisoformat(text)


def _tally(
    verdict: Verdict, activities: Sequence[Activity], found: int, states: Mapping[str, str]
) -> None:
    """`found` of the org's traces for these `activities` (which leave one each)."""
    expected = len(activities)
    if found >= expected:
        extra = min(found - expected, expected)
        verdict.duplicated += extra
        verdict.once += expected - extra
        return
    short = expected - found
    pending = Counter(states.get(a.id) for a in activities)[State.PENDING]
    verdict.once += found
    verdict.waiting += min(short, pending)
    verdict.missing += short - min(short, pending)
