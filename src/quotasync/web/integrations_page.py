"""`/w/{workspace}/integrations`: the admin's page. Each API type's use, share and pauses, the
timeline, and the forms that change them: a share (services/shares.py), the settings, and the
sync mode (services/sync_mode.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from quotasync import errors, timeline, usage
from quotasync.domain import governor
from quotasync.domain.realtime import SyncMode
from quotasync.engine import realtime
from quotasync.runtime import Runtime
from quotasync.salesforce import metadata
from quotasync.services import org_package, shares, sync_mode
from quotasync.services.workspace import NoSuchWorkspace
from quotasync.store.tables import Connection, Workspace
from quotasync.web import auth, charts
from quotasync.web.pages import API_TITLES, NOT_A_MEMBER, render, workspace_of
from quotasync.web.state import RuntimeDep

router = APIRouter(include_in_schema=False)

SAVED = {
    "share-data": "Saved: the Data API share applies now.",
    "share-bulk": "Saved: the Bulk API share applies now.",
    "share-apex": "Saved: the Apex share applies now.",
    "settings": "Saved: the settings apply now.",
    "mode-realtime": "Real-Time Sync is on: the org pushes its changes as they happen.",
    "mode-interval": "Real-Time Sync is off: Interval Sync keeps the mirror.",
    "org-package": "quotasync's package is installed in Salesforce, and the sync user has its "
    "permission set.",
    "org-package-removed": "quotasync's package is removed from Salesforce.",
}


@router.get("/w/{workspace_id}/integrations")
def integrations(
    request: Request, workspace_id: str, runtime: RuntimeDep, saved: str | None = None
) -> Response:
    notice, error = SAVED.get(saved or ""), None
    flash = request.session.pop("flash", None)  # set by the Connect Salesforce flow
    if isinstance(flash, dict) and isinstance(flash.get("text"), str):
        if flash.get("error"):
            error = flash["text"]
        else:
            notice = flash["text"]
    return integrations_page(runtime, request, workspace_id, notice=notice, error=error)


@router.post("/w/{workspace_id}/integrations/share")
def save_share(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    api: str = Form("", max_length=20),
    percent: str = Form("", max_length=20),
    csrf_token: str = Form(""),
) -> Response:
    admin = _admin_form(runtime, request, workspace_id, csrf_token)
    try:
        shares.change(
            runtime.sessions,
            workspace_id,
            shares={api: percent},
            by=admin.email,
            now=runtime.clock.now(),
        )
    except governor.ShareError as exc:
        error = str(exc)
    except NoSuchWorkspace:
        raise HTTPException(403, NOT_A_MEMBER) from None
    else:
        return RedirectResponse(f"/w/{workspace_id}/integrations?saved=share-{api}#api-{api}", 303)
    return integrations_page(runtime, request, workspace_id, error=error, status=422)


@router.post("/w/{workspace_id}/integrations/settings")
def save_settings(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    csrf_token: str = Form(""),
    open_tracking: str | None = Form(None, max_length=5),
    recheck_minutes: str = Form("", max_length=20),
    warning_percent: str = Form("", max_length=20),
    log_within: str = Form("", max_length=20),
    max_batch_delay: str = Form("", max_length=20),
) -> Response:
    admin = _admin_form(runtime, request, workspace_id, csrf_token)
    try:
        wanted = shares.SettingsChange(
            recheck_minutes=_whole(recheck_minutes, "The recheck interval"),
            warning_percent=_whole(warning_percent, "The warning threshold"),
            log_within=_number(log_within, "The time to log activities within"),
            max_batch_delay=_number(max_batch_delay, "The longest paced delay"),
            open_tracking=open_tracking == "on",
        )
        shares.change(
            runtime.sessions,
            workspace_id,
            settings=wanted,
            by=admin.email,
            now=runtime.clock.now(),
        )
    except errors.InvalidInput as exc:  # governor.SettingsError, or a field not a number
        error = str(exc)
    except NoSuchWorkspace:
        raise HTTPException(403, NOT_A_MEMBER) from None
    else:
        return RedirectResponse(f"/w/{workspace_id}/integrations?saved=settings", 303)
    return integrations_page(runtime, request, workspace_id, error=error, status=422)


@router.post("/w/{workspace_id}/integrations/sync-mode")
def switch_sync_mode(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    csrf_token: str = Form(""),
    mode: str = Form("", max_length=10),
    url: str = Form("", max_length=500),
) -> Response:
    """Real-Time Sync on (the org pushes to `url`) or off (Interval Sync keeps the mirror).
    Both write the org's setting record, so both spend a Data call."""
    _admin_form(runtime, request, workspace_id, csrf_token)
    if mode not in tuple(SyncMode):
        error = "The sync mode is realtime or interval."
        return integrations_page(runtime, request, workspace_id, error=error, status=422)
    try:
        sync_mode.switch(runtime.connector, runtime.clock, workspace_id, SyncMode(mode), url)
    except sync_mode.NotAPushUrl as exc:
        error = f"The push URL must be an http(s) URL; got {exc.url!r}."
        return integrations_page(runtime, request, workspace_id, error=error, status=422)
    except realtime.RealTimeUnavailable as exc:
        error = f"Real-Time Sync is not on: {exc}"
        return integrations_page(runtime, request, workspace_id, error=error, status=409)
    except (
        errors.SalesforceError,
        errors.QuotaExhausted,
        errors.NotConnected,
        errors.NotFound,
    ) as exc:
        error = f"Salesforce did not take the change: {exc}"
        return integrations_page(runtime, request, workspace_id, error=error, status=502)
    return RedirectResponse(f"/w/{workspace_id}/integrations?saved=mode-{mode}", 303)


