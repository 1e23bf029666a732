"""The REST API under /services/data/vNN.N/: a small route table and one handler per resource.

Handlers are plain functions of a `Call`, so `/composite` can run its subrequests through the same
table without going back over HTTP.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson

from quotasync.sandbox import editions, ids, schema
from quotasync.sandbox.errors import (
    ApiError,
    RecordError,
    exceeded_id_limit,
    json_parser_error,
    not_found,
    retired_version,
    unable_to_lock_row,
)
from quotasync.sandbox.org import API_VERSIONS, RETIRED_API_VERSIONS, Caller, Org
from quotasync.sandbox.querying import MAX_PAGE, attributes
from quotasync.sandbox.records import Record
from quotasync.sandbox.schema import SObject

MAX_COLLECTION = 200
MAX_RETRIEVE = 2000
MAX_COMPOSITE = 25
# Of a Composite's subrequests, at most this many may be sObject Collections or query operations
# (Query, QueryAll, and the query-more of a `nextRecordsUrl`).
MAX_COLLECTIONS_OR_QUERIES = 5


@dataclass
class Call:
    org: Org
    caller: Caller
    method: str
    path: str  # below /services/data/vNN.N/, without a leading slash
    params: Mapping[str, str]
    body: bytes
    version: str
    # The org time the request is served at: every record it writes carries this one timestamp,
    # as in Salesforce, where a transaction has one "now".
    now: datetime
    headers: Mapping[str, str] = field(default_factory=dict)
    # Inside a Composite request with allOrNone: its subrequests are all-or-none too, whatever
    # they ask for themselves.
    all_or_none: bool = False

    @property
    def base(self) -> str:
        return f"/services/data/v{self.version}"

    def json(self) -> Any:
        if not self.body.strip():
            raise json_parser_error("The request body is empty")
        try:
            return orjson.loads(self.body)
        except (orjson.JSONDecodeError, UnicodeDecodeError) as exc:
            raise json_parser_error(f"Unexpected character: {exc}") from None


@dataclass
class Reply:
    status: int
    body: Any = None  # JSON-able; `text` wins when set
    text: str | None = None
    media_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call, re.Match[str]], Reply]
_ROUTES: list[tuple[frozenset[str], re.Pattern[str], Handler]] = []


def route(methods: str, pattern: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ROUTES.append((frozenset(methods.split()), re.compile(pattern + r"/?\Z"), handler))
        return handler

    return register


def dispatch(call: Call) -> Reply:
    # Each request, and each Composite subrequest, is one DML operation: its changes fire their
    # own trigger invocation (and so their own Real-Time Sync pushes).
    call.org.records.next_operation()
    allowed: set[str] = set()
    for methods, pattern, handler in _ROUTES:
        match = pattern.match(call.path)
        if match:
            if call.method in methods:
                return handler(call, match)
            allowed |= methods
    if allowed:
        raise ApiError(
            405,
            "METHOD_NOT_ALLOWED",
            f"HTTP Method '{call.method}' not allowed. Allowed are {','.join(sorted(allowed))}",
        )
    raise not_found()


# ---------------------------------------------------------------- helpers


def sobject(name: str) -> SObject:
    obj = schema.find(name)
    if obj is None:
        raise not_found("The requested resource does not exist")
    return obj


def record_json(
    obj: SObject, record: Record, base: str, fields: list[str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": attributes(obj.name, record["Id"], base)}
    names = fields or list(obj.fields)
    for name in names:
        f = obj.field(name)
        if f is None:
            raise ApiError(
                400,
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{obj.name}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names.",
            )
        out[f.name] = schema.to_json(f, record.get(f.name))
    return out


def _field_list(call: Call) -> list[str] | None:
    raw = call.params.get("fields")
    return [f.strip() for f in raw.split(",") if f.strip()] if raw else None


def _lock_fault(call: Call, record_id: str | None = None) -> None:
    if call.org.faults.lock_hit():
        raise unable_to_lock_row(record_id)


def _success(record: Record, created: bool | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"id": record["Id"], "success": True, "errors": []}
    if created is not None:
        out["created"] = created
    return out


def _failure(error: RecordError, record_id: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"success": False, "errors": [error.as_result()]}
    if record_id is not None:
        out["id"] = record_id
    return out


def _values(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise json_parser_error("Cannot deserialize instance of SObject from a non-object value")
    return body


# ---------------------------------------------------------------- resources, limits


@route("GET", r"")
def resources(call: Call, _: re.Match[str]) -> Reply:
    names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs/ingest", "jobs/query")
    return Reply(200, {n.split("/")[-1] if "/" not in n else n: f"{call.base}/{n}" for n in names})


@route("GET", r"limits")
def limits(call: Call, _: re.Match[str]) -> Reply:
    org = call.org
    org.check_view_setup(call.caller)  # the gate checked already, but not for a subrequest
    now = org.timestamp()
    body: dict[str, Any] = {}
    for api, maximum in org.allocations().items():
        entry: dict[str, Any] = {"Max": maximum, "Remaining": maximum - org.usage.used(api, now)}
        if api in (editions.DAILY_API_REQUESTS, editions.DAILY_BULK_API_BATCHES):
            # Apps appear by name; with no per-app cap, Salesforce reports 0/0 for them.
            for app in sorted(
                {a.name for a in org.auth.apps.values()} | set(org.usage.by_app(api, now))
            ):
                entry[app] = {"Max": 0, "Remaining": 0}
        body[api] = entry
    for name, maximum in editions.STATIC_LIMITS.items():
        body[name] = {"Max": maximum, "Remaining": maximum}
    return Reply(200, dict(sorted(body.items())))


# ---------------------------------------------------------------- query


def _page_size(call: Call) -> int:
    options = call.headers.get("sforce-query-options", "")
    match = re.search(r"batchSize\s*=\s*(\d+)", options)
    if not match:
        return MAX_PAGE
    return max(200, min(MAX_PAGE, int(match.group(1))))


@route("GET", r"(?P<kind>query|queryAll)")
def query(call: Call, match: re.Match[str]) -> Reply:
    text = call.params.get("q")
    if not text:
        raise ApiError(400, "MALFORMED_QUERY", "A query string must be provided.")
    page = call.org.queries.query(
        text,
        include_deleted=match["kind"] == "queryAll",
        page_size=_page_size(call),
        version=call.version,
        now=call.now,
    )
    return Reply(200, page)


@route("GET", r"(?:query|queryAll)/(?P<locator>01g[A-Za-z0-9]+-\d+)")
def query_more(call: Call, match: re.Match[str]) -> Reply:
    return Reply(200, call.org.queries.more(match["locator"], call.version))


# ---------------------------------------------------------------- sObject REST


@route("GET", r"sobjects")
def describe_global(call: Call, _: re.Match[str]) -> Reply:
    entries = [schema.describe_global_entry(o, call.base) for o in schema.OBJECTS.values()]
    return Reply(200, {"encoding": "UTF-8", "maxBatchSize": MAX_COLLECTION, "sobjects": entries})


@route("GET POST", r"sobjects/(?P<type>\w+)")
def sobject_root(call: Call, match: re.Match[str]) -> Reply:
    obj = sobject(match["type"])
    if call.method == "GET":
        return Reply(
            200, {"objectDescribe": schema.describe_global_entry(obj, call.base), "recentItems": []}
        )
    values = _values(call.json())
    if any(k.lower() == "id" for k in values):
        raise ApiError(400, "INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
    try:
        _lock_fault(call)
        record = call.org.records.insert(obj, values, call.caller.user_id, call.now)
    except RecordError as error:
        raise error.as_api_error() from None
    return Reply(201, _success(record))


@route("GET", r"sobjects/(?P<type>\w+)/describe")
def describe(call: Call, match: re.Match[str]) -> Reply:
    return Reply(200, schema.describe(sobject(match["type"]), call.base))


@route("GET", r"sobjects/(?P<type>\w+)/(?P<kind>deleted|updated)")
def replication(call: Call, match: re.Match[str]) -> Reply:
    obj = sobject(match["type"])
    try:
        start = schema.parse_datetime(call.params["start"])
        end = schema.parse_datetime(call.params["end"])
    except (KeyError, ValueError):
        raise ApiError(
            400, "INVALID_REPLICATION_DATE", "start and end must be valid ISO-8601 date/times"
        ) from None
    now = call.now
    if end < start:
        raise ApiError(400, "INVALID_REPLICATION_DATE", "end date cannot be before start date")
    if start < now - timedelta(days=30):
        raise ApiError(400, "INVALID_REPLICATION_DATE", "startDate cannot be more than 30 days ago")
    end = min(end, now)
    rows = [r for r in call.org.records.all(obj.name) if start <= r["SystemModstamp"] <= end]
    covered = schema.format_datetime(end.replace(second=0, microsecond=0))
    if match["kind"] == "deleted":
        gone = [
            {"id": r["Id"], "deletedDate": schema.format_datetime(r["SystemModstamp"])}
            for r in rows
            if r["IsDeleted"]
        ]
        earliest = schema.format_datetime(now - timedelta(days=15))
        return Reply(
            200,
            {
                "deletedRecords": gone,
                "earliestDateAvailable": earliest,
                "latestDateCovered": covered,
            },
        )
    return Reply(
        200, {"ids": [r["Id"] for r in rows if not r["IsDeleted"]], "latestDateCovered": covered}
    )


@route("GET PATCH DELETE", r"sobjects/(?P<type>\w+)/(?P<id>[A-Za-z0-9]{15}|[A-Za-z0-9]{18})")
def sobject_row(call: Call, match: re.Match[str]) -> Reply:
    obj = sobject(match["type"])
    record_id = match["id"]
    org, user = call.org, call.caller.user_id
    try:
        if call.method == "GET":
            record = org.records.existing(obj, record_id)
            return Reply(200, record_json(obj, record, call.base, _field_list(call)))
        _lock_fault(call, record_id)
        if call.method == "PATCH":
            org.records.update(obj, record_id, _values(call.json()), user, call.now)
        else:
            org.records.delete(obj, record_id, user, call.now)
        return Reply(204)
    except RecordError as error:
        if error.code == "ENTITY_IS_DELETED" and call.method != "GET":
            raise ApiError(404, "ENTITY_IS_DELETED", "entity is deleted", []) from None
        if error.code in ("MALFORMED_ID", "NOT_FOUND", "ENTITY_IS_DELETED"):
            raise not_found() from None
        raise error.as_api_error() from None


@route("GET PATCH DELETE", r"sobjects/(?P<type>\w+)/(?P<field>\w+)/(?P<value>[^/]+)")
def sobject_by_external_id(call: Call, match: re.Match[str]) -> Reply:
    obj = sobject(match["type"])
    f = obj.field(match["field"])
    # The server has decoded the path once already; a `%` left in it belongs to the value.
    value = match["value"]
    if f is None or not (f.external_id or f.name == "Id"):
        raise ApiError(
            404,
            "NOT_FOUND",
            f"Provided external ID field does not exist or is not accessible: {match['field']}",
        )
    org, user = call.org, call.caller.user_id
    found = (
        org.records.find_by_external_id(obj, f, value)
        if f.external_id
        else _by_id(call, obj, value)
    )
    if call.method == "PATCH":
        try:
            _lock_fault(call)
            if f.name == "Id":
                # Upsert by Id can only update: there is no record to create under a given Id.
                if not found:
                    raise not_found()
                values = _values(call.json())
                record = org.records.update(obj, found[0]["Id"], values, user, call.now)
                return Reply(200, _success(record, False))
            record, created = org.records.upsert(
                obj, f, value, _values(call.json()), user, call.now
            )
        except RecordError as error:
            if error.code == "DUPLICATE_EXTERNAL_ID":
                return _multiple_choices(call, obj, found)
            raise error.as_api_error() from None
        return Reply(201 if created else 200, _success(record, created))
    if not found:
        raise not_found()
    if len(found) > 1:
        return _multiple_choices(call, obj, found)
    if call.method == "GET":
        return Reply(200, record_json(obj, found[0], call.base, _field_list(call)))
    try:
        org.records.delete(obj, found[0]["Id"], user, call.now)
    except RecordError as error:
        raise error.as_api_error() from None
    return Reply(204)


def _by_id(call: Call, obj: SObject, record_id: str) -> list[Record]:
    """`sobjects/{Type}/Id/{id}`: Id is an idLookup field, so it finds a record like an external id."""
    try:
        return [call.org.records.existing(obj, record_id)]
    except RecordError:
        return []


def _multiple_choices(call: Call, obj: SObject, found: list[Record]) -> Reply:
    """300: more than one record has the external id; the body lists where each one is."""
    return Reply(300, [f"{call.base}/sobjects/{obj.name}/{r['Id']}" for r in found])


# ---------------------------------------------------------------- sObject Collections


def _collection(body: Any, key: str = "records") -> tuple[list[Any], bool]:
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        raise json_parser_error(f"Cannot deserialize the request: '{key}' must be a list")
    items = body[key]
    if len(items) > MAX_COLLECTION:
        raise exceeded_id_limit(MAX_COLLECTION)
    return items, bool(body.get("allOrNone", False))


def _apply_all(
    call: Call,
    items: list[Any],
    all_or_none: bool,
    op: Callable[[Any], dict[str, Any]],
    *,
    creating: bool = False,
) -> Reply:
    """Run `op` per item; with allOrNone (asked for here or by an enclosing Composite), one failure
    rolls every record back."""
    all_or_none = all_or_none or call.all_or_none
    store = call.org.records
    if all_or_none:
        store.begin()
    results = []
    try:
        for item in items:
            try:
                results.append(op(item))
            except RecordError as error:
                results.append(_failure(error))
    except BaseException:
        if all_or_none:
            store.rollback()
        raise
    if not all_or_none:
        return Reply(200, results)
    if all(r["success"] for r in results):
        store.release()
        return Reply(200, results)
    store.rollback()
    rolled = RecordError(
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "Record rolled back because not all records were valid and the request was using AllOrNone header",
    )
    # A record the rollback un-created has no id to report; one that existed before keeps it.
    return Reply(
        200,
        [
            r
            if not r["success"]
            else _failure(rolled, None if creating or r.get("created") else r["id"])
            for r in results
        ],
    )


def _typed(item: Any) -> tuple[SObject, dict[str, Any]]:
    if not isinstance(item, dict):
        raise RecordError("JSON_PARSER_ERROR", "each record must be a JSON object")
    kind = (
        item.get("attributes", {}).get("type") if isinstance(item.get("attributes"), dict) else None
    )
    obj = schema.find(kind) if isinstance(kind, str) else None
    if obj is None:
        raise RecordError(
            "INVALID_TYPE",
            f"sObject type '{kind}' is not supported." if kind else "attributes.type is required",
        )
    return obj, item


@route("POST PATCH DELETE", r"composite/sobjects")
def collections(call: Call, _: re.Match[str]) -> Reply:
    org, user = call.org, call.caller.user_id
    if call.method == "DELETE":
        raw = call.params.get("ids", "")
        record_ids = [i for i in raw.split(",") if i]
        if not record_ids:
            raise ApiError(400, "MISSING_ARGUMENT", "ids parameter is required")
        if len(record_ids) > MAX_COLLECTION:
            raise exceeded_id_limit(MAX_COLLECTION)
        all_or_none = call.params.get("allOrNone", "false").lower() == "true"

        def remove(record_id: Any) -> Any:
            obj = schema.object_for_id(record_id)
            if obj is None or not ids.is_valid(record_id):
                raise RecordError("MALFORMED_ID", f"malformed id {record_id}")
            _lock_fault(call, record_id)
            return _success(org.records.delete(obj, record_id, user, call.now))

        return _apply_all(call, record_ids, all_or_none, remove)
    items, all_or_none = _collection(call.json())

    def create(item: Any) -> Any:
        obj, values = _typed(item)
        if any(k.lower() == "id" for k in values):
            raise RecordError("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
        _lock_fault(call)
        return _success(org.records.insert(obj, values, user, call.now))

    def update(item: Any) -> Any:
        obj, values = _typed(item)
        record_id = next((v for k, v in values.items() if k.lower() == "id"), None)
        if not record_id:
            raise RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
        _lock_fault(call, record_id)
        return _success(org.records.update(obj, str(record_id), values, user, call.now))

    if call.method == "POST":
        return _apply_all(call, items, all_or_none, create, creating=True)
    return _apply_all(call, items, all_or_none, update)


@route("GET POST", r"composite/sobjects/(?P<type>\w+)")
def collections_retrieve(call: Call, match: re.Match[str]) -> Reply:
    obj = sobject(match["type"])
    if call.method == "GET":
        record_ids = [i for i in call.params.get("ids", "").split(",") if i]
        fields = _field_list(call)
    else:
        body = call.json()
        if not isinstance(body, dict):
            raise json_parser_error("Cannot deserialize the request: expected a JSON object")
        record_ids = _strings(body, "ids")
        fields = _strings(body, "fields")
    if not record_ids or not fields:
        raise ApiError(400, "MISSING_ARGUMENT", "ids and fields are required")
    if len(record_ids) > MAX_RETRIEVE:
        raise exceeded_id_limit(MAX_RETRIEVE)
    out: list[Any] = []
    for record_id in record_ids:
        record = call.org.records.get(record_id) if ids.is_valid(record_id) else None
        ok = record is not None and not record["IsDeleted"] and record["Id"][:3] == obj.key_prefix
        out.append(record_json(obj, record, call.base, fields) if ok and record else None)
    return Reply(200, out)


def _strings(body: dict[str, Any], key: str) -> list[str]:
    value = body.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise json_parser_error(
            f"Cannot deserialize the request: '{key}' must be a list of strings"
        )
    return value


@route("PATCH", r"composite/sobjects/(?P<type>\w+)/(?P<field>\w+)")
def collections_upsert(call: Call, match: re.Match[str]) -> Reply:
    obj = sobject(match["type"])
    f = obj.field(match["field"])
    if f is None or not f.external_id:
        raise ApiError(
            400,
            "INVALID_FIELD",
            f"Field name provided, {match['field']} is not an External ID or indexed field for {obj.name}",
        )
    items, all_or_none = _collection(call.json())
    org, user = call.org, call.caller.user_id

    def upsert(item: Any) -> Any:
        item_obj, values = _typed(item)
        if item_obj is not obj:
            raise RecordError("INVALID_TYPE", f"all records must be of type {obj.name}")
        value = next((v for k, v in values.items() if k.lower() == f.name.lower()), None)
        _lock_fault(call)
        record, created = org.records.upsert(obj, f, value, values, user, call.now)
        return _success(record, created)

    return _apply_all(call, items, all_or_none, upsert)


# ---------------------------------------------------------------- composite

_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)\.([^}]+)\}")


@route("POST", r"composite")
def composite(call: Call, _: re.Match[str]) -> Reply:
    body = call.json()
    if not isinstance(body, dict) or not isinstance(body.get("compositeRequest"), list):
        raise json_parser_error("compositeRequest must be a list")
    subrequests = body["compositeRequest"]
    if len(subrequests) > MAX_COMPOSITE:
        raise _limit_exceeded(f"{MAX_COMPOSITE} operations")
    # Known before anything runs, except for a URL that is wholly a reference: that one is
    # counted once resolved (see `_run_subrequests`).
    heavy = sum(_is_collection_or_query(_raw_path(sub)) for sub in subrequests)
    if heavy > MAX_COLLECTIONS_OR_QUERIES:
        raise _too_many_collections_or_queries()
    all_or_none = bool(body.get("allOrNone", False))
    store = call.org.records
    # Always a savepoint: with allOrNone a failure undoes everything, and without it a request
    # refused half-way (a referenced URL that made one collections or query subrequest too many)
    # must leave no record behind either.
    store.begin()
    try:
        out, failed = _run_subrequests(replace(call, all_or_none=all_or_none), subrequests)
    except BaseException:
        store.rollback()
        raise
    if all_or_none and any(failed):
        store.rollback()
        out = [o if bad else _halted(o["referenceId"]) for o, bad in zip(out, failed, strict=True)]
    else:
        store.release()
    return Reply(200, {"compositeResponse": out})


def _limit_exceeded(what: str) -> ApiError:
    # The wording a real org was seen answering 26 subrequests with; the same for the other limit.
    return ApiError(400, "LIMIT_EXCEEDED", f"The request can\u2019t contain more than {what}.")


def _too_many_collections_or_queries() -> ApiError:
    return _limit_exceeded(f"{MAX_COLLECTIONS_OR_QUERIES} sObject Collections or query operations")


_COLLECTIONS_OR_QUERY = re.compile(r"(?:composite/sobjects|query|queryAll)(?:/|\Z)")
_VERSIONED = re.compile(r"/services/data/v(\d+\.\d)/?(.*)")


def _is_collection_or_query(path: str | None) -> bool:
    """sObject Collections in any method, Query, QueryAll and query-more (`query/<locator>`)."""
    return path is not None and _COLLECTIONS_OR_QUERY.match(path) is not None


def _raw_path(sub: Any) -> str | None:
    """The resource a subrequest names below `/services/data/vNN.N/`, as written, before its
    references are resolved; None when that cannot be told yet."""
    if not isinstance(sub, dict) or not isinstance(sub.get("url"), str):
        return None
    match = _VERSIONED.match(urlsplit(sub["url"]).path)
    return match[2] if match else None


def _run_subrequests(call: Call, subrequests: list[Any]) -> tuple[list[dict[str, Any]], list[bool]]:
    """Each subrequest's response, and whether it failed (a halted one did not fail itself)."""
    results: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    failed: list[bool] = []
    collections_or_queries = 0
    for sub in subrequests:
        reference = str(sub.get("referenceId", "")) if isinstance(sub, dict) else ""
        if any(failed) and call.all_or_none:
            out.append(_halted(reference))
            failed.append(False)
            continue
        try:
            sub_call = _subrequest_call(call, sub, results)
        except ApiError as error:
            reply = Reply(error.status, error.body())
        else:
            if _is_collection_or_query(sub_call.path):
                collections_or_queries += 1
                if collections_or_queries > MAX_COLLECTIONS_OR_QUERIES:
                    raise _too_many_collections_or_queries()
            reply = _answer(sub_call)
        results[reference] = reply.body
        out.append(
            {
                "body": reply.body,
                "httpHeaders": reply.headers,
                "httpStatusCode": reply.status,
                "referenceId": reference,
            }
        )
        failed.append(_failed(reply))
    return out, failed


