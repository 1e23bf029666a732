"""Hour-by-hour history for the charts: the org's figures sampled once an hour, quotasync's calls
per hour from the ledger, and a member's share of them."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from quotasync.domain import hourly
from quotasync.store.tables import LedgerEntry, LedgerShare, OrgSample

KEEP = timedelta(hours=49)  # a day shown, and the day (and hour) before it: what left the window


def sample(
    session: Session, workspace_id: str, api: str, at: datetime, used: int, others_used: int
) -> None:
    """Keep `at`'s figure as its hour's sample when it is the hour's latest."""
    hour = hourly.hour_of(at)
    row = session.get(OrgSample, (workspace_id, api, hour))
    if row is None:
        session.add(
            OrgSample(
                workspace_id=workspace_id,
                api=api,
                hour=hour,
                observed_at=at,
                used=used,
                others_used=others_used,
            )
        )
        # A new hour: the time to let go of what no chart will read again.
        session.execute(
            delete(OrgSample).where(
                OrgSample.workspace_id == workspace_id,
                OrgSample.api == api,
                OrgSample.hour < hour - KEEP,
            )
        )
    elif row.observed_at <= at:
        row.observed_at, row.used, row.others_used = at, used, others_used


def other_apps_per_hour(
    session: Session, workspace_id: str, apis: tuple[str, ...], starts: list[datetime]
) -> list[int | None]:
    """Other apps' calls in each hour of `starts`, added over `apis` (Bulk has two)."""
    totals: list[int | None] = [None] * len(starts)
    for api in apis:
        rows = session.execute(
            select(OrgSample.hour, OrgSample.others_used).where(
                OrgSample.workspace_id == workspace_id,
                OrgSample.api == api,
                OrgSample.hour >= hourly.since(starts),
            )
        ).all()
        made = hourly.other_apps({hour: int(used) for hour, used in rows}, starts)
        totals = [_add(total, part) for total, part in zip(totals, made, strict=True)]
    return totals


def own_per_hour(
    session: Session, workspace_id: str, apis: tuple[str, ...], starts: list[datetime]
) -> list[int]:
    rows = session.execute(
        select(LedgerEntry.at, LedgerEntry.calls).where(
            LedgerEntry.workspace_id == workspace_id,
            LedgerEntry.api.in_(apis),
            LedgerEntry.at >= starts[0],
        )
    ).all()
    return [round(calls) for calls in hourly.per_hour(((at, n) for at, n in rows), starts)]


def member_per_hour(
    session: Session, workspace_id: str, email: str, starts: list[datetime]
) -> list[float]:
    """Data API calls spent on one member's activity per hour (a batched call split by records)."""
    rows = session.execute(
        select(LedgerEntry.at, LedgerEntry.calls * LedgerShare.share)
        .select_from(LedgerShare)
        .join(LedgerEntry, LedgerEntry.id == LedgerShare.ledger_id)
        .where(
            LedgerEntry.workspace_id == workspace_id,
            LedgerEntry.api == "data",
            LedgerShare.user_email == email,
            LedgerEntry.at >= starts[0],
        )
    ).all()
    return [round(c, 2) for c in hourly.per_hour(((at, float(n)) for at, n in rows), starts)]


def _add(total: int | None, part: int | None) -> int | None:
    if part is None:
        return total
    return part if total is None else total + part
