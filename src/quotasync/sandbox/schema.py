"""The sObjects the sandbox org holds, their fields, and how each field type reads and writes.

Only what Salesforce documents for these objects; values are kept typed in memory (dates as `date`,
datetimes as aware `datetime`) and turned into Salesforce's JSON and CSV forms at the edge.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from typing import Any

from quotasync.sandbox.ids import KEY_PREFIXES

# Field types as describe names them.
ID, STRING, EMAIL, PHONE, URL, TEXTAREA, PICKLIST = (
    "id",
    "string",
    "email",
    "phone",
    "url",
    "textarea",
    "picklist",
)
BOOLEAN, INT, DOUBLE, CURRENCY, DATE, DATETIME, REFERENCE = (
    "boolean",
    "int",
    "double",
    "currency",
    "date",
    "datetime",
    "reference",
)
TEXT_TYPES = frozenset({ID, STRING, EMAIL, PHONE, URL, TEXTAREA, PICKLIST, REFERENCE})
NUMBER_TYPES = frozenset({INT, DOUBLE, CURRENCY})


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    length: int = 0
    createable: bool = True
    updateable: bool = True
    nillable: bool = True
    required: bool = False  # on create, with no default
    external_id: bool = False
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: Any = None
    custom: bool = False

    @property
    def soap_type(self) -> str:
        return {
            ID: "tns:ID",
            REFERENCE: "tns:ID",
            BOOLEAN: "xsd:boolean",
            INT: "xsd:int",
            DOUBLE: "xsd:double",
            CURRENCY: "xsd:double",
            DATE: "xsd:date",
            DATETIME: "xsd:dateTime",
        }.get(self.type, "xsd:string")


@dataclass(frozen=True)
class SObject:
    name: str
    label: str
    label_plural: str
    fields: dict[str, Field]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    custom: bool = False
    # Lower-cased field and relationship names, since SOQL and REST match them case-insensitively.
    by_lower: dict[str, Field] = field(default_factory=dict)
    relationships: dict[str, Field] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for f in self.fields.values():
            self.by_lower[f.name.lower()] = f
            if f.relationship:
                self.relationships[f.relationship.lower()] = f

    @property
    def key_prefix(self) -> str:
        return KEY_PREFIXES[self.name]

    def field(self, name: str) -> Field | None:
        return self.by_lower.get(name.lower())


def _system_fields() -> list[Field]:
    readonly: dict[str, Any] = {"createable": False, "updateable": False}
    return [
        Field("Id", ID, 18, nillable=False, **readonly),
        Field("IsDeleted", BOOLEAN, nillable=False, **readonly),
        Field("CreatedDate", DATETIME, nillable=False, **readonly),
        Field(
            "CreatedById",
            REFERENCE,
            18,
            reference_to=("User",),
            relationship="CreatedBy",
            nillable=False,
            **readonly,
        ),
        Field("LastModifiedDate", DATETIME, nillable=False, **readonly),
        Field(
            "LastModifiedById",
            REFERENCE,
            18,
            reference_to=("User",),
            relationship="LastModifiedBy",
            nillable=False,
            **readonly,
        ),
        Field("SystemModstamp", DATETIME, nillable=False, **readonly),
    ]


def _owner() -> Field:
    return Field(
        "OwnerId", REFERENCE, 18, reference_to=("User",), relationship="Owner", nillable=False
    )


def _object(
    name: str, plural: str, fields: list[Field], label: str | None = None, **flags: Any
) -> SObject:
    label = label or "".join(" " + c if c.isupper() and i else c for i, c in enumerate(name))
    return SObject(name, label, plural, {f.name: f for f in _system_fields() + fields}, **flags)


_READONLY: dict[str, Any] = {"createable": False, "updateable": False}
_ADDRESS = [
    Field("Street", TEXTAREA, 255),
    Field("City", STRING, 40),
    Field("State", STRING, 80),
    Field("PostalCode", STRING, 20),
    Field("Country", STRING, 80),
]

_ACCOUNT = _object(
    "Account",
    "Accounts",
    [
        Field("Name", STRING, 255, nillable=False, required=True),
        Field(
            "Type",
            PICKLIST,
            255,
            picklist=("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other"),
        ),
        Field(
            "Industry",
            PICKLIST,
            255,
            picklist=(
                "Technology",
                "Finance",
                "Healthcare",
                "Retail",
                "Manufacturing",
                "Education",
                "Media",
                "Energy",
            ),
        ),
        Field("Website", URL, 255),
        Field("Phone", PHONE, 40),
        Field("NumberOfEmployees", INT),
        Field("AnnualRevenue", CURRENCY),
        Field("BillingCity", STRING, 40),
        Field("BillingCountry", STRING, 80),
        Field("Description", TEXTAREA, 32000),
        _owner(),
    ],
)

_CONTACT = _object(
    "Contact",
    "Contacts",
    [
        Field("FirstName", STRING, 40),
        Field("LastName", STRING, 80, nillable=False, required=True),
        Field("Name", STRING, 121, **_READONLY),
        Field("Email", EMAIL, 80),
        Field("Phone", PHONE, 40),
        Field("Title", STRING, 128),
        Field("AccountId", REFERENCE, 18, reference_to=("Account",), relationship="Account"),
        Field("MailingCity", STRING, 40),
        Field("MailingCountry", STRING, 80),
        Field(
            "LeadSource",
            PICKLIST,
            255,
            picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"),
        ),
        Field("Description", TEXTAREA, 32000),
        _owner(),
    ],
)

_LEAD = _object(
    "Lead",
    "Leads",
    [
        Field("FirstName", STRING, 40),
        Field("LastName", STRING, 80, nillable=False, required=True),
        Field("Name", STRING, 121, **_READONLY),
        Field("Email", EMAIL, 80),
        Field("Phone", PHONE, 40),
        Field("Title", STRING, 128),
        Field("Company", STRING, 255, nillable=False, required=True),
        Field(
            "Status",
            PICKLIST,
            255,
            nillable=False,
            default="Open - Not Contacted",
            picklist=(
                "Open - Not Contacted",
                "Working - Contacted",
                "Closed - Converted",
                "Closed - Not Converted",
            ),
        ),
        Field(
            "LeadSource",
            PICKLIST,
            255,
            picklist=("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"),
        ),
        Field("IsConverted", BOOLEAN, nillable=False, default=False, **_READONLY),
        Field("City", STRING, 40),
        Field("Country", STRING, 80),
        Field("Description", TEXTAREA, 32000),
        _owner(),
    ],
)

_OPPORTUNITY = _object(
    "Opportunity",
    "Opportunities",
    [
        Field("Name", STRING, 120, nillable=False, required=True),
        Field("AccountId", REFERENCE, 18, reference_to=("Account",), relationship="Account"),
        Field(
            "StageName",
            PICKLIST,
            255,
            nillable=False,
            required=True,
            picklist=(
                "Prospecting",
                "Qualification",
                "Needs Analysis",
                "Proposal/Price Quote",
                "Negotiation/Review",
                "Closed Won",
                "Closed Lost",
            ),
        ),
        Field("CloseDate", DATE, nillable=False, required=True),
        Field("Amount", CURRENCY),
        Field("Probability", DOUBLE),
        Field("IsClosed", BOOLEAN, nillable=False, default=False, **_READONLY),
        Field("IsWon", BOOLEAN, nillable=False, default=False, **_READONLY),
        Field("Description", TEXTAREA, 32000),
        _owner(),
    ],
)

_USER = _object(
    "User",
    "Users",
    [
        Field("Username", STRING, 80, nillable=False, required=True),
        Field("FirstName", STRING, 40),
        Field("LastName", STRING, 80, nillable=False, required=True),
        Field("Name", STRING, 121, **_READONLY),
        Field("Email", EMAIL, 128, nillable=False, required=True),
        Field("Alias", STRING, 8),
        Field("IsActive", BOOLEAN, nillable=False, default=True),
        Field("UserType", PICKLIST, 40, default="Standard", **_READONLY, picklist=("Standard",)),
        Field(
            "ProfileId",
            REFERENCE,
            18,
            reference_to=("Profile",),
            relationship="Profile",
            nillable=False,
            required=True,
        ),
        Field("Title", STRING, 80),
        Field(
            "TimeZoneSidKey",
            PICKLIST,
            40,
            default="America/New_York",
            picklist=("America/New_York", "America/Los_Angeles", "Europe/London", "Europe/Paris"),
        ),
    ],
    deletable=False,
)

_PRIORITIES = ("High", "Normal", "Low")
_ACTIVITY_COMMON = [
    Field("Subject", STRING, 255),
    Field("Description", TEXTAREA, 32000),
    Field("WhoId", REFERENCE, 18, reference_to=("Contact", "Lead"), relationship="Who"),
    Field("WhatId", REFERENCE, 18, reference_to=("Account", "Opportunity"), relationship="What"),
    Field("QS_Activity_Id__c", STRING, 255, external_id=True, custom=True),
    _owner(),
]

_TASK = _object(
    "Task",
    "Tasks",
    [
        *_ACTIVITY_COMMON,
        Field("ActivityDate", DATE),
        Field(
            "Status",
            PICKLIST,
            40,
            nillable=False,
            default="Not Started",
            picklist=(
                "Not Started",
                "In Progress",
                "Completed",
                "Waiting on someone else",
                "Deferred",
            ),
        ),
        Field("Priority", PICKLIST, 40, nillable=False, default="Normal", picklist=_PRIORITIES),
        Field(
            "TaskSubtype",
            PICKLIST,
            40,
            updateable=False,
            restricted=True,
            default="Task",
            picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"),
        ),
        Field("IsClosed", BOOLEAN, nillable=False, default=False, **_READONLY),
        Field("CompletedDateTime", DATETIME, **_READONLY),
        Field("QS_Opens__c", DOUBLE, custom=True),
        Field("QS_Clicks__c", DOUBLE, custom=True),
    ],
)

_EVENT = _object(
    "Event",
    "Events",
    [
        *_ACTIVITY_COMMON,
        Field("StartDateTime", DATETIME),
        Field("EndDateTime", DATETIME),
        Field("ActivityDateTime", DATETIME),
        Field("ActivityDate", DATE, **_READONLY),
        Field("DurationInMinutes", INT),
        Field("IsAllDayEvent", BOOLEAN, nillable=False, default=False),
        Field("Location", STRING, 255),
        Field("QS_Opens__c", DOUBLE, custom=True),
        Field("QS_Clicks__c", DOUBLE, custom=True),
    ],
)

_ORGANIZATION = _object(
    "Organization",
    "Organizations",
    [
        Field("Name", STRING, 80, nillable=False),
        Field(
            "OrganizationType",
            PICKLIST,
            40,
            **_READONLY,
            picklist=(
                "Team Edition",
                "Professional Edition",
                "Enterprise Edition",
                "Developer Edition",
                "Personal Edition",
                "Unlimited Edition",
                "Contact Manager Edition",
                "Base Edition",
            ),
        ),
        Field("IsSandbox", BOOLEAN, **_READONLY),
        Field("InstanceName", STRING, 5, **_READONLY),
        # What the Salesforce CLI reads of every org it logs in to (empty here: no trial ends,
        # no namespace is registered).
        Field("TrialExpirationDate", DATETIME, **_READONLY),
        Field("NamespacePrefix", STRING, 15, **_READONLY),
        Field("Country", STRING, 80),
        Field("TimeZoneSidKey", STRING, 40),
    ],
    createable=False,
    deletable=False,
)

_PERMISSIONS = [
    Field("PermissionsApiEnabled", BOOLEAN, nillable=False, default=False),
    Field("PermissionsViewSetup", BOOLEAN, nillable=False, default=False),
]
_PROFILE = _object(
    "Profile",
    "Profiles",
    [
        Field("Name", STRING, 255, nillable=False, required=True),
        Field("UserLicenseId", STRING, 18, **_READONLY),
        *_PERMISSIONS,
    ],
    deletable=False,
)

_PERMISSION_SET = _object(
    "PermissionSet",
    "Permission Sets",
    [
        Field("Name", STRING, 80, nillable=False, required=True),
        Field("Label", STRING, 80),
        Field("IsOwnedByProfile", BOOLEAN, nillable=False, default=False, **_READONLY),
        Field(
            "ProfileId",
            REFERENCE,
            18,
            reference_to=("Profile",),
            relationship="Profile",
            **_READONLY,
        ),
        *_PERMISSIONS,
    ],
)

_ASSIGNMENT = _object(
    "PermissionSetAssignment",
    "Permission Set Assignments",
    [
        Field(
            "AssigneeId",
            REFERENCE,
            18,
            reference_to=("User",),
            relationship="Assignee",
            nillable=False,
            required=True,
            updateable=False,
        ),
        Field(
            "PermissionSetId",
            REFERENCE,
            18,
            reference_to=("PermissionSet",),
            relationship="PermissionSet",
            nillable=False,
            required=True,
            updateable=False,
        ),
    ],
    updateable=False,
)

# Real-Time Sync's switch, as quotasync's managed package would install it: the org pushes changes
# to Callback_URL__c, signed with Secret__c, while a record has Enabled__c (see rts.py).
_SYNC_SETTING = _object(
    "QS_Sync_Setting__c",
    "QS Sync Settings",
    [
        # A custom object's text Name; left out on create, it becomes the record's Id.
        Field("Name", STRING, 80, nillable=False),
        Field("Callback_URL__c", URL, 255, custom=True),
        Field("Secret__c", STRING, 255, custom=True),
        Field("Enabled__c", BOOLEAN, nillable=False, default=False, custom=True),
        # Which quotasync workspace the setting belongs to (several may share an org).
        Field("Workspace__c", STRING, 80, external_id=True, custom=True),
        _owner(),
    ],
    label="QS Sync Setting",
    custom=True,
)

# The org's Apex, as SOQL lists it (read-only: only a Metadata API deploy adds, changes or
# deletes a class or trigger; the sandbox keeps these records in step with what was deployed).
_APEX_STATUS = ("Active", "Inactive", "Deleted")


def _apex(name: str, plural: str, *extra: Field) -> SObject:
    fields = [
        Field("Name", STRING, 255, nillable=False, **_READONLY),
        Field("NamespacePrefix", STRING, 15, **_READONLY),
        *extra,
        Field("ApiVersion", DOUBLE, **_READONLY),
        Field("Status", PICKLIST, 40, picklist=_APEX_STATUS, nillable=False, **_READONLY),
        Field("IsValid", BOOLEAN, nillable=False, default=True, **_READONLY),
    ]
    return _object(name, plural, fields, createable=False, updateable=False, deletable=False)


_APEX_CLASS = _apex("ApexClass", "Apex Classes")
_APEX_TRIGGER = _apex(
    "ApexTrigger", "Apex Triggers", Field("TableEnumOrId", STRING, 40, nillable=False, **_READONLY)
)

OBJECTS: dict[str, SObject] = {
    o.name: o
    for o in (
        _ACCOUNT,
        _CONTACT,
        _LEAD,
        _OPPORTUNITY,
        _USER,
        _TASK,
        _EVENT,
        _ORGANIZATION,
        _PROFILE,
        _PERMISSION_SET,
        _ASSIGNMENT,
        _SYNC_SETTING,
        _APEX_CLASS,
        _APEX_TRIGGER,
    )
}
_BY_LOWER = {name.lower(): o for name, o in OBJECTS.items()}
_BY_PREFIX = {o.key_prefix: o for o in OBJECTS.values()}


def find(name: str) -> SObject | None:
    """Object names match case-insensitively, as in SOQL and REST paths."""
    return _BY_LOWER.get(name.lower())


def object_for_id(record_id: str) -> SObject | None:
    return _BY_PREFIX.get(record_id[:3])


# The objects as defined above; `set_dropped` derives the org's objects from these.
_DEFINED = dict(OBJECTS)
# Custom fields a Metadata API deploy added or redefined (deploys.py), by object and name: they
# stand over the definitions above.
_DEPLOYED: dict[str, dict[str, Field]] = {}


def custom_field_defined(sobject: str, name: str) -> Field | None:
    """A custom field as defined or deployed (dropped or not): the only kind an admin can delete
    in Setup."""
    found = _DEPLOYED.get(sobject, {}).get(name)
    if found is None:
        obj = _DEFINED.get(sobject)
        found = obj.fields.get(name) if obj is not None else None
    return found if found is not None and found.custom else None


def set_deployed(stored: Iterable[dict[str, Any]]) -> None:
    """The custom fields deploys made (as `deployed_field` stores them); `set_dropped` applies
    them."""
    _DEPLOYED.clear()
    for entry in stored:
        f = Field(
            entry["name"],
            entry["type"],
            int(entry.get("length") or 0),
            nillable=entry.get("type") != BOOLEAN,
            external_id=bool(entry.get("external_id")),
            default=entry.get("default"),
            custom=True,
        )
        _DEPLOYED.setdefault(entry["object"], {})[f.name] = f


def deployed_field(sobject: str, f: Field) -> dict[str, Any]:
    """How the org's settings keep a deployed field."""
    return {
        "object": sobject,
        "name": f.name,
        "type": f.type,
        "length": f.length,
        "external_id": f.external_id,
        "default": f.default,
    }


