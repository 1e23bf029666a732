"""`quotasync org install` and `uninstall`: quotasync's package deployed to a sandbox org through
the Metadata API's REST deploy, as to a real org: an org without quotasync's package has its
fields afterwards (the doctor says so, and Tasks are upserted by QS_Activity_Id__c), the sync user
holds its permission set, and Real-Time Sync pushes once its triggers are there; a check-only
install changes nothing; a broken package comes back with Salesforce's component failure; an
uninstall takes it all away again, twice without harm.

Orgs whose schema a deploy changes run as processes of their own: the sandbox's object
definitions are per process, and such an org in this process would change them for every other
org in it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from simple_salesforce.api import SFType
from simple_salesforce.exceptions import SalesforceError, SalesforceMalformedRequest

from quotasync import doctor
from quotasync.clock import ManualClock
from quotasync.engine.worker import Progress
from quotasync.errors import Refused
from quotasync.salesforce import metadata, package
from quotasync.services import org_package
from quotasync.store.tables import Workspace
from tests.integration.logging_support import Connect, Setup
from tests.integration.test_rts_push import SECRET, start_receiver
from tests.sandbox_process import SandboxOrg

URL = "https://quotasync.acme.example/rts"
FIELDS = ("QS_Activity_Id__c", "QS_Opens__c", "QS_Clicks__c")
PERMISSION_SET = org_package.PERMISSION_SET


def bare(new_org: Callable[..., SandboxOrg]) -> SandboxOrg:
    return new_org("--without-package", process=True)


def activity_fields(org: SandboxOrg) -> dict[str, set[str]]:
    sf = org.salesforce()
    return {
        sobject: {f["name"] for f in getattr(sf, sobject).describe()["fields"]} & set(FIELDS)
        for sobject in ("Task", "Event")
    }


def sleep(setup: Setup) -> metadata.Sleep:
    """Waits between looks at a deploy, on the workspace's manual clock."""
    clock = setup.clock
    assert isinstance(clock, ManualClock)
    return clock.advance


def install(setup: Setup, **options: object) -> metadata.Status:
    seen: list[metadata.Status] = []
    outcome = org_package.install(
        setup.runtime.connector,
        setup.workspace_id,
        URL,
        sleep=sleep(setup),
        on_status=seen.append,
        **options,  # type: ignore[arg-type]
    )
    assert [s.status for s in seen] == ["Pending", outcome.status.status]
    return outcome.status


def assignments(org: SandboxOrg, handle: str = "admin") -> list[str]:
    """The permission sets assigned to one of the org's users, by name."""
    sf = org.salesforce()
    (user,) = sf.query(f"SELECT Id FROM User WHERE Alias = '{handle}'")["records"]
    sets = {p["Id"]: p["Name"] for p in sf.query("SELECT Id, Name FROM PermissionSet")["records"]}
    found = sf.query(
        f"SELECT PermissionSetId FROM PermissionSetAssignment WHERE AssigneeId = '{user['Id']}'"
    )["records"]
    return sorted(sets[a["PermissionSetId"]] for a in found)


