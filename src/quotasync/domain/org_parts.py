"""What quotasync's org package puts in an org, by name, and what an org's answers say is missing
(docs/ORG_PACKAGE.md). The doctor judges its package check by this, and `rts on` refuses with it
before pointing an org at quotasync. Pure: the org's answers come in as plain values.

The names are the package's own (`src/quotasync/org-package`); tests/unit/test_org_package.py
holds the two to each other.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

ACTIVITY_FIELDS = ("QS_Activity_Id__c", "QS_Opens__c", "QS_Clicks__c")  # on Task and Event
SETTING = "QS_Sync_Setting__c"
SETTING_FIELDS = ("Callback_URL__c", "Secret__c", "Enabled__c", "Workspace__c")
TRIGGERS = {
    "Account": "QS_AccountSync",
    "Contact": "QS_ContactSync",
    "Lead": "QS_LeadSync",
    "Opportunity": "QS_OpportunitySync",
    "User": "QS_UserSync",
}
CLASSES = ("QS_Push", "QS_PushJob", "QS_RealtimeSync")  # what a push runs through
PERMISSION_SET = "QS_Sync_User"
ACTIVE = "Active"
# How the last install or uninstall through quotasync ended (a workspace's `org_package`); after
# an install, `org_package_detail` holds the origin its Remote Site Setting allows.
INSTALLED, FAILED, UNINSTALLED = "installed", "failed", "uninstalled"


def install_fix(workspace_id: str) -> str:
    """What to do about a missing part, in the words the doctor and `rts on` use."""
    return (
        f"install quotasync's package in the org: quotasync org install --workspace "
        f"{workspace_id} (or Install in Salesforce on the Integrations page)"
    )


@dataclass(frozen=True)
class Found:
    """The org's answers, each None where the org could not be asked or did not say.

    `setting_fields` is empty when the org has no setting object; `triggers` maps a trigger's name
    to (its object, its status), `classes` a class's name to its status; `assigned` holds the
    names of the permission sets the sync user holds."""

    task_fields: Collection[str] | None = None
    event_fields: Collection[str] | None = None
    setting_fields: Collection[str] | None = None
    triggers: Mapping[str, tuple[str, str]] | None = None
    classes: Mapping[str, str] | None = None
    assigned: Collection[str] | None = None


@dataclass(frozen=True)
class Inventory:
    """What is missing, in words an admin reads: for logging (`fields`), for Real-Time Sync
    (`realtime`), and the sync user's permission set; and what could not be looked at."""

    fields: list[str] = field(default_factory=list)
    realtime: list[str] = field(default_factory=list)
    permission_set: bool | None = None  # None: not known
    unknown: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.fields and not self.realtime and self.permission_set is not False


def inventory(found: Found) -> Inventory:
    """Compare the org's answers with the package, part by part."""
    missing_fields: list[str] = []
    realtime: list[str] = []
    unknown: list[str] = []
    for sobject, fields in (("Task", found.task_fields), ("Event", found.event_fields)):
        if fields is None:
            unknown.append(f"{sobject}'s fields")
            continue
        lacking = [f for f in ACTIVITY_FIELDS if f not in fields]
        if lacking:
            missing_fields.append(f"{_and(lacking)} on {sobject}")
    if found.setting_fields is None:
        unknown.append(f"the {SETTING} object")
    elif not found.setting_fields:
        realtime.append(f"the {SETTING} object")
    else:
        lacking = [f for f in SETTING_FIELDS if f not in found.setting_fields]
        if lacking:
            realtime.append(f"{_and(lacking)} on {SETTING}")
    if found.triggers is None:
        unknown.append("the Apex triggers")
    else:
        realtime += _apex_missing(
            {
                name: found.triggers.get(name, (sobject, ""))[1]
                for sobject, name in TRIGGERS.items()
            },
            "trigger",
        )
        wrong = [
            f"{name} (on {found.triggers[name][0]}, not {sobject})"
            for sobject, name in TRIGGERS.items()
            if name in found.triggers and found.triggers[name][0].lower() != sobject.lower()
        ]
        realtime += [f"trigger {w}" for w in wrong]
    if found.classes is None:
        unknown.append("the Apex classes")
    else:
        realtime += _apex_missing({name: found.classes.get(name, "") for name in CLASSES}, "class")
    assigned = None if found.assigned is None else PERMISSION_SET in found.assigned
    if assigned is None:
        unknown.append(f"the {PERMISSION_SET} permission set's assignment")
    return Inventory(missing_fields, realtime, assigned, unknown)


def _apex_missing(statuses: Mapping[str, str], kind: str) -> list[str]:
    absent = [name for name, status in statuses.items() if not status]
    inactive = [name for name, status in statuses.items() if status and status != ACTIVE]
    plural = "classes" if kind == "class" else f"{kind}s"
    said = []
    if absent:
        said.append(f"{plural if len(absent) > 1 else kind} {_and(absent)}")
    if inactive:
        said.append(f"{plural if len(inactive) > 1 else kind} {_and(inactive)} (not active)")
    return said


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
