"""The Metadata API's REST deploy: `POST metadata/deployRequest` takes a zip (metadata format)
and `GET metadata/deployRequest/{id}` answers how it went, in Salesforce's `deployResult` shape.

The zip is checked as Salesforce would for the component types quotasync's package holds:
package.xml names what to deploy and each named component must be in the zip; custom fields have a
known type with its length or precision; an object's fields go on an object that exists; a trigger
names an object that exists; a permission set grants fields and objects that exist. Any failure
fails the whole deploy and applies nothing (rollbackOnError). Otherwise, unless `checkOnly`, the
fields (and the custom object's fields) are applied, so describe, SOQL and DML see them at once,
and the Apex, permission set and Remote Site Setting are recorded (`GET /__sandbox/package`).

The deploy is carried out when it is posted; the POST answers it `Pending`, as Salesforce does,
and the first look answers how it ended. Only a System Administrator (Modify All Data) may deploy.
"""

from __future__ import annotations

import hashlib
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from quotasync.sandbox import rts, schema
from quotasync.sandbox.errors import ApiError, not_found
from quotasync.sandbox.org import API_VERSIONS, Org
from quotasync.sandbox.rest import Call, Reply, route
from quotasync.sandbox.schema import Field

NS = "http://soap.sforce.com/2006/04/metadata"
_Q = f"{{{NS}}}"
DEPLOYERS = frozenset({"System Administrator"})  # the profiles with Modify All Data
MAX_ZIP_BYTES = 39 * 1024 * 1024
ACTIVITY = "Activity"  # an Activity field is on Task and Event both
USER_PERMISSIONS = {"ApiEnabled": "PermissionsApiEnabled", "ViewSetup": "PermissionsViewSetup"}
TRIGGER_EVENTS = frozenset(
    f"{when} {what}"
    for when in ("before", "after")
    for what in ("insert", "update", "delete", "undelete")
)
# The zip's folder and suffix of each type the sandbox deploys.
FILES = {
    "ApexClass": ("classes", ".cls"),
    "ApexTrigger": ("triggers", ".trigger"),
    "CustomObject": ("objects", ".object"),
    "PermissionSet": ("permissionsets", ".permissionset"),
    "RemoteSiteSetting": ("remoteSiteSettings", ".remoteSite"),
}
_HEADER = re.compile(r"\s*trigger\s+(\w+)\s+on\s+(\w+)\s*\(([^)]*)\)", re.IGNORECASE)
_CLASS = re.compile(r"\bclass\s+(\w+)", re.IGNORECASE)
_COMMENTS = re.compile(r"/\*.*?\*/|//[^\n]*", re.DOTALL)
# A trigger that hands its records to the package's Real-Time Sync class (which the sandbox's
# pushes stand for: it runs no Apex).
_HANDS_OVER = re.compile(rf"\b{rts.HANDLER}\s*\.\s*handle\s*\(", re.IGNORECASE)
DESTRUCTIVE = "destructiveChanges.xml"


@dataclass
class Message:
    """A DeployMessage: one component's outcome."""

    type: str
    name: str
    file: str
    problem: str | None = None
    created: bool = False
    deleted: bool = False
    warning: bool = False  # a problem that fails the deploy only without ignoreWarnings

    def as_json(self, when: str) -> dict[str, Any]:
        fine = self.problem is None
        return {
            "changed": fine and not self.created and not self.deleted,
            "columnNumber": None,
            "componentType": self.type,
            "created": fine and self.created,
            "createdDate": when,
            "deleted": fine and self.deleted,
            "fileName": self.file,
            "fullName": self.name,
            "id": None,
            "lineNumber": None,
            "problem": self.problem,
            "problemType": ("Warning" if self.warning else "Error") if self.problem else None,
            "success": fine or self.warning,
        }