@router.post("/w/{workspace_id}/integrations/org-package")
def install_org_package(
    request: Request, workspace_id: str, runtime: RuntimeDep, csrf_token: str = Form("")
) -> Response:
    """Install quotasync's package in the org (`quotasync org install`): one deploy and its
    looks, then the permission set assigned; a few Data calls. Salesforce's component failures
    are shown on the page."""
    _admin_form(runtime, request, workspace_id, csrf_token)
    address = runtime.settings.public_url or str(request.base_url)
    try:
        org_package.install(runtime.connector, workspace_id, address, sleep=runtime.sleep)
    except org_package.NotAnAddress as exc:
        return integrations_page(runtime, request, workspace_id, error=str(exc), status=422)
    except (
        metadata.DeployFailed,
        errors.SalesforceError,
        errors.QuotaExhausted,
        errors.NotConnected,
    ) as exc:
        return _package_refused(runtime, request, workspace_id, exc, "installed")
    return RedirectResponse(f"/w/{workspace_id}/integrations?saved=org-package#org-package", 303)


@router.post("/w/{workspace_id}/integrations/org-package/uninstall")
def uninstall_org_package(
    request: Request,
    workspace_id: str,
    runtime: RuntimeDep,
    csrf_token: str = Form(""),
    confirm: str = Form(""),
) -> Response:
    """Remove quotasync's package from the org (`quotasync org uninstall`), once the admin has
    ticked that the fields' values and the settings go with it."""
    _admin_form(runtime, request, workspace_id, csrf_token)
    if confirm != "remove":
        error = (
            "Nothing was removed: tick the box to confirm that the fields' values and Real-Time "
            "Sync's settings go with the package."
        )
        return integrations_page(runtime, request, workspace_id, error=error, status=422)
    try:
        org_package.uninstall(runtime.connector, workspace_id, sleep=runtime.sleep)
    except (
        metadata.DeployFailed,
        errors.SalesforceError,
        errors.QuotaExhausted,
        errors.NotConnected,
    ) as exc:
        return _package_refused(runtime, request, workspace_id, exc, "removed")
    return RedirectResponse(
        f"/w/{workspace_id}/integrations?saved=org-package-removed#org-package", 303
    )


def _package_refused(
    runtime: Runtime, request: Request, workspace_id: str, exc: Exception, what: str
) -> HTMLResponse:
    """The page again, saying why the package was not installed or removed: Salesforce's
    component failures, one by one, or the call's refusal."""
    if isinstance(exc, metadata.DeployFailed):
        problems = [str(p) for p in exc.problems] or [str(exc)]
        error = "Salesforce refused the change; nothing was changed."
        return integrations_page(
            runtime, request, workspace_id, error=error, problems=problems, status=502
        )
    error = f"The package was not {what}: {exc}"
    if isinstance(exc, errors.Refused) and exc.fault.code == "INSUFFICIENT_ACCESS":
        error += (
            ". It takes a Salesforce admin (Modify All Data): connect as one, or have one "
            "deploy the package with the Salesforce CLI."
        )
    return integrations_page(runtime, request, workspace_id, error=error, status=502)


