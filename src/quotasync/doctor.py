"""The doctor: what stands between a workspace and syncing, each check with pass/warn/fail and
its fix. These checks read what quotasync already knows (the connection, what the org's answers
said, open pauses) and spend no call; checks that must ask the org come with `quotasync doctor`.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from quotasync.domain import governor
from quotasync.store import episodes, limits
from quotasync.store.tables import Connection, Workspace
from quotasync.usage import VIEW_SETUP_NEEDED, Plain

PASS, WARN, FAIL = "pass", "warn", "fail"


@dataclass(frozen=True)
class Check(Plain):
    name: str
    status: str  # pass | warn | fail
    detail: str
    fix: str | None


@dataclass(frozen=True)
class Report(Plain):
    workspace: str
    status: str  # the worst of the checks
    checks: tuple[Check, ...]


def stored_checks(session: Session, workspace: Workspace) -> Report:
    connection = session.get(Connection, workspace.id)
    checks = [_connection(connection)]
    if connection is not None:
        checks += [_api_access(session, workspace), _view_setup(workspace)]
        checks.append(_org_use(session, workspace))
    found = {check.status for check in checks}
    worst = FAIL if FAIL in found else WARN if WARN in found else PASS
    return Report(workspace.id, worst, tuple(checks))


def _connection(connection: Connection | None) -> Check:
    if connection is None:
        return Check(
            "connection",
            FAIL,
            "no Salesforce org is connected",
            "connect one: quotasync connect --workspace W ...",
        )
    return Check(
        "connection",
        PASS,
        f"connected as {connection.username} to {connection.instance_url}",
        None,
    )


def _api_access(session: Session, workspace: Workspace) -> Check:
    paused = episodes.open_episode(session, workspace.id, "data")
    for reason, detail, fix in (
        (
            governor.Reason.NO_API_ACCESS,
            "the sync user cannot use the API: nothing syncs",
            "grant API Enabled to the sync user's profile or a permission set",
        ),
        (
            governor.Reason.AUTH,
            "Salesforce no longer accepts quotasync's grant: nothing syncs",
            "connect the org again",
        ),
    ):
        if paused is not None and paused.reason == reason.value:
            return Check("api_access", FAIL, detail, fix)
    return Check("api_access", PASS, "the sync user's calls are accepted", None)


def _view_setup(workspace: Workspace) -> Check:
    if workspace.limits_readable is False:
        return Check(
            "view_setup",
            WARN,
            f"{VIEW_SETUP_NEEDED}: only the Data API is governed and shown",
            "grant View Setup and Configuration to the sync user",
        )
    if workspace.limits_readable is None:
        return Check("view_setup", WARN, "not known yet: the org's limits were not read", None)
    return Check("view_setup", PASS, "the org's limits can be read", None)


def _org_use(session: Session, workspace: Workspace) -> Check:
    figure = limits.figures(session, workspace.id).get("data")
    if figure is None or not figure.max:
        return Check("org_use", WARN, "the org has not reported its Data API use yet", None)
    fraction = figure.used / figure.max
    detail = f"the org used {figure.used:,} of {figure.max:,} Data API calls ({fraction:.0%})"
    if fraction >= governor.GUARD:
        return Check("org_use", FAIL, detail, "turn off open tracking, or lower other apps' use")
    if fraction >= 0.75:
        return Check("org_use", WARN, detail, "consider turning off open tracking")
    return Check("org_use", PASS, detail, None)