def test_install_gives_a_bare_org_the_fields_the_doctor_checks_and_tasks_upsert_by(
    new_org: Callable[..., SandboxOrg], workspace: Connect
) -> None:
    org = bare(new_org)
    assert activity_fields(org) == {"Task": set(), "Event": set()}
    setup = workspace(org, user="admin", load=False)
    before = doctor.run(setup.runtime.connector, setup.workspace_id)
    assert {c.name: c.status for c in before.checks}["activity_field"] == "fail"

    done = setup.cli("org", "install", "--workspace", setup.workspace_id, "--url", URL)
    assert done.returncode == 0, done.stderr
    assert "quotasync's package is installed (20 components)" in done.stdout

    assert activity_fields(org) == {"Task": set(FIELDS), "Event": set(FIELDS)}
    after = doctor.run(setup.runtime.connector, setup.workspace_id)
    assert {c.name: c.status for c in after.checks}["activity_field"] == "pass"
    sf = org.salesforce()
    tasks = cast(SFType, sf.Task)
    tasks.upsert("QS_Activity_Id__c/email-1", {"Subject": "Hello", "QS_Opens__c": 2})
    tasks.upsert("QS_Activity_Id__c/email-1", {"Subject": "Hello again", "QS_Opens__c": 3})
    found = sf.query("SELECT Subject, QS_Opens__c FROM Task WHERE QS_Activity_Id__c = 'email-1'")
    assert [(r["Subject"], r["QS_Opens__c"]) for r in found["records"]] == [("Hello again", 3.0)]

    installed = org.control("GET", "package")
    assert sorted(installed["ApexTrigger"]) == [
        f"QS_{o}Sync" for o in ("Account", "Contact", "Lead", "Opportunity", "User")
    ]
    assert installed["ApexTrigger"]["QS_UserSync"]["object"] == "User"
    assert installed["RemoteSiteSetting"]["QS_Callback"]["url"] == "https://quotasync.acme.example"
    assert "QS_Sync_Setting__c.Workspace__c" in installed["CustomField"]
    # The setting object has the new field too, for SOQL and DML.
    cast(SFType, sf.QS_Sync_Setting__c).create({"Name": "ws", "Workspace__c": "ws-1"})
    assert sf.query("SELECT Workspace__c FROM QS_Sync_Setting__c")["records"][0]["Workspace__c"]
    # The permission set is in the org, granting what the sync user needs.
    permission_set = sf.query(
        "SELECT PermissionsApiEnabled, PermissionsViewSetup FROM PermissionSet "
        "WHERE Name = 'QS_Sync_User'"
    )["records"]
    assert [(p["PermissionsApiEnabled"], p["PermissionsViewSetup"]) for p in permission_set] == [
        (True, True)
    ]
    # The sync user (here the admin who connected) holds the permission set.
    assert PERMISSION_SET in assignments(org)
    # Installing again changes nothing and succeeds: the package is idempotent, and the
    # permission set stays assigned once.
    again = install(setup)
    assert again.success and again.deployed == again.total == 20
    assert assignments(org).count(PERMISSION_SET) == 1
    # Each install: the deploy and one look at it, then find the permission set and assign it.
    assert [e.purpose for e in setup.ledger_entries("org_install")] == ["org_install"] * 8
    with setup.runtime.sessions() as session:
        recorded = session.get(Workspace, setup.workspace_id)
        assert recorded is not None and recorded.org_package == org_package.INSTALLED


def test_a_check_only_install_validates_and_changes_nothing(
    new_org: Callable[..., SandboxOrg], workspace: Connect
) -> None:
    org = bare(new_org)
    setup = workspace(org, user="admin", load=False)
    status = install(setup, check_only=True)
    assert status.success and status.check_only and status.total == 20
    assert activity_fields(org) == {"Task": set(), "Event": set()}
    assert org.control("GET", "package") == {"CustomField": []}


def test_a_package_missing_a_component_fails_with_salesforces_component_failure(
    new_org: Callable[..., SandboxOrg], workspace: Connect, tmp_path: Path
) -> None:
    org = bare(new_org)
    setup = workspace(org, user="admin", load=False)
    broken = tmp_path / "org-package"
    shutil.copytree(package.DEFAULT_DIR, broken)
    manifest = broken / package.MANIFEST
    # package.xml forgets a field the permission set grants: the field is not deployed, and
    # the permission set fails on it.
    manifest.write_text(
        manifest.read_text().replace("        <members>Activity.QS_Opens__c</members>\n", "")
    )
    with pytest.raises(metadata.DeployFailed) as failed:
        install(setup, package_dir=broken)
    assert [str(p) for p in failed.value.problems] == [
        "PermissionSet QS_Sync_User (permissionsets/QS_Sync_User.permissionset): "
        "In field: field - no CustomField named Activity.QS_Opens__c found"
    ]
    assert activity_fields(org) == {"Task": set(), "Event": set()}  # rolled back: nothing

    # A component package.xml names but the zip lacks: Salesforce's own words.
    (broken / package.SOURCE / "triggers" / "QS_LeadSync.trigger").unlink()
    shown = setup.cli(
        "org", "install", "--workspace", setup.workspace_id, "--url", URL,
        "--package-dir", str(broken),
    )  # fmt: skip
    assert shown.returncode == 2
    assert (
        "An object 'QS_LeadSync' of type ApexTrigger was named in package.xml, but was not "
        "found in zipped directory" in shown.stderr
    )
    assert "Salesforce refused the package" in shown.stderr


