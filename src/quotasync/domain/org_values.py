"""The org's values checked before they enter the mirror (docs/SECURITY.md): what Salesforce
sends is untrusted input too, whether a sync's query answered it or a push carried it. A record
whose id is not a Salesforce id is refused whole; a field whose value Salesforce could not have
sent (a Name that is not text, an Email of a thousand characters, a reference that is not an id)
is dropped from the record, and the rest of the record is applied. Pure: the caller logs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

ID = re.compile(r"^[a-zA-Z0-9]{15}(?:[a-zA-Z0-9]{3})?$")
EMAIL_CHARS = 254  # what the mirror's email column holds, and more than Salesforce allows (80)
TEXT_CHARS = 131_072  # Salesforce's longest text field (Long Text Area)
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,79}$")  # an API field name (`Custom__c` included)
# Fields the mirror and its pages read as text or as an id: their values must be of that kind.
TEXTS = frozenset({"Name", "FirstName", "LastName", "Title", "Company", "Email", "Phone"})
IDS = frozenset({"Id", "AccountId", "OwnerId"})


@dataclass(frozen=True)
class Checked:
    row: dict[str, Any] | None  # None: the record is refused whole (its id is not an id)
    dropped: list[str] = field(default_factory=list)  # fields left out, by name


def check(row: Mapping[str, Any]) -> Checked:
    """The row as the mirror may take it, and the fields it left out."""
    record_id = row.get("Id")
    if not isinstance(record_id, str) or not ID.match(record_id):
        return Checked(None, ["Id"])
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in row.items():
        if name == "attributes" or (
            isinstance(name, str) and NAME.match(name) and _fits(name, value)
        ):
            kept[name] = value
        else:
            dropped.append(str(name)[:80])
    return Checked(kept, dropped)


def _fits(name: str, value: Any) -> bool:
    if value is None:
        return True
    if name in IDS:
        return isinstance(value, str) and ID.match(value) is not None
    if name == "Email":
        return isinstance(value, str) and len(value) <= EMAIL_CHARS and "\x00" not in value
    if name in TEXTS:
        return isinstance(value, str) and len(value) <= TEXT_CHARS and "\x00" not in value
    return _plain(value, depth=0)


def _plain(value: Any, depth: int) -> bool:
    """A value a Salesforce record's JSON can hold: text, a number, a boolean, or a compound
    field (an address, a location) of those, shallow."""
    if value is None or isinstance(value, bool | int | date):
        return True  # a date or datetime: rows quotasync builds from parsed values (pushes)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return len(value) <= TEXT_CHARS and "\x00" not in value
    if isinstance(value, Mapping) and depth < 2:
        return len(value) <= 50 and all(
            isinstance(k, str) and _plain(v, depth + 1) for k, v in value.items()
        )
    return False
