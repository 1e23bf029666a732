"""The HTML pages: sign-in, the admin's Integrations page, a member's usage, and activities.

Every page is drawn on the server (Jinja2, SVG charts); the only script is the slider showing its
value as it moves. Forms carry the session's CSRF token; a refused form answers 4xx with the page
and its message, and changes nothing.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from quotasync import errors, timeline, usage
from quotasync.domain import governor
from quotasync.domain.activities import Kind
from quotasync.domain.realtime import SyncMode
from quotasync.engine import realtime
from quotasync.runtime import Runtime
from quotasync.store import limits, outbox, users
from quotasync.store.tables import Connection, Workspace
from quotasync.web import auth, charts

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
NONE = "\N{EN DASH}"  # a figure not known (yet)
API_TITLES = {"data": "Data API", "bulk": "Bulk API", "apex": "Apex executions"}
REASONS: dict[str, str] = {  # by governor.Reason; the store's strings equal them
    governor.Reason.WORKSPACE_LIMIT: "quotasync's share is spent",
    governor.Reason.ORG_GUARD: "the org is past 90% of its limit (all apps)",
    governor.Reason.SALESFORCE_REFUSED: "Salesforce refused calls (limit exceeded)",
    governor.Reason.NO_API_ACCESS: "the sync user lost API access",
    governor.Reason.AUTH: "the connection to Salesforce needs to be renewed",
}
ACTIVITY_PAGE = 200


@functools.cache
def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=TEMPLATES)
    env = found.env
    env.filters["n"] = lambda value: NONE if value is None else f"{value:,}"
    env.filters["g"] = lambda value: f"{value:,.2f}".rstrip("0").rstrip(".")
    env.filters["pct"] = _percent
    env.filters["sentence"] = lambda text: text[:1].upper() + text[1:]
    env.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M UTC") if moment else NONE
    env.filters["short"] = lambda moment: moment.strftime("%b %d %H:%M")
    env.filters["hour"] = lambda moment: moment.strftime("%H:%M")
    env.filters["reason"] = lambda reason: REASONS.get(reason, reason.replace("_", " "))
    env.filters["api_title"] = lambda api: API_TITLES.get(api, api)
    env.filters["seconds"] = lambda value: f"{value:.2f}".rstrip("0").rstrip(".")
    return found


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


def _percent(fraction: float | None) -> str:
    if fraction is None:
        return NONE
    value = fraction * 100
    # Two significant digits below 1%: a rep's share of a busy org is often a few thousandths.
    return f"{value:.1f}%" if value >= 1 or value == 0 else f"{value:.2g}%"


def pages_router(runtime: Runtime) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    jinja = templates()
    throttle = auth.SignInThrottle(runtime.clock)

    def render(
        request: Request, name: str, context: dict[str, Any], status: int = 200
    ) -> HTMLResponse:
        context.setdefault("viewer", None)
        context["csrf"] = auth.csrf_token(request)
        return jinja.TemplateResponse(request, name, context, status_code=status)

    def member_page(session: Session, request: Request, workspace_id: str) -> auth.Viewer:
        return auth.page_viewer(session, request, workspace_id)

    @router.get("/")
    def home(request: Request) -> Response:
        with runtime.sessions() as session:
            viewers = auth.session_viewers(session, request)
            if not viewers:
                return RedirectResponse("/signin", 303)
            if len(viewers) == 1:
                return RedirectResponse(f"/w/{viewers[0].workspace_id}", 303)
            names = {v.workspace_id: _workspace(session, v.workspace_id).name for v in viewers}
        return render(
            request, "choose.html", {"memberships": [(v, names[v.workspace_id]) for v in viewers]}
        )

    @router.get("/signin")
    def signin_form(request: Request, next: str = "/") -> Response:
        return render(request, "signin.html", {"next": _local(next), "email": "", "error": None})

    @router.post("/signin")
    def signin(
        request: Request,
        email: str = Form("", max_length=254),
        password: str = Form("", max_length=users.MAX_PASSWORD),
        csrf_token: str = Form(""),
        next: str = Form("/", max_length=2000),
    ) -> Response:
        auth.check_csrf(request, csrf_token)
        context = {"next": _local(next), "email": email}
        blocked = throttle.blocked_until(email)
        if blocked is not None:
            wait = max(1, int((blocked - runtime.clock.now()).total_seconds()))
            context["error"] = (
                f"Too many wrong passwords for this email; try again in {-(-wait // 60)} minutes."
            )
            answer = render(request, "signin.html", context, 429)
            answer.headers["Retry-After"] = str(wait)
            return answer
        # Counted before the slow check, so parallel guesses cannot slip past the limit.
        throttle.failed(email)
        with runtime.sessions() as session:
            found = users.sign_in(session, email, password)
        if not found:
            context["error"] = "Wrong email or password."
            return render(request, "signin.html", context, 401)
        throttle.succeeded(email)
        auth.start_session(request, found)
        return RedirectResponse(_local(next), 303)

    @router.post("/signout")
    def signout(request: Request, csrf_token: str = Form("")) -> Response:
        auth.check_csrf(request, csrf_token)
        auth.end_session(request)
        return RedirectResponse("/signin", 303)

    @router.get("/w/{workspace_id}")
    def workspace_home(request: Request, workspace_id: str) -> Response:
        with runtime.sessions() as session:
            viewer = member_page(session, request, workspace_id)
        where = "integrations" if viewer.is_admin else "settings"
        return RedirectResponse(f"/w/{workspace_id}/{where}", 303)

    def integrations_page(
        request: Request,
        workspace_id: str,
        *,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        with runtime.sessions() as session:
            viewer = auth.require_admin(member_page(session, request, workspace_id))
            workspace = _workspace(session, workspace_id)
            now = runtime.clock.now()
            view = usage.view(session, workspace, now)
            history = timeline.timeline(session, workspace_id, now)
            cards = [_card(workspace, view.apis[api], history) for api in API_TITLES]
            connection = session.get(Connection, workspace_id)
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
        }
        return render(request, "integrations.html", context, status)

    @router.get("/w/{workspace_id}/integrations")
    def integrations(request: Request, workspace_id: str, saved: str | None = None) -> Response:
        notice, error = SAVED.get(saved or ""), None
        flash = request.session.pop("flash", None)  # set by the Connect Salesforce flow
        if isinstance(flash, dict) and isinstance(flash.get("text"), str):
            if flash.get("error"):
                error = flash["text"]
            else:
                notice = flash["text"]
        return integrations_page(request, workspace_id, notice=notice, error=error)

    @router.post("/w/{workspace_id}/integrations/share")
    def save_share(
        request: Request,
        workspace_id: str,
        api: str = Form("", max_length=20),
        percent: str = Form("", max_length=20),
        csrf_token: str = Form(""),
    ) -> Response:
        auth.check_csrf(request, csrf_token)
        with runtime.sessions.begin() as session:
            auth.require_admin(member_page(session, request, workspace_id))
            workspace = _workspace(session, workspace_id)
            refusal = usage.share_refusal(workspace, api)
            try:
                if refusal is not None:
                    raise governor.ShareError(refusal)
                limits.set_share(session, workspace, api, percent)
            except governor.ShareError as exc:
                session.rollback()
                error = str(exc)
            else:
                return RedirectResponse(
                    f"/w/{workspace_id}/integrations?saved=share-{api}#api-{api}", 303
                )
        return integrations_page(request, workspace_id, error=error, status=422)

    @router.post("/w/{workspace_id}/integrations/settings")
    def save_settings(
        request: Request,
        workspace_id: str,
        csrf_token: str = Form(""),
        open_tracking: str | None = Form(None, max_length=5),
        recheck_minutes: str = Form("", max_length=20),
        warning_percent: str = Form("", max_length=20),
        log_within: str = Form("", max_length=20),
        max_batch_delay: str = Form("", max_length=20),
    ) -> Response:
        auth.check_csrf(request, csrf_token)
        with runtime.sessions.begin() as session:
            auth.require_admin(member_page(session, request, workspace_id))
            workspace = _workspace(session, workspace_id)
            try:
                limits.set_settings(
                    session,
                    workspace,
                    recheck_minutes=_whole(recheck_minutes, "The recheck interval"),
                    warning_percent=_whole(warning_percent, "The warning threshold"),
                    log_within=_number(log_within, "The time to log activities within"),
                    max_batch_delay=_number(max_batch_delay, "The longest paced delay"),
                    open_tracking=open_tracking == "on",
                )
            except (governor.SettingsError, ValueError) as exc:
                session.rollback()
                error = str(exc)
            else:
                return RedirectResponse(f"/w/{workspace_id}/integrations?saved=settings", 303)
        return integrations_page(request, workspace_id, error=error, status=422)

    @router.post("/w/{workspace_id}/integrations/sync-mode")
    def switch_sync_mode(
        request: Request,
        workspace_id: str,
        csrf_token: str = Form(""),
        mode: str = Form("", max_length=10),
        url: str = Form("", max_length=500),
    ) -> Response:
        """Real-Time Sync on (the org pushes to `url`) or off (Interval Sync keeps the mirror).
        Both write the org's setting record, so both spend a Data call."""
        auth.check_csrf(request, csrf_token)
        with runtime.sessions() as session:
            auth.require_admin(member_page(session, request, workspace_id))
        if mode not in tuple(SyncMode):
            return integrations_page(
                request, workspace_id, error="The sync mode is realtime or interval.", status=422
            )
        if mode == SyncMode.REALTIME and not url.startswith(("http://", "https://")):
            error = f"The push URL must be an http(s) URL; got {url!r}."
            return integrations_page(request, workspace_id, error=error, status=422)
        switch = realtime.RealTime(runtime.connector, workspace_id, runtime.clock)
        try:
            switch.enable(url) if mode == SyncMode.REALTIME else switch.disable()
        except realtime.RealTimeUnavailable as exc:
            error = f"Real-Time Sync is not on: {exc}"
            return integrations_page(request, workspace_id, error=error, status=409)
        except (
            errors.SalesforceError,
            errors.QuotaExhausted,
            errors.NotConnected,
            errors.NotFound,
        ) as exc:
            error = f"Salesforce did not take the change: {exc}"
            return integrations_page(request, workspace_id, error=error, status=502)
        return RedirectResponse(f"/w/{workspace_id}/integrations?saved=mode-{mode}", 303)

    @router.get("/w/{workspace_id}/settings")
    def settings(request: Request, workspace_id: str) -> Response:
        with runtime.sessions() as session:
            viewer = member_page(session, request, workspace_id)
            workspace = _workspace(session, workspace_id)
            me = timeline.member(session, workspace, viewer.email, runtime.clock.now())
        spark = charts.sparkline(me.per_hour, label="Your calls per hour, last 24 hours")
        context = {
            "viewer": viewer,
            "workspace_name": workspace.name,
            "page": "settings",
            "me": me,
            "sparkline": spark,
        }
        return render(request, "settings.html", context)

    def activities_page(
        request: Request,
        workspace_id: str,
        filters: dict[str, str | None],
        *,
        notice: str | None = None,
        error: str | None = None,
        status: int = 200,
    ) -> HTMLResponse:
        with runtime.sessions() as session:
            viewer = member_page(session, request, workspace_id)
            workspace = _workspace(session, workspace_id)
            # A member sees their own activity only, whatever the filter asks.
            who = filters.get("user") if viewer.is_admin else viewer.email
            rows = outbox.recent(
                session,
                workspace_id,
                state=filters.get("state"),
                kind=filters.get("kind"),
                user_email=who,
                limit=ACTIVITY_PAGE,
            )
            counts = outbox.counts(
                session, workspace_id, user_email=None if viewer.is_admin else who
            )
        context = {
            "viewer": viewer,
            "workspace_name": workspace.name,
            "page": "activities",
            "rows": rows,
            "filters": filters,
            "states": outbox.STATES,
            "kinds": [kind.value for kind in Kind],
            "counts": counts,
            "notice": notice,
            "error": error,
        }
        return render(request, "activities.html", context, status)

    @router.get("/w/{workspace_id}/activities")
    def activities(
        request: Request,
        workspace_id: str,
        state: str = Query("", max_length=20),
        kind: str = Query("", max_length=30),
        user: str = Query("", max_length=254),
        retried: int | None = Query(None, ge=0),
    ) -> Response:
        filters = _filters(state, kind, user)
        notice = None if retried is None else f"{retried:,} failed activities queued again."
        return activities_page(request, workspace_id, filters, notice=notice)

    @router.post("/w/{workspace_id}/activities/retry")
    def retry(
        request: Request,
        workspace_id: str,
        id: list[str] = Form(..., max_length=255),
        csrf_token: str = Form(""),
    ) -> Response:
        auth.check_csrf(request, csrf_token)
        with runtime.sessions.begin() as session:
            viewer = member_page(session, request, workspace_id)
            if len(id) > ACTIVITY_PAGE:
                raise HTTPException(413, f"retry at most {ACTIVITY_PAGE} activities at once")
            own = None if viewer.is_admin else viewer.email
            # No activity id holds a NUL (the ingest refuses one), and PostgreSQL cannot be asked.
            ids = [i for i in id if "\x00" not in i]
            moved = outbox.retry(session, workspace_id, ids, runtime.clock.now(), user_email=own)
        if not moved:
            return activities_page(
                request,
                workspace_id,
                _filters("", "", ""),
                error="Nothing to retry: only failed activities can be retried.",
                status=409,
            )
        return RedirectResponse(
            f"/w/{workspace_id}/activities?retried={len(moved)}&state=pending", 303
        )

    return router


