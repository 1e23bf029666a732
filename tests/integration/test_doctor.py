"""The doctor against sandbox orgs: each check in its pass and its fail case, with the right
edition and sync user, and the one Data API call it spends (ledgered, and counted by the org)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from quotasync import diagnosis, doctor
from quotasync.domain import governor
from quotasync.engine import episode_steps
from quotasync.salesforce.connection import SandboxLogin
from quotasync.store.tables import RtsReceipt
from tests.integration.logging_support import Setup, open_workspace
from tests.sandbox_process import SandboxOrg, start_sandbox


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxOrg]:
    """An Enterprise Edition org, shared: tests that change it put it back."""
    sandbox = start_sandbox(tmp_path_factory.mktemp("doctor-org"))
    yield sandbox
    sandbox.stop()


@pytest.fixture
def workspaces(tmp_path: Path) -> Iterator[list[Setup]]:
    made: list[Setup] = []
    yield made
    for setup in made:
        setup.close()


def connected(org: SandboxOrg, made: list[Setup], tmp_path: Path, user: str = "sync") -> Setup:
    """A workspace of its own store, connected as `user`; no call to the org but the login."""
    setup = open_workspace(tmp_path / f"ws{len(made)}")
    made.append(setup)
    login = SandboxLogin.read(org.state_dir / "sandbox.json", user)
    setup.runtime.connector.connect_sandbox(setup.workspace_id, login)
    setup.org = org
    return setup


def examine(setup: Setup, callback_url: str | None = None) -> dict[str, diagnosis.Check]:
    report = examined(setup, callback_url)
    return {check.name: check for check in report.checks}


def examined(setup: Setup, callback_url: str | None = None) -> diagnosis.Report:
    return doctor.run(setup.runtime.connector, setup.workspace_id, callback_url)


def statuses(found: dict[str, diagnosis.Check]) -> dict[str, str]:
    return {name: check.status for name, check in found.items()}


def org_calls(org: SandboxOrg) -> int:
    usage = org.control("GET", "usage")["DailyApiRequests"]["by_app"]
    return int(usage.get("quotasync", 0))


# ---------------------------------------------------------------- an Enterprise org


def test_a_healthy_org_and_an_admin_sync_user_pass_for_one_ledgered_call(
    org: SandboxOrg, workspaces: list[Setup], tmp_path: Path
) -> None:
    setup = connected(org, workspaces, tmp_path, user="admin")
    before = org_calls(org)
    report = examined(setup)
    found = {check.name: check for check in report.checks}
    assert statuses(found) == {
        "connection": "pass",
        "connected_app": "pass",
        "edition": "pass",
        "api_enabled": "pass",
        "view_setup": "pass",
        "org_use": "pass",
        "data_share": "pass",
        # The worker has not read `/limits` yet: nothing to say about Bulk and Apex.
        "bulk_share": "skip",
        "apex_share": "skip",
        "activity_field": "pass",
        "org_package": "pass",
        "realtime": "skip",
    }
    assert report.status == "pass" and report.summary == "Nothing stands in the way of syncing."
    assert found["edition"].detail == "Enterprise Edition: API access is included"
    assert "the org used" in found["org_use"].detail and "(0%, now)" in found["org_use"].detail
    # One Composite call carried every question; the session renewal before it is free.
    assert report.calls == 1
    assert org_calls(org) - before == 1
    rows = setup.ledger_entries("doctor")
    assert [(row.api, row.calls, row.method) for row in rows] == [("data", 1, "POST")]
    assert rows[0].path is not None and rows[0].path.endswith("/composite")
    assert [(r.api, r.calls) for r in setup.ledger_entries("refresh_token")] == [("auth", 0)]


def test_a_sync_user_without_view_setup_is_a_warning_naming_the_permission(
    org: SandboxOrg, workspaces: list[Setup], tmp_path: Path
) -> None:
    setup = connected(org, workspaces, tmp_path, user="sync")
    report = examined(setup)
    found = {check.name: check for check in report.checks}
    assert found["view_setup"].status == "warn"
    assert "only the Data API's limits are governed and shown" in found["view_setup"].detail
    assert "View Setup and Configuration" in (found["view_setup"].fix or "")
    assert found["api_enabled"].status == "pass"
    assert report.status == "warn" and report.calls == 1


def test_a_sync_user_without_api_enabled_fails_and_the_refusal_costs_nothing(
    org: SandboxOrg, workspaces: list[Setup], tmp_path: Path
) -> None:
    setup = connected(org, workspaces, tmp_path, user="noapi")
    before = org_calls(org)
    report = examined(setup)
    found = {check.name: check for check in report.checks}
    assert found["api_enabled"].status == "fail"
    assert "API_CURRENTLY_DISABLED" in found["api_enabled"].detail
    assert "API Enabled" in (found["api_enabled"].fix or "")
    # The refusal is itself the finding: the org has API access, the user has not.
    assert found["edition"].status == "pass"
    assert "refused the sync user, not the org" in found["edition"].detail
    for name in ("view_setup", "org_use", "activity_field", "org_package"):
        assert found[name].status == "skip"
        assert "see API Enabled" in found[name].detail
    assert report.status == "fail" and report.summary.startswith("1 of 12 checks failed")
    assert report.calls == 0 and org_calls(org) == before
    assert [(r.calls, r.status) for r in setup.ledger_entries("doctor")] == [(0, 403)]


def test_a_missing_activity_id_field_fails_with_the_setup_steps(
    org: SandboxOrg, workspaces: list[Setup], tmp_path: Path
) -> None:
    setup = connected(org, workspaces, tmp_path)
    field = {"field": diagnosis.FIELD}
    try:
        for sobject in ("Task", "Event"):
            org.control("POST", "fields", {**field, "object": sobject, "present": False})
        found = examine(setup)
        assert found["activity_field"].status == "fail"
        assert found["activity_field"].detail.startswith(
            f"{diagnosis.FIELD} is missing on Task and Event"
        )
        assert "Object Manager > Activity > Fields & Relationships > New" in (
            found["activity_field"].fix or ""
        )
        assert '"External ID"' in (found["activity_field"].fix or "")
    finally:
        for sobject in ("Task", "Event"):
            org.control("POST", "fields", {**field, "object": sobject, "present": True})
    assert examine(setup)["activity_field"].status == "pass"


def test_a_connected_app_not_approved_for_the_sync_user_fails_until_an_admin_approves_it(
    org: SandboxOrg, workspaces: list[Setup], tmp_path: Path
) -> None:
    setup = connected(org, workspaces, tmp_path)
    try:
        org.control(
            "POST",
            "apps/quotasync/policy",
            {"admin_approved": True, "profiles": ["System Administrator"]},
        )
        found = examine(setup)
        assert found["connected_app"].status == "fail"
        assert "user hasn't approved this consumer" in found["connected_app"].detail
        assert "Admin approved users are pre-authorized" in (found["connected_app"].fix or "")
        # The session issued before the policy changed still answers: the other checks run.
        assert found["edition"].status == "pass"
        org.control(
            "POST",
            "apps/quotasync/policy",
            {"admin_approved": True, "profiles": ["System Administrator", "Integration User"]},
        )
        assert examine(setup)["connected_app"].status == "pass"
    finally:
        org.control("POST", "apps/quotasync/policy", {"admin_approved": False, "profiles": []})


def test_a_paused_data_api_fails_with_the_reason_and_other_types_only_warn(
    org: SandboxOrg, workspaces: list[Setup], tmp_path: Path
) -> None:
    setup = connected(org, workspaces, tmp_path, user="admin")
    now = setup.clock.now()
    for api in (governor.Api.DATA, governor.Api.APEX):
        pause = governor.Pause(api, governor.Reason.ORG_GUARD, now + timedelta(minutes=30))
        episode_steps.record(setup.runtime.sessions, setup.workspace_id, pause, now)
    setup.settings(limits_readable=True)  # as the worker's first `/limits` reading leaves it
    found = examine(setup)
    assert found["data_share"].status == "fail"
    assert "paused since" in found["data_share"].detail
    assert "the org is past 90% of its limit (all apps)" in found["data_share"].detail
    assert "activities are kept" in found["data_share"].detail
    assert "ask their owners to call less" in (found["data_share"].fix or "")
    assert found["apex_share"].status == "warn"
    assert "rolled over to Interval Sync" in found["apex_share"].detail
    assert found["bulk_share"].status == "pass"
    assert found["bulk_share"].detail.startswith("running; quotasync used 0")


def test_real_time_sync_passes_with_quotasync_s_setting_and_fails_when_it_is_switched_off(
    org: SandboxOrg, workspaces: list[Setup], tmp_path: Path
) -> None:
    setup = connected(org, workspaces, tmp_path, user="admin")
    url = f"http://127.0.0.1:9/rts/{setup.workspace_id}"
    setting = {"Name": "quotasync", "Callback_URL__c": url, "Secret__c": "s3", "Enabled__c": True}
    created = org.control("POST", "records/QS_Sync_Setting__c", setting)
    setting_id = created[0]["id"]
    sf, path = org.salesforce("admin"), f"sobjects/QS_Sync_Setting__c/{setting_id}"
    try:
        setup.settings(sync_mode="realtime", rts_setting_id=setting_id)
        first = examine(setup, callback_url=url)["realtime"]
        assert first.status == "warn" and "no push has arrived yet" in first.detail
        with setup.runtime.sessions.begin() as session:
            session.add(
                RtsReceipt(
                    workspace_id=setup.workspace_id,
                    signature="sha256=0",
                    received_at=datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
                )
            )
        report = examined(setup, callback_url=url)
        found = {check.name: check for check in report.checks}
        assert found["realtime"].status == "pass"
        assert found["realtime"].detail == (
            f"the org pushes to {url}; the last push arrived 2026-11-28 09:30 UTC"
        )
        assert report.calls == 1  # the setting's query rode in the same Composite call
        moved = examine(setup, callback_url="https://sync.example.com/rts/x")["realtime"]
        assert moved.status == "warn" and "this server takes pushes at" in moved.detail

        sf.restful(path, method="PATCH", data=json.dumps({"Enabled__c": False}))
        off = examine(setup, callback_url=url)["realtime"]
        assert off.status == "fail"
        assert "pushing is switched off in the org" in off.detail
        assert "switch Real-Time Sync off and on again" in (off.fix or "")
    finally:
        sf.restful(path, method="DELETE")
    gone = examine(setup, callback_url=url)["realtime"]
    assert gone.status == "fail" and "record is gone" in gone.detail


def test_an_unconnected_workspace_fails_and_skips_the_rest_at_no_cost(tmp_path: Path) -> None:
    setup = open_workspace(tmp_path)
    try:
        report = examined(setup)
    finally:
        setup.close()
    assert report.checks[0].status == "fail" and report.checks[0].name == "connection"
    assert {check.status for check in report.checks[1:]} == {"skip"}
    assert report.calls == 0


# ---------------------------------------------------------------- Professional Edition


def test_professional_edition_without_the_api_add_on_fails_and_costs_nothing(
    workspaces: list[Setup], tmp_path: Path
) -> None:
    org = start_sandbox(tmp_path / "professional", "--edition", "professional")
    try:
        setup = connected(org, workspaces, tmp_path, user="admin")
        report = examined(setup)
    finally:
        org.stop()
    found = {check.name: check for check in report.checks}
    assert found["edition"].status == "fail"
    assert "API_DISABLED_FOR_ORG" in found["edition"].detail
    assert "API add-on" in (found["edition"].fix or "")
    for name in ("api_enabled", "view_setup", "org_use", "activity_field"):
        assert found[name].status == "skip"
        assert "see Edition and API access" in found[name].detail
    assert report.calls == 0


def test_professional_edition_with_the_add_on_passes_and_the_org_s_use_warns_then_fails(
    workspaces: list[Setup], tmp_path: Path
) -> None:
    org = start_sandbox(
        tmp_path / "professional-api",
        "--edition",
        "professional-api",
        "--daily-api-requests",
        "1000",
    )
    try:
        setup = connected(org, workspaces, tmp_path, user="admin")
        found = examine(setup)
        assert found["edition"].status == "pass"
        assert found["edition"].detail == (
            "Professional Edition with the API add-on: the org answered the call"
        )
        assert found["org_use"].status == "pass"

        org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 780})
        found = examine(setup)
        assert found["org_use"].status == "warn"
        assert "the org used 782 of 1,000 Data API calls" in found["org_use"].detail
        assert "turn off open tracking" in (found["org_use"].fix or "")

        org.control("POST", "consume", {"app": "Marketing Cloud", "calls": 130})
        report = examined(setup)
        found = {check.name: check for check in report.checks}
        assert found["org_use"].status == "fail"
        assert "913 of 1,000" in found["org_use"].detail
        assert "past the 90% guard" in found["org_use"].detail

        # Now the guard holds: the doctor's own call finds no room and is not sent; the
        # checks that needed it say so, and the figure it had is shown.
        report = examined(setup)
        found = {check.name: check for check in report.checks}
        assert report.calls == 0
        assert found["edition"].status == "skip"
        assert "has no room for the doctor's one call" in found["edition"].detail
        assert found["org_use"].status == "fail" and "as of" in found["org_use"].detail
        assert org_calls(org) == 3
    finally:
        org.stop()