@dataclass
class Plan:
    """What a deploy would change: checked in full before anything is applied."""

    fields: list[tuple[str, Field]] = field(default_factory=list)  # (object, field)
    objects: list[str] = field(default_factory=list)  # custom objects deployed
    apex: dict[str, dict[str, Any]] = field(default_factory=dict)  # "Type:name" -> record
    permission_sets: dict[str, dict[str, Any]] = field(default_factory=dict)
    # destructiveChanges.xml: what to delete, each (type, full name) found in the org
    deletions: list[tuple[str, str]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    ignore_warnings: bool = False

    @property
    def failures(self) -> list[Message]:
        return [m for m in self.messages if m.problem and not (m.warning and self.ignore_warnings)]


# ---------------------------------------------------------------- the resource


@route("POST", r"metadata/deployRequest")
def deploy_request(call: Call, _: re.Match[str]) -> Reply:
    org = call.org
    _check_deployer(org, call.caller.user["ProfileId"])
    options, zipped = _parts(call)
    check_only = options.get("checkOnly") is True
    plan = plan_deploy(zipped, org, ignore_warnings=options.get("ignoreWarnings") is True)
    if not plan.failures and not check_only:
        apply(org, plan, call.caller.user_id, call)
    deploy_id = org.records.ids.new("0Af")
    when = schema.format_datetime(call.now)
    result = {
        "id": deploy_id,
        "checkOnly": check_only,
        "ignoreWarnings": options.get("ignoreWarnings") is True,
        "rollbackOnError": True,
        "createdBy": call.caller.user_id,
        "createdByName": call.caller.user.get("Name"),
        "createdDate": when,
        "startDate": when,
        "lastModifiedDate": when,
        "completedDate": when,
        "numberComponentErrors": len(plan.failures),
        "numberComponentsDeployed": len(plan.messages) - len(plan.failures),
        "numberComponentsTotal": len(plan.messages),
        "numberTestErrors": 0,
        "numberTestsCompleted": 0,
        "numberTestsTotal": 0,
        "runTestsEnabled": False,
        "errorMessage": None,
        "errorStatusCode": None,
        "stateDetail": None,
        "status": "Failed" if plan.failures else "Succeeded",
        "success": not plan.failures,
        "done": True,
        "details": {
            "componentFailures": [m.as_json(when) for m in plan.failures],
            "componentSuccesses": [
                m.as_json(when) for m in plan.messages if m not in plan.failures
            ],
            "runTestResult": {"numFailures": 0, "numTestsRun": 0, "totalTime": 0.0},
        },
    }
    org.deploys[deploy_id] = {"options": options, "result": result, "looked": False}
    pending = {
        **result,
        "status": "Pending",
        "success": False,
        "done": False,
        "numberComponentErrors": 0,
        "numberComponentsDeployed": 0,
        "numberComponentsTotal": 0,
        "completedDate": None,
        "startDate": None,
        "details": None,
    }
    url = f"{org.base_url}{call.base}/metadata/deployRequest/{deploy_id}"
    return Reply(
        201,
        {"id": deploy_id, "validatedDeployRequestId": None, "deployOptions": options,
         "deployResult": pending, "url": url},
    )  # fmt: skip


@route("GET", r"metadata/deployRequest/(?P<id>\w+)")
def deploy_status(call: Call, match: re.Match[str]) -> Reply:
    found = call.org.deploys.get(match["id"])
    if found is None:
        raise not_found("The requested resource does not exist")
    result = dict(found["result"])
    if call.params.get("includeDetails") != "true":
        result["details"] = None
    return Reply(
        200,
        {"id": match["id"], "validatedDeployRequestId": None,
         "deployOptions": found["options"], "deployResult": result},
    )  # fmt: skip


def _check_deployer(org: Org, profile_id: str) -> None:
    profile = org.records.get(profile_id or "")
    if profile is None or profile["Name"] not in DEPLOYERS:
        raise ApiError(
            403,
            "INSUFFICIENT_ACCESS",
            "use of the Metadata API requires a user with the ModifyAllData or ModifyMetadata "
            "permissions",
        )


def _parts(call: Call) -> tuple[dict[str, Any], bytes]:
    """The multipart body's `json` (or `entity_content`) part's deployOptions and its `file`
    part."""
    kind = call.headers.get("content-type", "")
    found = re.search(r'boundary="?([^";]+)"?', kind)
    if not kind.startswith("multipart/form-data") or found is None:
        raise ApiError(
            400,
            "INVALID_MULTIPART_REQUEST",
            "The request must be multipart/form-data, with a json part and a file part",
        )
    parts: dict[str, bytes] = {}
    for chunk in call.body.split(b"--" + found[1].encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]*)"', head)
        if name is not None:
            parts[name[1].decode()] = data.removesuffix(b"\r\n")
    # The options' part is `json` in Salesforce's examples and `entity_content` (the name of
    # Salesforce's other multipart resources) as jsforce and the Salesforce CLI send it.
    described = parts.get("json", parts.get("entity_content"))
    if described is None or "file" not in parts:
        raise ApiError(
            400, "INVALID_MULTIPART_REQUEST", "The request needs a json part and a file part"
        )
    try:
        options = orjson.loads(described).get("deployOptions") or {}
    except (orjson.JSONDecodeError, AttributeError):
        raise ApiError(400, "JSON_PARSER_ERROR", "The json part is not a JSON object") from None
    if not isinstance(options, dict):
        raise ApiError(400, "JSON_PARSER_ERROR", "deployOptions must be an object")
    if len(parts["file"]) > MAX_ZIP_BYTES:
        raise ApiError(400, "INVALID_FILE", "The zip file is over 39 MB")
    return options, parts["file"]


