"""Tenant isolation (issue 9, part 3): a walk of the app's whole route table (pages, the JSON API,
the ingest API, Real-Time Sync, /metrics, the docs and static files), every method of every path,
as callers who must not see workspace A: an outsider (a browser with no session, or a made-up
token), a member of A (by cookie and by API token: admin-only views are 403 and someone else's
activity stays hidden), and workspace B's admin (by cookie, API token and B's ingest token).

How each route knows the workspace: pages and the JSON API from `{workspace_id}` / `{workspace}`
in the path, checked against the session cookie's memberships or the bearer token's user; the
ingest API and the sidebar lookup also take A's ingest token; `/rts/{workspace}` a push signed
with the workspace's RTS secret; `/oauth/callback` the flow waiting in the caller's own signed
cookie; `/metrics` the operators' token. No route takes a workspace from a header or a query.

Workspace A is seeded with marker strings (its name, its people's emails, activity ids, subjects
and errors, mirrored records, a notice, its tokens and secret): no answer to a caller may hold one
it should not see, nor may an answer about A differ from the answer about a workspace that does
not exist. The walk fails when the app gains a route it does not know how to call."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

import pytest
import requests
from fastapi import routing
from sqlalchemy import select

from quotasync.domain import realtime
from quotasync.domain.activities import State, parse_activity
from quotasync.engine.mailers import WORKSPACE_HEADER, OutboxMailer
from quotasync.store import mirror, outbox, users, workspaces
from quotasync.store.tables import Activity, Connection, MirrorRecord, User, Workspace
from tests.acceptance.served_app import NOW, Served, runtime_in, serve
from tests.acceptance.web_support import csrf_of
from tests.unit.domain.builders import payload

# Its module-scoped org and workspaces are built once: the module's tests share one worker.
pytestmark = pytest.mark.xdist_group("tenant_isolation")

NOBODY = "ws_0000000000000000"  # a workspace id that does not exist

# Workspace A's marker strings, each found nowhere else.
A_NAME = "Quokkaworks Seven Q Three"
ADA = "ada.admin.q7q3@quokkaworks.io"  # A's admin
MO = "mo.member.q7q3@quokkaworks.io"  # the member who walks
OLGA = "olga.other.q7q3@quokkaworks.io"  # another member, whose activity Mo must not see
BUYER = "bert.buyer.q7q3@client-quokka.io"
CONTACT = "carla.contact.q7q3@client-quokka.io"
ORG_ID = "00D00000000Q7Q3AAA"
RTS_SECRET_A = "rts-secret-of-quokkaworks-q7q3"
RTS_SECRET_B = "rts-secret-of-bluefin"
BO = "bo.boss@bluefin.io"  # B's admin


@dataclass
class Tenants:
    served: Served
    a: str
    b: str
    a_ingest: str
    b_ingest: str
    passwords: dict[str, str]  # email -> password
    tokens: dict[str, str]  # email -> API token
    mine: list[str]  # markers Mo, a member of A, may see: his own and A's shared ones
    hidden: list[str]  # markers no member may see: other people's, and A's secrets
    activity: dict[str, str] = field(default_factory=dict)  # name -> activity id

    @property
    def url(self) -> str:
        return self.served.url

    def markers(self) -> list[str]:
        return [*self.mine, *self.hidden, self.a]

    def fingerprint(self) -> dict[str, Any]:
        """What the store holds about A that a request could change."""
        with self.served.runtime.sessions() as session:
            ws = session.get(Workspace, self.a)
            connection = session.get(Connection, self.a)
            assert ws is not None and connection is not None
            return {
                "workspace": {
                    name: getattr(ws, name)
                    for name in Workspace.__table__.columns.keys()  # noqa: SIM118
                    if name != "limits_next_check"
                },
                "users": sorted(
                    (u.email, u.role, u.password_hash)
                    for u in session.scalars(select(User).where(User.workspace_id == self.a))
                ),
                "activities": sorted(
                    (a.id, a.state, json.dumps(a.payload, sort_keys=True), a.last_error)
                    for a in session.scalars(
                        select(Activity).where(Activity.workspace_id == self.a)
                    )
                ),
                "mirror": sorted(
                    (m.sobject, m.salesforce_id, json.dumps(m.fields, sort_keys=True))
                    for m in session.scalars(
                        select(MirrorRecord).where(MirrorRecord.workspace_id == self.a)
                    )
                ),
                "connection": (connection.org_id, connection.username),
            }


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tenants]:
    runtime = runtime_in(
        tmp_path_factory.mktemp("tenants") / "data", salesforce_client_id="quotasync-app"
    )
    passwords: dict[str, str] = {}
    tokens: dict[str, str] = {}
    activity: dict[str, str] = {}
    with runtime.sessions.begin() as session:
        a = workspaces.create(session, A_NAME, ADA, NOW)
        b = workspaces.create(session, "Bluefin Partners", BO, NOW)
        passwords[ADA], passwords[BO] = a.admin_password, b.admin_password
        for user in (a.admin, b.admin):
            tokens[user.email] = users.new_api_token(session, user, NOW)
        for email in (MO, OLGA):
            made = users.add(session, a.workspace, email, "member", NOW)
            passwords[email] = made.password
            tokens[email] = users.new_api_token(session, made.user, NOW)
        # Each of A's people has an activity with a subject of their own; Olga's failed.
        for name, email in (("ada", ADA), ("mo", MO), ("olga", OLGA)):
            activity[name] = f"act-q7q3-{name}"
            item = payload(
                "email_sent",
                id=activity[name],
                user_email=email,
                to=[BUYER] if name == "mo" else [f"{name}.buyer.q7q3@client-quokka.io"],
                subject=f"Quokka subject q7q3 of {name}",
            )
            outbox.accept(session, a.workspace.id, [parse_activity(item)], NOW)
        outbox.mark(
            session,
            a.workspace.id,
            [activity["olga"]],
            state=State.FAILED,
            last_error="FIELD_INVALID q7q3 Olga's refusal",
        )
        b_item = payload("email_sent", id="act-bluefin-1", user_email=BO)
        outbox.accept(session, b.workspace.id, [parse_activity(b_item)], NOW)
        # A's mirror: a contact, their account and an open deal (the sidebar's answer).
        mirror.apply(
            session,
            a.workspace.id,
            "Account",
            [{"Id": "001000000000Q7Q3AA", "Name": "Quokka Client Account q7q3"}],
        )
        mirror.apply(
            session,
            a.workspace.id,
            "Contact",
            [
                {
                    "Id": "003000000000Q7Q3AA",
                    "Email": CONTACT,
                    "Name": "Carla Contact q7q3",
                    "AccountId": "001000000000Q7Q3AA",
                }
            ],
        )
        mirror.apply(
            session,
            a.workspace.id,
            "Opportunity",
            [
                {
                    "Id": "006000000000Q7Q3AA",
                    "Name": "Quokka Deal q7q3",
                    "AccountId": "001000000000Q7Q3AA",
                    "StageName": "Negotiation",
                    "IsClosed": False,
                }
            ],
        )
        # Both connected, with Real-Time Sync on (secrets of their own).
        for ws, secret in ((a.workspace, RTS_SECRET_A), (b.workspace, RTS_SECRET_B)):
            ws.rts_secret_sealed = runtime.vault.seal(secret)
            session.add(
                Connection(
                    workspace_id=ws.id,
                    instance_url="https://127.0.0.1:9",  # nothing listens: no call leaves
                    login_url="https://127.0.0.1:9",
                    api_version="62.0",
                    client_id="quotasync-app",
                    username=f"sync@{ws.id}.io",
                    org_id=ORG_ID if ws is a.workspace else "00D00000000B1UEAAA",
                    user_id="005000000000001AAA",
                    access_token_sealed=runtime.vault.seal(f"access-token-{ws.id}"),
                    connected_at=NOW,
                )
            )
        ids = (a.workspace.id, b.workspace.id, a.ingest_token, b.ingest_token)
    # A notice to A's admins, kept in the outbox as it is without a mail server.
    notice = EmailMessage()
    notice[WORKSPACE_HEADER] = ids[0]
    notice["From"], notice["To"] = "quotasync@localhost", ADA
    notice["Subject"] = "Quokka notice q7q3: quotasync paused"
    notice["Date"] = format_datetime(NOW)
    notice.set_content("quotasync paused the Data API for q7q3.")
    OutboxMailer(runtime.settings.outbox_dir, runtime.clock).send([notice])
    mine = [
        A_NAME,
        MO,
        BUYER,
        "Quokka subject q7q3 of mo",
        activity["mo"],
        CONTACT,
        "Carla Contact q7q3",
        "Quokka Client Account q7q3",
        "Quokka Deal q7q3",
    ]
    hidden = [
        ADA,
        OLGA,
        "ada.buyer.q7q3@client-quokka.io",
        "olga.buyer.q7q3@client-quokka.io",
        "Quokka subject q7q3 of ada",
        "Quokka subject q7q3 of olga",
        activity["ada"],
        activity["olga"],
        "FIELD_INVALID q7q3 Olga",
        "Quokka notice q7q3",
        ORG_ID,
        f"sync@{ids[0]}.io",
        ids[2],
        tokens[ADA],
        tokens[MO],
        tokens[OLGA],
        RTS_SECRET_A,
    ]
    with serve(runtime) as served:
        yield Tenants(served, *ids, passwords, tokens, mine, hidden, activity)


# ------------------------------------------------------------------------ who calls


@dataclass
class Caller:
    name: str
    role: str  # outsider | member (of A) | stranger (of workspace B)
    http: requests.Session  # its cookies: a session, signed in or not, or none at all
    token: str | None = None
    csrf: str | None = None
    rts_secret: str | None = None  # a secret it holds, to sign pushes with

    @property
    def by_cookie(self) -> bool:
        return self.csrf is not None and self.role != "outsider"


def sign_in(tenants: Tenants, email: str) -> tuple[requests.Session, str]:
    http = requests.Session()
    form = http.get(f"{tenants.url}/signin", timeout=30)
    done = http.post(
        f"{tenants.url}/signin",
        data={
            "email": email,
            "password": tenants.passwords[email],
            "csrf_token": csrf_of(form.text),
        },
        allow_redirects=False,
        timeout=30,
    )
    assert done.status_code == 303, done.text[:300]
    page = http.get(f"{tenants.url}/", timeout=30)  # a page of theirs, for its CSRF token
    return http, csrf_of(page.text)


CALLERS = [
    "outsider's browser",
    "made-up token",
    "A's member by cookie",
    "A's member by token",
    "B's admin by cookie",
    "B's admin by token",
    "B's ingest token",
]


def caller(tenants: Tenants, name: str) -> Caller:
    if name == "outsider's browser":
        http = requests.Session()
        return Caller(name, "outsider", http, csrf=csrf_of(http.get(f"{tenants.url}/signin").text))
    if name == "made-up token":
        return Caller(name, "outsider", requests.Session(), token="qsu_made-up-q7q3")
    if name == "A's member by cookie":
        http, csrf = sign_in(tenants, MO)
        return Caller(name, "member", http, csrf=csrf)
    if name == "A's member by token":
        return Caller(name, "member", requests.Session(), token=tenants.tokens[MO])
    if name == "B's admin by cookie":
        http, csrf = sign_in(tenants, BO)
        return Caller(name, "stranger", http, csrf=csrf, rts_secret=RTS_SECRET_B)
    if name == "B's admin by token":
        return Caller(name, "stranger", requests.Session(), token=tenants.tokens[BO])
    if name == "B's ingest token":
        return Caller(name, "stranger", requests.Session(), token=tenants.b_ingest)
    raise AssertionError(name)


# ------------------------------------------------------------------------ the route table

ADMIN, MEMBER, INGEST, RTS, OPERATOR, OAUTH, PUBLIC = (
    "admin",  # A's admins only: a member is refused (403)
    "member",  # any member of A, who sees their own
    "ingest",  # A's ingest token only
    "rts",  # a push signed with A's RTS secret only
    "operator",  # the metrics token only
    "oauth",  # the flow in the caller's own cookie
    "public",  # anyone: nothing of A's in it
)


@dataclass(frozen=True)
class Call:
    """How the walk calls one route. `{a}`, `{olga}`, `{olga_failed}` and `{contact}` stand for
    A's id, another member's email, her failed activity's id and a mirrored contact's email."""

    path: str
    who: str
    query: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] | None = None
    json: Any = None
    last: bool = False  # signs the caller out: walked after the rest


API = "/api/v1/workspaces/{a}"
ROUTES: dict[str, Call] = {
    "GET /": Call("/", PUBLIC),
    "GET /favicon.ico": Call("/favicon.ico", PUBLIC),
    "GET /signin": Call("/signin", PUBLIC, {"next": "/w/{a}/integrations"}),
    "POST /signin": Call(
        "/signin", PUBLIC, form={"email": "nobody.q7q3@nowhere.io", "password": "not it"}
    ),
    "POST /signout": Call("/signout", PUBLIC, form={}, last=True),
    "GET /w/{workspace_id}": Call("/w/{a}", MEMBER),
    "GET /w/{workspace_id}/integrations": Call("/w/{a}/integrations", ADMIN),
    "POST /w/{workspace_id}/integrations/share": Call(
        "/w/{a}/integrations/share", ADMIN, form={"api": "data", "percent": "11"}
    ),
    "POST /w/{workspace_id}/integrations/settings": Call(
        "/w/{a}/integrations/settings",
        ADMIN,
        form={
            "recheck_minutes": "6",
            "warning_percent": "2",
            "log_within": "5",
            "max_batch_delay": "5",
        },
    ),
    "POST /w/{workspace_id}/integrations/sync-mode": Call(
        "/w/{a}/integrations/sync-mode", ADMIN, form={"mode": "interval"}
    ),
    "POST /w/{workspace_id}/integrations/org-package": Call(
        "/w/{a}/integrations/org-package", ADMIN, form={}
    ),
    # Unconfirmed: even the workspace's own admin removes nothing with it (422).
    "POST /w/{workspace_id}/integrations/org-package/uninstall": Call(
        "/w/{a}/integrations/org-package/uninstall", ADMIN, form={}
    ),
    "GET /w/{workspace_id}/settings": Call("/w/{a}/settings", MEMBER),
    "POST /w/{workspace_id}/settings/tokens": Call(
        "/w/{a}/settings/tokens", MEMBER, form={"name": "walk-q7q3", "days": "1"}
    ),
    # An id nobody has: even the workspace's own member revokes nothing with it.
    "POST /w/{workspace_id}/settings/tokens/{token_id}/revoke": Call(
        "/w/{a}/settings/tokens/987654/revoke", MEMBER, form={}
    ),
    "GET /w/{workspace_id}/activities": Call("/w/{a}/activities", MEMBER, {"user": "{olga}"}),
    "POST /w/{workspace_id}/activities/retry": Call(
        "/w/{a}/activities/retry", MEMBER, form={"id": "{olga_failed}"}
    ),
    "POST /w/{workspace_id}/connect": Call("/w/{a}/connect", ADMIN, form={"host": "production"}),
    "GET /oauth/callback": Call("/oauth/callback", OAUTH, {"state": "forged", "code": "stolen"}),
    "GET /w/{workspace_id}/outbox": Call("/w/{a}/outbox", ADMIN),
    "GET /w/{workspace_id}/doctor": Call("/w/{a}/doctor", ADMIN),
    "POST /w/{workspace_id}/doctor": Call("/w/{a}/doctor", ADMIN, form={}),
    "GET /metrics": Call("/metrics", OPERATOR),
    "GET /openapi.json": Call("/openapi.json", PUBLIC),
    "HEAD /openapi.json": Call("/openapi.json", PUBLIC),
    "GET /docs": Call("/docs", PUBLIC),
    "GET /docs/oauth2-redirect": Call("/docs/oauth2-redirect", PUBLIC),
    "GET /redoc": Call("/redoc", PUBLIC),
    "MOUNT /static": Call("/static/quotasync.css", PUBLIC),
    "MOUNT /static-offline-docs": Call("/static-offline-docs/favicon.png", PUBLIC),
    "POST /rts/{workspace}": Call("/rts/{a}", RTS, json={"organizationId": ORG_ID, "changes": []}),
    "POST /api/v1/workspaces/{workspace}/activities": Call(
        f"{API}/activities", INGEST, json=payload("email_sent", id="walk-q7q3")
    ),
    "GET /api/v1/workspaces/{workspace}/people": Call(
        f"{API}/people", MEMBER, {"email": "{contact}"}
    ),
    "GET /api/v1/workspaces/{workspace}/usage": Call(f"{API}/usage", ADMIN),
    "GET /api/v1/workspaces/{workspace}/usage/hourly": Call(f"{API}/usage/hourly", ADMIN),
    "GET /api/v1/workspaces/{workspace}/me/usage": Call(f"{API}/me/usage", MEMBER),
    "GET /api/v1/workspaces/{workspace}/limits": Call(f"{API}/limits", ADMIN),
    "PATCH /api/v1/workspaces/{workspace}/limits": Call(f"{API}/limits", ADMIN, json={"data": 11}),
    "GET /api/v1/workspaces/{workspace}/settings": Call(f"{API}/settings", ADMIN),
    "PATCH /api/v1/workspaces/{workspace}/settings": Call(
        f"{API}/settings", ADMIN, json={"recheck_minutes": 6}
    ),
    "GET /api/v1/workspaces/{workspace}/activities": Call(
        f"{API}/activities", MEMBER, {"user": "{olga}", "limit": "1000"}
    ),
    "POST /api/v1/workspaces/{workspace}/activities/retry": Call(
        f"{API}/activities/retry", MEMBER, json={"ids": ["{olga_failed}"]}
    ),
    "GET /api/v1/workspaces/{workspace}/episodes": Call(f"{API}/episodes", ADMIN),
    "POST /api/v1/workspaces/{workspace}/doctor": Call(f"{API}/doctor", ADMIN),
}
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def route_table(tenants: Tenants) -> set[str]:
    """Every (method, path) the served app answers, and each mount as `MOUNT path`; routers
    included in the app are walked into (FastAPI keeps them as one entry of app.routes)."""
    found: set[str] = set()
    # FastAPI before 0.137 copied included routes into app.routes; iter_route_contexts is newer.
    contexts: Callable[[list[Any]], Iterable[Any]] = getattr(routing, "iter_route_contexts", list)
    for route in contexts(tenants.served.app.routes):
        methods = route.methods or {"MOUNT"}
        found |= {f"{method} {route.path}" for method in methods}
    return found


def fill(value: Any, tenants: Tenants, workspace: str) -> Any:
    if isinstance(value, str):
        return value.format(
            a=workspace,
            olga=OLGA,
            olga_failed=tenants.activity["olga"],
            contact=CONTACT,
        )
    if isinstance(value, dict):
        return {key: fill(item, tenants, workspace) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, tenants, workspace) for item in value]
    return value


def send(
    tenants: Tenants, who: Caller, method: str, call: Call, workspace: str
) -> tuple[requests.Response, str]:
    """The call as `who` makes it, for `workspace`; with what it sent (what an answer may echo)."""
    headers = {"Accept": "text/html"} if "/api/" not in call.path else {}
    if who.token:
        headers["Authorization"] = f"Bearer {who.token}"
    if who.csrf:
        headers["X-CSRF-Token"] = who.csrf  # so a cookie's write is refused for who, not how
    path = fill(call.path, tenants, workspace)
    query = fill(call.query, tenants, workspace)
    form = (
        None
        if call.form is None
        else {**fill(call.form, tenants, workspace), "csrf_token": who.csrf or ""}
    )
    body = None
    if call.json is not None:
        body = json.dumps(fill(call.json, tenants, workspace)).encode()
        headers["Content-Type"] = "application/json"
        if call.who == RTS:
            # A push as the org would sign it, with the only secret the caller may hold.
            stamp = str(int(NOW.timestamp()))
            headers["X-QS-Timestamp"] = stamp
            headers["X-QS-Signature"] = realtime.sign(who.rts_secret or "a guess", stamp, body)
    answer = who.http.request(
        method,
        f"{tenants.url}{path}",
        params=query,
        data=form if form is not None else body,
        headers=headers,
        allow_redirects=False,
        timeout=60,
    )
    sent = " ".join([path, json.dumps(query), json.dumps(form), (body or b"").decode()])
    return answer, sent


def shown(answer: requests.Response) -> str:
    """Everything a caller gets to read: the body, the headers, and the session cookie's
    content (signed, not sealed: a browser can read it)."""
    parts = [answer.text, json.dumps(dict(answer.headers))]
    parts += [cookie_content(cookie.value or "") for cookie in answer.cookies]
    return "\n".join(parts)


def cookie_content(value: str) -> str:
    """What a session cookie says: Starlette's is base64 JSON, then a timestamp and signature."""
    with contextlib.suppress(ValueError):
        return base64.b64decode(value.split(".")[0] + "==").decode("utf-8", "replace")
    return value


