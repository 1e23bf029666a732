"""The doctor's judging: what the org's answers and the store's figures mean for syncing, each
check pass, warn, fail or skip (not run: an earlier check failed, or it does not apply), in one
line, with its fix. Pure: the asking (the one call to the org, the store's figures) is in
`quotasync/doctor.py`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from quotasync import usage
from quotasync.domain import org_parts, quota
from quotasync.domain.governor import Reason
from quotasync.domain.realtime import SyncMode
from quotasync.errors import GrantRefused, NoAnswer, SalesforceError, SessionExpired, Unreachable
from quotasync.salesforce import api, package_probe
from quotasync.store.tables import Connection, Workspace

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
# What the CLI and the page show beside the word: never colour alone.
MARKERS = {PASS: "\N{CHECK MARK}", WARN: "!", FAIL: "\N{BALLOT X}", SKIP: "\N{EN DASH}"}
FIELD = "QS_Activity_Id__c"
SETTING = "QS_Sync_Setting__c"
WARN_AT = 0.75  # of the org's Data API total: time to spend fewer calls
APPROVAL = "user hasn't approved this consumer"  # the error_description Salesforce sends

INCLUDED = {
    "Enterprise Edition",
    "Unlimited Edition",
    "Developer Edition",
}  # Performance: Unlimited
ADD_ON = {"Professional Edition", "Team Edition"}  # Team is what Group Edition reports

GRANT_API = (
    "in Salesforce Setup, open the sync user's profile (or a permission set assigned to them) "
    "and tick System Permissions > API Enabled"
)
GRANT_VIEW_SETUP = (
    "in Salesforce Setup, open the sync user's profile (or a permission set assigned to them) "
    "and tick System Permissions > View Setup and Configuration"
)
PRE_AUTHORIZE = (
    "an org admin must pre-authorize quotasync: Setup > Connected Apps > Manage Connected Apps > "
    'quotasync > Edit Policies > Permitted Users: "Admin approved users are pre-authorized", '
    "then Manage Profiles (or Manage Permission Sets) and add the sync user's profile; then run "
    "the doctor again"
)
ADD_FIELD = (
    "or by hand, in Salesforce Setup > Object Manager > Activity > Fields & Relationships > New: Text, "
    f'length 255, Field Label "QS Activity Id", Field Name "{FIELD.removesuffix("__c")}", tick '
    '"External ID"; make it visible to the sync user\'s profile and Save (Task and Event share '
    "Activity's custom fields)"
)
SWITCH_AGAIN = "switch Real-Time Sync off and on again on the Integrations page"
API_TITLES = {"data": "Data API", "bulk": "Bulk API", "apex": "Apex executions"}


@dataclass(frozen=True)
class Check(usage.Plain):
    name: str
    title: str
    status: str  # pass | warn | fail | skip
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class Report(usage.Plain):
    workspace: str
    at: datetime
    status: str  # the worst of the checks (skip counts as pass)
    summary: str
    calls: int  # Data API calls the doctor spent, as ledgered with purpose "doctor"
    checks: tuple[Check, ...]


_ALL = (
    ("connected_app", "Connected app approved"),
    ("edition", "Edition and API access"),
    ("api_enabled", "Sync user: API Enabled"),
    ("view_setup", "Sync user: View Setup and Configuration"),
    ("org_use", "The org's API use, last 24 hours"),
    *((f"{api}_share", f"{title}: share and state") for api, title in API_TITLES.items()),
    ("activity_field", f"{FIELD} on Task and Event"),
    ("org_package", "quotasync's package in the org"),
    ("realtime", "Real-Time Sync"),
)
_TITLES = dict(_ALL)


def _skipped(name: str, title: str, why: str) -> Check:
    return Check(name, title, SKIP, f"not checked: {why}")


def _check(name: str, status: str, detail: str, fix: str | None = None) -> Check:
    return Check(name, _TITLES[name], status, detail, fix)


def report(workspace_id: str, at: datetime, checks: list[Check], calls: int) -> Report:
    found = [c.status for c in checks]
    worst = FAIL if FAIL in found else WARN if WARN in found else PASS
    failed = [c for c in checks if c.status == FAIL]
    if failed:
        summary = f"{len(failed)} of {len(checks)} checks failed; first: {failed[0].detail}"
    elif worst == WARN:
        summary = "Nothing stops syncing, but some checks warn."
    else:
        summary = "Nothing stands in the way of syncing."
    return Report(workspace_id, at, worst, summary, calls, tuple(checks))


@dataclass
class Answers:
    """What the doctor's one call found out, or why it could not be made."""

    problem: str | None = None  # the call was not made, or not answered
    refusal: str | None = None  # the errorCode of a refused call
    message: str = ""
    parts: dict[str, tuple[int, Any]] = field(default_factory=dict)  # referenceId -> answer
    used: int | None = None  # the org's Data API use and total, from Sforce-Limit-Info
    total: int | None = None
    calls: int = 0

    def body(self, reference: str) -> Any:
        status, body = self.parts.get(reference, (0, None))
        return body if 200 <= status < 300 else None

    def error(self, reference: str) -> str:
        status, body = self.parts.get(reference, (0, None))
        return api.fault(body).message or f"HTTP {status}"


