"""`/signin` and `/signout`: a person's server-side session. Wrong passwords are counted in the
store by email and by client address (store/sign_in_failures.py); password checks run in a few
slots, and a sign-in that finds them all taken is refused at once (store/users.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from quotasync.runtime import Runtime
from quotasync.store import sign_in_failures, users
from quotasync.web import auth
from quotasync.web.pages import render
from quotasync.web.state import RuntimeDep

router = APIRouter(include_in_schema=False)
BUSY_RETRY_SECONDS = 2


@router.get("/signin")
def signin_form(request: Request, next: str = "/") -> Response:
    return render(request, "signin.html", {"next": _local(next), "email": "", "error": None})


@router.post("/signin")
def signin(
    request: Request,
    runtime: RuntimeDep,
    email: str = Form("", max_length=254),
    password: str = Form("", max_length=users.MAX_PASSWORD),
    csrf_token: str = Form(""),
    next: str = Form("/", max_length=2000),
) -> Response:
    auth.check_csrf(request, csrf_token)
    context = {"next": _local(next), "email": email}
    try:
        # The slot first: under a flood a sign-in is refused before it costs the store anything.
        with users.check_slot():
            return _sign_in(request, runtime, email, password, context)
    except users.Busy:
        # Not queued on the threads that serve every page, and counted against nobody.
        context["error"] = "Signing in is busy right now; try again in a moment."
        answer = render(request, "signin.html", context, 503)
        answer.headers["Retry-After"] = str(BUSY_RETRY_SECONDS)
        return answer


def _sign_in(
    request: Request, runtime: Runtime, email: str, password: str, context: dict[str, Any]
) -> Response:
    now = runtime.clock.now()
    client = request.client.host if request.client is not None else "unknown"
    counted = sign_in_failures.keys(email, client)
    with runtime.sessions.begin() as session:
        blocked = sign_in_failures.blocked_until(session, counted, now)
        if blocked is None:
            # Counted before the slow check, so parallel guesses cannot slip past the limit.
            sign_in_failures.record(session, counted, now)
    if blocked is not None:
        wait = max(1, int((blocked - now).total_seconds()))
        context["error"] = (
            f"Too many wrong passwords from here or for this email; try again in "
            f"{-(-wait // 60)} minutes."
        )
        answer = render(request, "signin.html", context, 429)
        answer.headers["Retry-After"] = str(wait)
        return answer
    with runtime.sessions.begin() as session:
        found = users.sign_in(session, email, password)
        if found:
            sign_in_failures.clear(session, counted, now)
            auth.start_session(session, request, found)
    if not found:
        context["error"] = "Wrong email or password."
        return render(request, "signin.html", context, 401)
    return RedirectResponse(context["next"], 303)


@router.post("/signout")
def signout(request: Request, runtime: RuntimeDep, csrf_token: str = Form("")) -> Response:
    auth.check_csrf(request, csrf_token)
    with runtime.sessions.begin() as session:
        auth.end_session(session, request)
    return RedirectResponse("/signin", 303)


def _local(target: str) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return quote(target, safe="/?=&#%-_.~")
