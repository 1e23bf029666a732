"""What the demo did, in figures: the verdict on the activities, quotasync's calls by API type
and purpose, the pauses and resumes, the Real-Time Sync round trips and the emails; as a table
for people and as JSON for machines."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from quotasync.demo import watch
from quotasync.demo.verdict import Verdict
from quotasync.store import mirror, outbox
from quotasync.store.tables import LedgerEntry, Workspace

LOGGING_PURPOSES = ("log_activity", "lookup", "create_lead")


@dataclass
class Summary:
    verdict: Verdict
    states: dict[str, int]
    calls: dict[str, dict[str, int]]  # API type -> purpose -> calls
    pauses: list[dict[str, Any]]  # of writing; "ended_at" None while still paused
    round_trips: list[dict[str, Any]]  # Real-Time → Interval (→ Real-Time when "back_at")
    emails: list[dict[str, Any]]
    leads: dict[str, int] = field(default_factory=dict)  # saved in Salesforce, in the mirror
    story: list[str] = field(default_factory=list)  # the milestones seen
    clock: dict[str, Any] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def resumes(self) -> int:
        return sum(1 for p in self.pauses if p["ended_at"] is not None)

    @property
    def complete_round_trips(self) -> int:
        return sum(1 for r in self.round_trips if r["back_at"] is not None)

    @property
    def logging_calls(self) -> int:
        """Data API calls spent getting activities into the org: writes, recipients looked up,
        Leads created (the mirror's sync is not counted: it serves the lookups of days)."""
        data = self.calls.get("data", {})
        return sum(data.get(purpose, 0) for purpose in LOGGING_PURPOSES)

    @property
    def per_data_call(self) -> float:
        """Activities in the org per Data API call spent logging them: the headline figure."""
        return self.verdict.once / self.logging_calls if self.logging_calls else 0.0

    @property
    def ok(self) -> bool:
        """Nothing missing or twice in the org; and, for a run that reached its end (not
        stopped by Ctrl-C), nothing left unwritten either."""
        return self.verdict.exact and (self.interrupted or self.verdict.waiting == 0)

    def as_dict(self) -> dict[str, Any]:
        v = self.verdict
        return {
            "ok": self.ok,
            "interrupted": self.interrupted,
            "activities": {
                "accepted": v.accepted,
                "in_org_once": v.once,
                "waiting": v.waiting,
                "missing": v.missing,
                "duplicated": v.duplicated,
                "states": self.states,
            },
            "calls": self.calls,
            "activities_per_data_call": round(self.per_data_call, 1),
            "pauses": self.pauses,
            "resumes": self.resumes,
            "rts_round_trips": self.round_trips,
            "rts_round_trips_completed": self.complete_round_trips,
            "emails": self.emails,
            "leads": self.leads,
            "story": {"seen": self.story, "complete": set(watch.MILESTONES) <= set(self.story)},
            "clock": self.clock,
        }


def collect(
    sessions: sessionmaker[Session], workspace_id: str, verdict: Verdict, leads_added: list[str]
) -> Summary:
    with sessions() as session:
        workspace = session.get(Workspace, workspace_id)
        assert workspace is not None
        episodes = sorted(watch.episodes(session, workspace_id).values(), key=_start)
        emails = sorted(watch.emails(session, workspace).values(), key=lambda e: (e.sent_at, e.id))
        mirrored = mirror.records(session, workspace_id, "Lead")
        return Summary(
            verdict=verdict,
            states=outbox.counts(session, workspace_id),
            calls=_calls(session, workspace_id),
            pauses=[_pause(e) for e in episodes if e.api != "apex"],
            round_trips=[_trip(e) for e in episodes if e.api == "apex"],
            emails=[_sent(e) for e in emails],
            leads={
                "saved_in_salesforce": len(leads_added),
                "in_the_mirror": sum(1 for i in leads_added if i in mirrored),
            },
        )


def _calls(session: Session, workspace_id: str) -> dict[str, dict[str, int]]:
    rows = session.execute(
        select(LedgerEntry.api, LedgerEntry.purpose, func.sum(LedgerEntry.calls))
        .where(LedgerEntry.workspace_id == workspace_id)
        .group_by(LedgerEntry.api, LedgerEntry.purpose)
    ).all()
    calls: dict[str, dict[str, int]] = {}
    for api, purpose, n in sorted(rows):
        if n:  # a refused connect is a row of 0 calls
            calls.setdefault(api, {})[purpose] = int(n)
    return calls


def _start(episode: watch.Episode) -> tuple[datetime, int]:
    return episode.started_at, episode.id


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _pause(episode: watch.Episode) -> dict[str, Any]:
    return {
        "api": episode.api,
        "reason": episode.reason,
        "started_at": _iso(episode.started_at),
        "ended_at": _iso(episode.ended_at),
        "figures": episode.figures,
    }


def _trip(episode: watch.Episode) -> dict[str, Any]:
    return {
        "reason": episode.reason,
        "interval_at": _iso(episode.started_at),
        "back_at": _iso(episode.ended_at),
    }


def _sent(email: watch.Email) -> dict[str, Any]:
    return {
        "kind": email.kind,
        "api": email.api,
        "subject": email.subject,
        "sent_at": _iso(email.sent_at),
        "recipients": email.recipients,
    }


# ---------------------------------------------------------------- for people


def render(summary: Summary, console: Console) -> None:
    table = Table(title="quotasync demo", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    v = summary.verdict
    table.add_row("activities accepted", f"{v.accepted:,}")
    table.add_row("  in the org exactly once", f"{v.once:,}")
    if v.waiting:
        table.add_row("  waiting (not written when stopped)", f"{v.waiting:,}")
    table.add_row("  missing", f"{v.missing:,}")
    table.add_row("  duplicated", f"{v.duplicated:,}")
    table.add_row(
        "activities per Data API call",
        f"{summary.per_data_call:,.1f} ({summary.logging_calls:,} calls to log them)",
    )
    for api, purposes in summary.calls.items():
        table.add_row(f"Salesforce calls: {api}", f"{sum(purposes.values()):,}")
        for purpose, calls in sorted(purposes.items()):
            table.add_row(f"  {purpose}", f"{calls:,}")
    table.add_row("pauses / resumes", f"{len(summary.pauses)} / {summary.resumes}")
    table.add_row("Real-Time → Interval → Real-Time", f"{summary.complete_round_trips}")
    table.add_row("emails to the admins", f"{len(summary.emails)}")
    if summary.leads:
        table.add_row(
            "Leads saved in Salesforce / in the mirror",
            f"{summary.leads['saved_in_salesforce']} / {summary.leads['in_the_mirror']}",
        )
    console.print(table)
    for pause in summary.pauses:
        span = _span(pause["started_at"], pause["ended_at"], "still paused")
        console.print(f"paused: {pause['api']}, {pause['reason']}, {span}")
    for trip in summary.round_trips:
        span = _span(trip["interval_at"], trip["back_at"], "still on Interval Sync")
        console.print(f"Interval Sync: {trip['reason']}, {span}")
    for email in summary.emails:
        console.print(f"email {_hhmm(email['sent_at'])}: {email['subject']}", soft_wrap=True)
    if not summary.ok:
        console.print("verdict: MISMATCH: some accepted activities are not in the org exactly once")
    elif v.waiting:
        console.print(
            "verdict: every accepted activity that was written is in the org exactly once "
            f"({v.waiting:,} were still waiting to be written)"
        )
    else:
        console.print("verdict: every accepted activity is in the org exactly once")


def _span(start: str, end: str | None, still: str) -> str:
    return f"{_hhmm(start)} → {_hhmm(end) if end else still + ' when stopped'}"


def _hhmm(iso: str | None) -> str:
    return datetime.fromisoformat(iso).strftime("%H:%M") if iso else "?"