def set_dropped(dropped: Iterable[tuple[str, str]], objects: Iterable[str] = ()) -> None:
    """Make these (object, custom field) pairs absent, as an admin deleting them in Setup would,
    and the custom `objects` absent altogether (not installed, or deleted by a deploy); every
    other object and field present as defined (or deployed). The sandbox process serves one org,
    so its objects are this module's."""
    gone: dict[str, set[str]] = {}
    for sobject, name in dropped:
        gone.setdefault(sobject, set()).add(name)
    absent = {name for name in objects if name in _DEFINED and _DEFINED[name].custom}
    for name, defined in _DEFINED.items():
        if name in absent:
            OBJECTS.pop(name, None)
            _BY_LOWER.pop(name.lower(), None)
            _BY_PREFIX.pop(defined.key_prefix, None)
            continue
        obj = defined
        added = _DEPLOYED.get(name, {})
        if gone.get(name) or added:
            fields = {**defined.fields, **added}
            kept = {k: f for k, f in fields.items() if k not in gone.get(name, set())}
            obj = replace(defined, fields=kept, by_lower={}, relationships={})
        OBJECTS[name] = _BY_LOWER[name.lower()] = _BY_PREFIX[obj.key_prefix] = obj


def defined(name: str) -> SObject | None:
    """An object as the org has it, or as defined when the org lacks it (a custom object not
    installed): for records kept while their object is away."""
    return OBJECTS.get(name) or _DEFINED.get(name)


