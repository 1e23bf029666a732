"""SOQL against the org's records: field resolution against the schema, projection into
Salesforce's JSON and CSV shapes, and query cursors for `nextRecordsUrl` paging."""

from __future__ import annotations

import csv
import io
import secrets
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from quotasync.sandbox import schema, soql
from quotasync.sandbox.errors import ApiError
from quotasync.sandbox.records import Record, RecordStore
from quotasync.sandbox.schema import Field, SObject

MAX_PAGE = 2000
_MAX_CURSORS = 2000

Getter = Callable[[Record], Any]


@dataclass(frozen=True)
class Column:
    """One selected field path, resolved: the lookups to follow, then the field to read."""

    path: tuple[str, ...]  # canonical names, e.g. ("Account", "Name")
    lookups: tuple[Field, ...]
    field: Field | None  # None: the polymorphic `Type` pseudo-field
    read: Getter


@dataclass
class Cursor:
    sobject: SObject
    columns: tuple[Column, ...]
    rows: list[Record]
    page_size: int


@dataclass(frozen=True)
class Plan:
    query: soql.Query
    sobject: SObject
    columns: tuple[Column, ...]
    getter: Callable[[Record, tuple[str, ...]], Any]


class Resolver:
    """Turns SOQL field paths into readers over the record store, or INVALID_FIELD."""

    def __init__(self, store: RecordStore) -> None:
        self.store = store

    def plan(self, text: str) -> Plan:
        try:
            query = soql.parse(text)
        except soql.SoqlError as exc:
            raise ApiError(400, exc.code, exc.message) from None
        obj = schema.find(query.sobject)
        if obj is None:
            raise ApiError(400, "INVALID_TYPE", _invalid_type(text, query.sobject))
        columns = tuple(self.column(obj, path) for path in query.fields)
        # The evaluator asks for values by the paths as written in the query.
        readers = dict(zip(query.fields, (c.read for c in columns), strict=True))
        for path in (*query.where_paths(), *query.order_paths()):
            if path not in readers:
                readers[path] = self.column(obj, path).read
        return Plan(query, obj, columns, lambda row, path: readers[path](row))

    def column(self, obj: SObject, path: tuple[str, ...]) -> Column:
        lookups: list[Field] = []
        targets: tuple[SObject, ...] = (obj,)
        names: list[str] = []
        for step in path[:-1]:
            relation = _relationship(targets, step)
            if relation is None:
                raise ApiError(
                    400,
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{step}' in field path. If you are attempting to use a custom relationship, be sure to append the '__r' after the custom relationship name. Please reference your WSDL or the describe call for the appropriate names.",
                )
            lookups.append(relation)
            names.append(relation.relationship or relation.name)
            targets = tuple(schema.OBJECTS[t] for t in relation.reference_to)
        last = path[-1]
        if len(targets) > 1 and last.lower() == "type":
            names.append("Type")
            return Column(tuple(names), tuple(lookups), None, self._reader(tuple(lookups), None))
        f = _field(targets, last)
        if f is None:
            entity = targets[0].name if len(targets) == 1 else "Name"
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"No such column '{last}' on entity '{entity}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            )
        names.append(f.name)
        return Column(tuple(names), tuple(lookups), f, self._reader(tuple(lookups), f))

    def _reader(self, lookups: tuple[Field, ...], f: Field | None) -> Getter:
        get = self.store.get
        if not lookups and f is not None:
            name = f.name
            return lambda row: row.get(name)

        def read(row: Record) -> Any:
            current: Record | None = row
            for lookup in lookups:
                target = current.get(lookup.name) if current else None
                current = get(target) if target else None
            if current is None:
                return None
            if f is None:
                found = schema.object_for_id(current["Id"])
                return found.name if found else None
            return current.get(f.name)

        return read