def leaks(tenants: Tenants, who: Caller, answer: requests.Response, sent: str) -> list[str]:
    """A's markers in the answer that `who` must not see (what it sent itself aside)."""
    markers = tenants.hidden if who.role == "member" else tenants.markers()
    text = shown(answer)
    return [m for m in markers if m in text and m not in sent]


def to_sign_in(answer: requests.Response) -> bool:
    return answer.status_code == 303 and answer.headers["location"].startswith("/signin?next=")


def refused(tenants: Tenants, who: Caller, call: Call, answer: requests.Response) -> str | None:
    """Why the answer is wrong for `who`, or None."""
    status = answer.status_code
    if status >= 500:
        return f"{status}"
    if call.who == PUBLIC:
        location = answer.headers.get("location", "")
        return None if who.role == "member" or tenants.a not in location else f"to {location}"
    if call.who == OAUTH:
        # The flow waits in the caller's own signed cookie; without one the answer comes before
        # any workspace is read.
        return None if status == 400 else f"{status}"
    if who.role == "member" and call.who == MEMBER:
        # Their own (a page's form without the cookie's CSRF token is refused).
        return (
            None
            if status in (200, 303, 409) or (status == 403 and not who.by_cookie)
            else f"{status}"
        )
    if who.role == "member" and call.who == ADMIN and who.by_cookie:
        return None if status == 403 else f"{status}, not 403"
    return None if status in (401, 403, 404) or to_sign_in(answer) else f"{status}"