def defined_names() -> list[str]:
    """Every object the sandbox can hold, present or not."""
    return list(_DEFINED)


def is_custom_object(name: str) -> bool:
    """Whether the sandbox defines `name` as a custom object a deploy may add or delete."""
    found = _DEFINED.get(name)
    return found is not None and found.custom


# ---------------------------------------------------------------- values at the edge


@functools.lru_cache(maxsize=8192)
def format_datetime(value: datetime) -> str:
    """Salesforce's JSON form: 2026-11-28T12:00:00.000+0000.

    Cached: a write stamps the same instant on three or four fields of every record it touches.
    """
    m = value.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}."
        f"{m.microsecond // 1000:03d}+0000"
    )


def to_json(f: Field, value: Any) -> Any:
    if value is None:
        return None
    if f.type == DATETIME:
        return format_datetime(value)
    if f.type == DATE:
        return value.isoformat()
    return value


def to_csv(f: Field, value: Any) -> str:
    if value is None:
        return ""
    if f.type == BOOLEAN:
        return "true" if value else "false"
    if f.type == DATETIME:
        return format_datetime(value)[:-5] + "Z"
    if f.type == DATE:
        return str(value.isoformat())
    if f.type == DOUBLE or f.type == CURRENCY:
        return repr(float(value)) if float(value) != int(value) else str(int(value))
    return str(value)