def test_only_an_admin_may_install(new_org: Callable[..., SandboxOrg], workspace: Connect) -> None:
    org = new_org()
    setup = workspace(org, user="sync", load=False)
    with pytest.raises(Refused) as refused:
        install(setup, check_only=True)
    assert refused.value.fault.code == "INSUFFICIENT_ACCESS"
    shown = setup.cli("org", "install", "--workspace", setup.workspace_id, "--url", URL)
    assert shown.returncode == 2
    assert "connect the workspace as an admin" in shown.stderr


def test_uninstall_removes_what_install_added_and_twice_is_harmless(
    new_org: Callable[..., SandboxOrg], workspace: Connect
) -> None:
    org = bare(new_org)
    setup = workspace(org, user="admin", load=False)
    install(setup)
    sf = org.salesforce()
    cast(SFType, sf.Task).upsert("QS_Activity_Id__c/email-1", {"Subject": "Hi", "QS_Opens__c": 2})
    cast(SFType, sf.QS_Sync_Setting__c).create({"Name": "ws", "Workspace__c": "ws-1"})

    done = setup.cli("org", "uninstall", "--workspace", setup.workspace_id, "--yes")
    assert done.returncode == 0, done.stderr
    assert "quotasync's package is removed" in done.stdout

    # Fields, the setting object, the Apex and the permission set: gone from describe and SOQL.
    assert activity_fields(org) == {"Task": set(), "Event": set()}
    sf = org.salesforce()
    described: Any = sf.describe()
    assert "QS_Sync_Setting__c" not in {o["name"] for o in described["sobjects"]}
    with pytest.raises(SalesforceMalformedRequest) as missing:
        sf.query("SELECT Id FROM QS_Sync_Setting__c")
    assert "INVALID_TYPE" in str(missing.value)
    assert sf.query("SELECT Id FROM PermissionSet WHERE Name = 'QS_Sync_User'")["records"] == []
    assert PERMISSION_SET not in assignments(org)
    left = org.control("GET", "package")
    assert {kind: found for kind, found in left.items() if found} == {}
    found = sf.query("SELECT Subject FROM Task WHERE Subject = 'Hi'")["records"]
    assert [r["Subject"] for r in found] == ["Hi"]  # the Task stays, its QS_ fields do not

    # Again: every component is already gone, a warning the uninstall ignores.
    again = org_package.uninstall(setup.runtime.connector, setup.workspace_id, sleep=sleep(setup))
    # package.xml, and the 19 components but the setting object's 4 fields (they go with it)
    assert again.success and again.total == 1 + 15
    with setup.runtime.sessions() as session:
        recorded = session.get(Workspace, setup.workspace_id)
        assert recorded is not None and recorded.org_package == org_package.UNINSTALLED

    # And installed again, the fields come back empty and the setting object without records.
    install(setup)
    found = sf.query("SELECT QS_Activity_Id__c FROM Task WHERE Subject = 'Hi'")["records"]
    assert [r["QS_Activity_Id__c"] for r in found] == [None]
    assert sf.query("SELECT Id FROM QS_Sync_Setting__c")["records"] == []


