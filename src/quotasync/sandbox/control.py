"""The sandbox's own control API under /__sandbox/: never counted, bearer `admin_token` only.

It does what an integration test needs from outside the org: read usage, spend quota as other apps,
inject faults, move a virtual clock, seed and inspect records, watch and disturb Real-Time Sync
pushes, upload a connected app's certificate.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import logging
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from quotasync.sandbox import auth, editions, rts, schema
from quotasync.sandbox.errors import ApiError, RecordError
from quotasync.sandbox.org import Org
from quotasync.sandbox.records import to_json

API_ALIASES = {
    "data": editions.DAILY_API_REQUESTS,
    "bulk": editions.DAILY_BULK_API_BATCHES,
    "bulk_query": editions.DAILY_BULK_V2_QUERY_JOBS,
    "apex": editions.DAILY_ASYNC_APEX_EXECUTIONS,
}

log = logging.getLogger("quotasync.sandbox")

# One move of the clock: ten years is plenty, and keeps dates far from datetime's year 9999.
MAX_ADVANCE_SECONDS = 10 * 366 * 24 * 60 * 60
DEFAULT_FLUSH_SECONDS = 60.0
MAX_FLUSH_SECONDS = 600.0


class BadInput(Exception):
    pass


def _org(request: Request) -> Org:
    org: Org = request.app.state.org
    return org


def _authorized(request: Request) -> bool:
    """The admin token, from this machine only: the control API can change anything in the org,
    so even a sandbox served beyond loopback (`--host`) keeps it to local callers."""
    client = request.client.host if request.client is not None else ""
    if not (is_loopback(client) or client == "testclient"):  # Starlette's TestClient
        return False
    expected: str = request.app.state.admin_token
    header = request.headers.get("authorization", "")
    # Compared as bytes: compare_digest refuses a str with characters beyond ASCII (a 500).
    return header.lower().startswith("bearer ") and hmac.compare_digest(
        header[7:].strip().encode(), expected.encode()
    )


def is_loopback(host: str) -> bool:
    """An address or host name of this machine only (what `--host` and a caller are checked by)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


