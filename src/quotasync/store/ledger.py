"""The API-call ledger: one row per request quotasync sends to Salesforce, written before it is sent."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from quotasync.store.tables import LedgerEntry, LedgerShare

WINDOW = timedelta(hours=24)


@dataclass(frozen=True)
class Call:
    workspace_id: str
    api: str  # data | bulk | bulk_query | apex | auth (never counted)
    purpose: str
    calls: int
    at: datetime
    method: str
    path: str
    users: Mapping[str, float]  # user email -> share of this call


class Ledger:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self._sessions = sessions

    def record(self, calls: list[Call]) -> list[int]:
        """Write the calls one request is about to make; returns their ledger ids."""
        with self._sessions.begin() as session:
            entries = [
                LedgerEntry(
                    workspace_id=c.workspace_id, api=c.api, purpose=c.purpose, calls=c.calls,
                    at=c.at, method=c.method, path=c.path[:300], status=None,
                )
                for c in calls
            ]  # fmt: skip
            session.add_all(entries)
            session.flush()
            for entry, call in zip(entries, calls, strict=True):
                session.add_all(
                    LedgerShare(ledger_id=entry.id, user_email=email, share=share)
                    for email, share in call.users.items()
                )
            return [e.id for e in entries]

    def settle(self, ids: list[int], status: int | None, *, charged: bool = True) -> None:
        """Note how the request ended (None: no answer came back).

        A request the org refused before counting it (`charged=False`) keeps its row for the
        record but no longer counts as a call.
        """
        if not ids:
            return
        values: dict[str, object] = {"status": status}
        if not charged:
            values["calls"] = 0
        with self._sessions.begin() as session:
            session.execute(update(LedgerEntry).where(LedgerEntry.id.in_(ids)).values(**values))

    def used(self, workspace_id: str, api: str, now: datetime) -> int:
        with self._sessions() as session:
            total = session.scalar(
                select(func.coalesce(func.sum(LedgerEntry.calls), 0)).where(
                    LedgerEntry.workspace_id == workspace_id,
                    LedgerEntry.api == api,
                    LedgerEntry.at > now - WINDOW,
                )
            )
        return int(total or 0)

    def by_purpose(self, workspace_id: str) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(
                select(LedgerEntry.purpose, func.sum(LedgerEntry.calls))
                .where(LedgerEntry.workspace_id == workspace_id, LedgerEntry.api == "data")
                .group_by(LedgerEntry.purpose)
            ).all()
        return {purpose: int(calls) for purpose, calls in rows}