def connection(connection: Connection | None) -> Check:
    title = "Salesforce connection"
    if connection is None:
        return Check(
            "connection",
            title,
            FAIL,
            "no Salesforce org is connected: nothing syncs",
            "connect one: quotasync connect --workspace W ... (or Integrations > Connect)",
        )
    detail = f"connected as {connection.username} to {connection.instance_url}"
    return Check("connection", title, PASS, detail)


def renewal(username: str, error: SalesforceError | None) -> Check:
    """What renewing the session said: Salesforce refuses it when the connected app is not
    approved for the user."""
    if error is not None:
        said = str(error)
        if isinstance(error, GrantRefused) and error.description == APPROVAL:
            detail = (
                f"Salesforce refuses quotasync's session for {username}: invalid_grant, {APPROVAL}"
            )
            return _check("connected_app", FAIL, detail, PRE_AUTHORIZE)
        if isinstance(error, Unreachable) and error.cause is not NoAnswer.UNREADABLE:
            return _check("connected_app", FAIL, said, "check the network and the login URL")
        if isinstance(error, SessionExpired):  # nothing to renew it with: no refresh token
            detail = "the connection holds no refresh token: when its session ends, syncing stops"
            return _check("connected_app", WARN, detail, "connect the org again")
        return _check("connected_app", FAIL, said, "connect the org again")
    detail = f"Salesforce renewed quotasync's session for {username}"
    return _check("connected_app", PASS, detail)


def not_connected() -> list[Check]:
    """The org's checks, none run: there is no org to ask."""
    return [_skipped(name, title, "no Salesforce org is connected") for name, title in _ALL]


def _not_asked(answers: Answers) -> str | None:
    """Why the org's answer to a question is not known, if it is not."""
    refusals = {
        "API_DISABLED_FOR_ORG": "the org refuses API calls (see Edition and API access)",
        "API_CURRENTLY_DISABLED": "the sync user may not use the API (see API Enabled)",
        "INVALID_SESSION_ID": "Salesforce gave quotasync no session (see Connected app approved)",
    }
    if answers.problem is not None:
        return answers.problem
    if answers.refusal is not None:
        return refusals.get(
            answers.refusal,
            f"Salesforce refused the doctor's call ({answers.refusal}: {answers.message})",
        )
    return None


def org_checks(
    answers: Answers,
    workspace: Workspace,
    username: str,
    view: usage.UsageView,
    stored: Any | None,
    last_push: datetime | None,
    callback_url: str | None,
) -> list[Check]:
    """What the org's answers and the store's figures (`view`, the stored Data figure, the last
    Real-Time Sync push) mean, check by check."""
    view_setup = _view_setup(answers, workspace, username)
    lacks_view_setup = view_setup.fix == GRANT_VIEW_SETUP
    return [
        _edition(answers),
        _api_enabled(answers, username),
        view_setup,
        _org_use(answers, workspace, view, stored),
        *(_share(api, view.apis[api], lacks_view_setup) for api in API_TITLES),
        _activity_field(answers, workspace.id),
        _package(answers, workspace, callback_url),
        _realtime(answers, workspace, last_push, callback_url),
    ]


