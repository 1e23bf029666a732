"""The org package as the repository holds it (org-package/, Salesforce DX source format): every
file is metadata XML in Salesforce's namespace, the manifest names exactly what is there, and the
zip quotasync deploys is what the sandbox (and so, as far as it reproduces, Salesforce) accepts."""

from __future__ import annotations

import io
import json
import re
import tomllib
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

import quotasync
from quotasync.domain import mapping, org_parts, realtime
from quotasync.salesforce import metadata, package
from quotasync.sandbox import deploys, rts, schema

ROOT = package.DEFAULT_DIR
SOURCE = ROOT / package.SOURCE
NS = f"{{{package.NS}}}"
# The root element each kind of source file holds.
ROOTS = {
    ".field-meta.xml": "CustomField",
    ".object-meta.xml": "CustomObject",
    ".cls-meta.xml": "ApexClass",
    ".trigger-meta.xml": "ApexTrigger",
    ".permissionset-meta.xml": "PermissionSet",
    ".remoteSite-meta.xml": "RemoteSiteSetting",
}


def xml_files() -> list[Path]:
    return sorted([*SOURCE.rglob("*.xml"), ROOT / package.MANIFEST])


@pytest.mark.parametrize("path", xml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_xml_file_parses_in_salesforces_namespace(path: Path) -> None:
    text = path.read_text()
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>\n')
    root = ET.fromstring(text)
    assert root.tag.startswith(NS), f"{path.name}: not in {package.NS}"
    expected = next((kind for end, kind in ROOTS.items() if path.name.endswith(end)), "Package")
    assert root.tag == NS + expected
    if expected in ("CustomField", "CustomObject"):
        # The Metadata API reads elements in its schema's (alphabetical) order.
        tags = [child.tag.removeprefix(NS) for child in root]
        if tags[0] == "fullName":
            assert path.name.startswith(root.findtext(f"{NS}fullName") or "?")
            tags = tags[1:]
        assert tags == sorted(tags), f"{path.name}: elements out of order"


def test_package_xml_names_every_component_and_only_those() -> None:
    assert package.manifest() == package.components()
    assert len(package.components()) == 19


def test_one_api_version_throughout() -> None:
    project = json.loads((ROOT / "sfdx-project.json").read_text())
    version = project["sourceApiVersion"]
    assert ET.fromstring((ROOT / package.MANIFEST).read_bytes()).findtext(f"{NS}version") == version
    for meta in [*SOURCE.rglob("*.cls-meta.xml"), *SOURCE.rglob("*.trigger-meta.xml")]:
        root = ET.fromstring(meta.read_bytes())
        assert root.findtext(f"{NS}apiVersion") == version, meta.name
        assert root.findtext(f"{NS}status") == "Active", meta.name


def test_a_trigger_per_pushed_object_and_the_fields_quotasync_writes() -> None:
    triggered = {}
    for path in (SOURCE / "triggers").glob("*.trigger"):
        header = re.search(r"trigger (\w+) on (\w+)", path.read_text())
        assert header is not None and header[1] == path.stem
        triggered[header[2]] = header[1]
    assert set(triggered) == realtime.PUSHED_OBJECTS
    fields = {c.name for c in package.components() if c.type == "CustomField"}
    assert {
        f"Activity.{name}" for name in (mapping.EXTERNAL_ID, "QS_Opens__c", "QS_Clicks__c")
    } <= fields
    # The setting object carries the names quotasync writes (engine/realtime.py).
    assert {"Callback_URL__c", "Secret__c", "Enabled__c"} <= {
        name.partition(".")[2] for name in fields if name.startswith("QS_Sync_Setting__c.")
    }


def test_the_deploy_zip_is_metadata_format_with_the_customers_address() -> None:
    zipped = package.build(callback_url="https://sync.acme.example:8443/rts/ws_1")
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        names = set(archive.namelist())
        site = ET.fromstring(archive.read("remoteSiteSettings/QS_Callback.remoteSite"))
        activity = ET.fromstring(archive.read("objects/Activity.object"))
    assert "package.xml" in names and "classes/QS_Push.cls-meta.xml" in names
    assert not any(name.endswith("-meta.xml") and "/objects/" in name for name in names)
    assert site.findtext(f"{NS}url") == "https://sync.acme.example:8443"
    assert [f.findtext(f"{NS}fullName") for f in activity.findall(f"{NS}fields")] == [
        "QS_Activity_Id__c",
        "QS_Clicks__c",
        "QS_Opens__c",
    ]


def test_the_sandbox_accepts_the_package_and_reads_its_fields_as_it_defines_them() -> None:
    plan = deploys.plan_deploy(package.build())
    assert plan.failures == []
    by_name = {(sobject, f.name): f for sobject, f in plan.fields}
    for sobject in ("Task", "Event"):
        for name in ("QS_Activity_Id__c", "QS_Opens__c", "QS_Clicks__c"):
            defined = schema.custom_field_defined(sobject, name)
            assert defined is not None
            made = by_name[(sobject, name)]
            assert (made.type, made.length, made.external_id) == (
                defined.type,
                defined.length,
                defined.external_id,
            )


@pytest.mark.parametrize(
    ("xml", "problem"),
    [
        ("<label>L</label><type>Text</type><length>256</length>", "Length must be between 1 and 255"),
        ("<label>L</label><type>Number</type><precision>19</precision><scale>0</scale>", "between 1 and 18"),
        ("<label>L</label><type>Checkbox</type>", "defaultValue"),
        ("<label>L</label><type>Checkbox</type><defaultValue>false</defaultValue><externalId>true</externalId>", "cannot be an External ID"),
        ("<type>Text</type><length>10</length>", "label"),
        ("<label>L</label><type>Formula</type>", "does not create Formula fields"),
    ],
)  # fmt: skip
def test_a_field_the_org_would_refuse_is_named(xml: str, problem: str) -> None:
    element = ET.fromstring(f'<fields xmlns="{package.NS}">{xml}</fields>')
    with pytest.raises(ValueError, match=problem):
        deploys.field_of(element, "X__c")


def test_a_deploy_answer_with_one_failure_as_an_object_is_read() -> None:
    status = metadata.read(
        {
            "id": "0Af000000000001AAA",
            "deployResult": {
                "status": "Failed",
                "done": True,
                "success": False,
                "numberComponentsTotal": 3,
                "numberComponentsDeployed": 2,
                "details": {
                    "componentFailures": {
                        "componentType": "ApexTrigger",
                        "fullName": "QS_LeadSync",
                        "fileName": "triggers/QS_LeadSync.trigger",
                        "lineNumber": 2,
                        "problem": "Variable does not exist: x",
                    },
                    "runTestResult": {
                        "failures": [
                            {"name": "QS_RealtimeSyncTest", "methodName": "m", "message": "boom"}
                        ]
                    },
                },
            },
        }
    )
    assert status.failed and (status.deployed, status.total) == (2, 3)
    assert [str(p) for p in status.problems] == [
        "ApexTrigger QS_LeadSync (triggers/QS_LeadSync.trigger, line 2): Variable does not exist: x",
        "ApexTest QS_RealtimeSyncTest.m: boom",
    ]


def test_the_sandbox_starts_an_org_with_the_apex_the_package_deploys() -> None:
    # What an org started with the package holds (rts.preinstalled) is what deploying the
    # shipped package records: the same triggers on the same objects and events, handing their
    # records to QS_RealtimeSync, and the same classes.
    plan = deploys.plan_deploy(package.build())
    deployed = {
        key.partition(":")[2]: {k: v for k, v in record.items() if k != "sha256"}
        for key, record in plan.apex.items()
        if key.startswith("ApexTrigger:")
    }
    assert deployed == rts.preinstalled()["ApexTrigger"]
    classes = {key.partition(":")[2] for key in plan.apex if key.startswith("ApexClass:")}
    assert classes == set(rts.preinstalled()["ApexClass"])
    assert rts.pushed_changes(rts.preinstalled()) == {
        **{o: frozenset({"created", "updated", "deleted"}) for o in ("Account", "Contact", "Lead", "Opportunity")},
        "User": frozenset({"created", "updated"}),
    }  # fmt: skip
    inactive = rts.preinstalled()
    inactive["ApexClass"]["QS_PushJob"]["status"] = "Inactive"
    assert rts.pushed_changes(inactive) == {}


def test_the_uninstall_zip_names_every_component_but_the_setting_objects_own_fields() -> None:
    with zipfile.ZipFile(io.BytesIO(package.destructive())) as archive:
        assert sorted(archive.namelist()) == ["destructiveChanges.xml", "package.xml"]
        manifest = archive.read("package.xml")
        deleted = list(package.listed(archive.read("destructiveChanges.xml")))
    assert list(package.listed(manifest)) == []
    assert ET.fromstring(manifest).findtext(f"{NS}version") == "62.0"
    assert sorted(deleted, key=lambda c: (c.type, c.name)) == [
        c
        for c in package.components()
        if not (c.type == "CustomField" and c.name.startswith("QS_Sync_Setting__c."))
    ]
    # Without an org to delete from, every component is missing: warnings, ignored on request.
    assert [m.problem for m in deploys.plan_deploy(package.destructive()).failures][:1] == [
        "No ApexClass named: QS_Push found"
    ]
    assert deploys.plan_deploy(package.destructive(), ignore_warnings=True).failures == []


def test_the_package_ships_as_package_data() -> None:
    # pyproject's package-data patterns take every file of the package into the wheel.
    project = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    patterns = project["tool"]["setuptools"]["package-data"]["quotasync"]
    base = Path(quotasync.__file__).parent
    shipped = {p for pattern in patterns for p in base.glob(pattern) if p.is_file()}
    files = {p for p in ROOT.rglob("*") if p.is_file()}
    assert files and files <= shipped
    assert base / "org-package" == ROOT


def test_the_parts_the_doctor_looks_for_are_the_packages_own() -> None:
    components = {(c.type, c.name) for c in package.components()}
    assert {("ApexTrigger", name) for name in org_parts.TRIGGERS.values()} == {
        c for c in components if c[0] == "ApexTrigger"
    }
    for sobject, name in org_parts.TRIGGERS.items():
        assert (
            f"trigger {name} on {sobject} " in (SOURCE / "triggers" / f"{name}.trigger").read_text()
        )
    assert {("ApexClass", name) for name in org_parts.CLASSES} <= components
    assert {("CustomField", f"Activity.{f}") for f in org_parts.ACTIVITY_FIELDS} <= components
    assert {
        ("CustomField", f"{org_parts.SETTING}.{f}") for f in org_parts.SETTING_FIELDS
    } <= components
    assert ("PermissionSet", org_parts.PERMISSION_SET) in components
    assert set(org_parts.CLASSES) == set(rts.NEEDED_CLASSES)


EVERYTHING = org_parts.Found(
    task_fields=set(org_parts.ACTIVITY_FIELDS) | {"Subject"},
    event_fields=set(org_parts.ACTIVITY_FIELDS),
    setting_fields={"Id", "Name", *org_parts.SETTING_FIELDS},
    triggers={name: (sobject, "Active") for sobject, name in org_parts.TRIGGERS.items()},
    classes={name: "Active" for name in org_parts.CLASSES},
    assigned={"QS_Sync_User", "Other"},
)


def test_an_org_with_every_part_lacks_nothing() -> None:
    found = org_parts.inventory(EVERYTHING)
    assert found.complete and found.permission_set is True and found.unknown == []


def test_an_org_without_the_package_lacks_each_part_in_words() -> None:
    bare = org_parts.Found(
        task_fields={"Subject"},
        event_fields={"Subject", "QS_Activity_Id__c"},
        setting_fields=set(),
        triggers={},
        classes={},
        assigned=set(),
    )
    found = org_parts.inventory(bare)
    assert found.fields == [
        "QS_Activity_Id__c, QS_Opens__c and QS_Clicks__c on Task",
        "QS_Opens__c and QS_Clicks__c on Event",
    ]
    assert found.realtime == [
        "the QS_Sync_Setting__c object",
        "triggers QS_AccountSync, QS_ContactSync, QS_LeadSync, QS_OpportunitySync and QS_UserSync",
        "classes QS_Push, QS_PushJob and QS_RealtimeSync",
    ]
    assert found.permission_set is False and not found.complete


def test_an_inactive_trigger_a_missing_setting_field_and_unknown_parts_are_told_apart() -> None:
    triggers = dict(EVERYTHING.triggers or {})
    triggers["QS_LeadSync"] = ("Lead", "Inactive")
    partly = org_parts.Found(
        setting_fields={"Callback_URL__c", "Secret__c", "Enabled__c"},
        triggers=triggers,
        classes={"QS_Push": "Active", "QS_PushJob": "Active"},
    )
    found = org_parts.inventory(partly)
    assert found.realtime == [
        "Workspace__c on QS_Sync_Setting__c",
        "trigger QS_LeadSync (not active)",
        "class QS_RealtimeSync",
    ]
    assert found.fields == [] and found.permission_set is None
    assert found.unknown == [
        "Task's fields",
        "Event's fields",
        "the QS_Sync_User permission set's assignment",
    ]
