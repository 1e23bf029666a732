"""Bad input to the served app (issue 9, part 2): the ingest API and every JSON endpoint get
malformed JSON, wrong types, huge strings, bad emails and time zones, unicode (lone surrogates
and NULs too) and 1,000-item batches with bad items among them, from hypothesis strategies and
from schemathesis working through `/openapi.json`. Nothing answers 500; a refusal is a 4xx that
says what was wrong; and the store shows it: each valid item stored exactly once, an invalid one
not at all, and a refused change changed nothing."""

from __future__ import annotations

import copy
import json
import reprlib
import string
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_from_bytes

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from sqlalchemy.engine import make_url

from quotasync.domain import realtime
from quotasync.domain.activities import Kind
from quotasync.store import db, mirror, users, workspaces
from quotasync.store.tables import Connection
from tests.acceptance.served_app import METRICS_TOKEN, NOW, Served, runtime_in, serve
from tests.acceptance.web_support import csrf_of
from tests.unit.domain.builders import payload

ORG_ID = "00D000000000042AAA"
RTS_SECRET = "rts-secret-of-acme"
KINDS = [kind.value for kind in Kind]
# Hypothesis runs each property this many times against the served app: enough to meet every
# kind of bad value, few enough that the file takes well under a minute.
FEW = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@dataclass
class Fuzzed:
    served: Served
    acme: str
    ingest: str  # Acme's ingest token
    admin: str  # Acme's admin's API token
    member: str  # an Acme member's API token
    password: str  # Acme's admin's

    @property
    def url(self) -> str:
        return self.served.url

    def api(self, method: str, path: str, token: str, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}", **kwargs.pop("headers", {})}
        return requests.request(
            method,
            f"{self.url}/api/v1/workspaces/{self.acme}/{path}",
            headers=headers,
            timeout=60,
            **kwargs,
        )

    def ingest_raw(self, body: bytes) -> requests.Response:
        return self.api(
            "POST",
            "activities",
            self.ingest,
            data=body,
            headers={"Content-Type": "application/json"},
        )

    def mirrored(self) -> int:
        with self.served.runtime.sessions() as session:
            return sum(
                mirror.count(session, self.acme, sobject)
                for sobject in ("Contact", "Lead", "Account", "Opportunity")
            )


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    runtime = runtime_in(tmp_path_factory.mktemp("fuzzed") / "data")
    with runtime.sessions.begin() as session:
        acme = workspaces.create(session, "Acme", "admin@acme.io", NOW)
        member = users.add(session, acme.workspace, "rep@acme.io", "member", NOW)
        admin_token = users.new_api_token(session, acme.admin, NOW)
        member_token = users.new_api_token(session, member.user, NOW)
        # Real-Time Sync on, so a signed push gets past the signature to be read.
        acme.workspace.rts_secret_sealed = runtime.vault.seal(RTS_SECRET)
        session.add(_connection(runtime.vault.seal, acme.workspace.id))
        ids = (acme.workspace.id, acme.ingest_token, acme.admin_password)
    with serve(runtime) as served:
        yield Fuzzed(served, ids[0], ids[1], admin_token, member_token, ids[2])


def _connection(seal: Callable[[str], str], workspace_id: str) -> Connection:
    return Connection(
        workspace_id=workspace_id,
        # Nothing listens there: the doctor's call to the org is refused at once, on this
        # machine (the tests reach no other).
        instance_url="https://127.0.0.1:9",
        login_url="https://127.0.0.1:9",
        api_version="62.0",
        client_id="quotasync",
        username="sync@acme.io",
        org_id=ORG_ID,
        user_id="005000000000001AAA",
        access_token_sealed=seal("no-token-needed-here"),
        connected_at=NOW,
    )


def assert_clear_4xx(answer: requests.Response) -> None:
    """A refusal the client can act on: a 4xx whose JSON says what was wrong (the ingest API's
    422 names each item's problems)."""
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text[:500])
    body = answer.json()
    assert body.get("detail") or body.get("errors"), answer.text[:500]


