"""Real-Time Sync, the pushing side: what quotasync's package (org-package/: the QS_*Sync triggers,
QS_RealtimeSync, QS_PushJob and QS_Push) does in a real org, for the objects whose trigger is
deployed and active.

Every committed DML operation on an object with such a trigger, for an event the trigger fires on
(after insert, update, delete), becomes one push per 200 changed records (a trigger sees at most
200 records at a time). Each push spends one DailyAsyncApexExecutions, as the trigger's enqueue of
the Queueable job does; with that quota spent, there is no push. While no `QS_Sync_Setting__c` is
enabled with a callback and a secret, nothing is pushed and nothing spent. A push goes to the
callback of every enabled setting (the 20 most recently modified), the same body signed with each
one's secret, from a background thread: a DML answer never waits for its push.

An org started with the package (any org but `--without-package`) has its triggers from the
first start (`preinstalled`); `quotasync org install` deploys them to one without (deploys.py).
The wire format is documented in docs/ORG_PACKAGE.md ("The push") and docs/SANDBOX.md.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from quotasync.clock import Clock
from quotasync.sandbox import schema
from quotasync.sandbox.records import CREATED, DELETED, UPDATED, Change, Record, RecordStore

SETTING_OBJECT = "QS_Sync_Setting__c"
APEX_APP = "quotasync"  # the connected app the Queueable executions are charged to
MAX_SETTINGS = 20  # the settings QS_PushJob pushes to, at most
# The package's Apex, as `quotasync org install` deploys it (org-package/; a unit test holds the
# two equal): a trigger per object, each handing its records to QS_RealtimeSync.
HANDLER = "QS_RealtimeSync"
PACKAGE_CLASSES = ("QS_Push", "QS_PushJob", "QS_RealtimeSync", "QS_RealtimeSyncTest")
NEEDED_CLASSES = ("QS_Push", "QS_PushJob", HANDLER)  # what a push runs through
ALL_EVENTS = ("after insert", "after update", "after delete", "after undelete")
PACKAGE_TRIGGERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "QS_AccountSync": ("Account", ALL_EVENTS),
    "QS_ContactSync": ("Contact", ALL_EVENTS),
    "QS_LeadSync": ("Lead", ALL_EVENTS),
    "QS_OpportunitySync": ("Opportunity", ALL_EVENTS),
    "QS_UserSync": ("User", ("after insert", "after update")),
}
PACKAGE_API_VERSION = "62.0"
# Which change a trigger event pushes (QS_RealtimeSync.handle: an undelete is pushed as created).
EVENT_CHANGES = {
    "after insert": CREATED,
    "after update": UPDATED,
    "after delete": DELETED,
    "after undelete": CREATED,
}
CHANGES_PER_PUSH = 200
ATTEMPTS = 3
BACKOFF_SECONDS = (0.05, 0.25)  # before the second and the third attempt
SEND_TIMEOUT_SECONDS = 5.0
CLOSE_GRACE_SECONDS = 2.0  # how long a closing org keeps delivering what is queued
MAX_DELAY_MS = 60_000
USER_AGENT = "SFDC-Callout/62.0"

log = logging.getLogger("quotasync.sandbox")


# ---------------------------------------------------------------- the package


def preinstalled() -> dict[str, dict[str, dict[str, Any]]]:
    """The package's Apex as a deploy records it (`GET /__sandbox/package`), for an org that
    starts with the package installed."""
    classes = {
        name: {"apiVersion": PACKAGE_API_VERSION, "status": "Active"} for name in PACKAGE_CLASSES
    }
    triggers = {
        name: {
            "apiVersion": PACKAGE_API_VERSION,
            "status": "Active",
            "object": sobject,
            "events": list(events),
            "handler": HANDLER,
        }
        for name, (sobject, events) in PACKAGE_TRIGGERS.items()
    }
    return {"ApexClass": classes, "ApexTrigger": triggers}


def pushed_changes(package: dict[str, Any]) -> dict[str, frozenset[str]]:
    """Object -> the changes (created, updated, deleted) its deployed, active triggers push: a
    trigger that hands its records to QS_RealtimeSync, with the classes a push runs through."""
    classes = package.get("ApexClass") or {}
    if any(classes.get(name, {}).get("status") != "Active" for name in NEEDED_CLASSES):
        return {}
    found: dict[str, set[str]] = {}
    for trigger in (package.get("ApexTrigger") or {}).values():
        if trigger.get("status") != "Active" or trigger.get("handler") != HANDLER:
            continue
        kinds = {EVENT_CHANGES[e] for e in trigger.get("events", []) if e in EVENT_CHANGES}
        found.setdefault(str(trigger.get("object")), set()).update(kinds)
    return {sobject: frozenset(kinds) for sobject, kinds in found.items() if kinds}


def apex_records(package: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """The deployed Apex as the org's ApexClass and ApexTrigger records list it, by name."""
    listed: dict[str, dict[str, dict[str, Any]]] = {"ApexClass": {}, "ApexTrigger": {}}
    for kind, made in listed.items():
        for name, deployed in (package.get(kind) or {}).items():
            version = deployed.get("apiVersion")
            values: dict[str, Any] = {
                "Name": name,
                "NamespacePrefix": None,
                "ApiVersion": float(version) if version else None,
                "Status": deployed.get("status") or "Active",
                "IsValid": True,
            }
            if kind == "ApexTrigger":
                values["TableEnumOrId"] = deployed.get("object")
            made[name] = values
    return listed