def integrations_page(
    runtime: Runtime,
    request: Request,
    workspace_id: str,
    *,
    notice: str | None = None,
    error: str | None = None,
    problems: list[str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    with runtime.sessions() as session:
        viewer = auth.require_admin(auth.page_viewer(session, request, workspace_id))
        workspace = workspace_of(session, workspace_id)
        now = runtime.clock.now()
        view = usage.view(session, workspace, now)
        history = timeline.timeline(session, workspace_id, now)
        cards = [_card(workspace, view.apis[api], history) for api in API_TITLES]
        connection = session.get(Connection, workspace_id)
        changes = shares.history(session, workspace_id)
    context = {
        "viewer": viewer,
        "workspace_name": workspace.name,
        "page": "integrations",
        "view": view,
        "timeline": history,
        "cards": cards,
        "notice": notice,
        "error": error,
        "rts_configured": workspace.rts_setting_id is not None,
        "connection": connection,
        "can_connect": bool(runtime.settings.salesforce_client_id),
        "login_url": runtime.settings.salesforce_login_url,
        "rts_url": f"{str(request.base_url).rstrip('/')}/rts/{workspace_id}",
        "holding": holding_note(view.apis["data"].pacing),
        # What the last install or uninstall recorded: no call to the org per view.
        "org_package": {
            "state": workspace.org_package,
            "at": workspace.org_package_at,
            "detail": workspace.org_package_detail,
        },
        "problems": problems or [],
        "changes": changes,
    }
    return render(request, "integrations.html", context, status)


def _admin_form(
    runtime: Runtime, request: Request, workspace_id: str, csrf_token: str
) -> auth.Viewer:
    """A form only the workspace's admins may send, with the session's CSRF token; the admin."""
    auth.check_csrf(request, csrf_token)
    with runtime.sessions() as session:
        admin = auth.require_admin(auth.page_viewer(session, request, workspace_id))
        workspace_of(session, workspace_id)
    return admin


def duration(seconds: float) -> str:
    """A wait as people say it: "45 s", "4 min 10 s", "15 min", "1 h 5 min" (to the second)."""
    hours, rest = divmod(round(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(hours, "h"), (minutes, "min"), (secs, "s")]
    said = " ".join(f"{amount} {unit}" for amount, unit in parts if amount)
    return said or "0 s"


def holding_note(pacing: usage.Pacing | None) -> str | None:
    """What the page says while pacing holds activities past the workspace's `log_within`,
    in plain words; None when it does not."""
    if pacing is None or not pacing.on:
        return None
    held = duration(pacing.delay)
    if pacing.avoids_pause:
        return f"Holding activities up to {held} so today's share lasts."
    return f"Holding activities up to {held} (the longest allowed) to stretch today's share, which may still run out."


def _card(workspace: Workspace, api: usage.ApiUsage, history: timeline.Timeline) -> dict[str, Any]:
    title = API_TITLES[api.api]
    bar = None
    if api.figures is not None:
        bar = charts.usage_bar(
            org_max=api.figures.org_max,
            quotasync_used=api.quotasync_used,
            other_apps_used=api.figures.other_apps_used,
            share_calls=api.figures.share_calls,
            guard_calls=api.figures.guard_calls,
            label=title,
        )
    hours = [
        charts.HourCalls(start=h.start, quotasync=h.quotasync, other_apps=h.other_apps)
        for h in history.hours[api.api]
    ]
    return {
        "usage": api,
        "title": title,
        "bar": bar,
        "chart": charts.hourly_chart(hours=hours, label=title),
        # quotasync's own calls on their own scale: beside other apps' they may not show at all.
        "own": charts.sparkline(
            [max(h.quotasync, 0) for h in hours],
            label=f"quotasync's {title} calls per hour",
            width=240,
            height=40,
        ),
        "own_peak": max((h.quotasync for h in hours), default=0),
        "refusal": usage.share_refusal(workspace, api.api),
        "grant": api.unavailable_reason == usage.VIEW_SETUP_NEEDED,
    }


def _whole(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise errors.InvalidInput(f"{what} is a whole number; got {text!r}.") from None


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise errors.InvalidInput(f"{what} is a number of seconds; got {text!r}.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise errors.InvalidInput(f"{what} is a number of seconds; got {text!r}.")
    return value