# ------------------------------------------------------------------------ strategies

LONE_SURROGATES = ["\ud800", "x\udfffy", "\udc80"]


# Any character a valid subject may hold (a NUL is fine there, but not in an id, so not here).
characters = st.characters(codec="utf-8", exclude_characters="\x00")
texts = st.text(characters, max_size=60) | st.sampled_from(
    ["é" * 20_000, "\U0001d518\U0001d52b\U0001d526 \u202e tekst", "日本語の件名", "\u200d\ufeff"]
)
# Every string JSON can carry: NULs, lone surrogates (as `\ud800` escapes) and very long ones.
any_texts = texts | st.sampled_from([*LONE_SURROGATES, "\x00", "a\x00b", "x" * 300_000])
numbers = (
    st.integers()
    | st.integers(min_value=10**30)
    | st.floats()  # NaN and the infinities too: json.loads takes them
    | st.sampled_from([0, -1, 10, 90, 91, 1e400, -0.0])
)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | any_texts,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_texts, inner, max_size=4),
    max_leaves=12,
)
emails = st.builds(
    "{}@{}.{}".format,
    st.text(string.ascii_letters + string.digits + "._%+-", min_size=1, max_size=20)
    | st.sampled_from(["josé", "Ünïcødé", "o'brien", "名前"]),
    st.text(string.ascii_lowercase + string.digits + "-", min_size=1, max_size=12)
    | st.sampled_from(["exämple", "例え"]),
    st.sampled_from(["io", "com", "co.uk", "технологии"]),
)
offsets = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=offsets
).map(datetime.isoformat)


@st.composite
def valid_items(
    draw: st.DrawFn, texts: st.SearchStrategy[str] = texts, kinds: list[str] = KINDS
) -> dict[str, Any]:
    """One valid activity of one of `kinds`, without its id (the test gives each a fresh one)."""
    kind = draw(st.sampled_from(kinds))
    item = payload(kind, id=None, occurred_at=draw(times), user_email=draw(emails))
    if kind == "email_sent":
        item["to"] = draw(st.lists(emails, min_size=1, max_size=5))
        item["cc"] = draw(st.lists(emails, max_size=3))
    if "subject" in item or draw(st.booleans()):
        item["subject"] = draw(texts)
    if "body" in item or draw(st.booleans()):
        item["body"] = draw(texts)
    if "meeting" in item:
        start = draw(st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=offsets))
        end = start + timedelta(minutes=draw(st.integers(0, 10_000)))
        item["meeting"] = {
            "start": start.isoformat(),
            "end": end.astimezone(draw(offsets)).isoformat(),
            "location": draw(st.none() | texts),
            "attendees": draw(st.lists(emails, max_size=3)),
        }
    return item