# ---------------------------------------------------------------- checking


def plan_deploy(zipped: bytes, org: Org | None = None, *, ignore_warnings: bool = False) -> Plan:
    """Check the zip as `org` would; every component's outcome, and what it would change.
    Without an org, only what the zip itself and the objects say."""
    plan = Plan(ignore_warnings=ignore_warnings)
    try:
        files = _unzip(zipped)
    except zipfile.BadZipFile:
        plan.messages.append(Message("", "deploy.zip", "", "The file is not a zip file"))
        return plan
    manifest = files.get("package.xml")
    if manifest is None:
        plan.messages.append(Message("", "package.xml", "package.xml", "No package.xml found"))
        return plan
    try:
        named = list(_listed(manifest))
    except ET.ParseError as exc:
        plan.messages.append(
            Message("", "package.xml", "package.xml", f"Error parsing file: {exc}")
        )
        return plan
    plan.messages.append(Message("", "package.xml", "package.xml"))
    if DESTRUCTIVE in files:
        _destructive(plan, files[DESTRUCTIVE], org)
    objects_deployed = {n for t, n in named if t == "CustomObject"}
    for kind, name in named:
        if kind == "CustomField":
            plan.messages.append(_field(plan, files, name, objects_deployed))
        elif kind in FILES:
            plan.messages.append(_component(plan, files, kind, name, objects_deployed))
        else:
            plan.messages.append(
                Message(
                    kind,
                    name,
                    "package.xml",
                    f"Unknown type name '{kind}' specified in package.xml",
                )
            )
    # Apex, permission sets and sites the org did not have are created, the others changed.
    had = org.settings.get("package", {}) if org is not None else {}
    for message in plan.messages:
        if message.type in ("ApexClass", "ApexTrigger", "PermissionSet", "RemoteSiteSetting"):
            message.created = message.name not in (had.get(message.type) or {})
    # A permission set may grant only fields that exist once this deploy is applied.
    deployed_fields = {(o, f.name) for o, f in plan.fields}
    for name, values in plan.permission_sets.items():
        for granted in values.pop("_fields"):
            obj, _, field_name = granted.partition(".")
            targets = ("Task", "Event") if obj == ACTIVITY else (obj,)
            if not all(_field_exists(t, field_name, deployed_fields) for t in targets):
                message = next(
                    m for m in plan.messages if m.type == "PermissionSet" and m.name == name
                )
                message.problem = message.problem or (
                    f"In field: field - no CustomField named {granted} found"
                )
    return plan


