"""The API-call ledger: one row per request quotasync sends to Salesforce, written before it is sent."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from quotasync.errors import QuotaExhausted
from quotasync.store import retrying
from quotasync.store.tables import LedgerEntry, LedgerShare, Workspace

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

    def reserve(self, calls: list[Call], caps: Mapping[str, int]) -> list[int]:
        """Write the calls a request is about to make, or none of them if any API type with a cap
        would go past it (raises QuotaExhausted).

        Atomic across threads and processes: the transaction first updates the workspace's row,
        which takes SQLite's write lock or PostgreSQL's row lock before anything is counted, so
        two workers can never both see the same room.
        """
        if not calls:
            return []
        workspace_id = calls[0].workspace_id

        def reserve(session: Session) -> list[int]:
            session.execute(
                update(Workspace)
                .where(Workspace.id == workspace_id)
                .values(share_data=Workspace.share_data)
            )
            for api, cost in _costs(calls).items():
                cap = caps.get(api)
                if cap is None:
                    continue
                used = used_in_window(session, workspace_id, api, calls[0].at)
                if used + cost > cap:
                    raise QuotaExhausted(workspace_id, api, used, cost, cap)
            return self._write(session, calls)

        return retrying.transaction(self._sessions, reserve)

    def record(self, calls: list[Call]) -> list[int]:
        """Write the calls one request is about to make, with no cap; returns their ledger ids."""
        return retrying.transaction(self._sessions, lambda session: self._write(session, calls))

    def entries(self, workspace_id: str, api: str, now: datetime) -> list[tuple[datetime, int]]:
        """quotasync's own calls of one type in the window ending now, oldest first."""
        with self._sessions() as session:
            return entries_in_window(session, workspace_id, api, now)

    @staticmethod
    def _write(session: Session, calls: list[Call]) -> list[int]:
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

    def settle(
        self,
        ids: list[int],
        status: int | None,
        *,
        charged: bool = True,
        at: datetime | None = None,
    ) -> None:
        """Note how the request ended (None: no answer came back).

        A request the org refused before counting it (`charged=False`) keeps its row for the
        record but no longer counts as a call.
        """
        if not ids:
            return
        values: dict[str, object] = {"status": status}
        if status is not None:
            values["settled_at"] = at  # answered then: counted by the org before that
        if not charged:
            values["calls"] = 0
        retrying.transaction(
            self._sessions,
            lambda session: session.execute(
                update(LedgerEntry).where(LedgerEntry.id.in_(ids)).values(**values)
            ),
        )

    def used(self, workspace_id: str, api: str, now: datetime) -> int:
        with self._sessions() as session:
            return used_in_window(session, workspace_id, api, now)

    def by_purpose(self, workspace_id: str) -> dict[str, int]:
        with self._sessions() as session:
            rows = session.execute(
                select(LedgerEntry.purpose, func.sum(LedgerEntry.calls))
                .where(LedgerEntry.workspace_id == workspace_id, LedgerEntry.api == "data")
                .group_by(LedgerEntry.purpose)
            ).all()
        return {purpose: int(calls) for purpose, calls in rows}


def entries_in_window(
    session: Session, workspace_id: str, api: str, now: datetime
) -> list[tuple[datetime, int]]:
    """(time, calls) of quotasync's own calls of one type in the window ending now, oldest first."""
    rows = session.execute(
        select(LedgerEntry.at, LedgerEntry.calls)
        .where(
            LedgerEntry.workspace_id == workspace_id,
            LedgerEntry.api == api,
            LedgerEntry.at > now - WINDOW,
            LedgerEntry.calls > 0,
        )
        .order_by(LedgerEntry.at)
    ).all()
    return [(at, int(calls)) for at, calls in rows]


def answered_by(
    session: Session,
    workspace_id: str,
    api: str,
    moment: datetime,
    *,
    excluding: Iterable[int] = (),
) -> int:
    """quotasync's calls of one type in the window before `moment` that had been answered by
    then (leaving out the rows `excluding`): the org had surely counted them in any figure it
    reported for a later request."""
    query = select(func.coalesce(func.sum(LedgerEntry.calls), 0)).where(
        LedgerEntry.workspace_id == workspace_id,
        LedgerEntry.api == api,
        LedgerEntry.at > moment - WINDOW,
        LedgerEntry.settled_at <= moment,
    )
    left_out = list(excluding)
    if left_out:
        query = query.where(LedgerEntry.id.not_in(left_out))
    return int(session.scalar(query) or 0)


def used_in_window(
    session: Session, workspace_id: str, api: str, end: datetime, *, later_too: bool = True
) -> int:
    """quotasync's calls of one type in the 24 hours before `end`; with `later_too`, also those
    made after it (a reservation counts everything still in the window)."""
    query = select(func.coalesce(func.sum(LedgerEntry.calls), 0)).where(
        LedgerEntry.workspace_id == workspace_id,
        LedgerEntry.api == api,
        LedgerEntry.at > end - WINDOW,
    )
    if not later_too:
        query = query.where(LedgerEntry.at <= end)
    return int(session.scalar(query) or 0)


def _costs(calls: list[Call]) -> dict[str, int]:
    out: dict[str, int] = {}
    for call in calls:
        if call.calls:
            out[call.api] = out.get(call.api, 0) + call.calls
    return out