# How to break one field of a valid item, and the field the 422 must then name. `None` as a
# value removes the field.
BREAKS: list[tuple[str, str, list[Any]]] = [
    # (kinds it applies to, field, bad values)
    ("*", "id", [None, "", "   ", "x" * 256, 42, ["a"], *LONE_SURROGATES, "a\x00b"]),
    ("*", "kind", [None, "email_bounced", 3, "EMAIL_SENT", "email_sent\x00"]),
    (
        "*",
        "occurred_at",
        [
            None,
            "2026-11-28T09:30:00",  # no offset
            "2026-11-28",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-28T09:30:00+24:00",
            "2026-11-28T09:30:00 Europe/Paris",
            "2026-11-28T09:30:00[Europe/Paris]",
            "0001-01-01T00:00:00+01:00",  # before year 1 in UTC
            "9999-12-31T23:59:59-01:00",  # after year 9999 in UTC
            1764322200,
            "\ud800",
        ],
    ),
    (
        "*",
        "user_email",
        [
            None,
            "not an email",
            "rep@acme",
            "@acme.io",
            "rep@@acme.io",
            "r" * 250 + "@acme.io",
            7,
            "rep\ud800@acme.io",
            "rep@acme.io\x00",
            "rep\x07@acme.io",
        ],
    ),
    ("email_sent", "to", [None, [], "buyer@acme.com", {"email": "buyer@acme.com"}]),
    ("email_sent", "to[0]", [["buyer"], [7], ["bu\udcffyer@acme.com"]]),
    ("*", "cc[0]", [["nobody"], [None], ["x@y"]]),
    ("*", "subject", [5, ["Hi"], {"text": "Hi"}, True, "Hi \ud800 there"]),
    ("*", "body", [5.5, ["Hi"], "\udfff"]),
    ("email_opened", "email_id", [None, "", "e" * 256, 12, "\ud800"]),
    ("link_clicked", "url", [None, "ftp://seller.io", "javascript:alert(1)", "http://", 80]),
    ("meeting_booked", "meeting", [None, "tomorrow", [], 5]),
    (
        "meeting_booked",
        "meeting.end",
        [{"start": "2026-12-01T16:00:00+01:00", "end": "2026-12-01T15:00:00+01:00"}],
    ),
    (
        "meeting_booked",
        "meeting.start",
        [
            {"start": "2026-12-01T16:00:00", "end": "2026-12-01T17:00:00+01:00"},
            {"start": "0001-01-01T00:30:00+01:00", "end": "2026-12-01T17:00:00+01:00"},
        ],
    ),
    ("meeting_canceled", "meeting_id", [None, "", 3]),
]