def _edition(answers: Answers) -> Check:
    name = "edition"
    if answers.refusal == "API_DISABLED_FOR_ORG":
        return _check(
            name,
            FAIL,
            "the org has no API access (API_DISABLED_FOR_ORG): its edition does not include the "
            "API, so nothing syncs",
            "Professional or Group Edition: buy the API add-on from your Salesforce account "
            "executive; Contact Manager, Essentials and other editions cannot have it: upgrade to "
            "Enterprise Edition or above",
        )
    if answers.refusal == "API_CURRENTLY_DISABLED":
        detail = "the org has API access (Salesforce refused the sync user, not the org)"
        return _check(name, PASS, detail + "; its edition could not be read")
    why = _not_asked(answers)
    if why is not None:
        return _skipped(name, _TITLES[name], why)
    records = (answers.body("org") or {}).get("records") or []
    if not records:
        return _check(name, WARN, f"the org's edition could not be read: {answers.error('org')}")
    kind = str(records[0].get("OrganizationType"))
    shown = "Group Edition (reported as Team Edition)" if kind == "Team Edition" else kind
    if kind in INCLUDED:
        return _check(name, PASS, f"{shown}: API access is included")
    if kind in ADD_ON:
        return _check(name, PASS, f"{shown} with the API add-on: the org answered the call")
    return _check(
        name,
        WARN,
        f"{shown} does not include API access, yet the org answered the call",
        "make sure the org's contract includes API access, or calls may stop",
    )


def _api_enabled(answers: Answers, username: str) -> Check:
    name = "api_enabled"
    if answers.refusal == "API_CURRENTLY_DISABLED":
        detail = (
            f"the sync user {username} lacks API Enabled: Salesforce refuses every call "
            "(API_CURRENTLY_DISABLED), so nothing syncs"
        )
        return _check(name, FAIL, detail, GRANT_API)
    why = _not_asked(answers)
    if why is not None:
        return _skipped(name, _TITLES[name], why)
    return _check(
        name, PASS, f"the sync user {username} has API Enabled: the org answered the call"
    )


def _view_setup(answers: Answers, workspace: Workspace, username: str) -> Check:
    name = "view_setup"
    why = _not_asked(answers)
    if why is not None:
        return _skipped(name, _TITLES[name], why)
    rows = (answers.body("perms") or {}).get("records")
    if rows is not None:
        granted = any(_granted(row, "PermissionsViewSetup") for row in rows)
    elif workspace.limits_readable is not None:
        granted = workspace.limits_readable  # what `/limits` answered the worker
    else:
        detail = f"the sync user's permissions could not be read: {answers.error('perms')}"
        return _check(name, WARN, detail)
    if granted:
        detail = (
            f"the sync user {username} has it: Data, Bulk and Apex limits are governed and shown"
        )
        return _check(name, PASS, detail)
    detail = (
        f"the sync user {username} lacks View Setup and Configuration: only the Data API's "
        "limits are governed and shown; the Bulk API is not used and Real-Time Sync (Apex) is unavailable"
    )
    return _check(name, WARN, detail, GRANT_VIEW_SETUP)


def _granted(row: Any, permission: str) -> bool:
    permission_set = row.get("PermissionSet") if isinstance(row, Mapping) else None
    return isinstance(permission_set, Mapping) and permission_set.get(permission) is True


