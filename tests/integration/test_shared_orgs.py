"""Several workspaces logging into one org: each one's Tasks and Events are its own, though their
activity ids are the same (LOGGING.md: Shared orgs). And a workspace made before external ids
carried the workspace goes on writing the records it wrote then, under their bare ids. And each
workspace's Real-Time Sync setting is its own.

Each workspace here has a store of its own (a worker drives every workspace of its store, and
each store seals its secrets with its own key); what they share is the org."""

from __future__ import annotations

from typing import Any

from quotasync.domain import mapping
from quotasync.engine.realtime import RealTime
from quotasync.engine.worker import Progress
from tests.integration.logging_support import Connect, Setup, people, records
from tests.integration.test_auth import sobject
from tests.integration.test_logging import OrgFactory, meeting
from tests.integration.test_realtime import pushing_org, serving_pushes


def email(rep: str, to: str, key: str, subject: str) -> dict[str, Any]:
    return {
        "id": key,
        "kind": "email_sent",
        "occurred_at": "2026-11-02T09:00:00+00:00",
        "user_email": rep,
        "to": [to],
        "subject": subject,
        "body": "Hi,\n\nthe numbers.",
    }


def opened(rep: str, to: str, key: str) -> dict[str, Any]:
    return {
        "id": f"{key}-open",
        "kind": "email_opened",
        "occurred_at": "2026-11-02T10:00:00+00:00",
        "user_email": rep,
        "to": [to],
        "email_id": key,
    }


def own(setup: Setup, sobject: str, key: str) -> list[dict[str, Any]]:
    """The workspace's records for an email's or meeting's id."""
    assert setup.org is not None
    return records(setup.org, sobject, f"QS_Activity_Id__c = '{setup.external_id(key)}'")


def test_two_workspaces_on_one_org_keep_their_tasks_and_events_apart(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "60")
    known = people(org)
    rep, buyer = sorted(known.reps)[0], known.recipients[0]
    first, second = workspace(org), workspace(org)
    assert first.prefix is not None and second.prefix is not None
    assert first.prefix != second.prefix
    booked, canceled = meeting(rep, buyer, "m-1")
    # The same ids in both: each email product numbers its own activities.
    first.ingest([email(rep, buyer, "a-1", "From the first"), booked])
    second.ingest([email(rep, buyer, "a-1", "From the second"), booked])
    first.drive()
    second.drive()

    tasks = records(org, "Task", "QS_Activity_Id__c != null")
    assert sorted(t["Subject"] for t in tasks) == [
        "Email: From the first",
        "Email: From the second",
    ]
    assert [t["Subject"] for t in own(first, "Task", "a-1")] == ["Email: From the first"]
    assert [t["Subject"] for t in own(second, "Task", "a-1")] == ["Email: From the second"]
    assert len(own(first, "Event", "m-1")) == len(own(second, "Event", "m-1")) == 1

    # The first workspace's meeting is canceled: its Event goes, the second's stays.
    first.ingest([canceled])
    first.drive()
    assert first.states() == {"logged": 3}
    assert own(first, "Event", "m-1") == []
    assert len(own(second, "Event", "m-1")) == 1
    assert len(records(org, "Task", "QS_Activity_Id__c != null")) == 2