@st.composite
def invalid_items(draw: st.DrawFn) -> tuple[object, str]:
    """An item with one thing wrong, and the field its 422 entry must name ('' for the item)."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(["text", 42, None, [], [{"id": "x"}], True, 1e400])), ""
    kinds, field, values = draw(st.sampled_from(BREAKS))
    item = draw(valid_items(kinds=KINDS if kinds == "*" else [kinds]))
    value = draw(st.sampled_from(values))
    key = field.split("[")[0].split(".")[0]
    if field == "meeting.end" or field == "meeting.start":
        item[key] = value
    elif value is None:
        item.pop(key, None)
    else:
        item[key] = value
    return item, field


@dataclass
class Batch:
    items: list[object]
    valid: list[int]  # positions of valid items
    invalid: dict[int, str]  # position -> the field its entry names

    def __repr__(self) -> str:
        # Short, so hypothesis can show a failing batch of 1,000 items carrying 20,000-character
        # subjects; each bad item in full but for its long strings.
        shown = reprlib.Repr()
        shown.maxstring = shown.maxother = 80
        bad = {p: shown.repr(self.items[p]) for p in self.invalid}
        return f"Batch({len(self.items)} items, {len(self.valid)} valid, bad={bad}, names={self.invalid})"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis's printer asks this
        printer.text(repr(self))


@st.composite
def batches(draw: st.DrawFn) -> Batch:
    n = draw(st.integers(1, 25))
    bad = draw(st.sets(st.integers(0, n - 1), max_size=n))
    batch = Batch([], [], {})
    for position in range(n):
        if position in bad:
            item, field = draw(invalid_items())
            batch.items.append(item)
            batch.invalid[position] = field
        else:
            batch.items.append(draw(valid_items()))
            batch.valid.append(position)
    return batch


@st.composite
def big_batches(draw: st.DrawFn, size: int = 1000) -> Batch:
    """`size` items: a few drawn valid ones over and over (each will get an id of its own), and
    bad ones at drawn positions."""
    # Short texts: a 20,000-character subject 250 times over would pass the 16 MiB limit.
    good = draw(st.lists(valid_items(st.text(characters, max_size=40)), min_size=1, max_size=4))
    bad = draw(st.dictionaries(st.integers(0, size - 1), invalid_items(), min_size=1, max_size=40))
    batch = Batch([], [], {})
    for position in range(size):
        if position in bad:
            item, field = bad[position]
            batch.items.append(copy.deepcopy(item))
            batch.invalid[position] = field
        else:
            batch.items.append(dict(good[position % len(good)]))
            batch.valid.append(position)
    return batch


def with_ids(batch: Batch, repeats: int = 0) -> tuple[list[object], dict[int, str]]:
    """Fresh ids for every item that takes one (so examples never meet each other's ids); the
    first `repeats` valid items appear twice, as a retried post would send them."""
    run = uuid.uuid4().hex[:10]
    ids: dict[int, str] = {}
    for position, item in enumerate(batch.items):
        if isinstance(item, dict) and (position in batch.valid or batch.invalid[position] != "id"):
            item["id"] = ids[position] = f"{run}-{position}"
    items = list(batch.items)
    items += [batch.items[p] for p in batch.valid[:repeats]]
    return items, ids


def check_ingest(fuzzed: Fuzzed, batch: Batch, repeats: int = 0) -> None:
    items, ids = with_ids(batch, repeats)
    before = fuzzed.served.stored_count()
    answer = fuzzed.ingest_raw(json.dumps(items).encode())
    valid_ids = {ids[p] for p in batch.valid}
    if not valid_ids:
        assert answer.status_code == 422, answer.text[:500]
    else:
        assert answer.status_code == 202, answer.text[:500]
    body = answer.json()
    assert body["accepted"] == len(valid_ids)
    assert body["duplicates"] == len(items) - len(batch.items)
    # Each invalid item is named, by position and (when it could be read) its id, with the
    # field and the problem.
    named = {e["index"]: e for e in body["errors"]}
    assert set(named) == set(batch.invalid)
    for position, field in batch.invalid.items():
        entry = named[position]
        assert entry["status"] == 422
        assert entry.get("id") in (None, ids.get(position))
        assert field in {p["field"] for p in entry["problems"]}, entry
        assert all(p["message"] for p in entry["problems"])
    # The store holds each valid item exactly once and nothing of the invalid ones.
    stored = Counter(fuzzed.served.stored_ids(fuzzed.acme))
    assert all(stored[i] == 1 for i in valid_ids)
    assert not [ids[p] for p in batch.invalid if p in ids and stored[ids[p]]]
    assert fuzzed.served.stored_count() == before + len(valid_ids)


# ------------------------------------------------------------------------ the ingest API


@settings(FEW, max_examples=75)
@given(batches(), st.integers(0, 2))
def test_an_ingest_batch_stores_each_valid_item_once_and_names_each_invalid_one(
    fuzzed: Fuzzed, batch: Batch, repeats: int
) -> None:
    check_ingest(fuzzed, batch, repeats)


@settings(FEW, max_examples=4)
@given(big_batches())
def test_a_batch_of_1000_with_bad_items_anywhere_keeps_exactly_the_good_ones(
    fuzzed: Fuzzed, batch: Batch
) -> None:
    check_ingest(fuzzed, batch)


def test_a_batch_of_1001_is_refused_whole_and_stores_nothing(fuzzed: Fuzzed) -> None:
    before = fuzzed.served.stored_count()
    items = [payload("email_sent", id=f"over-{i}") for i in range(1001)]
    answer = fuzzed.ingest_raw(json.dumps(items).encode())
    assert answer.status_code == 413 and "at most 1000" in answer.json()["detail"]
    assert fuzzed.served.stored_count() == before


not_activities = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=50).map(lambda raw: b'{"id": "' + raw + b'"}'),  # not UTF-8 inside
    json_values.filter(lambda v: not isinstance(v, dict | list)).map(
        lambda v: json.dumps(v).encode()
    ),
    st.integers(1_000, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1_000, 50_000).map(lambda depth: b'{"a":' * depth + b"1" + b"}" * depth),
    st.sampled_from([b"", b"{", b"[1,]", b"\xef\xbb\xbf{}", b"1" * 5_000, b"NaN", b"[NaN]"]),
)


@FEW
@given(not_activities)
@example(b"[" * 100_000)  # once a 500: json.loads ran out of stack
@example(b"[" * 5_000 + b"]" * 5_000)
def test_a_body_that_is_not_activities_is_a_clear_4xx_and_stores_nothing(
    fuzzed: Fuzzed, raw: bytes
) -> None:
    before = fuzzed.served.stored_count()
    answer = fuzzed.ingest_raw(raw)
    assert_clear_4xx(answer)
    assert fuzzed.served.stored_count() == before


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        # Times out of range once in UTC and lone surrogates in an id or address were 500s
        # (SQLite and the JSON answer cannot encode a surrogate); a surrogate in a subject was
        # stored, and the Activities page showing it was a 500 from then on; NULs in ids and
        # addresses were 500s on PostgreSQL.
        ("occurred_at", "0001-01-01T00:00:00+01:00", "out of range"),
        ("occurred_at", "9999-12-31T23:59:59-01:00", "out of range"),
        ("id", "\ud800", "lone surrogate"),
        ("user_email", "rep\ud800@acme.io", "lone surrogate"),
        ("subject", "Hi \udfff", "lone surrogate"),
        ("id", "a\x00b", "NUL"),
        ("user_email", "rep\x00@acme.io", "control character"),
    ],
)
def test_once_a_500_now_the_item_is_named_and_the_others_kept(
    fuzzed: Fuzzed, field: str, value: str, says: str
) -> None:
    run = uuid.uuid4().hex[:10]
    good = payload("email_sent", id=f"{run}-good")
    bad = payload("email_sent", id=f"{run}-bad") | {field: value}
    answer = fuzzed.ingest_raw(json.dumps([good, bad]).encode())
    assert answer.status_code == 202, answer.text[:300]
    (entry,) = answer.json()["errors"]
    assert entry["index"] == 1
    assert {p["field"]: p["message"] for p in entry["problems"]}[field].count(says) == 1
    stored = fuzzed.served.stored_ids(fuzzed.acme)
    assert f"{run}-good" in stored and f"{run}-bad" not in stored


def test_a_nul_anywhere_is_a_4xx_before_the_store_is_asked(
    database_url: str, tmp_path: Path
) -> None:
    """Each of these was a 500 on PostgreSQL, whose text cannot hold a NUL (SQLite's can): at
    sign-in and on /rts/ for anyone, in the filters, the sidebar lookup and retries for members."""
    if make_url(database_url).get_backend_name() != "sqlite":
        db.upgrade(database_url)
    runtime = runtime_in(tmp_path / "data", database_url=database_url)
    with runtime.sessions.begin() as session:
        made = workspaces.create(session, "Acme", "admin@acme.io", NOW)
        token = users.new_api_token(session, made.admin, NOW)
        acme, ingest, password = made.workspace.id, made.ingest_token, made.admin_password
    with serve(runtime) as served:
        api = f"{served.url}/api/v1/workspaces/{acme}"
        bearer = {"Authorization": f"Bearer {token}"}
        browser = requests.Session()
        csrf = csrf_of(browser.get(f"{served.url}/signin", timeout=30).text)

        def sign_in(email: str) -> int:
            form = {"email": email, "password": password, "csrf_token": csrf}
            done = browser.post(
                f"{served.url}/signin", data=form, allow_redirects=False, timeout=30
            )
            return done.status_code

        assert sign_in("admin\x00@acme.io") == 401
        assert requests.post(f"{served.url}/rts/ws%00x", data=b"{}", timeout=30).status_code == 401
        assert (
            requests.get(f"{api}/activities?user=a%00@b.io", headers=bearer, timeout=30).status_code
            == 422
        )
        assert (
            requests.get(f"{api}/people?email=a%00@b.io", headers=bearer, timeout=30).status_code
            == 422
        )
        retry = requests.post(
            f"{api}/activities/retry", json={"ids": ["a\x00"]}, headers=bearer, timeout=30
        )
        assert retry.status_code == 422
        item = payload("email_sent", id="a\x00b")
        posted = requests.post(
            f"{api}/activities",
            json=item,
            headers={"Authorization": f"Bearer {ingest}"},
            timeout=30,
        )
        assert posted.status_code == 422
        assert sign_in("admin@acme.io") == 303
        page = f"{served.url}/w/{acme}/activities"
        assert browser.get(f"{page}?user=a%00@b.io", timeout=30).status_code == 422
        form = {"id": "\x00", "csrf_token": csrf_of(browser.get(page, timeout=30).text)}
        assert browser.post(f"{page}/retry", data=form, timeout=30).status_code == 409


# ------------------------------------------------------------------------ every JSON endpoint


def json_texts(fields: list[str]) -> st.SearchStrategy[bytes]:
    """JSON bodies of any shape, most of them objects with the endpoint's own fields."""
    objects = st.dictionaries(st.sampled_from(fields) | any_texts, json_values, max_size=4)
    return (objects | json_values).map(lambda v: json.dumps(v).encode()) | not_activities


# (method, path, the body's fields, how to read what a refused write must have left alone)
WRITES: list[tuple[str, str, list[str], str | None]] = [
    ("PATCH", "limits", ["data", "bulk", "apex"], "limits"),
    (
        "PATCH",
        "settings",
        ["recheck_minutes", "warning_percent", "log_within", "max_batch_delay"],
        "settings",
    ),
    ("POST", "activities/retry", ["ids"], None),
    ("POST", "activities", ["id", "kind", "occurred_at", "user_email", "to"], None),
]


@pytest.mark.parametrize(("method", "path", "fields", "read"), WRITES, ids=lambda v: str(v))
def test_every_json_write_refuses_a_bad_body_with_a_clear_4xx_and_changes_nothing(
    fuzzed: Fuzzed, method: str, path: str, fields: list[str], read: str | None
) -> None:
    token = fuzzed.ingest if path == "activities" else fuzzed.admin

    @FEW
    @given(json_texts(fields))
    @example(b'{"data": NaN}')  # these six were 500s: the 422 could not be written as JSON
    @example(b'{"data": Infinity}')
    @example(b'{"data": 1e400}')
    @example(b'{"max_batch_delay": NaN}')
    @example(b'{"log_within": Infinity}')
    @example(b'{"\\ud800": 1}')
    @example(b'{"ids": ["\\ud800"]}')
    def check(raw: bytes) -> None:
        before = fuzzed.api("GET", read, fuzzed.admin).json() if read else None
        stored = fuzzed.served.stored_count()
        answer = fuzzed.api(
            method, path, token, data=raw, headers={"Content-Type": "application/json"}
        )
        assert answer.status_code < 500, (answer.status_code, answer.text[:300])
        if answer.status_code >= 400:
            assert_clear_4xx(answer)
            if read:
                assert fuzzed.api("GET", read, fuzzed.admin).json() == before
            assert fuzzed.served.stored_count() == stored

    check()


# Percent-encoded, lone surrogates as the bytes they would be (%ED%A0%80), and raw bytes that are
# no UTF-8 at all; long enough to pass every length limit.
query_values = st.one_of(
    st.text(max_size=40),
    st.sampled_from([*LONE_SURROGATES, "\x00", "a\x00@b.io", "é" * 1_000, "rep@acme.io"]),
).map(lambda text: quote(text, safe="", errors="surrogatepass")) | st.binary(max_size=30).map(
    quote_from_bytes
)
READS = [
    ("activities", ["state", "kind", "user", "limit"]),
    ("episodes", ["limit"]),
    ("people", ["email"]),
    ("usage", []),
    ("usage/hourly", []),
    ("me/usage", []),
    ("limits", []),
    ("settings", []),
]


@pytest.mark.parametrize(("path", "names"), READS, ids=lambda v: str(v))
def test_every_json_read_answers_any_query_without_a_500(
    fuzzed: Fuzzed, path: str, names: list[str]
) -> None:
    @FEW
    @given(st.dictionaries(st.sampled_from([*names, "x"]), query_values, max_size=4))
    def check(query: dict[str, str]) -> None:
        raw = "&".join(f"{name}={value}" for name, value in query.items())
        for token in (fuzzed.admin, fuzzed.member):
            answer = fuzzed.api("GET", f"{path}?{raw}", token)
            assert answer.status_code < 500, (answer.status_code, answer.text[:300])
            if answer.status_code >= 400:
                assert_clear_4xx(answer)

    check()


# ------------------------------------------------------------------------ the pages' forms

form_values = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "NaN", "inf", "1e400", "-0", "٣٥", "50", "5.5", "on", "realtime"]),
    st.sampled_from(["interval", "data", "bulk", "apex", "production", "my_domain"]),
    st.sampled_from(["http://127.0.0.1:9/rts", "https://x.my.salesforce.com", "\x00", "é" * 300]),
)
FORMS = [
    ("POST", "integrations/share", ["api", "percent"]),
    (
        "POST",
        "integrations/settings",
        ["open_tracking", "recheck_minutes", "log_within", "max_batch_delay"],
    ),
    ("POST", "integrations/sync-mode", ["mode", "url"]),
    ("POST", "activities/retry", ["id"]),
    ("POST", "connect", ["host", "my_domain"]),
    ("GET", "activities", ["state", "kind", "user", "retried"]),
    ("GET", "integrations", ["saved"]),
]