def walk(tenants: Tenants, who: Caller) -> list[str]:
    """Every route and every method of every path, as `who`: the problems found. The methods no
    route takes come before signing out, so a cookie's caller is still signed in for them."""
    problems = []
    registered = {(key.split()[0], call.path) for key, call in ROUTES.items()}
    unregistered = [
        (method, Call(call.path, call.who))
        for call in {call.path: call for call in ROUTES.values()}.values()
        for method in METHODS
        if (method, call.path) not in registered and not call.path.startswith("/static")
    ]
    routed = [(key.split()[0], call) for key, call in ROUTES.items() if not call.last]
    last = [(key.split()[0], call) for key, call in ROUTES.items() if call.last]
    for method, call in [*routed, *unregistered, *last]:
        for sent_method in ["GET", "POST"] if method == "MOUNT" else [method]:
            answer, sent = send(tenants, who, sent_method, call, tenants.a)
            # A method no route takes is 405 before anything runs; static files are read only.
            unrouted = (method, call.path) not in registered
            if sent_method == "POST" if method == "MOUNT" else unrouted:
                why = None if answer.status_code == 405 else f"{answer.status_code}, not 405"
            else:
                why = refused(tenants, who, call, answer)
            if why:
                problems.append(
                    f"{sent_method} {call.path} ({call.who}): {why}: {answer.text[:200]}"
                )
            problems += [
                f"{sent_method} {call.path} shows {m!r}" for m in leaks(tenants, who, answer, sent)
            ]
    return problems