def test_a_cancel_whose_booking_went_unanswered_finds_only_its_own_workspaces_event(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """The delete looks its Event up by external id (the booking's answer was lost, so its id is
    not known): the other workspace's Event of the same meeting id is not the one it finds."""
    org = new_org("--seed", "60")
    known = people(org)
    booked, canceled = meeting(sorted(known.reps)[0], known.recipients[0], "m-1")
    other = workspace(org)
    other.ingest([booked])
    other.drive()
    setup = workspace(org)
    setup.settings(log_within=0)
    setup.ingest([booked])
    org.control("POST", "faults", {"drop_rate": 1})
    setup.new_pool().turn(Progress())
    org.control("POST", "faults", {"drop_rate": 0})
    assert setup.rows()["m-1"].attempts == 1  # written, its answer lost
    assert len(own(setup, "Event", "m-1")) == 1

    setup.ingest([canceled])
    setup.drive()
    assert setup.states() == {"logged": 2}
    assert own(setup, "Event", "m-1") == []
    assert len(own(other, "Event", "m-1")) == 1


def test_a_workspace_from_before_prefixes_goes_on_writing_its_bare_keyed_records(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """What migration 0013 leaves an existing workspace: no prefix. Its Task written under the
    bare id is the one a later follow-up updates (no second Task), and its meeting's cancel
    deletes its bare-keyed Event."""
    org = new_org("--seed", "60")
    known = people(org)
    rep, buyer = sorted(known.reps)[0], known.recipients[0]
    old = workspace(org)
    old.settings(external_id_prefix=None)
    booked, canceled = meeting(rep, buyer, "m-old")
    old.ingest([email(rep, buyer, "e-old", "Before the upgrade"), booked])
    old.drive()
    (task,) = records(org, "Task", "QS_Activity_Id__c != null")
    assert task[mapping.EXTERNAL_ID] == "e-old"
    assert [e[mapping.EXTERNAL_ID] for e in records(org, "Event", "QS_Activity_Id__c != null")] == [
        "m-old"
    ]
    # A workspace made now, on the same org, writes under its prefix beside it.
    new = workspace(org)
    new.ingest([email(rep, buyer, "e-old", "After the upgrade")])
    new.drive()

    old.ingest([opened(rep, buyer, "e-old"), canceled])
    old.drive()
    assert old.states() == {"logged": 4}
    (updated,) = records(org, "Task", "QS_Activity_Id__c = 'e-old'")
    assert updated["Id"] == task["Id"] and updated["QS_Opens__c"] == 1
    assert records(org, "Event", "QS_Activity_Id__c != null") == []
    assert [t["Subject"] for t in own(new, "Task", "e-old")] == ["Email: After the upgrade"]


def test_two_workspaces_on_one_org_each_get_their_own_real_time_pushes(
    new_org: OrgFactory, workspace: Connect
) -> None:
    """Each workspace switches Real-Time Sync on with a setting of its own in the org: a change
    is pushed to both, each signed with its own secret; switching one off leaves the other's
    pushes alone."""
    org, clock = pushing_org(new_org)
    first_setup = workspace(org, clock=clock, user="admin")
    second_setup = workspace(org, clock=clock, user="admin")
    with (
        serving_pushes(org, first_setup, clock) as first,
        serving_pushes(org, second_setup, clock) as second,
    ):
        settings = org.salesforce().query(
            "SELECT Workspace__c, Callback_URL__c, Enabled__c FROM QS_Sync_Setting__c"
        )["records"]
        assert sorted(
            (s["Workspace__c"], s["Callback_URL__c"], s["Enabled__c"]) for s in settings
        ) == sorted(
            [
                (first_setup.workspace_id, first.url, True),
                (second_setup.workspace_id, second.url, True),
            ]
        )
        assert first.secret() != second.secret()
        contacts = sobject(first.admin, "Contact")
        some = sorted(first.mirrored("Contact"))[:2]
        contacts.update(some[0], {"Title": "Seen by both"})
        assert first.delivered()["failed"] == 0
        assert first.mirrored("Contact")[some[0]]["Title"] == "Seen by both"
        assert second.mirrored("Contact")[some[0]]["Title"] == "Seen by both"

        # The second switches Real-Time Sync off: the first goes on receiving pushes.
        RealTime(second_setup.runtime.connector, second_setup.workspace_id, clock).disable()
        contacts.update(some[1], {"Title": "Seen by the first"})
        assert first.delivered()["failed"] == 0
        assert first.mirrored("Contact")[some[1]]["Title"] == "Seen by the first"
        assert second.mirrored("Contact")[some[1]].get("Title") != "Seen by the first"
        enabled = org.salesforce().query(
            "SELECT Workspace__c FROM QS_Sync_Setting__c WHERE Enabled__c = true"
        )["records"]
        assert [s["Workspace__c"] for s in enabled] == [first_setup.workspace_id]