# ---------------------------------------------------------------- the setting


def enabled_settings(records: RecordStore) -> list[Record]:
    """The settings QS_PushJob pushes to: live, Enabled__c, with a callback and a secret; the
    most recently modified first, at most MAX_SETTINGS."""
    enabled = [
        r
        for r in records.live(SETTING_OBJECT)
        if r.get("Enabled__c") and r.get("Callback_URL__c") and r.get("Secret__c")
    ]
    return sorted(enabled, key=_recency, reverse=True)[:MAX_SETTINGS]


def active_setting(records: RecordStore) -> Record | None:
    """The most recently modified enabled setting (the one `summary` shows)."""
    enabled = (r for r in records.live(SETTING_OBJECT) if r.get("Enabled__c"))
    return max(enabled, key=_recency, default=None)


def summary(records: RecordStore) -> dict[str, Any]:
    """The active setting (or, with none enabled, the latest one), without its secret."""
    setting = active_setting(records) or max(
        records.live(SETTING_OBJECT), key=_recency, default=None
    )
    if setting is None:
        return {"enabled": False, "callback": None, "setting_id": None}
    return {
        "enabled": bool(setting.get("Enabled__c")),
        "callback": setting.get("Callback_URL__c"),
        "setting_id": setting["Id"],
    }


def _recency(record: Record) -> tuple[datetime, str]:
    # Ids of one object grow with every insert, so the later of two records stamped alike wins.
    return record["SystemModstamp"], record["Id"]


def callback_problem(url: str | None) -> str | None:
    """Why the org will not push to `url`, or None. The sandbox pushes to this machine only."""
    if not url:
        return "the setting has no Callback_URL__c"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 (a bad port raises here)
    except ValueError:
        return f"{url!r} is not a URL"
    if parts.scheme not in ("http", "https"):
        return f"{url!r} is not an http or https URL"
    if not host:
        return f"{url!r} names no host"
    if host.lower() == "localhost":
        return None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        return (
            f"the sandbox pushes only to loopback addresses (127.0.0.1, ::1, localhost), "
            f"not to {host}"
        )
    return None


# ---------------------------------------------------------------- pushes


@dataclass(frozen=True)
class Target:
    url: str
    secret: str


@dataclass
class Push:
    """One QS_PushJob: one body, sent to each target signed with its secret."""

    targets: list[Target]
    changes: list[dict[str, Any]]
    due: float  # time.monotonic() before which it is held back (the max_delay_ms fault)
    # The body and each target's headers, fixed at the first attempt: retries and duplicates
    # send these bytes.
    signed: tuple[bytes, list[dict[str, str]]] | None = None


def batches(changes: Iterable[Change]) -> Iterator[list[Change]]:
    """The pushes a list of committed changes makes: per DML operation and object, up to 200
    records each. A record changed twice in one operation is pushed once, as it ended up."""
    groups: dict[tuple[int, str], dict[str, Change]] = {}
    for change in changes:
        group = groups.setdefault((change.operation, change.sobject), {})
        earlier = group.get(change.record_id)
        if earlier is not None:
            change = replace(change, kind=_merged(earlier.kind, change.kind))
        group[change.record_id] = change
    for group in groups.values():
        rows = list(group.values())
        for start in range(0, len(rows), CHANGES_PER_PUSH):
            yield rows[start : start + CHANGES_PER_PUSH]


