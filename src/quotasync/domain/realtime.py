"""Real-Time Sync pushes: checking that a push comes from the org, and reading what it says.

The org's trigger signs each push with the workspace's RTS secret (docs/SANDBOX.md, "Real-Time
Sync pushes"): `X-QS-Timestamp` is the org's time in unix seconds and `X-QS-Signature` is
`sha256=` + the hex HMAC-SHA256 of `"{timestamp}." + body`. A push is taken only when the
signature matches and the timestamp is within `TOLERANCE` of quotasync's clock, so a push
captured on the way cannot be replayed later, and one signed with another secret never applies.

A push lists changes (created, updated, deleted) of mirrored records with their SystemModstamp;
`rows` turns them into the rows the mirror applies, where a newer SystemModstamp wins, so pushes
that arrive late, twice or out of order leave the mirror as the org is.

Pure: no I/O; the time and the secret are passed in.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from quotasync.errors import InvalidInput, QuotasyncError


class SyncMode(StrEnum):
    """How a workspace's mirror follows the org: pushed by the org's Apex as records change, or
    read by a query of the changes every sync interval (stored as its value)."""

    REALTIME = "realtime"
    INTERVAL = "interval"


TOLERANCE = timedelta(minutes=5)
# The mirrored objects: the org package's triggers push each of them (docs/ORG_PACKAGE.md); the
# sandbox's built-in pushes leave User out.
PUSHED_OBJECTS = frozenset({"Contact", "Lead", "Account", "Opportunity", "User"})
CHANGES = frozenset({"created", "updated", "deleted"})
MAX_CHANGES = 2000  # a trigger pushes at most 200 records; room for a few batches merged
_ID = re.compile(r"^[a-zA-Z0-9]{18}$")


class PushRefused(QuotasyncError):
    """Not from the org (bad signature) or not now (stale): 401, nothing applied."""


class PushInvalid(InvalidInput):
    """Signed, but not a push quotasync can read: 422, nothing applied."""


@dataclass(frozen=True)
class Change:
    sobject: str
    id: str
    change: str
    modstamp: datetime
    fields: Mapping[str, Any]


@dataclass(frozen=True)
class Push:
    organization_id: str
    changes: tuple[Change, ...]


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


NOT_SIGNED_BY_SECRET = "the signature does not match the workspace's RTS secret"


def check_headers(timestamp: str | None, signature: str | None) -> None:
    """Raise PushRefused unless both headers are there and the timestamp is unix seconds: what
    can be judged before the body is read."""
    if not timestamp or not signature:
        raise PushRefused("the push is not signed (X-QS-Timestamp and X-QS-Signature needed)")
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 12:
        raise PushRefused("X-QS-Timestamp must be unix seconds")


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    tolerance: timedelta = TOLERANCE,
) -> None:
    """Raise PushRefused unless the push is signed with `secret` and fresh at `now`."""
    check_headers(timestamp, signature)
    assert timestamp is not None and signature is not None
    # The signature first: a forged push learns nothing about the clock from the answer.
    # Compared as bytes: compare_digest refuses str with characters beyond ASCII.
    if not hmac.compare_digest(sign(secret, timestamp, body).encode(), signature.strip().encode()):
        raise PushRefused(NOT_SIGNED_BY_SECRET)
    try:
        sent = datetime.fromtimestamp(int(timestamp), UTC)
    except (OverflowError, ValueError):  # past year 9999
        raise PushRefused("X-QS-Timestamp must be unix seconds") from None
    if abs(now - sent) > tolerance:
        raise PushRefused(
            f"the push was signed at {sent.isoformat()}, more than "
            f"{tolerance.total_seconds() / 60:g} minutes from now: refused as stale or replayed"
        )


def parse(body: bytes) -> Push:
    """The push in `body`, or PushInvalid naming the first problem."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PushInvalid(f"the body is not JSON: {exc}") from None
    except RecursionError:
        raise PushInvalid("the body is nested too deep to be a push") from None
    if not isinstance(data, dict):
        raise PushInvalid("the body must be a JSON object")
    organization = data.get("organizationId")
    if not isinstance(organization, str) or not _ID.match(organization):
        raise PushInvalid("organizationId must be an 18-character org id")
    items = data.get("changes")
    if not isinstance(items, list) or not items:
        raise PushInvalid("changes must be a non-empty list")
    if len(items) > MAX_CHANGES:
        raise PushInvalid(f"at most {MAX_CHANGES} changes per push; got {len(items)}")
    return Push(organization, tuple(_change(i, item) for i, item in enumerate(items)))


def rows(push: Push) -> dict[str, list[dict[str, Any]]]:
    """Per sObject, the rows the mirror applies (newer SystemModstamp wins, deletes as
    tombstones)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for change in push.changes:
        row = {
            **change.fields,
            "Id": change.id,
            "SystemModstamp": change.modstamp.isoformat(),
            "IsDeleted": change.change == "deleted",
        }
        out.setdefault(change.sobject, []).append(row)
    return out


def _change(index: int, item: Any) -> Change:
    where = f"changes[{index}]"
    if not isinstance(item, dict):
        raise PushInvalid(f"{where} must be an object")
    sobject, record_id, kind = item.get("sobject"), item.get("id"), item.get("change")
    if sobject not in PUSHED_OBJECTS:
        raise PushInvalid(f"{where}.sobject must be one of {', '.join(sorted(PUSHED_OBJECTS))}")
    if not isinstance(record_id, str) or not _ID.match(record_id):
        raise PushInvalid(f"{where}.id must be an 18-character record id")
    if kind not in CHANGES:
        raise PushInvalid(f"{where}.change must be one of {', '.join(sorted(CHANGES))}")
    fields = item.get("fields", {})
    if not isinstance(fields, dict):
        raise PushInvalid(f"{where}.fields must be an object")
    return Change(str(sobject), record_id, str(kind), _modstamp(where, item), fields)


def _modstamp(where: str, item: Mapping[str, Any]) -> datetime:
    value = item.get("systemModstamp")
    try:
        stamp = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise PushInvalid(f"{where}.systemModstamp must be a date-time with its offset")
    try:
        return stamp.astimezone(UTC)
    except OverflowError:  # before year 1 or after 9999 once in UTC
        raise PushInvalid(f"{where}.systemModstamp is out of range") from None