# ------------------------------------------------------------------------ the tests


def test_the_walk_knows_every_route_of_the_app(tenants: Tenants) -> None:
    # A route added to the app and not to ROUTES (or gone from the app) fails here: the walk
    # must learn how to call it.
    assert route_table(tenants) == set(ROUTES)


@pytest.mark.parametrize("name", CALLERS)
def test_nobody_outside_a_reaches_a_through_any_route(tenants: Tenants, name: str) -> None:
    who = caller(tenants, name)
    before = tenants.fingerprint()
    problems = walk(tenants, who)
    assert problems == []
    assert tenants.fingerprint() == before  # nothing of A's changed
    assert "walk-q7q3" not in tenants.served.stored_ids(tenants.a)
    assert "walk-q7q3" not in tenants.served.stored_ids(tenants.b)


@pytest.mark.parametrize("name", [n for n in CALLERS if "member" not in n])
def test_an_answer_about_a_is_the_answer_about_no_workspace(tenants: Tenants, name: str) -> None:
    """Nothing tells a stranger whether A exists, is connected, or has Real-Time Sync on."""
    who = caller(tenants, name)

    def seen(answer: requests.Response, workspace: str) -> tuple[int, str, str]:
        location = answer.headers.get("location", "")
        return (
            answer.status_code,
            location.replace(workspace, "<ws>"),
            answer.text.replace(workspace, "<ws>"),
        )

    differ = []
    for key, call in ROUTES.items():
        if "{a}" in call.path and not call.last:
            method = key.split()[0]
            about_a = seen(send(tenants, who, method, call, tenants.a)[0], tenants.a)
            about_none = seen(send(tenants, who, method, call, NOBODY)[0], NOBODY)
            if about_a != about_none:
                differ.append(f"{method} {call.path}: {about_a} vs {about_none}")
    assert differ == []