def _org_use(
    answers: Answers, workspace: Workspace, view: usage.UsageView, stored: Any | None
) -> Check:
    name = "org_use"
    if answers.refusal == "REQUEST_LIMIT_EXCEEDED":
        detail = (
            "the org's daily API limit is spent: Salesforce refuses calls (REQUEST_LIMIT_EXCEEDED)"
        )
        return _check(name, FAIL, detail, _spend_less(workspace))
    if answers.refusal is not None:
        return _skipped(name, _TITLES[name], _not_asked(answers) or "")
    used, total, when = answers.used, answers.total, "now"
    if total is None and stored is not None:
        used, total, when = stored.used, stored.max, f"as of {_when(stored.observed_at)}"
    if not total or used is None:
        return _skipped(name, _TITLES[name], "the org has not reported its Data API use yet")
    fraction = used / total
    detail = (
        f"the org used {used:,} of {total:,} Data API calls in the last 24 hours ({fraction:.0%}, "
        f"{when}); quotasync {view.apis['data'].quotasync_used:,} of them"
    )
    if fraction >= quota.GUARD:
        detail += ": past the 90% guard, quotasync makes no Data call until use falls"
        return _check(name, FAIL, detail, _spend_less(workspace))
    if fraction >= WARN_AT:
        return _check(name, WARN, detail + ": close to the 90% guard", _spend_less(workspace))
    return _check(name, PASS, detail)


def _spend_less(workspace: Workspace) -> str:
    if workspace.open_tracking:
        return (
            "turn off open tracking (Integrations > Settings): every open and click costs a call; "
            "and ask the owners of the org's other apps to call less"
        )
    return (
        "open tracking is off already: ask the owners of the org's other apps to call less, or "
        "buy more API calls from Salesforce"
    )


REASONS: dict[str, str] = {  # by governor.Reason; the store's strings equal them
    Reason.WORKSPACE_LIMIT: "quotasync's share is spent",
    Reason.ORG_GUARD: "the org is past 90% of its limit (all apps)",
    Reason.SALESFORCE_REFUSED: "Salesforce refused calls (REQUEST_LIMIT_EXCEEDED)",
    Reason.NO_API_ACCESS: "Salesforce refuses the sync user's calls (no API access)",
    Reason.AUTH: "Salesforce no longer accepts quotasync's grant",
}
MEANWHILE = {
    "data": "activities are kept and sent when syncing resumes",
    "bulk": "a big backlog goes through sObject Collections meanwhile",
    "apex": "Real-Time Sync rolled over to Interval Sync meanwhile",
}


def _share(api: str, used: usage.ApiUsage, lacks_view_setup: bool) -> Check:
    name, title = f"{api}_share", API_TITLES[api]
    if not used.available:
        why = str(used.unavailable_reason)
        if lacks_view_setup:
            why = (
                "without View Setup and Configuration, quotasync neither governs nor shows this "
                "quota (see Sync user: View Setup and Configuration)"
            )
        return _skipped(name, _TITLES[name], why)
    if used.pauses:
        pause = used.pauses[0]
        resume = ""
        if pause.resume_at is not None:
            verb = "resumes" if pause.resume_predicted else "may resume"
            resume = f"; {verb} at {_when(pause.resume_at)}"
        detail = (
            f"paused since {_when(pause.started_at)}: {REASONS.get(pause.reason, pause.reason)}"
            f"{resume}; {MEANWHILE[api]}"
        )
        fix = _pause_fix(pause.reason, title, used.share_percent)
        return _check(name, FAIL if api == "data" else WARN, detail, fix)
    figures = used.figures
    if figures is None:
        detail = (
            f"running; quotasync used {used.quotasync_used:,} calls of a {used.share_percent}% "
            "share (the org has not reported this quota yet)"
        )
        return _check(name, PASS, detail)
    detail = (
        f"running; quotasync used {used.quotasync_used:,} of its {used.share_percent}% share "
        f"({figures.share_calls:,} calls)"
    )
    if figures.share_calls and used.quotasync_used >= figures.warning_calls:
        fix = f"raise the {title} share on the Integrations page, or turn off open tracking"
        return _check(name, WARN, detail + ", past the warning line", fix)
    return _check(name, PASS, detail)


def _pause_fix(reason: str, title: str, percent: int) -> str:
    fixes: dict[str, str] = {
        Reason.WORKSPACE_LIMIT: (
            f"raise quotasync's {title} share (now {percent}%) on the Integrations page, turn "
            "off open tracking, or wait until it resumes"
        ),
        Reason.ORG_GUARD: (
            "other apps use most of the org's quota: ask their owners to call less, or turn off "
            "open tracking; quotasync looks again at every recheck"
        ),
        Reason.SALESFORCE_REFUSED: (
            "the org's own limit is spent: wait for calls to leave the 24-hour window, or buy "
            "more API calls from Salesforce"
        ),
        Reason.NO_API_ACCESS: GRANT_API,
        Reason.AUTH: "connect the org again",
    }
    return fixes.get(reason, "see the Integrations page")