@pytest.mark.parametrize(("method", "path", "names"), FORMS, ids=lambda v: str(v))
def test_every_form_answers_any_input_without_a_500(
    fuzzed: Fuzzed, method: str, path: str, names: list[str]
) -> None:
    """The admin's own pages, with any value in their fields: a page or a redirect, never a 500,
    and a refused form changes none of the settings."""
    browser = requests.Session()
    form = browser.get(f"{fuzzed.url}/signin", timeout=30)
    browser.post(
        f"{fuzzed.url}/signin",
        data={
            "email": "admin@acme.io",
            "password": fuzzed.password,
            "csrf_token": csrf_of(form.text),
        },
        timeout=30,
    )
    csrf = csrf_of(browser.get(f"{fuzzed.url}/w/{fuzzed.acme}/integrations", timeout=30).text)
    url = f"{fuzzed.url}/w/{fuzzed.acme}/{path}"

    @FEW
    @given(st.dictionaries(st.sampled_from([*names, "x"]), form_values, max_size=4))
    def check(fields: dict[str, str]) -> None:
        before = fuzzed.api("GET", "settings", fuzzed.admin).json()
        if method == "GET":
            answer = browser.get(url, params=fields, allow_redirects=False, timeout=60)
        else:
            answer = browser.post(
                url, data={**fields, "csrf_token": csrf}, allow_redirects=False, timeout=60
            )
        assert answer.status_code < 500, (answer.status_code, answer.text[:300])
        if answer.status_code >= 400 and method == "POST":
            assert 'role="alert"' in answer.text or "detail" in answer.text, answer.text[:300]
            assert fuzzed.api("GET", "settings", fuzzed.admin).json() == before

    check()