def test_a_member_of_a_is_refused_every_admin_view(tenants: Tenants) -> None:
    who = caller(tenants, "A's member by cookie")
    admin_only = [(k.split()[0], c) for k, c in ROUTES.items() if c.who == ADMIN]
    assert len(admin_only) == 18  # 10 pages and forms, 8 JSON endpoints
    for method, call in admin_only:
        answer, _ = send(tenants, who, method, call, tenants.a)
        assert answer.status_code == 403, (method, call.path, answer.status_code)
        assert "admin" in answer.text


def test_the_markers_are_there_for_a_s_admin_so_the_walk_would_see_a_leak(
    tenants: Tenants,
) -> None:
    http, csrf = sign_in(tenants, ADA)
    ada = Caller("A's admin", "member", http, csrf=csrf)
    seen = ""
    # The session cookie is read too: a signed-in one shows its session id and CSRF token.
    assert '"sid"' in cookie_content(http.cookies["quotasync_session"])
    for call in (
        Call("/w/{a}/integrations", ADMIN),
        Call("/w/{a}/activities", ADMIN),
        Call("/w/{a}/outbox", ADMIN),
        Call(f"{API}/people", MEMBER, {"email": "{contact}"}),
    ):
        answer, _ = send(tenants, ada, "GET", call, tenants.a)
        assert answer.status_code == 200, (call.path, answer.text[:200])
        seen += shown(answer)
    by_token = Caller("A's admin by token", "member", requests.Session(), token=tenants.tokens[ADA])
    answer, _ = send(tenants, by_token, "GET", Call(f"{API}/activities", ADMIN), tenants.a)
    seen += shown(answer)
    secrets = {tenants.a_ingest, tenants.tokens[ADA], tenants.tokens[MO], tenants.tokens[OLGA]}
    missing = [m for m in tenants.markers() if m not in seen and m not in secrets]
    assert missing == [ORG_ID, RTS_SECRET_A]  # kept, never shown


