"""Unmatched recipients, where the workspace creates Leads for them: a Lead per unknown
recipient, as collections creates sent five to a composite, then kept in the mirror."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from quotasync.clock import Clock
from quotasync.domain import batching, mapping
from quotasync.engine.composites import Composites, Part
from quotasync.salesforce import api
from quotasync.store import mirror, unknown_emails


def create(
    composites: Composites,
    sessions: sessionmaker[Session],
    workspace_id: str,
    clock: Clock,
    unknown: Mapping[str, str],
    users: Mapping[str, str],
) -> dict[str, str]:
    """Create a Lead per unknown recipient (collections creates, five to a composite);
    email -> Lead id. A call refused whole raises: the batch waits and is tried again."""
    client = composites.client
    created: dict[str, str] = {}
    chunks = batching.chunks(sorted(unknown))
    parts = [
        Part(
            api.create_collection(
                "Lead",
                [mapping.lead_fields(e, unknown[e], users.get(unknown[e])) for e in chunk],
            )
        )
        for chunk in chunks
    ]
    done = 0
    for call in composites.calls(parts):
        emails = [e for chunk in chunks[done : done + len(call)] for e in chunk]
        shares = Counter(unknown[e] for e in emails)
        with client.http.purpose("create_lead", {u: n / len(emails) for u, n in shares.items()}):
            answers = api.composite(client, [part.sub for part in call])
        for chunk, answer in zip(chunks[done : done + len(call)], answers, strict=True):
            for email, item in zip(chunk, _listed(answer), strict=False):
                saved = api.saved(item)
                if saved is not None and saved.ok and saved.record_id:
                    created[email] = saved.record_id
        done += len(call)
    if created:
        with sessions.begin() as session:
            mirror.put(
                session,
                workspace_id,
                "Lead",
                [{"Id": i, "Email": e} for e, i in created.items()],
                clock.now(),
            )
            unknown_emails.forget_unknown(session, workspace_id, list(created))
    return created


def _listed(answer: api.Answer) -> list[Any]:
    return answer.body if answer.ok and isinstance(answer.body, list) else []