class QueryService:
    def __init__(self, store: RecordStore) -> None:
        self.store = store
        self.resolver = Resolver(store)
        self.cursors: OrderedDict[str, Cursor] = OrderedDict()

    def query(
        self, text: str, *, include_deleted: bool, page_size: int, version: str, now: Any
    ) -> dict[str, Any]:
        plan = self.resolver.plan(text)
        rows = self.select(plan, include_deleted=include_deleted, now=now)
        if plan.query.count_only:
            return {"totalSize": len(rows), "done": True, "records": []}
        cursor = Cursor(plan.sobject, plan.columns, rows, page_size)
        return self._page(cursor, "01g" + secrets.token_hex(6).upper(), 0, version)

    def more(self, locator: str, version: str) -> dict[str, Any]:
        """The page a `nextRecordsUrl` names. Asking twice for one page gives the same page: a
        client that lost an answer on the way may retry it."""
        key, _, offset = locator.partition("-")
        cursor = self.cursors.get(key)
        if cursor is None or not offset.isdigit() or int(offset) >= len(cursor.rows):
            raise ApiError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(cursor, key, int(offset), version)

    def select(self, plan: Plan, *, include_deleted: bool, now: Any) -> list[Record]:
        """The rows a planned query answers with, filtered, sorted and cut, not yet projected."""
        name = plan.sobject.name
        rows = self.store.all(name) if include_deleted else self.store.live(name)
        try:
            return soql.run(plan.query, rows, plan.getter, now)
        except OverflowError:
            # A date the query reaches for lies beyond the calendar's ends.
            raise ApiError(400, "MALFORMED_QUERY", "date value out of range") from None

    def csv(
        self, plan: Plan, *, include_deleted: bool, now: Any
    ) -> tuple[list[str], list[list[str]]]:
        """A Bulk API 2.0 query's result: header and rows as CSV cells."""
        if plan.query.count_only:
            raise ApiError(
                400, "INVALIDJOB", "Aggregate queries are not supported by Bulk API 2.0 query jobs"
            )
        rows = self.select(plan, include_deleted=include_deleted, now=now)
        header = [".".join(c.path) for c in plan.columns]
        cells = [[_csv_cell(c, c.read(row)) for c in plan.columns] for row in rows]
        return header, cells

    def _page(self, cursor: Cursor, key: str, start: int, version: str) -> dict[str, Any]:
        end = min(start + cursor.page_size, len(cursor.rows))
        base = f"/services/data/v{version}"
        records = [
            project(cursor.sobject, cursor.columns, row, base, self.store.get)
            for row in cursor.rows[start:end]
        ]
        page: dict[str, Any] = {"totalSize": len(cursor.rows), "done": end >= len(cursor.rows)}
        if start or end < len(cursor.rows):
            # A cursor stays until newer ones push it out, even after its last page is served,
            # so any of its pages can be fetched again.
            self.cursors[key] = cursor
            self.cursors.move_to_end(key)
            while len(self.cursors) > _MAX_CURSORS:
                self.cursors.popitem(last=False)
        if end < len(cursor.rows):
            page["nextRecordsUrl"] = f"{base}/query/{key}-{end}"
        page["records"] = records
        return page


def project(
    obj: SObject,
    columns: Iterable[Column],
    row: Record,
    base: str,
    get: Callable[[str], Record | None],
) -> dict[str, Any]:
    """A record as the REST API shows it, with nested parent records for relationship paths."""
    out: dict[str, Any] = {"attributes": attributes(obj.name, row.get("Id"), base)}
    for column in columns:
        _place(out, column, row, base, get)
    return out


def attributes(sobject: str, record_id: Any, base: str) -> dict[str, str]:
    return {"type": sobject, "url": f"{base}/sobjects/{sobject}/{record_id}"}


def _place(
    out: dict[str, Any], column: Column, row: Record, base: str, get: Callable[[str], Record | None]
) -> None:
    if not column.lookups:
        assert column.field is not None
        out[column.field.name] = schema.to_json(column.field, row.get(column.field.name))
        return
    holder, current = out, row
    for depth, lookup in enumerate(column.lookups):
        name = column.path[depth]
        target_id = current.get(lookup.name)
        record = get(target_id) if target_id else None
        if record is None:
            holder.setdefault(name, None)
            return
        parent = holder.get(name)
        if not isinstance(parent, dict):
            found = schema.object_for_id(record["Id"])
            concrete = found.name if found else "Name"
            parent = {"attributes": attributes(concrete, record["Id"], base)}
            if len(lookup.reference_to) > 1:
                # A polymorphic parent (Who, What) is typed "Name"; its URL names the real object.
                parent["attributes"]["type"] = "Name"
            holder[name] = parent
        holder, current = parent, record
    if column.field is None:
        holder[column.path[-1]] = column.read(row)
    else:
        holder[column.field.name] = schema.to_json(column.field, current.get(column.field.name))


def _csv_cell(column: Column, value: Any) -> str:
    if column.field is None:
        return "" if value is None else str(value)
    return schema.to_csv(column.field, value)


def _relationship(targets: tuple[SObject, ...], name: str) -> Field | None:
    for obj in targets:
        found = obj.relationships.get(name.lower())
        if found is not None:
            return found
    return None


def _field(targets: tuple[SObject, ...], name: str) -> Field | None:
    for obj in targets:
        found = obj.field(name)
        if found is not None:
            return found
    return None


def _invalid_type(text: str, sobject: str) -> str:
    return (
        f"\n{text}\n{' ' * max(0, text.find(sobject))}^\nERROR at Row:1:Column:{text.find(sobject) + 1}\n"
        f"sObject type '{sobject}' is not supported. If you are attempting to use a custom object, "
        "be sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names."
    )


def write_csv(
    header: list[str], rows: Iterable[list[str]], line_ending: str = "LF", delimiter: str = ","
) -> str:
    buffer = io.StringIO()
    writer = csv.writer(
        buffer,
        delimiter=delimiter,
        lineterminator="\r\n" if line_ending == "CRLF" else "\n",
        quoting=csv.QUOTE_ALL,
    )
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()