def _unzip(zipped: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(zipped)) as archive:
        return {
            info.filename.removeprefix("unpackaged/"): archive.read(info)
            for info in archive.infolist()
            if not info.is_dir()
        }


def _listed(package_xml: bytes) -> Iterator[tuple[str, str]]:
    root = ET.fromstring(package_xml)
    for types in root.findall(f"{_Q}types"):
        kind = (types.findtext(f"{_Q}name") or "").strip()
        for member in types.findall(f"{_Q}members"):
            yield kind, (member.text or "").strip()


def _missing(kind: str, name: str) -> str:
    return (
        f"An object '{name}' of type {kind} was named in package.xml, but was not found in "
        "zipped directory"
    )


def _field(plan: Plan, files: dict[str, bytes], full_name: str, objects: set[str]) -> Message:
    obj, _, name = full_name.partition(".")
    path = f"objects/{obj}.object"
    element = None
    if path in files:
        try:
            root = ET.fromstring(files[path])
        except ET.ParseError as exc:
            return Message("CustomField", full_name, path, f"Error parsing file: {exc}")
        element = next(
            (f for f in root.findall(f"{_Q}fields") if f.findtext(f"{_Q}fullName") == name), None
        )
    if element is None:
        return Message("CustomField", full_name, path, _missing("CustomField", full_name))
    message = Message("CustomField", full_name, path)
    targets = ("Task", "Event") if obj == ACTIVITY else (obj,)
    if not all(schema.find(t) is not None for t in targets) and obj not in objects:
        message.problem = f"Cannot find the object {obj} for the field {name}"
        return message
    try:
        made = field_of(element, name)
    except ValueError as exc:
        message.problem = str(exc)
        return message
    message.created = not all(_field_exists(t, name, set()) for t in targets)
    plan.fields += [(t, made) for t in targets]
    return message


def field_of(element: ET.Element, name: str) -> Field:
    """The sandbox field a CustomField's XML describes, or ValueError with what is wrong."""

    def text(tag: str) -> str | None:
        value = element.findtext(f"{_Q}{tag}")
        return value.strip() if value is not None else None

    def number(tag: str, low: int, high: int, what: str) -> int:
        value = text(tag)
        if value is None or not value.isdigit() or not low <= int(value) <= high:
            raise ValueError(f"{what} must be between {low} and {high}")
        return int(value)

    if not name.endswith("__c") or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*__c", name):
        raise ValueError(f"Invalid fullName {name!r}, must end in __c")
    if not text("label"):
        raise ValueError("Required field is missing: label")
    kind = text("type")
    external = text("externalId") == "true"
    if external and kind not in ("Text", "Number", "Email"):
        raise ValueError(f"A {kind} field cannot be an External ID")
    if text("unique") == "true" and kind not in ("Text", "Number", "Email"):
        raise ValueError(f"A {kind} field cannot be unique")
    if kind == "Text":
        length = number("length", 1, 255, "Length")
        return Field(name, schema.STRING, length, external_id=external, custom=True)
    if kind == "LongTextArea":
        number("visibleLines", 1, 50, "Visible lines")
        length = number("length", 256, 131072, "Length")
        return Field(name, schema.TEXTAREA, length, custom=True)
    if kind == "Number":
        precision = number("precision", 1, 18, "Length plus decimal places")
        number("scale", 0, precision, "Decimal places")
        return Field(name, schema.DOUBLE, external_id=external, custom=True)
    if kind == "Checkbox":
        default = text("defaultValue")
        if default not in ("true", "false"):
            raise ValueError("Checkbox fields need a defaultValue of true or false")
        return Field(name, schema.BOOLEAN, nillable=False, default=default == "true", custom=True)
    if kind in ("Url", "Email", "Phone", "Date", "DateTime"):
        kinds = {"Url": (schema.URL, 255), "Email": (schema.EMAIL, 80), "Phone": (schema.PHONE, 40),
                 "Date": (schema.DATE, 0), "DateTime": (schema.DATETIME, 0)}  # fmt: skip
        made, length = kinds[kind]
        return Field(name, made, length, external_id=external, custom=True)
    raise ValueError(f"The sandbox org does not create {kind or 'untyped'} fields")