def _failed(reply: Reply) -> bool:
    """An error status, or a collections answer in which a record failed."""
    if reply.status >= 400:
        return True
    body = reply.body
    return isinstance(body, list) and any(
        isinstance(r, dict) and r.get("success") is False for r in body
    )


def _halted(reference: str) -> dict[str, Any]:
    body = [
        {
            "errorCode": "PROCESSING_HALTED",
            "message": "The transaction was rolled back since another operation in the same transaction failed.",
        }
    ]
    return {"body": body, "httpHeaders": {}, "httpStatusCode": 400, "referenceId": reference}


def _subrequest_call(call: Call, sub: Any, results: dict[str, Any]) -> Call:
    """The subrequest as a call of its own, references resolved; ApiError when it is malformed."""
    if not isinstance(sub, dict) or "url" not in sub or "method" not in sub:
        raise json_parser_error("each subrequest needs method, url and referenceId")
    url = _resolve_references(str(sub["url"]), results)
    body = _resolve_in(sub.get("body"), results)
    parts = urlsplit(url)
    match = _VERSIONED.match(parts.path)
    if match and match[1] in RETIRED_API_VERSIONS:
        raise retired_version(match[1])
    if not match or match[1] not in API_VERSIONS:
        raise not_found()
    sub_call = replace(
        call,
        method=str(sub["method"]).upper(),
        path=match[2].rstrip("/"),
        params=dict(parse_qsl(parts.query)),
        body=json.dumps(body).encode() if body is not None else b"",
        version=match[1],
        headers=_subrequest_headers(sub),
    )
    if sub_call.path == "composite":
        raise ApiError(400, "INVALID_API_INPUT", "composite cannot be nested")
    return sub_call


