"""Matching emails the mirror does not know: Contacts, Leads and Users looked up in the org side by
side, up to five `IN` queries in one call, a Contact before a Lead, and what was not found kept
so that it costs no call again."""

from __future__ import annotations

from collections.abc import Callable

from quotasync.engine.matching import LOOKUP_BATCH, Matcher
from quotasync.store.ledger import Ledger
from tests.integration.logging_support import Connect, Setup, people, records
from tests.sandbox_process import SandboxOrg

OrgFactory = Callable[..., SandboxOrg]


def org_usage(org: SandboxOrg) -> int:
    return int(org.control("GET", "usage")["DailyApiRequests"]["by_app"].get("quotasync", 0))


def matcher(setup: Setup) -> Matcher:
    return Matcher(setup.runtime.sessions, setup.workspace_id, setup.clock)


def test_contacts_leads_and_users_are_looked_up_five_in_queries_to_a_call(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "100")
    setup = workspace(org, load=False)  # an empty mirror: every email is looked up
    known = people(org)
    recipients = sorted(known.contacts)[:100] + sorted(known.leads)[:50]
    reps = sorted(known.reps)
    client = setup.runtime.connector.client(setup.workspace_id)
    before = org_usage(org)

    found = matcher(setup).match(client, recipients, reps)

    # 150 recipients: two IN queries of Contacts, two of Leads; the reps: one of Users. Five
    # queries, one call.
    assert len(recipients) == 150 > LOOKUP_BATCH and len(reps) <= LOOKUP_BATCH
    assert found.lookups == 1
    assert Ledger(setup.runtime.sessions).by_purpose(setup.workspace_id) == {"lookup": 1}
    assert org_usage(org) - before == 1
    assert found.people == {email: known.who(email) for email in recipients}
    assert found.users == {email: known.reps[email] for email in reps}

    # Known now (the answers went into the mirror): no call.
    again = matcher(setup).match(client, recipients, reps)
    assert again.lookups == 0 and again.people == found.people
    assert org_usage(org) - before == 1


def test_a_sixth_in_query_goes_in_a_second_call(new_org: OrgFactory, workspace: Connect) -> None:
    org = new_org("--seed", "150")
    setup = workspace(org, load=False)
    known = people(org)
    recipients = sorted(known.contacts)[:150] + sorted(known.leads)[:60]  # 3 + 3 queries
    client = setup.runtime.connector.client(setup.workspace_id)

    found = matcher(setup).match(client, recipients, [])

    assert found.lookups == 2 == org_usage(org)
    assert found.people == {email: known.who(email) for email in recipients}


def test_a_contact_wins_over_a_lead_of_the_same_email_and_strangers_cost_no_second_call(
    new_org: OrgFactory, workspace: Connect
) -> None:
    org = new_org("--seed", "10")
    setup = workspace(org, load=False)
    contact = records(org, "Contact")[0]
    org.control(
        "POST",
        "records/Lead",
        {"LastName": "Twin", "Company": "Twin Co", "Email": contact["Email"]},
    )
    strangers = ["nobody@nowhere.example", "ghost@nowhere.example"]
    client = setup.runtime.connector.client(setup.workspace_id)

    found = matcher(setup).match(client, [contact["Email"].lower(), *strangers], [])

    assert found.lookups == 1
    assert found.people == {contact["Email"].lower(): contact["Id"]}
    again = matcher(setup).match(client, strangers, [])
    assert again.lookups == 0 and again.people == {}
    assert org_usage(org) == 1