def _field_exists(sobject: str, name: str, deploying: set[tuple[str, str]]) -> bool:
    if (sobject, name) in deploying:
        return True
    obj = schema.find(sobject)
    return obj is not None and obj.field(name) is not None


def _component(
    plan: Plan, files: dict[str, bytes], kind: str, name: str, objects: set[str]
) -> Message:
    folder, suffix = FILES[kind]
    path = f"{folder}/{name}{suffix}"
    if path not in files:
        return Message(kind, name, path, _missing(kind, name))
    message = Message(kind, name, path)
    data = files[path]
    try:
        if kind in ("ApexClass", "ApexTrigger"):
            message.problem = _apex(plan, files, kind, name, path, objects)
        elif kind == "CustomObject":
            message.problem = _custom_object(ET.fromstring(data), name)
            if message.problem is None:
                plan.objects.append(name)
                message.created = schema.find(name) is None
        elif kind == "PermissionSet":
            message.problem = _permission_set(plan, ET.fromstring(data), name, objects)
        else:
            message.problem = _remote_site(plan, ET.fromstring(data), name)
    except ET.ParseError as exc:
        message.problem = f"Error parsing file: {exc}"
    return message


def _apex(
    plan: Plan, files: dict[str, bytes], kind: str, name: str, path: str, objects: set[str]
) -> str | None:
    meta = files.get(path + "-meta.xml")
    if meta is None:
        return f"Missing metadata file {path}-meta.xml"
    root = ET.fromstring(meta)
    version = (root.findtext(f"{_Q}apiVersion") or "").strip()
    if version not in API_VERSIONS and not (_is_version(version) and float(version) < 58):
        return f"The specified apiVersion ({version or 'none'}) is not supported"
    source = _COMMENTS.sub("", files[path].decode("utf-8", "replace"))
    record: dict[str, Any] = {
        "apiVersion": version,
        "status": (root.findtext(f"{_Q}status") or "Active").strip(),
        "sha256": hashlib.sha256(files[path]).hexdigest(),
    }
    if kind == "ApexTrigger":
        header = _HEADER.match(source)
        if header is None:
            return "Compile Error: expecting 'trigger <Name> on <Object> (<events>)'"
        if header[1].lower() != name.lower():
            return f"Compile Error: the trigger is named {header[1]}, not {name}"
        sobject = header[2]
        if schema.find(sobject) is None and sobject not in objects:
            return f"Compile Error: Invalid SObject type name: {sobject}"
        events = [" ".join(e.split()).lower() for e in header[3].split(",")]
        unknown = [e for e in events if e not in TRIGGER_EVENTS]
        if unknown:
            return f"Compile Error: unexpected trigger event: {unknown[0]}"
        found = schema.find(sobject)
        record.update(
            object=found.name if found is not None else sobject,
            events=events,
            handler=rts.HANDLER if _HANDS_OVER.search(source) else None,
        )
    else:
        declared = _CLASS.search(source)
        if declared is None or declared[1].lower() != name.lower():
            return f"Compile Error: the file does not declare class {name}"
    plan.apex[f"{kind}:{name}"] = record
    return None


def _is_version(text: str) -> bool:
    return re.fullmatch(r"\d+\.0", text) is not None


