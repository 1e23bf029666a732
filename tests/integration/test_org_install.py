"""`quotasync org install`: quotasync's package deployed to a sandbox org through the Metadata
API's REST deploy, as to a real org: an org without quotasync's fields has them afterwards (the
doctor says so, and Tasks are upserted by QS_Activity_Id__c), a check-only install changes
nothing, and a broken package comes back with Salesforce's component failure.

Orgs started bare run as processes of their own: the sandbox's object definitions are per
process, and a bare org in this process would take the fields away from every other org in it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest
from simple_salesforce.api import SFType

from quotasync import doctor
from quotasync.clock import ManualClock
from quotasync.errors import Refused
from quotasync.salesforce import metadata, package
from quotasync.services import org_package
from tests.integration.logging_support import Connect, Setup
from tests.sandbox_process import SandboxOrg

URL = "https://quotasync.acme.example/rts"
FIELDS = ("QS_Activity_Id__c", "QS_Opens__c", "QS_Clicks__c")


def bare(new_org: Callable[..., SandboxOrg]) -> SandboxOrg:
    return new_org("--bare-activity-fields", process=True)


def activity_fields(org: SandboxOrg) -> dict[str, set[str]]:
    sf = org.salesforce()
    return {
        sobject: {f["name"] for f in getattr(sf, sobject).describe()["fields"]} & set(FIELDS)
        for sobject in ("Task", "Event")
    }


def install(setup: Setup, **options: object) -> metadata.Status:
    clock = setup.clock
    assert isinstance(clock, ManualClock)
    seen: list[metadata.Status] = []
    status = org_package.install(
        setup.runtime.connector,
        setup.workspace_id,
        URL,
        sleep=clock.advance,
        on_status=seen.append,
        **options,  # type: ignore[arg-type]
    )
    assert [s.status for s in seen] == ["Pending", status.status]
    return status


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
    # Installing again changes nothing and succeeds: the package is idempotent.
    again = install(setup)
    assert again.success and again.deployed == again.total == 20
    assert [e.purpose for e in setup.ledger_entries("org_install")] == ["org_install"] * 4


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