def test_uninstall_refuses_while_others_hold_the_permission_set(
    new_org: Callable[..., SandboxOrg], workspace: Connect
) -> None:
    org = bare(new_org)
    setup = workspace(org, user="admin", load=False)
    install(setup)
    sf = org.salesforce()
    (noapi,) = sf.query("SELECT Id FROM User WHERE Alias = 'noapi'")["records"]
    (permission_set,) = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'QS_Sync_User'")[
        "records"
    ]
    cast(SFType, sf.PermissionSetAssignment).create(
        {"AssigneeId": noapi["Id"], "PermissionSetId": permission_set["Id"]}
    )
    shown = setup.cli("org", "uninstall", "--workspace", setup.workspace_id, "--yes")
    assert shown.returncode == 2
    assert (
        "PermissionSet QS_Sync_User (destructiveChanges.xml): This permission set is assigned to "
        "1 user(s)" in shown.stderr
    )
    assert activity_fields(org) == {"Task": set(FIELDS), "Event": set(FIELDS)}  # rolled back


def test_the_permission_set_grants_api_enabled_and_view_setup(
    new_org: Callable[..., SandboxOrg], workspace: Connect
) -> None:
    org = bare(new_org)
    setup = workspace(org, user="admin", load=False)
    install(setup)
    # A user whose profile lacks API Enabled (Read Only) may use the API once it is assigned.
    with pytest.raises(SalesforceError) as refused:
        org.salesforce("noapi").query("SELECT Id FROM Account LIMIT 1")
    assert "API_CURRENTLY_DISABLED" in str(refused.value)
    sf = org.salesforce()
    (noapi,) = sf.query("SELECT Id FROM User WHERE Alias = 'noapi'")["records"]
    (permission_set,) = sf.query("SELECT Id FROM PermissionSet WHERE Name = 'QS_Sync_User'")[
        "records"
    ]
    assignment = {"AssigneeId": noapi["Id"], "PermissionSetId": permission_set["Id"]}
    cast(SFType, sf.PermissionSetAssignment).create(assignment)
    with pytest.raises(SalesforceError) as twice:
        cast(SFType, sf.PermissionSetAssignment).create(assignment)
    assert "DUPLICATE_VALUE" in str(twice.value)
    granted = org.salesforce("noapi")
    assert granted.query("SELECT Id FROM Account LIMIT 1")["done"] is True
    limits: Any = granted.restful("limits")
    assert "DailyApiRequests" in limits  # View Setup


def test_real_time_sync_pushes_only_for_objects_whose_trigger_is_deployed_and_active(
    new_org: Callable[..., SandboxOrg], workspace: Connect, tmp_path: Path
) -> None:
    org = bare(new_org)
    setup = workspace(org, user="admin", load=False)
    assert org.control("GET", "package")["CustomField"] == []
    # The Contact trigger ships inactive in this copy: Contacts are not pushed, Accounts are.
    copy = tmp_path / "org-package"
    shutil.copytree(package.DEFAULT_DIR, copy)
    meta = copy / package.SOURCE / "triggers" / "QS_ContactSync.trigger-meta.xml"
    meta.write_text(
        meta.read_text().replace("<status>Active</status>", "<status>Inactive</status>")
    )
    install(setup, package_dir=copy)
    receiver, thread = start_receiver()
    try:
        sf = org.salesforce()
        cast(SFType, sf.QS_Sync_Setting__c).create(
            {"Name": "ws", "Callback_URL__c": receiver.url(), "Secret__c": SECRET,
             "Enabled__c": True}
        )  # fmt: skip
        cast(SFType, sf.Contact).create({"LastName": "Not pushed"})
        account = cast(SFType, sf.Account).create({"Name": "Pushed"})
        org.control("POST", "rts/flush")
        (push,) = receiver.take()
        (change,) = push.verified()["changes"]
        assert (change["sobject"], change["id"]) == ("Account", account["id"])

        # Uninstalled, nothing is pushed at all (and the setting went with its object).
        org_package.uninstall(setup.runtime.connector, setup.workspace_id, sleep=sleep(setup))
        cast(SFType, sf.Account).create({"Name": "After"})
        org.control("POST", "rts/flush")
        assert receiver.take() == []
    finally:
        receiver.server.shutdown()
        receiver.server.server_close()
        thread.join(timeout=5)


