"""`/signin` and `/signout`: a person's session, with wrong passwords counted per email."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from quotasync.store import users
from quotasync.web import auth
from quotasync.web.pages import render
from quotasync.web.state import RuntimeDep, ThrottleDep

router = APIRouter(include_in_schema=False)


@router.get("/signin")
def signin_form(request: Request, next: str = "/") -> Response:
    return render(request, "signin.html", {"next": _local(next), "email": "", "error": None})


@router.post("/signin")
def signin(
    request: Request,
    runtime: RuntimeDep,
    throttle: ThrottleDep,
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


def _local(target: str) -> str:
    """Where to go after signing in: a path on this site only (never another host)."""
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return quote(target, safe="/?=&#%-_.~")