def test_b_s_own_endpoints_take_a_s_ids_as_unknown(tenants: Tenants) -> None:
    """A's activity ids, emails and contacts, sent to B's own endpoints by B's admin, reach
    nothing of A's: not even a "duplicate" that would tell that A has that id."""
    before = tenants.fingerprint()
    olga_failed, b_api, b_pages = (
        tenants.activity["olga"],
        f"/api/v1/workspaces/{tenants.b}",
        f"/w/{tenants.b}",
    )
    by_token = Caller(
        "B's admin by token", "stranger", requests.Session(), token=tenants.tokens[BO]
    )
    http, csrf = sign_in(tenants, BO)
    by_cookie = Caller("B's admin by cookie", "stranger", http, csrf=csrf)
    ingest = Caller("B's ingest token", "stranger", requests.Session(), token=tenants.b_ingest)

    def ask(who: Caller, method: str, path: str, **call: Any) -> requests.Response:
        answer, sent = send(tenants, who, method, Call(path, MEMBER, **call), tenants.b)
        assert leaks(tenants, who, answer, sent) == [], path
        return answer

    retried = ask(by_token, "POST", f"{b_api}/activities/retry", json={"ids": [olga_failed]})
    assert retried.json() == {"retried": []}
    listed = ask(by_token, "GET", f"{b_api}/activities", query={"user": OLGA})
    assert listed.json()["activities"] == []
    assert ask(by_token, "GET", f"{b_api}/people", query={"email": CONTACT}).status_code == 404
    form = {"id": olga_failed}
    assert ask(by_cookie, "POST", f"{b_pages}/activities/retry", form=form).status_code == 409
    for page in ("activities", "outbox", "integrations", "settings"):
        assert ask(by_cookie, "GET", f"{b_pages}/{page}", query={"user": OLGA}).status_code == 200
    same_id = payload("email_sent", id=olga_failed, user_email=BO)
    stored = ask(ingest, "POST", f"{b_api}/activities", json=same_id)
    assert stored.json() == {"accepted": 1, "duplicates": 0, "errors": []}
    assert tenants.fingerprint() == before