class ValueProblem(ValueError):
    """A value a field cannot hold; `code` is the statusCode Salesforce reports."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_datetime(text: str) -> datetime:
    cleaned = text.strip().replace("Z", "+00:00")
    # Salesforce writes +0000; fromisoformat wants +00:00.
    if len(cleaned) > 5 and cleaned[-5] in "+-" and cleaned[-3] != ":":
        cleaned = cleaned[:-2] + ":" + cleaned[-2:]
    moment = datetime.fromisoformat(cleaned)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def coerce(f: Field, value: Any, *, from_csv: bool = False) -> Any:
    """Turn an incoming JSON (or CSV) value into the typed value the field stores."""
    if value is None or (from_csv and value == ""):
        return None
    try:
        return _COERCERS.get(f.type, _coerce_text)(f, value, from_csv)
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, ValueProblem):
            raise
        raise ValueProblem(
            "INVALID_TYPE_ON_FIELD_IN_RECORD",
            f"{f.name}: value not of required type: {value}",
        ) from exc


def _coerce_text(f: Field, value: Any, from_csv: bool) -> str:
    if isinstance(value, bool | dict | list):
        raise TypeError(value)
    text = str(value)
    if f.length and len(text) > f.length:
        raise ValueProblem(
            "STRING_TOO_LONG",
            f"{f.name}: data value too large: {text[:40]}... (max length={f.length})",
        )
    if f.restricted and f.picklist and text not in f.picklist:
        raise ValueProblem(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{f.name}: bad value for restricted picklist field: {text}",
        )
    return text


def _coerce_bool(f: Field, value: Any, from_csv: bool) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TypeError(value)


def _coerce_int(f: Field, value: Any, from_csv: bool) -> int:
    if isinstance(value, bool):
        raise TypeError(value)
    number = _finite(value)
    if number != int(number):
        raise ValueError(value)
    return int(number)


def _coerce_float(f: Field, value: Any, from_csv: bool) -> float:
    if isinstance(value, bool):
        raise TypeError(value)
    return _finite(value)


def _finite(value: Any) -> float:
    """A number field never holds NaN or infinity, however the value was spelled ("inf", 1e999)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def _coerce_date(f: Field, value: Any, from_csv: bool) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise TypeError(value)
    return date.fromisoformat(value[:10])