# ------------------------------------------------------------------------ Real-Time Sync pushes

modstamps = st.one_of(
    times,
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-11-28"]),
    json_values,
)
record_ids = st.text(string.ascii_letters + string.digits, min_size=18, max_size=18) | any_texts
changes = st.fixed_dictionaries(
    {
        "sobject": st.sampled_from(["Contact", "Lead", "Account", "Opportunity", "User"]),
        "id": record_ids,
        "change": st.sampled_from(["created", "updated", "deleted", "merged"]),
        "systemModstamp": modstamps,
    },
    optional={"fields": st.dictionaries(any_texts, json_values, max_size=4) | json_values},
)
pushes = st.one_of(
    st.fixed_dictionaries(
        {
            "organizationId": st.sampled_from([ORG_ID, "00D000000000001AAA"]) | any_texts,
            "changes": st.lists(changes, max_size=4) | json_values,
        }
    ).map(lambda push: json.dumps(push).encode()),
    not_activities,
)
stamps = st.sampled_from([str(int(NOW.timestamp()))]) | st.sampled_from(
    ["", "-1", "²", "999999999999", "1" * 13, "0", str(int(NOW.timestamp()) - 3600)]
)


@FEW
@given(pushes, stamps, st.booleans())
@example(
    json.dumps(
        {
            "organizationId": ORG_ID,
            "changes": [
                {
                    "sobject": "Contact",
                    "id": "003000000000001AAA",
                    "change": "updated",
                    "systemModstamp": "0001-01-01T00:00:00+01:00",
                }
            ],
        }
    ).encode(),
    str(int(NOW.timestamp())),
    True,
)  # was a 500: the modstamp is out of range once in UTC
@example(b"[" * 100_000, str(int(NOW.timestamp())), True)
@example(b"{}", "999999999999", True)  # was a 500: a signed timestamp past year 9999
@example(b"{}", "²", True)  # was a 500: a digit that int() does not read
def test_a_signed_push_of_any_shape_is_taken_or_refused_with_a_4xx_and_no_change(
    fuzzed: Fuzzed, body: bytes, stamp: str, signed: bool
) -> None:
    before = fuzzed.mirrored()
    signature = realtime.sign(RTS_SECRET, stamp, body) if signed else "sha256=é"
    answer = requests.post(
        f"{fuzzed.url}/rts/{fuzzed.acme}",
        data=body,
        headers={"X-QS-Timestamp": stamp, "X-QS-Signature": signature},
        timeout=60,
    )
    assert answer.status_code < 500, (answer.status_code, answer.text[:300])
    if answer.status_code >= 400:
        assert_clear_4xx(answer)
        assert fuzzed.mirrored() == before


