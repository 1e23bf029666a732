"""The org's records in memory: DML with Salesforce's validation rules, external-id indexes, the
list of records a request changed (written to the state file when the request ends), and the DML
changes to watched objects that Real-Time Sync pushes once they are committed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from quotasync.sandbox import ids, schema
from quotasync.sandbox.errors import RecordError
from quotasync.sandbox.schema import Field, SObject

Record = dict[str, Any]

_CLOSED_STAGES = ("Closed Won", "Closed Lost")
# An event lasts at most 14 days, as in Salesforce.
MAX_EVENT_MINUTES = 14 * 24 * 60

CREATED, UPDATED, DELETED = "created", "updated", "deleted"


@dataclass(frozen=True)
class Change:
    """One record a DML operation changed: what an Apex trigger on its object would see."""

    operation: int  # which DML operation made it (see `RecordStore.next_operation`)
    sobject: str
    record_id: str
    kind: str  # CREATED, UPDATED or DELETED
    record: Record  # the record as the change left it (a copy)


class RecordStore:
    def __init__(self, id_factory: ids.IdFactory) -> None:
        self.ids = id_factory
        self.by_type: dict[str, dict[str, Record]] = {name: {} for name in schema.defined_names()}
        # (type, field) -> casefolded value -> ids; external ids match case-insensitively.
        self._external: dict[tuple[str, str], dict[str, list[str]]] = {}
        self._dirty: dict[str, str] = {}
        # While a savepoint is open: (sobject, id, the record before the change or None if new).
        self._journal: list[tuple[str, str, Record | None]] = []
        # Open savepoints, innermost last: the journal and change list lengths when it was opened.
        self._savepoints: list[tuple[int, int]] = []
        # Objects whose changes are kept for Real-Time Sync, the changes not yet drained, and the
        # DML operation they belong to: a request, a subrequest, a 200-record slice of a Bulk job.
        self.watched: frozenset[str] = frozenset()
        self._changes: list[Change] = []
        self.operation = 0
        for name in schema.defined_names():
            obj = schema.defined(name)
            assert obj is not None
            for f in obj.fields.values():
                if f.external_id:
                    self._external[(obj.name, f.name)] = {}

    # ---------------------------------------------------------------- reading

    def get(self, record_id: str) -> Record | None:
        obj = schema.object_for_id(record_id)
        if obj is None:
            return None
        return self.by_type[obj.name].get(
            ids.to18(record_id) if len(record_id) == 15 else record_id
        )

    def live(self, sobject: str) -> Iterator[Record]:
        return (r for r in self.by_type[sobject].values() if not r["IsDeleted"])

    def all(self, sobject: str) -> Iterator[Record]:
        return iter(self.by_type[sobject].values())

    def count(self, sobject: str) -> int:
        return sum(1 for _ in self.live(sobject))

    def drop_field(self, sobject: str, name: str) -> None:
        """A deleted custom field takes its values with it; added back, it starts empty."""
        if (sobject, name) in self._external:
            self._external[(sobject, name)] = {}  # kept, empty, for when it is added back
        for record in self.by_type[sobject].values():
            if record.pop(name, None) is not None:
                self._dirty[record["Id"]] = sobject

    def find_by_external_id(self, obj: SObject, f: Field, value: str) -> list[Record]:
        found = self._external.get((obj.name, f.name), {}).get(str(value).casefold(), [])
        records = (self.by_type[obj.name][rid] for rid in found)
        return [r for r in records if not r["IsDeleted"]]

    # ---------------------------------------------------------------- DML

    def insert(
        self, obj: SObject, values: Mapping[str, Any], user_id: str, now: datetime
    ) -> Record:
        if not obj.createable:
            raise RecordError(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY",
                f"entity type cannot be inserted: {obj.name}",
            )
        record: Record = {"OwnerId": user_id} if "OwnerId" in obj.fields else {}
        for f in obj.fields.values():
            if f.default is not None:
                record[f.name] = f.default
        self._assign(obj, record, values, creating=True)
        self._require(obj, record)
        self._derive(obj, record, now)
        if obj.name == "PermissionSetAssignment":
            self._check_unassigned(record)
        record_id = self.ids.new(obj.key_prefix)
        record.update(
            Id=record_id,
            IsDeleted=False,
            CreatedDate=now,
            CreatedById=user_id,
            LastModifiedDate=now,
            LastModifiedById=user_id,
            SystemModstamp=now,
        )
        if obj.custom and record.get("Name") is None:
            record["Name"] = record_id  # as Salesforce names a custom record created without one
        self.by_type[obj.name][record_id] = record
        self._index(obj, record)
        self._dirty[record_id] = obj.name
        self._remember(obj.name, record_id, None)
        self._note(obj.name, record, CREATED)
        return record

    def update(
        self,
        obj: SObject,
        record_id: str,
        values: Mapping[str, Any],
        user_id: str,
        now: datetime,
        *,
        from_upsert: bool = False,
    ) -> Record:
        record = self.existing(obj, record_id)
        if not obj.updateable:
            raise RecordError(
                "CANNOT_INSERT_UPDATE_ACTIVATE_ENTITY", f"entity type cannot be updated: {obj.name}"
            )
        draft = dict(record)
        if obj.name == "Event":
            _forget_stale_event_times(draft, values)
        self._assign(obj, draft, values, creating=False, from_upsert=from_upsert)
        self._require(obj, draft)
        self._derive(obj, draft, now)
        draft.update(LastModifiedDate=now, LastModifiedById=user_id, SystemModstamp=now)
        self._remember(obj.name, record["Id"], record)
        self._unindex(obj, record)
        record.clear()
        record.update(draft)
        self._index(obj, record)
        self._dirty[record["Id"]] = obj.name
        self._note(obj.name, record, UPDATED)
        return record

    def upsert(
        self,
        obj: SObject,
        f: Field,
        value: Any,
        values: Mapping[str, Any],
        user_id: str,
        now: datetime,
    ) -> tuple[Record, bool]:
        """Update the one record whose external id is `value`, or create it. Returns (record, created)."""
        if value is None or str(value) == "":
            raise RecordError("MISSING_ARGUMENT", f"{f.name} not specified", [f.name])
        matches = self.find_by_external_id(obj, f, value)
        if len(matches) > 1:
            found = ", ".join(r["Id"] for r in matches)
            raise RecordError(
                "DUPLICATE_EXTERNAL_ID",
                f"{f.name}: more than one record found for external id field: [{found}]",
                [f.name],
            )
        body = {k: v for k, v in values.items() if k.lower() != f.name.lower()}
        if matches:
            return self.update(obj, matches[0]["Id"], body, user_id, now, from_upsert=True), False
        body[f.name] = value
        return self.insert(obj, body, user_id, now), True

    def delete(self, obj: SObject, record_id: str, user_id: str, now: datetime) -> Record:
        record = self.existing(obj, record_id)
        if not obj.deletable:
            raise RecordError(
                "INVALID_TYPE_FOR_OPERATION", f"entity type cannot be deleted: {obj.name}"
            )
        self._remember(obj.name, record["Id"], record)
        record.update(
            IsDeleted=True, LastModifiedDate=now, LastModifiedById=user_id, SystemModstamp=now
        )
        self._dirty[record["Id"]] = obj.name
        self._note(obj.name, record, DELETED)
        return record

    def restore(self, record_id: str, sobject: str, data: Mapping[str, Any]) -> None:
        """Load a record from the state file."""
        obj = schema.defined(sobject)
        assert obj is not None, sobject
        record = {}
        for name, value in data.items():
            f = obj.fields.get(name)
            if f is not None:
                record[name] = schema.coerce(f, value) if value is not None else None
        self.by_type[sobject][record_id] = record
        self._index(obj, record)
        self.ids.resume(obj.key_prefix, self.ids.sequence_of(record_id))

    def put(self, sobject: str, record: Record) -> None:
        """Store a record as given, with no validation: for records the org makes itself."""
        self.by_type[sobject][record["Id"]] = record
        self._dirty[record["Id"]] = sobject

    def erase_all(self, sobject: str, now: datetime) -> None:
        """Mark every record of a deleted custom object deleted (no trigger fires: the object and
        its records go together)."""
        for record in self.by_type[sobject].values():
            if not record["IsDeleted"]:
                record.update(IsDeleted=True, SystemModstamp=now)
                self._dirty[record["Id"]] = sobject

    def replace_creator(self, placeholder: str, user_id: str) -> None:
        """Point records made before the first user existed at that user."""
        for record_id, sobject in self._dirty.items():
            record = self.by_type[sobject][record_id]
            for key in ("CreatedById", "LastModifiedById", "OwnerId"):
                if record.get(key) == placeholder:
                    record[key] = user_id

    def begin(self) -> None:
        """Open a savepoint: changes from here on can be undone with `rollback` (allOrNone).

        Savepoints nest: `release` and `rollback` close the innermost one, and a release keeps its
        changes in the journal, so an enclosing savepoint can still undo them.
        """
        self._savepoints.append((len(self._journal), len(self._changes)))

    @property
    def in_savepoint(self) -> bool:
        return bool(self._savepoints)

    def release(self) -> None:
        self._savepoints.pop()
        if not self._savepoints:
            self._journal.clear()

    def rollback(self) -> None:
        mark, changes_mark = self._savepoints.pop()
        undone = self._journal[mark:]
        del self._journal[mark:]
        del self._changes[changes_mark:]  # a rolled-back change never fires a trigger
        for sobject, record_id, before in reversed(undone):
            obj = schema.OBJECTS[sobject]
            current = self.by_type[sobject].get(record_id)
            if current is not None:
                self._unindex(obj, current)
            if before is None:
                self.by_type[sobject].pop(record_id, None)
                self._dirty.pop(record_id, None)
            else:
                self.by_type[sobject][record_id] = before
                self._index(obj, before)

    def rollback_all(self) -> None:
        """Undo every open savepoint: what a request that failed unexpectedly leaves behind."""
        while self._savepoints:
            self.rollback()

    def _remember(self, sobject: str, record_id: str, before: Record | None) -> None:
        if self._savepoints:
            self._journal.append((sobject, record_id, None if before is None else dict(before)))

    def next_operation(self) -> None:
        """Start a new DML operation: changes from here on are a separate trigger invocation."""
        self.operation += 1

    def _note(self, sobject: str, record: Record, kind: str) -> None:
        if sobject in self.watched:
            self._changes.append(Change(self.operation, sobject, record["Id"], kind, dict(record)))

    def drain_changes(self) -> list[Change]:
        """Changes to watched objects since the last drain, oldest first; none while a savepoint
        is open, since those may still be rolled back."""
        if self._savepoints:
            return []
        out, self._changes = self._changes, []
        return out

    def drain_dirty(self) -> list[tuple[str, str, Record]]:
        """Records changed since the last drain, typed values and all (the state file encodes them)."""
        out = [(rid, sobject, self.by_type[sobject][rid]) for rid, sobject in self._dirty.items()]
        self._dirty.clear()
        return out

    # ---------------------------------------------------------------- validation

    def existing(self, obj: SObject, record_id: str) -> Record:
        """The live record `record_id` of type `obj`, or MALFORMED_ID / NOT_FOUND / ENTITY_IS_DELETED."""
        if not ids.is_valid(record_id) or record_id[:3] != obj.key_prefix:
            raise RecordError(
                "MALFORMED_ID", f"{obj.name} ID: id value of incorrect type: {record_id}", ["Id"]
            )
        record = self.by_type[obj.name].get(ids.to18(record_id))
        if record is None or record["IsDeleted"]:
            raise RecordError(
                "ENTITY_IS_DELETED" if record else "NOT_FOUND",
                "entity is deleted"
                if record
                else "Provided external ID field does not exist or is not accessible: " + record_id,
            )
        return record

    def _assign(
        self,
        obj: SObject,
        record: Record,
        values: Mapping[str, Any],
        *,
        creating: bool,
        from_upsert: bool = False,
    ) -> None:
        for key, value in values.items():
            if key == "attributes":
                continue
            f = obj.field(key)
            if f is None:
                raise RecordError(
                    "INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}", [key]
                )
            if f.name == "Id" and not creating:
                continue  # collections update and PATCH bodies may repeat the id
            allowed = f.createable if creating else f.updateable
            if not allowed:
                if from_upsert and f.createable and _same(f, record.get(f.name), value):
                    continue  # upsert that re-sends a create-only field unchanged
                raise RecordError(
                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                    f"Unable to create/update fields: {f.name}. Please check the security settings "
                    "of this field and verify that it is read/write for your profile or permission "
                    "set.",
                    [f.name],
                )
            try:
                typed = schema.coerce(f, value)
            except schema.ValueProblem as problem:
                raise RecordError(problem.code, problem.message, [f.name]) from None
            if typed is None and not f.nillable:
                if f.default is not None:
                    typed = f.default
                else:
                    raise RecordError(
                        "REQUIRED_FIELD_MISSING",
                        f"Required fields are missing: [{f.name}]",
                        [f.name],
                    )
            if f.type == schema.REFERENCE and typed is not None:
                typed = self._check_reference(f, typed)
            record[f.name] = typed

    def _check_unassigned(self, record: Record) -> None:
        """A user holds a permission set once: Salesforce refuses a second assignment."""
        for other in self.live("PermissionSetAssignment"):
            if (other["AssigneeId"], other["PermissionSetId"]) == (
                record["AssigneeId"],
                record["PermissionSetId"],
            ):
                raise RecordError(
                    "DUPLICATE_VALUE",
                    f"Duplicate PermissionSetAssignment. Assignee: {record['AssigneeId']}, "
                    f"PermissionSet: {record['PermissionSetId']}",
                )

    def _check_reference(self, f: Field, value: str) -> str:
        if not ids.is_valid(value):
            raise RecordError(
                "MALFORMED_ID", f"{f.name}: id value of incorrect type: {value}", [f.name]
            )
        target = schema.object_for_id(value)
        if target is None or target.name not in f.reference_to:
            raise RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                f"{f.name}: id value of incorrect type: {value}",
                [f.name],
            )
        full = ids.to18(value)
        record = self.by_type[target.name].get(full)
        if record is None:
            raise RecordError(
                "INVALID_CROSS_REFERENCE_KEY", f"invalid cross reference id: {value}", [f.name]
            )
        if record["IsDeleted"]:
            raise RecordError("ENTITY_IS_DELETED", f"entity is deleted: {value}", [f.name])
        if target.name == "User" and not record.get("IsActive", True):
            raise RecordError(
                "INACTIVE_OWNER_OR_USER", "operation performed with inactive user", [f.name]
            )
        return full

    def _require(self, obj: SObject, record: Record) -> None:
        missing = [f.name for f in obj.fields.values() if f.required and record.get(f.name) is None]
        if missing:
            raise RecordError(
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        if obj.name == "Event":
            _check_event(record)

    def _derive(self, obj: SObject, record: Record, now: datetime) -> None:
        if "FirstName" in obj.fields and "Name" in obj.fields:
            record["Name"] = " ".join(
                p for p in (record.get("FirstName"), record.get("LastName")) if p
            )
        if obj.name == "Task":
            closed = record.get("Status") == "Completed"
            if closed and not record.get("IsClosed"):
                record["CompletedDateTime"] = now
            record["IsClosed"] = closed
        elif obj.name == "Opportunity":
            stage = record.get("StageName")
            record["IsClosed"] = stage in _CLOSED_STAGES
            record["IsWon"] = stage == "Closed Won"
        elif obj.name == "Event":
            _derive_event(record)

    def _index(self, obj: SObject, record: Record) -> None:
        for (sobject, name), index in self._external.items():
            if sobject == obj.name and record.get(name) is not None:
                index.setdefault(str(record[name]).casefold(), []).append(record["Id"])

    def _unindex(self, obj: SObject, record: Record) -> None:
        for (sobject, name), index in self._external.items():
            if sobject == obj.name and record.get(name) is not None:
                key = str(record[name]).casefold()
                found = index.get(key, [])
                if record["Id"] in found:
                    found.remove(record["Id"])
                if not found:
                    index.pop(key, None)


def _same(f: Field, current: Any, incoming: Any) -> bool:
    try:
        return bool(schema.coerce(f, incoming) == current)
    except schema.ValueProblem:
        return False


def _check_event(record: Record) -> None:
    if record.get("IsAllDayEvent"):
        return
    start = record.get("StartDateTime") or record.get("ActivityDateTime")
    if start is None:
        raise RecordError(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [StartDateTime]",
            ["StartDateTime"],
        )
    end, minutes = record.get("EndDateTime"), record.get("DurationInMinutes")
    if end is None and minutes is None:
        raise RecordError(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [DurationInMinutes]",
            ["DurationInMinutes"],
        )
    if end is not None and end < start:
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION",
            "End Date Time: End time can't be before start time",
            ["EndDateTime"],
        )
    if minutes is not None and end is None:
        _event_end(start, minutes)
    if end is not None and minutes is not None and _event_end(start, minutes) != end:
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION",
            "Duration and end date time don't agree",
            ["DurationInMinutes", "EndDateTime"],
        )


def _event_end(start: datetime, minutes: int) -> datetime:
    """Start plus duration; a duration Salesforce would refuse, or an end past year 9999, is refused."""
    if not 0 <= minutes <= MAX_EVENT_MINUTES:
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION",
            f"Duration in minutes: value outside of valid range (0 to {MAX_EVENT_MINUTES}): {minutes}",
            ["DurationInMinutes"],
        )
    try:
        return start + timedelta(minutes=minutes)
    except OverflowError:
        raise RecordError(
            "FIELD_INTEGRITY_EXCEPTION",
            "End Date Time: the event would end after the latest date allowed",
            ["DurationInMinutes"],
        ) from None


def _forget_stale_event_times(draft: Record, values: Mapping[str, Any]) -> None:
    """Drop the derived time fields an update did not restate, so they are derived anew."""
    given = {key.lower() for key in values}
    if "activitydatetime" in given and "startdatetime" not in given:
        draft.pop("StartDateTime", None)
    if "enddatetime" in given and "durationinminutes" not in given:
        draft.pop("DurationInMinutes", None)
    elif "enddatetime" not in given:
        draft.pop("EndDateTime", None)


def _derive_event(record: Record) -> None:
    start: datetime | None = record.get("StartDateTime") or record.get("ActivityDateTime")
    if start is None:
        return
    record["StartDateTime"] = record["ActivityDateTime"] = start
    if record.get("EndDateTime") is None and record.get("DurationInMinutes") is not None:
        record["EndDateTime"] = _event_end(start, record["DurationInMinutes"])
    if record.get("EndDateTime") is not None:
        minutes = (record["EndDateTime"] - start).total_seconds() // 60
        record["DurationInMinutes"] = int(minutes)
    record["ActivityDate"] = start.astimezone(UTC).date()


def to_json(obj: SObject, record: Record) -> dict[str, Any]:
    return {name: schema.to_json(obj.fields[name], value) for name, value in record.items()}