def test_real_time_sync_says_what_the_org_lacks_until_the_package_is_installed(
    new_org: Callable[..., SandboxOrg], workspace: Connect
) -> None:
    org = bare(new_org)
    setup = workspace(org, user="admin", load=False)
    ws = setup.workspace_id
    setup.new_pool().turn(Progress())  # reads /limits: the Apex room is known
    pushes_to = f"http://127.0.0.1:9/rts/{ws}"

    refused = setup.cli("rts", "on", "--workspace", ws, "--url", pushes_to)
    assert refused.returncode == 2, refused.stdout
    said = " ".join(refused.stderr.split())
    assert (
        "Real-Time Sync is not on: the org lacks what Real-Time Sync needs from quotasync's "
        "package (the QS_Sync_Setting__c object; triggers QS_AccountSync, QS_ContactSync, "
        "QS_LeadSync, QS_OpportunitySync and QS_UserSync; classes QS_Push, QS_PushJob and "
        "QS_RealtimeSync): install quotasync's package in the org: quotasync org install "
        f"--workspace {ws}"
    ) in said
    found = {c.name: c for c in doctor.run(setup.runtime.connector, ws).checks}
    assert found["org_package"].status == "fail"
    assert found["org_package"].detail == (
        "the org lacks QS_Activity_Id__c, QS_Opens__c and QS_Clicks__c on Task; "
        "QS_Activity_Id__c, QS_Opens__c and QS_Clicks__c on Event: activities cannot be logged"
    )
    assert f"quotasync org install --workspace {ws}" in (found["org_package"].fix or "")
    assert f"quotasync org install --workspace {ws}" in (found["activity_field"].fix or "")

    install(setup)
    listed = org.salesforce().query("SELECT Name, TableEnumOrId, Status FROM ApexTrigger")
    assert sorted((t["Name"], t["TableEnumOrId"], t["Status"]) for t in listed["records"]) == [
        (f"QS_{o}Sync", o, "Active") for o in ("Account", "Contact", "Lead", "Opportunity", "User")
    ]
    report = doctor.run(setup.runtime.connector, ws)
    found = {c.name: c for c in report.checks}
    assert found["org_package"].status == "pass"
    assert "the sync user holds QS_Sync_User" in found["org_package"].detail
    assert "the org may call https://quotasync.acme.example" in found["org_package"].detail
    assert report.status == "pass", [
        (c.name, c.detail) for c in report.checks if c.status != "pass"
    ]
    # A server whose address the Remote Site does not allow: Salesforce would refuse each push.
    moved = doctor.run(setup.runtime.connector, ws, "https://sync.elsewhere.example/rts/" + ws)
    (check,) = [c for c in moved.checks if c.name == "org_package"]
    assert check.status == "fail"
    assert "--url https://sync.elsewhere.example/rts/" in (check.fix or "")

    switched = setup.cli("rts", "on", "--workspace", ws, "--url", pushes_to)
    assert switched.returncode == 0, switched.stderr
    (setting,) = org.salesforce().query(
        "SELECT Name, Workspace__c, Callback_URL__c, Enabled__c FROM QS_Sync_Setting__c"
    )["records"]
    assert (setting["Workspace__c"], setting["Callback_URL__c"], setting["Enabled__c"]) == (
        ws,
        pushes_to,
        True,
    )

    # Uninstalled, the org lists no quotasync Apex any more.
    org_package.uninstall(setup.runtime.connector, ws, sleep=sleep(setup))
    assert org.salesforce().query("SELECT Name FROM ApexTrigger")["records"] == []
    assert org.salesforce().query("SELECT Name FROM ApexClass")["records"] == []
