"""Accepting activities from the email product: validate each item, store the good ones durably.

Shared by the HTTP API and `quotasync activities import`. Bad items are reported one by one with
the field and the problem; good items of the same request are stored, in one transaction, before
anything is acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.domain.activities import Activity, InvalidActivity, parse_activity
from quotasync.store import outbox, retrying

CHUNK = 1000  # items per transaction when importing a file


@dataclass
class Summary:
    accepted: int = 0
    duplicates: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "errors": self.errors}


def problems_of(error: InvalidActivity) -> list[dict[str, str]]:
    return [{"field": p.field, "message": p.message} for p in error.problems]


class Ingest:
    def __init__(self, sessions: sessionmaker[Session], clock: Clock) -> None:
        self.sessions = sessions
        self.clock = clock

    def accept(
        self, workspace_id: str, items: Sequence[object], *, where: str = "index", first: int = 0
    ) -> Summary:
        summary = Summary()
        valid: list[Activity] = []
        for position, item in enumerate(items, first):
            try:
                valid.append(parse_activity(item))
            except InvalidActivity as error:
                entry: dict[str, Any] = {
                    where: position,
                    "status": 422,
                    "problems": problems_of(error),
                }
                if error.activity_id is not None:
                    entry["id"] = error.activity_id
                summary.errors.append(entry)
        if valid:
            # Stored before it is acknowledged: a store failing for a moment is waited out.
            stored = retrying.transaction(
                self.sessions,
                lambda session: outbox.accept(session, workspace_id, valid, self.clock.now()),
            )
            summary.accepted, summary.duplicates = stored.stored, stored.duplicates
        return summary

    def from_lines(
        self, workspace_id: str, lines: IO[bytes], on_chunk: Callable[[int], None] | None = None
    ) -> Summary:
        total = Summary()
        chunk: list[object] = []
        start = 1
        number = 0
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                chunk.append(None)  # keeps line numbers; reported below
                continue
            try:
                chunk.append(json.loads(raw))
            except json.JSONDecodeError as exc:
                # The decoder's own position is within this one line: said as its column.
                chunk.append(_Unreadable(f"{exc.msg} at column {exc.colno}"))
            except ValueError as exc:  # bytes that are not UTF-8
                chunk.append(_Unreadable(str(exc)))
            if len(chunk) >= CHUNK:
                self._merge(total, workspace_id, chunk, start)
                start, chunk = number + 1, []
                if on_chunk is not None:
                    on_chunk(lines.tell())
        if chunk:
            self._merge(total, workspace_id, chunk, start)
        if on_chunk is not None:
            on_chunk(lines.tell())
        return total

    def _merge(self, total: Summary, workspace_id: str, chunk: list[object], start: int) -> None:
        items: list[object] = []
        positions: list[int] = []
        for offset, item in enumerate(chunk):
            if item is None:
                continue
            if isinstance(item, _Unreadable):
                total.errors.append(
                    {
                        "line": start + offset,
                        "status": 422,
                        "problems": [{"field": "", "message": f"not JSON: {item.reason}"}],
                    }
                )
                continue
            items.append(item)
            positions.append(start + offset)
        summary = self.accept(workspace_id, items, where="line")
        for error in summary.errors:
            error["line"] = positions[error["line"]]
        total.accepted += summary.accepted
        total.duplicates += summary.duplicates
        total.errors += summary.errors


@dataclass(frozen=True)
class _Unreadable:
    reason: str