def _custom_object(root: ET.Element, name: str) -> str | None:
    if not name.endswith("__c"):
        return f"Invalid fullName {name!r}, must end in __c"
    if not schema.is_custom_object(name):
        return f"The sandbox org cannot create the custom object {name}"
    for tag in ("label", "pluralLabel", "deploymentStatus", "sharingModel"):
        if not root.findtext(f"{_Q}{tag}"):
            return f"Required field is missing: {tag}"
    name_field = root.find(f"{_Q}nameField")
    if name_field is None or name_field.findtext(f"{_Q}type") not in ("Text", "AutoNumber"):
        return "Required field is missing: nameField"
    return None


def _permission_set(plan: Plan, root: ET.Element, name: str, objects: set[str]) -> str | None:
    if not root.findtext(f"{_Q}label"):
        return "Required field is missing: label"
    granted = [
        (p.findtext(f"{_Q}field") or "").strip() for p in root.findall(f"{_Q}fieldPermissions")
    ]
    for element in root.findall(f"{_Q}objectPermissions"):
        obj = (element.findtext(f"{_Q}object") or "").strip()
        if schema.find(obj) is None and obj not in objects:
            return f"In field: object - no CustomObject named {obj} found"
    permissions: dict[str, bool] = {}
    for element in root.findall(f"{_Q}userPermissions"):
        permission = (element.findtext(f"{_Q}name") or "").strip()
        if permission not in USER_PERMISSIONS:
            return f"Unknown user permission: {permission}"
        permissions[USER_PERMISSIONS[permission]] = element.findtext(f"{_Q}enabled") == "true"
    plan.permission_sets[name] = {
        "Label": (root.findtext(f"{_Q}label") or name)[:80],
        **permissions,
        "_fields": granted,  # checked once every field of the deploy is known
    }
    return None


def _remote_site(plan: Plan, root: ET.Element, name: str) -> str | None:
    url = (root.findtext(f"{_Q}url") or "").strip()
    if re.fullmatch(r"https?://[^/\s]+", url) is None:
        return f"Invalid URL for the remote site {name}: {url or 'none'}"
    plan.apex[f"RemoteSiteSetting:{name}"] = {
        "url": url,
        "isActive": (root.findtext(f"{_Q}isActive") or "true").strip() == "true",
    }
    return None


# ---------------------------------------------------------------- applying


def apply(org: Org, plan: Plan, user_id: str, call: Call) -> None:
    """Make the org hold what the plan checked: its deletions first (destructiveChanges.xml),
    then its objects, fields, Apex, permission sets and sites."""
    package = org.settings.setdefault("package", {})
    deployed = {(e["object"], e["name"]): e for e in org.settings.get("deployed_fields", [])}
    dropped = set(org.dropped_fields())
    dropped_objects = set(org.dropped_objects())
    for kind, name in plan.deletions:
        if kind == "CustomField":
            obj, _, field_name = name.partition(".")
            for sobject in ("Task", "Event") if obj == ACTIVITY else (obj,):
                dropped.add((sobject, field_name))
                deployed.pop((sobject, field_name), None)
                org.records.drop_field(sobject, field_name)
        elif kind == "CustomObject":  # its fields go with it
            dropped_objects.add(name)
            org.records.erase_all(name, call.now)
            deployed = {k: e for k, e in deployed.items() if k[0] != name}
        elif kind == "PermissionSet":
            found = _permission_set_named(org, name)
            if found is not None:
                org.records.delete(schema.OBJECTS["PermissionSet"], found["Id"], user_id, call.now)
            package.get(kind, {}).pop(name, None)
        else:
            package.get(kind, {}).pop(name, None)
    dropped_objects -= set(plan.objects)
    for sobject, made in plan.fields:
        deployed[(sobject, made.name)] = schema.deployed_field(sobject, made)
        dropped.discard((sobject, made.name))
    org.settings["deployed_fields"] = list(deployed.values())
    org.settings["dropped_fields"] = [list(pair) for pair in sorted(dropped)]
    org.settings["dropped_objects"] = sorted(dropped_objects)
    org.apply_schema()
    for key, record in plan.apex.items():
        kind, _, name = key.partition(":")
        package.setdefault(kind, {})[name] = record
    permission_set = schema.OBJECTS["PermissionSet"]
    for name, values in plan.permission_sets.items():
        existing = _permission_set_named(org, name)
        if existing is None:
            org.records.insert(permission_set, {"Name": name, **values}, user_id, call.now)
        else:
            org.records.update(permission_set, existing["Id"], values, user_id, call.now)
        package.setdefault("PermissionSet", {})[name] = {
            k: v for k, v in values.items() if k != "Label"
        }
    org.package_changed()
    org.settings_changed()


