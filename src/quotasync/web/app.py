"""The FastAPI application: the ingest API the email product posts activities to, the sidebar's
people lookup, Real-Time Sync pushes, the JSON API for people, Prometheus metrics, and the
pages."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect

from quotasync import __version__
from quotasync.ingest import Ingest
from quotasync.runtime import Runtime
from quotasync.store import mirror, retrying
from quotasync.web import (
    activities_page,
    api,
    auth,
    connect_page,
    doctor_page,
    home_page,
    integrations_page,
    metrics_route,
    outbox_page,
    pages,
    rts,
    settings_page,
    signin_page,
    state,
)
from quotasync.web.bodies import BoundedBodies
from quotasync.web.gate import SignedInFirst
from quotasync.web.headers import SecurityHeaders

MAX_ITEMS = 1000


class ProblemOut(BaseModel):
    field: str = Field(description="Dotted path of the field, e.g. `meeting.end` or `to[2]`.")
    message: str


class ItemError(BaseModel):
    index: int = Field(description="Position of the item in the posted list (0 for one object).")
    id: str | None = Field(default=None, description="The item's id, when it could be read.")
    status: int = Field(default=422)
    problems: list[ProblemOut]


class IngestResult(BaseModel):
    accepted: int = Field(description="Items stored now.")
    duplicates: int = Field(
        description="Items whose id the workspace already had: acknowledged, not stored again."
    )
    errors: list[ItemError] = Field(
        description="One entry per invalid item; the others are stored."
    )


class PersonOut(BaseModel):
    sobject: str = Field(description="Contact or Lead.")
    id: str
    name: str | None
    email: str | None
    title: str | None
    company: str | None = Field(description="A Lead's company.")
    owner_id: str | None


class AccountOut(BaseModel):
    id: str
    name: str | None


class OpportunityOut(BaseModel):
    id: str
    name: str | None
    stage: str | None
    amount: float | None
    close_date: str | None


class PeopleAnswer(BaseModel):
    person: PersonOut
    account: AccountOut | None
    open_opportunities: list[OpportunityOut]


def create_app(runtime: Runtime) -> FastAPI:
    # /docs and /redoc served from fastapi-offline's own copy of Swagger UI and ReDoc:
    # quotasync often runs where no CDN can be reached.
    app = FastAPIOffline(
        title="quotasync",
        version=__version__,
        description="Log sales-email activity into Salesforce within the API quota admins set.",
    )

    ingest = Ingest(runtime.sessions, runtime.clock)
    state.install(app, runtime)  # what the routers' handlers find through web/state.py
    for module in (
        rts,
        api,
        home_page,
        signin_page,
        integrations_page,
        settings_page,
        activities_page,
        connect_page,
        outbox_page,
        doctor_page,
        metrics_route,
    ):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    # Outermost last: headers on every answer; bodies bounded while read; the session cookie
    # read; then nobody's body read before they are known (web/gate.py).
    app.add_middleware(SignedInFirst)
    app.add_middleware(
        SessionMiddleware,
        secret_key=runtime.vault.derive("session cookies").hex(),
        session_cookie="quotasync_session",
        max_age=auth.SESSION_HOURS * 3600,
        same_site="lax",
        https_only=runtime.settings.cookie_secure,
    )
    app.add_middleware(BoundedBodies)
    # A Host header quotasync is not served at decides nothing (links, the OAuth callback).
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=runtime.settings.trusted_hosts)
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(auth.SignInRequired)
    def sign_in_first(request: Request, exc: auth.SignInRequired) -> Response:
        return pages.sign_in_redirect(request)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": _problems(exc.errors())}, 422)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'][1:]) or 'the request'}: {error['msg']}"
            for error in exc.errors()
        )
        return pages.error_page(request, 422, f"The form was not accepted: {problems}.")

    @app.exception_handler(DBAPIError)
    async def store_trouble(request: Request, exc: DBAPIError) -> Response:
        # A store gone for longer than a transaction's retries: nothing was acknowledged, and
        # the caller is told to come back rather than shown a bug.
        if not retrying.passing(exc):
            raise exc
        detail = "the store is briefly unavailable; nothing was saved, try again shortly"
        if _wants_json(request):
            return JSONResponse({"detail": detail}, 503, headers={"Retry-After": "5"})
        return pages.error_page(request, 503, detail.capitalize() + ".")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # The JSON API and the machines' endpoints answer JSON; a person's browser gets a page.
        if _wants_json(request):
            return await http_exception_handler(request, exc)
        return pages.error_page(request, exc.status_code, str(exc.detail))

    @app.exception_handler(ClientDisconnect)
    async def client_gone(request: Request, exc: ClientDisconnect) -> Response:
        # The client gave up before its body arrived: nothing was stored or acknowledged, and
        # nobody is left to answer; not an error of quotasync's. Starlette's own exception,
        # answered by the framework's own means rather than an `except` in a route.
        gone = StarletteHTTPException(400, "the client went away before its body arrived")
        return await http_error(request, gone)

    def workspace_for(workspace: str, authorization: Annotated[str | None, Header()] = None) -> str:
        with runtime.sessions() as session:
            return auth.ingest_workspace(session, workspace, authorization)

    @app.post(
        "/api/v1/workspaces/{workspace}/activities",
        tags=["email product"],
        status_code=202,
        response_model=IngestResult,
        responses={
            400: {"description": "The body is not JSON, or not an object or a list."},
            401: {"description": "No bearer token, or one that is no workspace's."},
            404: {"description": "Another workspace's token."},
            413: {"description": "More than 1,000 items, or a body over 16 MiB."},
            422: {"model": IngestResult, "description": "Every item was invalid; nothing stored."},
        },
    )
    # A default, not Annotated: the dependency is a closure, which string annotations cannot see.
    async def post_activities(request: Request, workspace_id: str = Depends(workspace_for)) -> Any:
        """Store one activity or a list of up to 1,000, durably, before answering 202."""
        items = _items(await _body(request))
        # In a worker thread: storing may wait out a locked or reconnecting store for seconds,
        # and the event loop must go on answering everyone else meanwhile.
        summary = await run_in_threadpool(ingest.accept, workspace_id, items)
        body = summary.as_dict()
        if summary.errors and not summary.accepted and not summary.duplicates:
            return JSONResponse(body, status_code=422)
        return body

    @app.get(
        "/api/v1/workspaces/{workspace}/people",
        tags=["email product"],
        response_model=PeopleAnswer,
        responses={
            401: {"description": "No bearer token."},
            404: {"description": "No such workspace for this token, or nobody with this email."},
            422: {"description": "The email is missing or not an email address."},
        },
    )
    def people(
        request: Request,
        workspace: str,
        email: Annotated[
            str, Query(min_length=3, max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+$")
        ],
        authorization: Annotated[str | None, Header()] = None,
    ) -> Any:
        """Who a recipient is, their account and its open opportunities: from the local mirror,
        with no call to Salesforce (the email product's sidebar). The ingest token, a member's
        API token or a signed-in session may ask."""
        with runtime.sessions.begin() as session:
            workspace_id = auth.api_caller(
                session, request, workspace, runtime.clock, authorization
            ).workspace_id
        with runtime.sessions() as session:
            found = mirror.person(session, workspace_id, email)
            if found is None:
                raise HTTPException(404, f"nobody with the email {email} in the org's mirror")
            account_id = found.account_id
            account = (
                mirror.record(session, workspace_id, "Account", account_id) if account_id else None
            )
            deals = (
                mirror.open_opportunities(session, workspace_id, account_id) if account_id else []
            )
            return PeopleAnswer(
                person=_person(found.sobject, found.salesforce_id, found.fields),
                account=AccountOut(id=account.salesforce_id, name=account.fields.get("Name"))
                if account is not None
                else None,
                open_opportunities=[_opportunity(d.salesforce_id, d.fields) for d in deals],
            )

    return app


def _person(sobject: str, record_id: str, fields: dict[str, Any]) -> PersonOut:
    return PersonOut(
        sobject=sobject,
        id=record_id,
        name=fields.get("Name"),
        email=fields.get("Email"),
        title=fields.get("Title"),
        company=fields.get("Company"),
        owner_id=fields.get("OwnerId"),
    )


def _opportunity(record_id: str, fields: dict[str, Any]) -> OpportunityOut:
    return OpportunityOut(
        id=record_id,
        name=fields.get("Name"),
        stage=fields.get("StageName"),
        amount=_number(fields.get("Amount")),
        close_date=fields.get("CloseDate"),
    )


def _number(value: Any) -> float | None:
    """A mirrored number (JSON from REST, text from a Bulk CSV); None when it is not one."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _wants_json(request: Request) -> bool:
    path = request.url.path
    return path.startswith(("/api/", "/rts/", "/docs", "/openapi")) or "text/html" not in (
        request.headers.get("accept", "")
    )


def _problems(errors: Sequence[Any]) -> list[Any]:
    """FastAPI's 422 entries (type, loc, msg, input) as JSON can carry them: a refused list or
    object is not shown back (it may be nested a thousand deep), and NaN, the infinities and lone
    surrogates (`"\\ud800"`), which json.loads takes but JSON and UTF-8 cannot carry, are
    written out."""
    shown = [
        {key: value for key, value in error.items() if key != "input"}
        | ({"input": error["input"]} if isinstance(error.get("input"), str | int | float) else {})
        for error in errors
    ]
    return [_sendable(entry) for entry in jsonable_encoder(shown)]


def _sendable(value: Any) -> Any:
    if isinstance(value, dict):
        return {_sendable(key): _sendable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_sendable(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


async def _body(request: Request) -> Any:
    # Bounded while it arrives (web/bodies.py): past INGEST_BYTES the read itself raises 413.
    raw = await request.body()  # a client gone before its body arrived: `client_gone`
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise HTTPException(400, f"the body is not JSON: {exc}") from None
    except RecursionError:  # arrays in arrays a few thousand deep: no activity looks like that
        raise HTTPException(400, "the body is not JSON quotasync reads: nested too deep") from None


def _items(body: Any) -> list[object]:
    if isinstance(body, dict):
        return [body]
    if not isinstance(body, list):
        raise HTTPException(400, "post one activity (a JSON object) or a list of them")
    if len(body) > MAX_ITEMS:
        raise HTTPException(
            413, f"at most {MAX_ITEMS} activities per request; this one has {len(body)}"
        )
    return body