def _activity_field(answers: Answers, workspace_id: str) -> Check:
    name = "activity_field"
    why = _not_asked(answers)
    if why is not None:
        return _skipped(name, _TITLES[name], why)
    missing, plain, unread = [], [], []
    for sobject in ("Task", "Event"):
        described = answers.body(sobject.lower())
        if not isinstance(described, Mapping):
            unread.append(f"{sobject} ({answers.error(sobject.lower())})")
            continue
        found = next((f for f in described.get("fields", []) if f.get("name") == FIELD), None)
        if found is None:
            missing.append(sobject)
        elif not found.get("externalId"):
            plain.append(sobject)
    if missing:
        detail = (
            f"{FIELD} is missing on {' and '.join(missing)}: those activities cannot be logged "
            "(every write is an upsert by it)"
        )
        return _check(name, FAIL, detail, f"{org_parts.install_fix(workspace_id)}; {ADD_FIELD}")
    if plain:
        detail = f"{FIELD} on {' and '.join(plain)} is not an External ID: upserts by it fail"
        fix = (
            "in Salesforce Setup > Object Manager > Activity > Fields & Relationships > "
            'QS Activity Id > Edit: tick "External ID" and Save'
        )
        return _check(name, FAIL, detail, fix)
    if unread:
        return _check(name, WARN, f"could not describe {' and '.join(unread)}")
    detail = f"Task and Event have {FIELD} as an External ID: a retry never logs twice"
    return _check(name, PASS, detail)


def _package(answers: Answers, workspace: Workspace, callback_url: str | None) -> Check:
    """Each part of the org package: the fields, the setting object, the triggers and classes,
    the sync user's permission set, and (when quotasync installed it) the Remote Site."""
    name = "org_package"
    why = _not_asked(answers)
    if why is not None:
        return _skipped(name, _TITLES[name], why)
    perms = answers.body("perms")
    assigned = None
    if isinstance(perms, Mapping):
        assigned = {
            str((r.get("PermissionSet") or {}).get("Name"))
            for r in perms.get("records") or []
            if isinstance(r, Mapping)
        }
    found = package_probe.found(lambda ref: answers.parts.get(ref, (0, None)), assigned=assigned)
    parts = org_parts.inventory(found)
    fix = org_parts.install_fix(workspace.id)
    if parts.fields:
        detail = f"the org lacks {'; '.join(parts.fields)}: activities cannot be logged"
        return _check(name, FAIL, detail, fix)
    if parts.realtime:
        detail = f"the org lacks {'; '.join(parts.realtime)}: "
        if workspace.rts_setting_id is not None:
            return _check(name, FAIL, detail + "Real-Time Sync pushes nothing", fix)
        return _check(name, WARN, detail + "Real-Time Sync cannot be switched on", fix)
    allowed = workspace.org_package_detail if workspace.org_package == org_parts.INSTALLED else None
    if allowed and callback_url and _origin(callback_url) != allowed:
        detail = (
            f"the org may call {allowed} (its Remote Site Setting), but this server takes "
            f"pushes at {_origin(callback_url)}: Salesforce refuses every push"
        )
        return _check(name, FAIL, detail, f"install the package again with --url {callback_url}")
    if parts.unknown:
        detail = f"could not look at {', '.join(parts.unknown)}"
        return _check(name, WARN, detail, "give the sync user View Setup and Configuration")
    detail = (
        "Task and Event have the fields, the setting object is there, and the triggers on "
        f"{', '.join(org_parts.TRIGGERS)} and their classes are active"
    )
    # Without the permission set the sync user has what their profile grants: the API Enabled
    # and View Setup checks say whether that is enough, and describe hides a field they may
    # not see (the field check fails then).
    if parts.permission_set:
        detail += f"; the sync user holds {org_parts.PERMISSION_SET}"
    elif parts.permission_set is False:
        detail += f"; the sync user's own profile grants their permissions (no {org_parts.PERMISSION_SET})"
    if allowed:
        detail += f"; the org may call {allowed}"
    return _check(name, PASS, detail)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _realtime(
    answers: Answers,
    workspace: Workspace,
    last_push: datetime | None,
    callback_url: str | None,
) -> Check:
    name = "realtime"
    if workspace.sync_mode != SyncMode.REALTIME:
        if workspace.rts_setting_id is not None:
            detail = (
                "rolled over to Interval Sync: no Apex room; changes are fetched every "
                f"{workspace.sync_interval_minutes} minutes until room returns"
            )
            fix = "raise the Apex share on the Integrations page, or wait for Apex room"
            return _check(name, WARN, detail, fix)
        interval = f"Interval Sync (every {workspace.sync_interval_minutes} minutes) is in use"
        return _skipped(name, _TITLES[name], interval)
    why = _not_asked(answers)
    if why is not None:
        return _skipped(name, _TITLES[name], why)
    found = answers.body("rts")
    if not isinstance(found, Mapping):
        detail = f"the org cannot list {SETTING} ({answers.error('rts')}): nothing is pushed"
        return _check(
            name, FAIL, detail, f"install quotasync's package in the org, then {SWITCH_AGAIN}"
        )
    return _setting(found.get("records") or [], workspace, last_push, callback_url)