SAVED = {
    "share-data": "Saved: the Data API share applies now.",
    "share-bulk": "Saved: the Bulk API share applies now.",
    "share-apex": "Saved: the Apex share applies now.",
    "settings": "Saved: the settings apply now.",
    "mode-realtime": "Real-Time Sync is on: the org pushes its changes as they happen.",
    "mode-interval": "Real-Time Sync is off: Interval Sync keeps the mirror.",
}


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
        "refusal": usage.share_refusal(workspace, api.api),
        "grant": api.unavailable_reason == usage.VIEW_SETUP_NEEDED,
    }


def _workspace(session: Session, workspace_id: str) -> Workspace:
    found = session.get(Workspace, workspace_id)
    if found is None:  # a member's row outlived its workspace: nothing to show
        raise HTTPException(403, "you are not a member of this workspace")
    return found


def _filters(state: str, kind: str, user: str) -> dict[str, str | None]:
    if state and state not in outbox.STATES:
        raise HTTPException(422, f"the state is one of {', '.join(outbox.STATES)}")
    kinds = [k.value for k in Kind]
    if kind and kind not in kinds:
        raise HTTPException(422, f"the kind is one of {', '.join(kinds)}")
    email = None
    if user:
        try:
            email = users.normal_email(user)
        except users.UserError as exc:
            raise HTTPException(422, str(exc)) from None
    return {"state": state or None, "kind": kind or None, "user": email}


def _whole(text: str, what: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{what} is a whole number; got {text!r}.") from None


def _number(text: str, what: str) -> float:
    try:
        value = float(text.strip())
    except ValueError:
        raise ValueError(f"{what} is a number of seconds; got {text!r}.") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{what} is a number of seconds; got {text!r}.")
    return value


def _local(target: str) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return quote(target, safe="/?=&#%-_.~")


def sign_in_redirect(request: Request) -> RedirectResponse:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/signin?next={quote(path, safe='')}", 303)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    titles = {403: "Not allowed", 404: "Not found", 401: "Sign in needed"}
    return templates().TemplateResponse(
        request,
        "error.html",
        {
            "viewer": None,
            "csrf": auth.csrf_token(request),
            "status": status,
            "title": titles.get(status, "That did not work"),
            "message": message,
        },
        status_code=status,
    )