def _merged(first: str, later: str) -> str:
    if later == DELETED:
        return DELETED
    return CREATED if first == CREATED else later


def change_json(change: Change) -> dict[str, Any]:
    obj = schema.OBJECTS[change.sobject]
    record = change.record
    fields = (
        {}
        if change.kind == DELETED
        else {f.name: schema.to_json(f, record.get(f.name)) for f in obj.fields.values()}
    )
    return {
        "sobject": change.sobject,
        "id": change.record_id,
        "change": change.kind,
        "systemModstamp": schema.format_datetime(record["SystemModstamp"]),
        "fields": fields,
    }


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`X-QS-Signature`: HMAC-SHA256 keyed with the secret over `"{timestamp}." + body`."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def iso_time(moment: float) -> str:
    """ISO-8601 in UTC to the millisecond: 2026-11-28T12:00:00.000Z."""
    value = datetime.fromtimestamp(moment, UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


# ---------------------------------------------------------------- delivery


@dataclass
class DeliveryFaults:
    """Trouble on the way out, for tests of the receiving side."""

    duplicate_rate: float = 0.0  # chance a delivered push is sent again, byte for byte
    max_delay_ms: float = 0.0  # each push waits a random 0..max_delay_ms before it goes
    reorder: bool = False  # the next push to go is any queued one, not the oldest

    def as_dict(self) -> dict[str, Any]:
        return {
            "duplicate_rate": self.duplicate_rate,
            "max_delay_ms": self.max_delay_ms,
            "reorder": self.reorder,
        }


@dataclass
class Counters:
    pushes: int = 0  # queued, each with its Apex execution spent
    delivered: int = 0  # answered 2xx
    failed: int = 0  # dropped: no 2xx after the attempts, a 4xx, or still queued at shutdown
    duplicates: int = 0  # extra sends of a delivered push (the duplicate_rate fault)
    suppressed_no_apex: int = 0  # not pushed: DailyAsyncApexExecutions was spent
    refused: int = 0  # not pushed: the callback is off this machine, or callback/secret unset

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class Pusher:
    """Turns committed changes into pushes (on the org's thread) and delivers them (on its own)."""

    def __init__(self, org_id: str, clock: Clock) -> None:
        self.org_id = org_id
        self.clock = clock
        self.faults = DeliveryFaults()
        self.counters = Counters()
        self.last_error: str | None = None
        self._queue: list[Push] = []
        self._in_flight = 0
        self._hurry = 0  # flushes waiting: queued pushes go now, whatever their delay
        self._closing = False
        self._close_deadline = 0.0
        # Guards everything above that the delivery thread touches.
        self._cv = threading.Condition()
        self._thread: threading.Thread | None = None
        self._rng = random.Random()

    # ------------------------------------------------------------ the trigger

    def publish(
        self,
        changes: list[Change],
        settings: list[Record],
        pushed: dict[str, frozenset[str]],
        spend_apex: Callable[[], bool],
    ) -> None:
        """Push `changes`, committed just now, that the org's triggers push (`pushed`: object ->
        changes) to the enabled `settings`; `spend_apex` spends one DailyAsyncApexExecutions and
        says whether it could. Without an enabled setting nothing is pushed nor spent, as
        QS_RealtimeSync enqueues nothing then."""
        changes = [c for c in changes if c.kind in pushed.get(c.sobject, ())]
        if not changes or not settings:
            return
        planned = list(batches(changes))
        targets = []
        for setting in settings:
            problem = callback_problem(setting.get("Callback_URL__c"))
            if problem is not None:
                with self._cv:
                    self.counters.refused += len(planned)
                    self.last_error = f"not pushed: {problem}"
                log.warning("Real-Time Sync push not sent: %s", problem)
                continue
            targets.append(Target(str(setting["Callback_URL__c"]), str(setting["Secret__c"])))
        if not targets:
            return
        pushes = []
        suppressed = 0
        for batch in planned:
            if spend_apex():
                pushes.append(Push(targets, [change_json(c) for c in batch], self._due()))
            else:
                suppressed += 1
        with self._cv:
            self.counters.suppressed_no_apex += suppressed
            if not pushes:
                return
            self.counters.pushes += len(pushes)
            if self._closing:
                self.counters.failed += len(pushes)
                return
            self._queue.extend(pushes)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="sandbox-rts-delivery", daemon=True
                )
                self._thread.start()
            self._cv.notify_all()

    def _due(self) -> float:
        delay = self.faults.max_delay_ms
        return time.monotonic() + (self._rng.uniform(0, delay) / 1000 if delay > 0 else 0.0)

    # ------------------------------------------------------------ control

    def status(self) -> dict[str, Any]:
        with self._cv:
            return {
                **self.counters.as_dict(),
                "pending": len(self._queue) + self._in_flight,
                "last_error": self.last_error,
            }

    def flush(self, timeout: float) -> bool:
        """Deliver (or drop) every queued push now, ignoring delays; False if `timeout` ran out."""
        deadline = time.monotonic() + timeout
        with self._cv:
            self._hurry += 1
            self._cv.notify_all()
            try:
                while self._queue or self._in_flight:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cv.wait(left)
                return True
            finally:
                self._hurry -= 1

    def close(self) -> None:
        """Deliver what is queued for a moment longer, drop the rest, and stop the thread."""
        with self._cv:
            self._closing = True
            self._close_deadline = time.monotonic() + CLOSE_GRACE_SECONDS
            self._cv.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(CLOSE_GRACE_SECONDS + SEND_TIMEOUT_SECONDS + 1)

    # ------------------------------------------------------------ the delivery thread

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue:
                    return  # closing, and nothing left to send
                index = self._rng.randrange(len(self._queue)) if self.faults.reorder else 0
                push = self._queue.pop(index)
                self._in_flight += 1
                while not (self._hurry or self._closing):
                    wait = push.due - time.monotonic()
                    if wait <= 0:
                        break
                    self._cv.wait(wait)
                too_late = self._closing and time.monotonic() > self._close_deadline
            try:
                if too_late:
                    self._count_failure("dropped: the org shut down before it could be sent")
                else:
                    self._deliver(push)
            except Exception as exc:  # the thread must outlive any one push
                log.exception("Real-Time Sync delivery failed")
                self._count_failure(f"{type(exc).__name__}: {exc}")
            finally:
                with self._cv:
                    self._in_flight -= 1
                    self._cv.notify_all()

    def _deliver(self, push: Push) -> None:
        body, headers = self._sign(push)
        for target, signed in zip(push.targets, headers, strict=True):
            problem = self._send(target.url, body, signed)
            if problem is not None:
                self._count_failure(problem)
                continue
            with self._cv:
                self.counters.delivered += 1
                duplicate = self._rng.random() < self.faults.duplicate_rate
            if duplicate:
                # The same callout again, byte for byte: what an at-least-once sender may do.
                self._send(target.url, body, signed)
                with self._cv:
                    self.counters.duplicates += 1

    def _sign(self, push: Push) -> tuple[bytes, list[dict[str, str]]]:
        """QS_PushJob.execute: one body (QS_Push.body), each setting's headers (QS_Push.request)."""
        if push.signed is None:
            moment = self.clock.timestamp()
            stamp = int(moment)  # Datetime.getTime() / 1000
            body = orjson.dumps(
                {"organizationId": self.org_id, "sentAt": iso_time(moment), "changes": push.changes}
            )
            headers = [
                {
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    "X-QS-Timestamp": str(stamp),
                    "X-QS-Signature": signature(target.secret, stamp, body),
                }
                for target in push.targets
            ]
            push.signed = (body, headers)
        return push.signed

    def _send(self, url: str, body: bytes, headers: dict[str, str]) -> str | None:
        """POST with up to ATTEMPTS tries on connection errors and 5xx; None once answered 2xx,
        else what went wrong."""
        problem = "not sent"
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF_SECONDS[attempt - 1])
            status, problem = _post(url, body, headers)
            if status is not None and status < 500:
                return None if 200 <= status < 300 else problem
        return problem

    def _count_failure(self, problem: str) -> None:
        with self._cv:
            self.counters.failed += 1
            self.last_error = problem
        log.warning("Real-Time Sync push dropped: %s", problem)


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str]:
    """One POST: the status (None if no answer came) and a description of the outcome."""
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or ""
    connection: http.client.HTTPConnection
    if parts.scheme == "https":
        connection = http.client.HTTPSConnection(
            host, parts.port, timeout=SEND_TIMEOUT_SECONDS, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(host, parts.port, timeout=SEND_TIMEOUT_SECONDS)
    try:
        connection.request("POST", target, body=body, headers=headers)
        response = connection.getresponse()
        response.read()
        return response.status, f"{url} answered {response.status}"
    except (OSError, http.client.HTTPException) as exc:
        return None, f"{url}: {type(exc).__name__}: {exc}"
    finally:
        connection.close()