def _subrequest_headers(sub: dict[str, Any]) -> dict[str, str]:
    """A subrequest's own `httpHeaders` (such as `Sforce-Query-Options`), keys lowercased."""
    headers = sub.get("httpHeaders") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise json_parser_error("httpHeaders must be an object of strings")
    return {str(k).lower(): v for k, v in headers.items()}


def _answer(sub_call: Call) -> Reply:
    try:
        reply = dispatch(sub_call)
    except ApiError as error:
        return Reply(error.status, error.body())
    created = _CREATE.fullmatch(sub_call.path)
    if created and sub_call.method == "POST" and reply.status == 201:
        # A record created by a single-record POST says where it lives, as Salesforce's does.
        obj = sobject(created[1])
        location = f"{sub_call.base}/sobjects/{obj.name}/{reply.body['id']}"
        reply = replace(reply, headers={**reply.headers, "Location": location})
    return reply


_CREATE = re.compile(r"sobjects/(\w+)")


def _resolve_in(body: Any, results: dict[str, Any]) -> Any:
    """References resolved inside every string of a JSON body, keys and values alike, so a value
    holding quotes or backslashes is carried as data, never spliced into JSON text."""
    if isinstance(body, str):
        return _resolve_references(body, results)
    if isinstance(body, list):
        return [_resolve_in(item, results) for item in body]
    if isinstance(body, dict):
        return {
            _resolve_references(key, results): _resolve_in(value, results)
            for key, value in body.items()
        }
    return body


def _resolve_references(text: str, results: dict[str, Any]) -> str:
    def lookup(match: re.Match[str]) -> str:
        value: Any = results.get(match[1])
        for part in re.findall(r"[^.\[\]]+", match[2]):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, dict) and part in value:
                value = value[part]
            else:
                raise ApiError(
                    400,
                    "PROCESSING_HALTED",
                    f"Invalid reference specified. No value for {match[1]}.{match[2]} found in {match[1]}.",
                )
        return str(value)

    return _REFERENCE.sub(lookup, text)


# Bulk API 2.0 routes live in their own module; importing it registers them.
from quotasync.sandbox import bulk, deploys  # noqa: E402, F401