def _setting(
    records: list[Any],
    workspace: Workspace,
    last_push: datetime | None,
    callback_url: str | None,
) -> Check:
    name = "realtime"
    ours_id = (workspace.rts_setting_id or "")[:15]
    ours = next((r for r in records if str(r.get("Id", ""))[:15] == ours_id), None)
    if ours is None:
        detail = f"quotasync's {SETTING} record is gone from the org: nothing is pushed"
        return _check(name, FAIL, detail, SWITCH_AGAIN)
    if ours.get("Enabled__c") is not True:
        detail = f"pushing is switched off in the org ({ours.get('Name')}: Enabled__c is false)"
        return _check(name, FAIL, detail, SWITCH_AGAIN)
    url = str(ours.get("Callback_URL__c") or "")
    # The org pushes to every enabled setting (one per workspace on a shared org): another one
    # aimed at this workspace signs with a secret quotasync no longer holds, and each of its
    # pushes is refused yet spends an async Apex execution.
    path = f"/rts/{workspace.id}"
    stray = next(
        (
            r
            for r in records
            if r is not ours
            and r.get("Enabled__c") is True
            and _pushes_to(str(r.get("Callback_URL__c") or ""), path)
        ),
        None,
    )
    if not _pushes_to(url, path):
        detail = f"the org pushes to {url or '(no URL)'}, not to this workspace's push URL"
        return _check(name, FAIL, detail, SWITCH_AGAIN)
    if stray is not None:
        detail = (
            f"another enabled {SETTING} record ({stray.get('Name')}) also pushes to this "
            "workspace, with a secret quotasync does not hold: its pushes are refused and each "
            "spends an async Apex execution"
        )
        return _check(name, WARN, detail, f"delete that record in the org (Id {stray.get('Id')})")
    if callback_url is not None and url.rstrip("/") != callback_url.rstrip("/"):
        detail = f"the org pushes to {url}; this server takes pushes at {callback_url}"
        return _check(name, WARN, detail, f"if the server moved, {SWITCH_AGAIN}")
    if last_push is None:
        detail = f"the org pushes to {url}, but no push has arrived yet"
        fix = (
            f"if records changed in Salesforce since Real-Time Sync was switched on, Salesforce "
            f"cannot reach {url}: it must be reachable from Salesforce over HTTPS"
        )
        return _check(name, WARN, detail, fix)
    return _check(name, PASS, f"the org pushes to {url}; the last push arrived {_when(last_push)}")


def _pushes_to(url: str, path: str) -> bool:
    return urlsplit(url).path.rstrip("/").endswith(path)


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")