async def _json(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError as exc:
        raise BadInput(f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadInput("the body must be a JSON object")
    return body


def _api(value: Any) -> str:
    api = API_ALIASES.get(str(value), str(value))
    if api not in editions.API_TYPES:
        raise BadInput(
            f"unknown api {value!r}; use one of {', '.join(editions.API_TYPES)} or {', '.join(API_ALIASES)}"
        )
    return api


def _number(
    body: dict[str, Any],
    key: str,
    *,
    low: float = 0,
    high: float | None = None,
    default: Any = None,
) -> float:
    value = body.get(key, default)
    # JSON allows NaN and Infinity; either would wreck the usage window or the clock for good.
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadInput(f"{key} must be a number")
    if value < low or (high is not None and value > high):
        raise BadInput(
            f"{key} must be between {low} and {high}"
            if high is not None
            else f"{key} must be at least {low}"
        )
    return float(value)


def _app_name(body: dict[str, Any]) -> str:
    app = body.get("app")
    if not isinstance(app, str) or not app.strip():
        raise BadInput('app must name the connected app, e.g. "Marketing Cloud"')
    return app.strip()


def usage_body(org: Org) -> dict[str, Any]:
    now = org.timestamp()
    allocations = org.allocations()
    return {
        api: {
            "max": allocations[api],
            "used": org.usage.used(api, now),
            "by_app": org.usage.by_app(api, now),
        }
        for api in editions.API_TYPES
    }


async def usage(request: Request) -> Response:
    return JSONResponse(usage_body(_org(request)))


async def counted(request: Request) -> Response:
    """Per API type, the calls counted for each app since this start of the org, whether or not
    they are still in the 24-hour window: a moved clock forgets none of them."""
    org = _org(request)
    now = org.timestamp()
    return JSONResponse({api: org.usage.counted_by_app(api, now) for api in editions.API_TYPES})


async def consume(request: Request) -> Response:
    org = _org(request)
    body = await _json(request)
    app, api = _app_name(body), _api(body.get("api", "data"))
    number = _number(body, "calls", low=1)
    if number != int(number):
        raise BadInput("calls must be a whole number")
    calls = int(number)
    room = max(0, org.usage.remaining(api, org.timestamp()))
    spent = min(calls, room)
    if spent:
        org.spend(app, api, spent)
    return JSONResponse({"spent": spent, "refused": calls - spent, "usage": usage_body(org)[api]})


async def load(request: Request) -> Response:
    org = _org(request)
    body = await _json(request)
    app, api = _app_name(body), _api(body.get("api", "data"))
    rate = _number(body, "calls_per_hour", low=0)
    org.set_loads(app, api, rate)
    return JSONResponse({"app": app, "api": api, "calls_per_hour": rate})


FAULTS = ("latency_ms", "jitter_ms", "error_rate", "lock_rate", "drop_rate", "expire_sessions")


async def faults(request: Request) -> Response:
    org = _org(request)
    if request.method == "GET":
        return JSONResponse({**org.faults.as_dict(), "injected": org.faults.counters()})
    body = await _json(request)
    unknown = set(body) - set(FAULTS)
    if unknown:
        raise BadInput(f"unknown fault {sorted(unknown)[0]!r}; use {', '.join(sorted(FAULTS))}")
    # Check everything first, so a bad value changes nothing.
    changes = {
        key: _number(body, key, high=60_000 if key.endswith("_ms") else 1)
        for key in FAULTS[:-1]
        if key in body
    }
    for key, value in changes.items():
        setattr(org.faults, key, value)
    expired = 0
    if body.get("expire_sessions"):
        expired = org.auth.expire_all_sessions()
        org.faults.sessions_expired(expired)
    return JSONResponse(
        {**org.faults.as_dict(), "expired_sessions": expired, "injected": org.faults.counters()}
    )


async def clock(request: Request) -> Response:
    org = _org(request)
    if request.method == "POST":
        body = await _json(request)
        org.advance_clock(_number(body, "advance_seconds", low=0, high=MAX_ADVANCE_SECONDS))
    return JSONResponse({"now": schema.format_datetime(org.now()), "timestamp": org.timestamp()})


async def records(request: Request) -> Response:
    org = _org(request)
    obj = schema.find(request.path_params["type"])
    if obj is None:
        return JSONResponse(
            {"error": f"unknown sObject type {request.path_params['type']!r}"}, status_code=404
        )
    if request.method == "GET":
        return JSONResponse(_inspect(org, obj, request))
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError as exc:
        raise BadInput(f"the body is not JSON: {exc}") from None
    items = body if isinstance(body, list) else [body]
    if not items or not all(isinstance(i, dict) for i in items):
        raise BadInput("post a record (a JSON object) or a list of records")
    admin = org.settings["users"]["admin"]
    now = org.now()
    org.records.next_operation()  # one DML operation, as an admin's save in the UI would be
    results = []
    for item in items:
        try:
            values = {k: v for k, v in item.items() if k != "attributes"}
            record = org.records.insert(obj, values, str(values.get("OwnerId") or admin), now)
            results.append({"id": record["Id"], "success": True, "errors": []})
        except RecordError as error:
            results.append({"success": False, "errors": [error.as_result()]})
    status = 201 if all(r["success"] for r in results) else 400
    return JSONResponse(results, status_code=status)


async def record(request: Request) -> Response:
    """Change (PATCH) or delete (DELETE) one record as the admin, without spending quota: the org
    changing under quotasync, as its people and other apps change it."""
    org = _org(request)
    obj = schema.find(request.path_params["type"])
    if obj is None:
        return JSONResponse(
            {"error": f"unknown sObject type {request.path_params['type']!r}"}, status_code=404
        )
    record_id = request.path_params["id"]
    admin = org.settings["users"]["admin"]
    org.records.next_operation()  # one DML operation, as an admin's save in the UI would be
    try:
        if request.method == "DELETE":
            changed = org.records.delete(obj, record_id, admin, org.now())
        else:
            body = await _json(request)
            values = {k: v for k, v in body.items() if k != "attributes"}
            changed = org.records.update(obj, record_id, values, admin, org.now())
    except RecordError as error:
        status = 404 if error.code == "NOT_FOUND" else 400
        return JSONResponse({"success": False, "errors": [error.as_result()]}, status_code=status)
    return JSONResponse({"id": changed["Id"], "success": True, "errors": []})


def _inspect(org: Org, obj: schema.SObject, request: Request) -> list[dict[str, Any]]:
    include_deleted = request.query_params.get("include_deleted", "false").lower() == "true"
    where = request.query_params.get("where")
    if where:
        text = f"SELECT Id FROM {obj.name} WHERE {where}"
        page = org.queries.query(
            text, include_deleted=include_deleted, page_size=2000, version="62.0", now=org.now()
        )
        rows = [org.records.get(r["Id"]) for r in page["records"]]
        while not page["done"]:
            page = org.queries.more(page["nextRecordsUrl"].rsplit("/", 1)[1], "62.0")
            rows += [org.records.get(r["Id"]) for r in page["records"]]
        found = [r for r in rows if r is not None]
    else:
        found = list(org.records.all(obj.name) if include_deleted else org.records.live(obj.name))
    return [to_json(obj, r) for r in found]


async def org_info(request: Request) -> Response:
    org = _org(request)
    return JSONResponse(
        {
            "org_id": org.org_id,
            "edition": org.settings["edition"],
            "organization_type": org.edition.organization_type,
            "api_access": org.edition.api_access,
            "licenses": org.settings["licenses"],
            "allocations": org.allocations(),
            "rts_callback": rts.summary(org.records)["callback"],
            "now": schema.format_datetime(org.now()),
        }
    )


def rts_body(org: Org) -> dict[str, Any]:
    status = org.rts.status()
    return {
        **rts.summary(org.records),
        "faults": org.rts.faults.as_dict(),
        "counters": {k: v for k, v in status.items() if k != "last_error"},
        "last_error": status["last_error"],
    }


async def rts_state(request: Request) -> Response:
    org = _org(request)
    if request.method == "POST":
        body = await _json(request)
        known = {"duplicate_rate", "max_delay_ms", "reorder"}
        unknown = set(body) - known
        if unknown:
            raise BadInput(
                f"unknown setting {sorted(unknown)[0]!r}; use {', '.join(sorted(known))}"
            )
        # Check everything first, so a bad value changes nothing.
        changes: dict[str, Any] = {}
        if "duplicate_rate" in body:
            changes["duplicate_rate"] = _number(body, "duplicate_rate", high=1)
        if "max_delay_ms" in body:
            changes["max_delay_ms"] = _number(body, "max_delay_ms", high=rts.MAX_DELAY_MS)
        if "reorder" in body:
            if not isinstance(body["reorder"], bool):
                raise BadInput("reorder must be true or false")
            changes["reorder"] = body["reorder"]
        for key, value in changes.items():
            setattr(org.rts.faults, key, value)
    return JSONResponse(rts_body(org))


async def rts_flush(request: Request) -> Response:
    org = _org(request)
    body = await _json(request)
    timeout = _number(
        body, "timeout_seconds", low=0, high=MAX_FLUSH_SECONDS, default=DEFAULT_FLUSH_SECONDS
    )
    # Off the event loop: a receiver may call the org back before it answers a push.
    done = await asyncio.to_thread(org.rts.flush, timeout)
    status = org.rts.status()
    if not done:
        return JSONResponse(
            {"error": f"{status['pending']} pushes still pending after {timeout:g} s", **status},
            status_code=504,
        )
    return JSONResponse(status)


async def app_certificate(request: Request) -> Response:
    """Upload a certificate to a connected app ("Use digital signatures"): assertions signed by
    its key are accepted from now on, alongside the app's own key. It replaces an earlier upload."""
    org = _org(request)
    name = request.path_params["name"]
    body = await _json(request)
    pem = body.get("pem")
    if not isinstance(pem, str) or not pem.strip():
        raise BadInput('pem must hold the certificate: "-----BEGIN CERTIFICATE-----..."')
    try:
        certificate = auth.read_certificate(pem)
        app = org.auth.upload_certificate(name, pem)
    except ValueError as exc:
        raise BadInput(str(exc)) from None
    except KeyError:
        names = ", ".join(a.name for a in org.auth.apps.values())
        return JSONResponse(
            {"error": f"no connected app named {name!r}; the org has {names}"}, status_code=404
        )
    # Apps are part of the org's settings: written by the commit that ends this request.
    org.settings["apps"] = [a.to_settings() for a in org.auth.apps.values()]
    org.settings_changed()
    return JSONResponse(
        {
            "app": app.name,
            "client_id": app.client_id,
            "subject": certificate.subject.rfc4514_string(),
            "not_after": certificate.not_valid_after_utc.isoformat(),
            "sha256_fingerprint": auth.fingerprint(certificate),
        }
    )


async def app_policy(request: Request) -> Response:
    """A connected app's Permitted Users. With `admin_approved`, token requests are refused with
    `invalid_grant` "user hasn't approved this consumer" unless the user's profile is listed."""
    org = _org(request)
    name = request.path_params["name"]
    if name not in {a.name for a in org.auth.apps.values()}:
        return JSONResponse({"error": f"no connected app named {name!r}"}, status_code=404)
    if request.method == "POST":
        body = await _json(request)
        approved, profiles = body.get("admin_approved"), body.get("profiles", [])
        if not isinstance(approved, bool):
            raise BadInput("admin_approved must be true or false")
        known = {str(p["Name"]) for p in org.records.live("Profile")}
        if not isinstance(profiles, list) or not all(p in known for p in profiles):
            raise BadInput(f"profiles must be a list of profile names: {', '.join(sorted(known))}")
        org.set_app_policy(name, approved, profiles)
    return JSONResponse({"app": name, **org.app_policy(name)})


async def custom_fields(request: Request) -> Response:
    """Delete a custom field (`present: false`) or add it back, empty (`present: true`)."""
    org = _org(request)
    if request.method == "POST":
        body = await _json(request)
        sobject, name, present = body.get("object"), body.get("field"), body.get("present")
        if not isinstance(present, bool):
            raise BadInput("present must be true or false")
        if schema.custom_field_defined(str(sobject), str(name)) is None:
            raise BadInput(f"{sobject}.{name} is not a custom field (only those can be deleted)")
        org.set_field_present(str(sobject), str(name), present)
    return JSONResponse({"dropped": [f"{o}.{f}" for o, f in org.dropped_fields()]})


async def package(request: Request) -> Response:
    """What Metadata API deploys installed: Apex, permission sets, remote sites, fields."""
    from quotasync.sandbox import deploys

    return JSONResponse(deploys.installed(_org(request)))


def _guard(handler: Any) -> Any:
    async def guarded(request: Request) -> Response:
        if not _authorized(request):
            return JSONResponse(
                {
                    "error": "the control API needs 'Authorization: Bearer <admin_token>' from sandbox.json"
                },
                status_code=401,
            )
        org = _org(request)
        try:
            return await handler(request)
        except BadInput as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except ApiError as error:
            return JSONResponse(
                {"error": error.message, "errorCode": error.code}, status_code=error.status
            )
        except Exception as exc:
            # The control API's callers are tests and tools: name the problem, never a bare 500.
            log.exception("control API call %s failed", request.url.path)
            org.records.rollback_all()
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=400)
        finally:
            org.commit()

    return guarded


ROUTES = [
    Route("/__sandbox/usage", _guard(usage), methods=["GET"]),
    Route("/__sandbox/counted", _guard(counted), methods=["GET"]),
    Route("/__sandbox/consume", _guard(consume), methods=["POST"]),
    Route("/__sandbox/load", _guard(load), methods=["POST"]),
    Route("/__sandbox/faults", _guard(faults), methods=["GET", "POST"]),
    Route("/__sandbox/clock", _guard(clock), methods=["GET", "POST"]),
    Route("/__sandbox/records/{type}", _guard(records), methods=["GET", "POST"]),
    Route("/__sandbox/records/{type}/{id}", _guard(record), methods=["PATCH", "DELETE"]),
    Route("/__sandbox/org", _guard(org_info), methods=["GET"]),
    Route("/__sandbox/rts", _guard(rts_state), methods=["GET", "POST"]),
    Route("/__sandbox/rts/flush", _guard(rts_flush), methods=["POST"]),
    Route("/__sandbox/apps/{name}/certificate", _guard(app_certificate), methods=["POST"]),
    Route("/__sandbox/apps/{name}/policy", _guard(app_policy), methods=["GET", "POST"]),
    Route("/__sandbox/fields", _guard(custom_fields), methods=["GET", "POST"]),
    Route("/__sandbox/package", _guard(package), methods=["GET"]),
]
