"""Writes go as full as Salesforce allows: five sObject Collections of 200 records in one
`/composite` call, records claimed whole so one upsert of a Task carries every open, click and
reply waiting for it, and each record's outcome kept as Salesforce answered it."""

from __future__ import annotations

import math
from typing import Any

from quotasync.engine.worker import Progress
from quotasync.salesforce import api
from tests.integration.logging_support import (
    Connect,
    expected_tasks,
    people,
    records,
    stream,
)
from tests.integration.test_logging import OrgFactory, assert_each_in_org_once
from tests.sandbox_process import SandboxOrg


def used_by_quotasync(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("quotasync", 0))


def emails(org: SandboxOrg, count: int, *, prefix: str = "c") -> list[dict[str, Any]]:
    known = people(org)
    reps, recipients = sorted(known.reps), known.recipients
    return [
        {
            "id": f"{prefix}-{i}",
            "kind": "email_sent",
            "occurred_at": "2026-11-02T09:00:00+00:00",
            "user_email": reps[i % len(reps)],
            "subject": f"Hello {i}",
            "to": [recipients[i % len(recipients)]],
        }
        for i in range(count)
    ]


def follow_ups(email: dict[str, Any], opens: int, clicks: int) -> list[dict[str, Any]]:
    kinds = ["email_opened"] * opens + ["link_clicked"] * clicks
    return [
        {
            "id": f"{email['id']}-f{i}",
            "kind": kind,
            "occurred_at": "2026-11-02T10:00:00+00:00",
            "user_email": email["user_email"],
            "email_id": email["id"],
            **({"url": "https://acme.io/pricing"} if kind == "link_clicked" else {}),
        }
        for i, kind in enumerate(kinds)
    ]


def test_a_burst_goes_out_a_thousand_records_a_call_and_each_activity_lands_once(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    setup.settings(log_within=0)
    activities = stream(people(org), 4000, seed=41)
    assert setup.ingest(activities).accepted == 4000
    before = used_by_quotasync(org)
    setup.drive()

    assert setup.states() == {"logged": 4000}
    assert_each_in_org_once(org, activities, setup)
    tasks = setup.by_activity_id(records(org, "Task"))
    for key, want in expected_tasks(activities).items():
        assert (tasks[key][0]["QS_Opens__c"] or 0) == want.opens, key
        assert (tasks[key][0]["QS_Clicks__c"] or 0) == want.clicks, key
    # Every record the stream makes, written about a thousand to a call: the org counted as
    # many calls as the ledger, one per composite.
    written = {(r.record_type, r.record_key) for r in setup.rows().values() if r.salesforce_id}
    calls = setup.ledger_calls(purpose="log_activity")
    assert calls <= math.ceil(len(written) / api.RECORDS_PER_CALL) + 1
    assert used_by_quotasync(org) - before == calls
    assert len(written) / calls > 500


def test_every_open_and_click_waiting_for_an_email_goes_in_one_upsert_of_its_task(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """Far more follow-ups of one email than a collections request carries: claimed with their
    record, they are one upsert, not one per batch of 200 activities."""
    org = new_org("--seed", "60")
    setup = workspace(org)
    setup.settings(log_within=0)
    (email,) = emails(org, 1)
    setup.ingest([email])
    setup.drive()
    spent = setup.ledger_calls(purpose="log_activity")

    setup.ingest(follow_ups(email, opens=900, clicks=600))
    setup.drive()
    assert setup.ledger_calls(purpose="log_activity") - spent == 1
    assert setup.states() == {"logged": 1501}
    (task,) = records(org, "Task")
    assert (task["QS_Opens__c"], task["QS_Clicks__c"]) == (900, 600)


def test_one_bad_record_fails_alone_and_the_others_in_its_composite_are_written(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    known = people(org)
    setup = workspace(org)  # the mirror knows every Contact
    setup.settings(log_within=0)
    batch = emails(org, 900)
    victim = next(e["to"][0] for e in batch[450:] if e["to"][0] in known.contacts)
    # Deleted in the org after the mirror saw it: the Task naming it is refused.
    org.salesforce().restful(f"sobjects/Contact/{known.contacts[victim]}", method="DELETE")
    doomed = {i for i, e in enumerate(batch) if e["to"][0] == victim}
    setup.ingest(batch)
    setup.new_pool().turn(Progress())

    assert setup.ledger_calls(purpose="log_activity") == 1  # 900 Tasks: five subrequests, one call
    rows = setup.rows()
    for i in doomed:
        assert rows[f"c-{i}"].state == "failed"
        assert (rows[f"c-{i}"].last_error or "").startswith("ENTITY_IS_DELETED"), i
    assert {r.state for i, r in rows.items() if int(i[2:]) not in doomed} == {"logged"}
    assert len(records(org, "Task")) == 900 - len(doomed)


def test_a_composite_refused_whole_keeps_every_record_of_it_for_later(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    setup = workspace(org)
    setup.settings(log_within=0)
    setup.ingest(emails(org, 700))
    org.control("POST", "faults", {"error_rate": 1})
    setup.new_pool().turn(Progress())
    org.control("POST", "faults", {"error_rate": 0})

    rows = setup.rows()
    assert {(r.state, r.attempts) for r in rows.values()} == {("pending", 1)}
    assert records(org, "Task") == []
    setup.drive()
    assert setup.states() == {"logged": 700}
    assert len(records(org, "Task")) == 700
