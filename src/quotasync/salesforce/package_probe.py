"""Asking an org which of quotasync's package parts it has: the subrequests (each one part of a
composite, so a whole look costs one call) and their answers read into `org_parts.Found`.

ApexClass and ApexTrigger are queried through the Data API's SOQL, which lists an org's Apex by
name and status. The Remote Site Setting is a Tooling API object, which a Data API composite
cannot carry: it is not asked here (the install records which address it allowed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from quotasync.domain.org_parts import CLASSES, SETTING, TRIGGERS, Found
from quotasync.salesforce import api

NOT_FOUND = 404


def setting() -> api.Subrequest:
    return api.describe(SETTING)


def triggers() -> api.Subrequest:
    names = ", ".join(f"'{n}'" for n in TRIGGERS.values())
    return api.query(f"SELECT Name, TableEnumOrId, Status FROM ApexTrigger WHERE Name IN ({names})")


def classes() -> api.Subrequest:
    names = ", ".join(f"'{n}'" for n in CLASSES)
    return api.query(f"SELECT Name, Status FROM ApexClass WHERE Name IN ({names})")


Answer = Callable[[str], tuple[int, Any]]  # a reference's (HTTP status, body)


def found(answer: Answer, *, assigned: Any = None) -> Found:
    """What the answers to `setting`, `triggers` and `classes` (and, when asked, "task" and
    "event" describes) say; `assigned` is the permission set names, when known."""
    return Found(
        task_fields=_fields(answer("task")),
        event_fields=_fields(answer("event")),
        setting_fields=_setting_fields(answer("setting")),
        triggers=_rows(
            answer("triggers"),
            lambda r: (str(r.get("Name")), (str(r.get("TableEnumOrId")), str(r.get("Status")))),
        ),
        classes=_rows(answer("classes"), lambda r: (str(r.get("Name")), str(r.get("Status")))),
        assigned=assigned,
    )


def _fields(part: tuple[int, Any]) -> set[str] | None:
    status, body = part
    if not 200 <= status < 300 or not isinstance(body, Mapping):
        return None
    return {str(f.get("name")) for f in body.get("fields") or [] if isinstance(f, Mapping)}


def _setting_fields(part: tuple[int, Any]) -> set[str] | None:
    status, _ = part
    if status == NOT_FOUND:  # the object is not in the org
        return set()
    return _fields(part)


def _rows(part: tuple[int, Any], pair: Callable[[Mapping[str, Any]], tuple[str, Any]]) -> Any:
    status, body = part
    if not 200 <= status < 300 or not isinstance(body, Mapping):
        return None
    return dict(pair(r) for r in body.get("records") or [] if isinstance(r, Mapping))