def _coerce_datetime(f: Field, value: Any, from_csv: bool) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise TypeError(value)
    return parse_datetime(value)


_COERCERS = {
    BOOLEAN: _coerce_bool,
    INT: _coerce_int,
    DOUBLE: _coerce_float,
    CURRENCY: _coerce_float,
    DATE: _coerce_date,
    DATETIME: _coerce_datetime,
}


def describe_field(f: Field) -> dict[str, Any]:
    return {
        "name": f.name,
        "label": f.name.removesuffix("__c").replace("_", " "),
        "type": f.type,
        "soapType": f.soap_type,
        "length": f.length if f.type in TEXT_TYPES else 0,
        "nillable": f.nillable,
        "createable": f.createable,
        "updateable": f.updateable,
        "defaultedOnCreate": f.default is not None or f.name in ("Id", "OwnerId"),
        "externalId": f.external_id,
        "idLookup": f.external_id or f.name == "Id",
        "unique": False,
        "custom": f.custom,
        "filterable": True,
        "sortable": f.type != TEXTAREA,
        "referenceTo": list(f.reference_to),
        "relationshipName": f.relationship,
        "restrictedPicklist": f.restricted,
        "picklistValues": [
            {"active": True, "defaultValue": v == f.default, "label": v, "value": v}
            for v in f.picklist
        ],
        "precision": 18 if f.type in (DOUBLE, CURRENCY) else 0,
        "scale": 2 if f.type in (DOUBLE, CURRENCY) else 0,
        "digits": 9 if f.type == INT else 0,
    }


def describe(obj: SObject, base: str) -> dict[str, Any]:
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "createable": obj.createable,
        "updateable": obj.updateable,
        "deletable": obj.deletable,
        "queryable": True,
        "retrieveable": True,
        "searchable": True,
        "undeletable": obj.deletable,
        "fields": [describe_field(f) for f in obj.fields.values()],
        "urls": _urls(obj, base),
    }


def describe_global_entry(obj: SObject, base: str) -> dict[str, Any]:
    return {
        "name": obj.name,
        "label": obj.label,
        "labelPlural": obj.label_plural,
        "keyPrefix": obj.key_prefix,
        "custom": obj.custom,
        "createable": obj.createable,
        "updateable": obj.updateable,
        "deletable": obj.deletable,
        "queryable": True,
        "urls": _urls(obj, base),
    }


def _urls(obj: SObject, base: str) -> dict[str, str]:
    root = f"{base}/sobjects/{obj.name}"
    return {
        "sobject": root,
        "describe": f"{root}/describe",
        "rowTemplate": f"{root}/{{ID}}",
    }