def _permission_set_named(org: Org, name: str) -> dict[str, Any] | None:
    return next(
        (
            p
            for p in org.records.live("PermissionSet")
            if p["Name"] == name and not p.get("IsOwnedByProfile")
        ),
        None,
    )


# ---------------------------------------------------------------- deleting


def _destructive(plan: Plan, manifest: bytes, org: Org | None) -> None:
    """destructiveChanges.xml: each component it names is deleted once the checks pass. One the
    org lacks is a warning ("No ApexClass named: X found"), which fails the deploy unless
    ignoreWarnings: so deleting twice is harmless for a deploy that ignores warnings."""
    try:
        named = list(_listed(manifest))
    except ET.ParseError as exc:
        plan.messages.append(Message("", DESTRUCTIVE, DESTRUCTIVE, f"Error parsing file: {exc}"))
        return
    package = org.settings.get("package", {}) if org is not None else {}
    deleting = set(named)
    for kind, name in named:
        message = Message(kind, name, DESTRUCTIVE, deleted=True)
        plan.messages.append(message)
        if kind not in FILES and kind != "CustomField":
            message.problem = f"Unknown type name '{kind}' specified in {DESTRUCTIVE}"
        elif not _present(kind, name, package, org):
            message.problem, message.warning = f"No {kind} named: {name} found", True
        else:
            message.problem = _in_use(kind, name, deleting, package, org)
            if message.problem is None:
                plan.deletions.append((kind, name))


def _present(kind: str, name: str, package: dict[str, Any], org: Org | None) -> bool:
    if kind == "CustomField":
        obj, _, field_name = name.partition(".")
        targets = [schema.find(t) for t in (("Task", "Event") if obj == ACTIVITY else (obj,))]
        return all(
            t is not None and (f := t.field(field_name)) is not None and f.custom for t in targets
        )
    if kind == "CustomObject":
        return schema.find(name) is not None and schema.is_custom_object(name)
    if kind == "PermissionSet":
        return org is not None and _permission_set_named(org, name) is not None
    return name in package.get(kind, {})


def _in_use(
    kind: str, name: str, deleting: set[tuple[str, str]], package: dict[str, Any], org: Org | None
) -> str | None:
    """Why Salesforce would refuse to delete a component still referenced, or None."""
    if kind == "PermissionSet" and org is not None:
        found = _permission_set_named(org, name)
        assigned = [
            a
            for a in org.records.live("PermissionSetAssignment")
            if found is not None and a["PermissionSetId"] == found["Id"]
        ]
        if assigned:
            return (
                f"This permission set is assigned to {len(assigned)} user(s); remove the "
                "assignments before deleting it"
            )
    if kind == "ApexClass" and name == rts.HANDLER:
        for trigger, record in package.get("ApexTrigger", {}).items():
            if record.get("handler") == rts.HANDLER and ("ApexTrigger", trigger) not in deleting:
                return (
                    "This ApexClass is referenced elsewhere in salesforce.com. Remove the usage "
                    f"and try again.: ApexTrigger - {trigger}"
                )
    return None


def installed(org: Org) -> dict[str, Any]:
    """What deploys recorded, by type (`GET /__sandbox/package`): Apex classes and triggers,
    permission sets, Remote Site Settings, and the custom fields deploys added."""
    fields = sorted(f"{e['object']}.{e['name']}" for e in org.settings.get("deployed_fields", []))
    return {**org.settings.get("package", {}), "CustomField": fields}