# ------------------------------------------------------------------------ schemathesis


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_500_in_any_operation_of_the_openapi_schema(
    fuzzed: Fuzzed, mode: GenerationMode
) -> None:
    """Every operation in /openapi.json, with the credentials it takes (and with whatever
    Authorization header schemathesis makes up): no 5xx, a 4xx that says why."""
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    tokens = {
        "/api/v1/workspaces/{workspace}/activities": fuzzed.ingest,
        "/api/v1/workspaces/{workspace}/people": fuzzed.ingest,
        "/metrics": METRICS_TOKEN,
    }
    operations = [schema[path][method] for path in schema for method in schema[path]]
    ran: Counter[str] = Counter()
    # Operations whose only inputs are the path and a header: a header is any string, so once
    # the path is fixed there is nothing left that breaks the schema.
    unbreakable: set[str] = set()
    for operation in operations:
        token = tokens.get(operation.path, fuzzed.admin)
        label = operation.label
        for headers in ({"Authorization": f"Bearer {token}"}, None):
            strategy = operation.as_strategy(
                mode,
                path_parameters={"workspace": fuzzed.acme},
                headers=headers,
            )

            @settings(
                FEW,
                max_examples=15,
                suppress_health_check=[*FEW.suppress_health_check, HealthCheck.filter_too_much],
            )
            @given(strategy)
            def check(case: schemathesis.Case) -> None:
                response = case.call(base_url=fuzzed.url, timeout=60)
                ran[label] += 1  # noqa: B023 (check runs before the loop moves on)
                assert response.status_code < 500, (case.as_curl_command(), response.text[:300])
                if response.status_code >= 400:
                    body = response.json()
                    assert body.get("detail") or body.get("errors"), case.as_curl_command()

            try:
                check()
            except Unsatisfiable:
                if mode is not GenerationMode.NEGATIVE:
                    raise
                unbreakable.add(operation.label)
    labels = {operation.label for operation in operations}
    assert set(ran) == labels or (
        mode is GenerationMode.NEGATIVE and set(ran) | unbreakable == labels
    )
    assert len(labels) == 15, labels  # the JSON API, the ingest API, /rts and /metrics
