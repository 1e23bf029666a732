"""What the HTML pages share: the templates and their filters, drawing a page, the workspace a
page shows, and the error and sign-in answers. Each page's handlers are in its own module
(home_page, signin_page, integrations_page, settings_page, activities_page, ...).

Every page is drawn on the server (Jinja2, SVG charts); the only script is the slider showing its
value as it moves. Forms carry the session's CSRF token; a refused form answers 4xx with the page
and its message, and changes nothing.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from quotasync.domain import governor
from quotasync.store.tables import Workspace
from quotasync.web import auth

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
NOT_A_MEMBER = "you are not a member of this workspace"


@functools.cache
def templates() -> Jinja2Templates:
    found = Jinja2Templates(directory=TEMPLATES)
    env = found.env
    env.filters["n"] = lambda value: NONE if value is None else f"{value:,}"
    env.filters["g"] = lambda value: f"{value:,.2f}".rstrip("0").rstrip(".")
    # A member's share of calls is fractional (a call shared with colleagues counts by their
    # records in it): whole calls read better, tenths only below ten.
    env.filters["calls"] = lambda value: (
        f"{value:,.0f}" if value >= 10 else f"{value:.1f}".rstrip("0").rstrip(".")
    )
    env.filters["pct"] = _percent
    env.filters["sentence"] = lambda text: text[:1].upper() + text[1:]
    env.filters["when"] = lambda moment: moment.strftime("%Y-%m-%d %H:%M UTC") if moment else NONE
    env.filters["short"] = lambda moment: moment.strftime("%b %d %H:%M")
    env.filters["hour"] = lambda moment: moment.strftime("%H:%M")
    env.filters["reason"] = lambda reason: REASONS.get(reason, reason.replace("_", " "))
    env.filters["api_title"] = lambda api: API_TITLES.get(api, api)
    env.filters["seconds"] = lambda value: f"{value:.2f}".rstrip("0").rstrip(".")
    return found


def _percent(fraction: float | None) -> str:
    if fraction is None:
        return NONE
    value = fraction * 100
    # Two significant digits below 1%: a rep's share of a busy org is often a few thousandths.
    return f"{value:.1f}%" if value >= 1 or value == 0 else f"{value:.2g}%"


def render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> HTMLResponse:
    """A page drawn with the session's CSRF token for its forms."""
    context.setdefault("viewer", None)
    context["csrf"] = auth.csrf_token(request)
    return templates().TemplateResponse(request, name, context, status_code=status)


def workspace_of(session: Session, workspace_id: str) -> Workspace:
    found = session.get(Workspace, workspace_id)
    if found is None:  # a member's row outlived its workspace: nothing to show
        raise HTTPException(403, NOT_A_MEMBER)
    return found


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
