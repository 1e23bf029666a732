"""SOQL for the sandbox org: a parser (lark, LALR) and an evaluator over in-memory rows.

Only the subset the product sends is accepted; everything else is refused with the
``MALFORMED_QUERY`` error a developer would get from Salesforce, or with a message naming
the feature the sandbox does not implement, so a query never silently means something else.

Semantics worth knowing:

* String equality, ordering and ``LIKE`` are case-insensitive, as in SOQL.
* ``= NULL`` / ``!= NULL`` test for null. As in SOQL, null is a value for ``!=`` and ``NOT IN``:
  a null field matches ``!= 'x'`` and ``NOT IN ('x')`` (unless NULL is listed); every other
  comparison with a null value is false.
* A value of the wrong type for its literal (a string field against a number) never matches.
* A date literal compared with a datetime field stands for that whole UTC day.
* Relative dates are resolved against the ``now`` passed to :func:`run` / :func:`matches`,
  in UTC. ``LAST_N_DAYS:n`` covers today and the ``n`` days before it (Salesforce:
  "LAST_N_DAYS:1 includes yesterday and today"); ``NEXT_N_DAYS:n`` covers the ``n`` days
  after today, excluding today.
* ``NOT`` binds to the single condition that follows it: ``NOT a = 1 AND b = 2`` means
  ``(NOT a = 1) AND b = 2``.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, TypeAlias

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, VisitError

__all__ = [
    "And",
    "Comparison",
    "Condition",
    "FieldPath",
    "Getter",
    "InList",
    "Like",
    "Not",
    "Or",
    "OrderItem",
    "Query",
    "RelativeDate",
    "SoqlError",
    "matches",
    "parse",
    "run",
]

MAX_OFFSET = 2000

FieldPath: TypeAlias = tuple[str, ...]
Row: TypeAlias = Any
Getter: TypeAlias = Callable[[Row, FieldPath], Any]
Predicate: TypeAlias = Callable[[Row], bool]
Test: TypeAlias = Callable[[Any], bool]


class SoqlError(Exception):
    """A query Salesforce would refuse."""

    message: str
    code: str

    def __init__(self, message: str, code: str = "MALFORMED_QUERY") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


# --------------------------------------------------------------------------- query model


@dataclass(frozen=True)
class RelativeDate:
    """``TODAY``, ``LAST_N_DAYS:n`` and friends; resolved only when the query runs."""

    name: str
    n: int = 0

    def bounds(self, today: date) -> tuple[date, date]:
        """The first and last day (both inclusive) the literal covers."""
        if self.name == "TODAY":
            return today, today
        if self.name == "YESTERDAY":
            day = _shift(today, -1)
            return day, day
        if self.name == "TOMORROW":
            day = _shift(today, 1)
            return day, day
        if self.name == "LAST_N_DAYS":
            return _shift(today, -self.n), today
        return _shift(today, 1), _shift(today, self.n)


def _shift(day: date, days: int) -> date:
    """`day` moved by `days`, held at the first or last date there is."""
    try:
        return day + timedelta(days=days)
    except OverflowError:
        return date.max if days > 0 else date.min


Value: TypeAlias = str | int | float | bool | date | datetime | RelativeDate | None


@dataclass(frozen=True)
class Comparison:
    path: FieldPath
    op: str  # one of = != < <= > >=  (``<>`` is normalised to ``!=``)
    value: Value


@dataclass(frozen=True)
class Like:
    path: FieldPath
    pattern: str  # as written between the quotes, escapes included


@dataclass(frozen=True)
class InList:
    path: FieldPath
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class And:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Or:
    parts: tuple[Condition, ...]


@dataclass(frozen=True)
class Not:
    part: Condition


Condition: TypeAlias = Comparison | Like | InList | And | Or | Not


@dataclass(frozen=True)
class OrderItem:
    """One ORDER BY key. Leaving ``nulls_last`` out gives SOQL's default for the direction."""

    path: FieldPath
    descending: bool = False
    nulls_last: bool = None  # type: ignore[assignment]  # resolved in __post_init__

    def __post_init__(self) -> None:
        if self.nulls_last is None:
            object.__setattr__(self, "nulls_last", self.descending)


@dataclass(frozen=True)
class Query:
    sobject: str
    fields: tuple[FieldPath, ...]
    count_only: bool = False
    where: Condition | None = None
    order_by: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None

    def where_paths(self) -> tuple[FieldPath, ...]:
        return tuple(dict.fromkeys(_condition_paths(self.where))) if self.where else ()

    def order_paths(self) -> tuple[FieldPath, ...]:
        return tuple(dict.fromkeys(item.path for item in self.order_by))


def _condition_paths(condition: Condition) -> Iterable[FieldPath]:
    if isinstance(condition, And | Or):
        for part in condition.parts:
            yield from _condition_paths(part)
    elif isinstance(condition, Not):
        yield from _condition_paths(condition.part)
    else:
        yield condition.path


# --------------------------------------------------------------------------- parsing


class _PositionedError(Exception):
    """A semantic error found while building the tree; parse() adds the caret display."""

    def __init__(self, message: str, token: Token) -> None:
        super().__init__(message)
        self.message = message
        self.line = token.line or 1
        self.column = token.column or 1


_RELATIVE_DAYS = {"TODAY", "YESTERDAY", "TOMORROW"}
_RELATIVE_N = {"LAST_N_DAYS", "NEXT_N_DAYS"}
# Date literals Salesforce knows but the sandbox does not evaluate; naming them beats
# a bare "unexpected token".
_UNSUPPORTED_RELATIVE = re.compile(
    r"(LAST|THIS|NEXT)_(WEEK|MONTH|QUARTER|YEAR|FISCAL_QUARTER|FISCAL_YEAR|90_DAYS)"
    r"|(LAST|NEXT)_N_(WEEKS|MONTHS|QUARTERS|YEARS|FISCAL_QUARTERS|FISCAL_YEARS)"
    r"|N_(DAYS|WEEKS|MONTHS|QUARTERS|YEARS|FISCAL_QUARTERS|FISCAL_YEARS)_AGO"
)
_STRING_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "r": "\r", "t": "\t"}
_STRING_ESCAPES |= {"b": "\b", "f": "\f"}
_LIKE_ONLY_ESCAPES = {"%", "_"}


def _unescape(raw: str, token: Token) -> str:
    out: list[str] = []
    chars = iter(raw)
    for ch in chars:
        if ch != "\\":
            out.append(ch)
            continue
        escaped = next(chars, "")
        if escaped not in _STRING_ESCAPES:
            raise _PositionedError(f"invalid escape sequence in string literal: \\{escaped}", token)
        out.append(_STRING_ESCAPES[escaped])
    return "".join(out)


def _like_regex(pattern: str) -> re.Pattern[str]:
    """Translate a raw LIKE pattern (escapes included) into a case-insensitive regex."""
    out: list[str] = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            escaped = next(chars, "")
            if escaped in _LIKE_ONLY_ESCAPES:
                out.append(re.escape(escaped))
            elif escaped in _STRING_ESCAPES:
                out.append(re.escape(_STRING_ESCAPES[escaped]))
            else:
                raise SoqlError(f"invalid escape sequence in string literal: \\{escaped}")
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _parse_datetime(text: str) -> datetime:
    # fromisoformat copes with "Z", fractions and "+01:00" but not "-0800".
    if re.search(r"[+-]\d{4}$", text):
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _nonnegative_int(token: Token, clause: str) -> int:
    if not re.fullmatch(r"\d+", token):
        raise _PositionedError(f"{clause} must be a non-negative integer: {token}", token)
    return int(token)


@v_args(inline=True)
class _ToQuery(Transformer[Token, Any]):
    """Turns the lark tree into the frozen query model, rejecting what SOQL rejects."""

    def start(self, select: list[Any], sobject: Token, *clauses: tuple[str, Any]) -> Query:
        parts = dict(clauses)
        count_only = any(item == "COUNT()" for item in select)
        if count_only and len(select) > 1:
            raise SoqlError("COUNT() must be the only element in the SELECT list")
        if count_only and "order" in parts:
            raise SoqlError("ORDER BY is not supported together with COUNT()")
        fields: tuple[FieldPath, ...] = () if count_only else tuple(select)
        _reject_duplicates(fields)
        offset = parts.get("offset")
        if offset is not None and offset > MAX_OFFSET:
            raise SoqlError(f"maximum SOQL offset allowed is {MAX_OFFSET}")
        return Query(
            sobject=str(sobject),
            fields=fields,
            count_only=count_only,
            where=parts.get("where"),
            order_by=parts.get("order", ()),
            limit=parts.get("limit"),
            offset=offset,
        )

    def select_clause(self, *items: Any) -> list[Any]:
        return list(items)

    def func_call(self, name: Token, *args: FieldPath | None) -> str:
        if name.upper() == "COUNT" and all(arg is None for arg in args):
            return "COUNT()"
        if name.upper() in {"COUNT", "COUNT_DISTINCT", "SUM", "AVG", "MIN", "MAX"}:
            raise _PositionedError(f"aggregate function {name.upper()}() is not supported", name)
        raise _PositionedError(f"{name.upper()}() is not supported", name)

    def from_clause(self, name: Token) -> Token:
        return name

    def field_path(self, *names: Token) -> FieldPath:
        return tuple(str(name) for name in names)

    def where_clause(self, condition: Condition) -> tuple[str, Condition]:
        return "where", condition

    def and_chain(self, *parts: Condition) -> And:
        return And(parts)

    def or_chain(self, *parts: Condition) -> Or:
        return Or(parts)

    def not_cond(self, part: Condition) -> Not:
        return Not(part)

    def compare(self, path: FieldPath, op: Token, value: Value | _RawString) -> Comparison:
        return Comparison(path, "!=" if op == "<>" else str(op), _plain(value))

    def like(self, path: FieldPath, pattern: _RawString) -> Like:
        try:
            _like_regex(pattern.raw)
        except SoqlError as exc:
            raise _PositionedError(exc.message, pattern.token) from None
        return Like(path, pattern.raw)

    def in_list(self, path: FieldPath, *values: Value | _RawString) -> InList:
        return InList(path, tuple(_plain(value) for value in values))

    def not_in_list(self, path: FieldPath, *values: Value | _RawString) -> InList:
        return InList(path, tuple(_plain(value) for value in values), negated=True)

    def string_lit(self, token: Token) -> _RawString:
        return _RawString(token[1:-1], token)

    def number_lit(self, token: Token) -> int | float:
        return float(token) if "." in token else int(token)

    def date_lit(self, token: Token) -> date:
        try:
            return date.fromisoformat(token)
        except ValueError:
            raise _PositionedError(f"invalid date: {token}", token) from None

    def datetime_lit(self, token: Token) -> datetime:
        try:
            return _parse_datetime(token)
        except (ValueError, OverflowError):
            raise _PositionedError(f"invalid datetime: {token}", token) from None

    def word_lit(self, token: Token) -> Value:
        upper = token.upper()
        constants: dict[str, Value] = {"TRUE": True, "FALSE": False, "NULL": None}
        if upper in constants:
            return constants[upper]
        if upper in _RELATIVE_DAYS:
            return RelativeDate(upper)
        if upper in _RELATIVE_N:
            raise _PositionedError(f"{upper} needs a number, e.g. {upper}:7", token)
        raise _unknown_word(token)

    def date_n(self, name: Token, n: Token) -> RelativeDate:
        upper = name.upper()
        if upper not in _RELATIVE_N:
            raise _unknown_word(name)
        return RelativeDate(upper, _nonnegative_int(n, upper))

    def order_clause(self, *items: OrderItem) -> tuple[str, tuple[OrderItem, ...]]:
        return "order", items

    def order_item(
        self,
        path: FieldPath,
        direction: Token | None,
        _nulls: Token | None,
        placement: Token | None,
    ) -> OrderItem:
        descending = direction is not None and direction.upper() == "DESC"
        nulls_last = None if placement is None else placement.upper() == "LAST"
        if nulls_last is None:
            return OrderItem(path, descending)
        return OrderItem(path, descending, nulls_last)

    def limit_clause(self, token: Token) -> tuple[str, int]:
        return "limit", _nonnegative_int(token, "LIMIT")

    def offset_clause(self, token: Token) -> tuple[str, int]:
        return "offset", _nonnegative_int(token, "OFFSET")


@dataclass(frozen=True)
class _RawString:
    """A string literal before unescaping: LIKE needs to tell ``\\%`` from ``%``."""

    raw: str
    token: Token


def _plain(value: Value | _RawString) -> Value:
    return _unescape(value.raw, value.token) if isinstance(value, _RawString) else value


def _unknown_word(token: Token) -> _PositionedError:
    if _UNSUPPORTED_RELATIVE.fullmatch(token.upper()):
        return _PositionedError(f"date literal {token.upper()} is not supported", token)
    return _PositionedError(f"unexpected token: {token}", token)


def _reject_duplicates(fields: tuple[FieldPath, ...]) -> None:
    seen: set[tuple[str, ...]] = set()
    for path in fields:
        key = tuple(name.lower() for name in path)
        if key in seen:
            raise SoqlError(f"duplicate field selected: {'.'.join(path)}")
        seen.add(key)


_GRAMMAR = Path(__file__).with_name("soql.lark").read_text(encoding="utf-8")
_PARSER = Lark(_GRAMMAR, parser="lalr", maybe_placeholders=True)
_TRANSFORMER = _ToQuery()

# Keywords Salesforce accepts but the sandbox does not: say so instead of "unexpected token".
_UNSUPPORTED_KEYWORDS = {
    "GROUP": "GROUP BY is not supported",
    "HAVING": "HAVING is not supported",
    "WITH": "WITH is not supported",
    "FOR": "FOR UPDATE / FOR VIEW / FOR REFERENCE are not supported",
    "USING": "USING SCOPE is not supported",
    "SELECT": "subqueries and semi-joins are not supported",
}
_SUBQUERY_AHEAD = re.compile(r"\s*SELECT\b", re.IGNORECASE)
_SUBQUERY_BEHIND = re.compile(r"\(\s*SELECT\s*$", re.IGNORECASE)
_TYPEOF_BEHIND = re.compile(r"\bTYPEOF\s+\w*\s*$", re.IGNORECASE)


@functools.lru_cache(maxsize=1024)
def parse(text: str) -> Query:
    """Parse one SOQL statement; raises :class:`SoqlError` (MALFORMED_QUERY) if malformed."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedToken as exc:
        raise _token_error(text, exc.token) from None
    except UnexpectedCharacters as exc:
        raise _character_error(text, exc) from None
    except UnexpectedEOF:
        raise _end_error(text) from None
    try:
        query: Query = _TRANSFORMER.transform(tree)
    except VisitError as exc:
        raise _unwrap(text, exc.orig_exc) from None
    return query


def _unwrap(text: str, error: Exception) -> Exception:
    if isinstance(error, _PositionedError):
        return SoqlError(_located(text, error.line, error.column, error.message))
    return error


def _token_error(text: str, token: Token) -> SoqlError:
    if token.type == "$END":
        return _end_error(text)
    line, column = token.line or 1, token.column or 1
    unsupported = _unsupported_feature(text, token)
    if unsupported:
        return SoqlError(_located(text, line, column, unsupported))
    return SoqlError(_located(text, line, column, f"unexpected token: {token}"))


def _unsupported_feature(text: str, token: Token) -> str | None:
    if token.upper() in _UNSUPPORTED_KEYWORDS:
        return _UNSUPPORTED_KEYWORDS[token.upper()]
    before = text[: token.start_pos or 0]
    after = text[token.end_pos or 0 :]
    if _TYPEOF_BEHIND.search(before):
        return "TYPEOF is not supported"
    if _SUBQUERY_BEHIND.search(before) or (token == "(" and _SUBQUERY_AHEAD.match(after)):
        return _UNSUPPORTED_KEYWORDS["SELECT"]
    return None


def _character_error(text: str, exc: UnexpectedCharacters) -> SoqlError:
    char = str(exc.char)
    message = "unterminated string literal" if char == "'" else f"unexpected token: {char}"
    return SoqlError(_located(text, exc.line, exc.column, message))


def _end_error(text: str) -> SoqlError:
    lines = text.rstrip().split("\n")
    return SoqlError(_located(text, len(lines), len(lines[-1]) + 1, "unexpected end of query"))


def _located(text: str, line: int, column: int, message: str) -> str:
    """Salesforce's layout: the query line, a caret under the column, the position, why."""
    source = text.split("\n")[line - 1] if text else ""
    caret = "".join("\t" if ch == "\t" else " " for ch in source[: column - 1]) + "^"
    return f"\n{source}\n{caret}\nERROR at Row:{line}:Column:{column}\n{message}"


# --------------------------------------------------------------------------- evaluation

_ORDERING: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


# Exact types on purpose: bool is an int subclass but never compares with numbers.
_NUMBER_TYPES = frozenset({int, float, Decimal})


def _is_number(value: Any) -> bool:
    return value.__class__ in _NUMBER_TYPES


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _never(_value: Any) -> bool:
    return False


def _always(_row: Row) -> bool:
    return True


def _equals(literal: Value, today: date) -> Test:
    """A test for ``field = literal``; null fields only equal the NULL literal."""
    if literal is None:
        return lambda v: v is None
    if isinstance(literal, bool):
        return lambda v: isinstance(v, bool) and v is literal
    if isinstance(literal, str):
        folded = literal.lower()
        return lambda v: isinstance(v, str) and v.lower() == folded
    if _is_number(literal):
        numbers = _NUMBER_TYPES
        return lambda v: v.__class__ in numbers and v == literal
    return _ordered("=", literal, today)


def _not_equals(literal: Value, today: date) -> Test:
    if literal is None:
        return lambda v: v is not None
    equal = _equals(literal, today)
    return lambda v: v is None or (_same_kind(v, literal) and not equal(v))


def _same_kind(value: Any, literal: Value) -> bool:
    if isinstance(literal, bool) or isinstance(value, bool):
        return isinstance(literal, bool) and isinstance(value, bool)
    if isinstance(literal, str):
        return isinstance(value, str)
    if _is_number(literal):
        return _is_number(value)
    if isinstance(literal, datetime):
        return isinstance(value, datetime)
    return isinstance(value, date)  # date and relative literals also cover datetime fields


def _ordered(op: str, literal: Value, today: date) -> Test:
    """A test for ``field <op> literal`` where op is an ordering (or = on dates)."""
    if literal is None or isinstance(literal, bool):
        return _never
    if isinstance(literal, RelativeDate):
        return _in_days(op, *literal.bounds(today))
    if isinstance(literal, datetime):
        return _vs_datetime(op, literal)
    if isinstance(literal, date):
        return _in_days(op, literal, literal)
    compare = _ORDERING[op]
    if isinstance(literal, str):
        folded = literal.lower()
        return lambda v: isinstance(v, str) and compare(v.lower(), folded)
    numbers = _NUMBER_TYPES
    return lambda v: v.__class__ in numbers and compare(v, literal)


def _vs_datetime(op: str, literal: datetime) -> Test:
    compare = operator.eq if op == "=" else _ORDERING[op]
    return lambda v: isinstance(v, datetime) and compare(_as_utc(v), literal)


def _in_days(op: str, first: date, last: date) -> Test:
    """Compare against the inclusive day range [first, last]; datetimes by UTC instant."""
    start = datetime.combine(first, time(), UTC)
    # The range's last instant, inclusive: datetimes go no finer than a microsecond, and unlike
    # the next midnight it exists even for 9999-12-31.
    end = datetime.combine(last, time.max, UTC)
    on_date: dict[str, Test] = {
        "=": lambda d: first <= d <= last,
        "<": lambda d: d < first,
        "<=": lambda d: d <= last,
        ">": lambda d: d > last,
        ">=": lambda d: d >= first,
    }
    on_instant: dict[str, Test] = {
        "=": lambda t: start <= t <= end,
        "<": lambda t: t < start,
        "<=": lambda t: t <= end,
        ">": lambda t: t > end,
        ">=": lambda t: t >= start,
    }
    date_test, instant_test = on_date[op], on_instant[op]

    def test(value: Any) -> bool:
        if isinstance(value, datetime):
            return instant_test(_as_utc(value))
        return isinstance(value, date) and date_test(value)

    return test


def _value_test(op: str, literal: Value, today: date) -> Test:
    if op == "=":
        return _equals(literal, today)
    if op == "!=":
        return _not_equals(literal, today)
    return _ordered(op, literal, today)


def _membership(values: tuple[Value, ...], negated: bool, today: date) -> Test:
    if all(isinstance(v, str) for v in values):
        folded = {str(v).lower() for v in values}
        if negated:
            return lambda v: v is None or (isinstance(v, str) and v.lower() not in folded)
        return lambda v: isinstance(v, str) and v.lower() in folded
    tests = [_equals(value, today) for value in values]
    if negated:
        return lambda v: not any(t(v) for t in tests)
    return lambda v: any(t(v) for t in tests)


def _like(pattern: str) -> Test:
    match = _like_regex(pattern).fullmatch
    return lambda v: isinstance(v, str) and match(v) is not None


def _compile(condition: Condition, get: Getter, today: date) -> Predicate:
    """Turn the tree into nested closures once, so rows are not re-interpreted one by one."""
    if isinstance(condition, And):
        return _all_of([_compile(part, get, today) for part in condition.parts])
    if isinstance(condition, Or):
        return _any_of([_compile(part, get, today) for part in condition.parts])
    if isinstance(condition, Not):
        inner = _compile(condition.part, get, today)
        return lambda row: not inner(row)
    test = _leaf_test(condition, today)
    path = condition.path
    return lambda row: test(get(row, path))


# Two-way closures are the fastest per row for the common short lists; longer lists loop over a
# flat tuple, so a thousand OR terms never build a closure chain a thousand calls deep.
def _all_of(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        left, right = parts
        return lambda row: left(row) and right(row)
    flat = tuple(parts)

    return lambda row: all(part(row) for part in flat)


def _any_of(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]
    if len(parts) == 2:
        left, right = parts
        return lambda row: left(row) or right(row)
    flat = tuple(parts)

    return lambda row: any(part(row) for part in flat)


def _leaf_test(condition: Comparison | Like | InList, today: date) -> Test:
    if isinstance(condition, Comparison):
        return _value_test(condition.op, condition.value, today)
    if isinstance(condition, Like):
        return _like(condition.pattern)
    return _membership(condition.values, condition.negated, today)


def _predicate(query: Query, get: Getter, now: datetime) -> Predicate:
    if query.where is None:
        return _always
    return _compile(query.where, get, _as_utc(now).astimezone(UTC).date())


def matches(query: Query, row: Row, get: Getter, now: datetime) -> bool:
    """Whether ``row`` satisfies the query's WHERE clause (true when there is none)."""
    return _predicate(query, get, now)(row)


def run(query: Query, rows: Iterable[Row], get: Getter, now: datetime) -> list[Row]:
    """Filter by WHERE, sort by ORDER BY, then apply OFFSET and LIMIT. Rows are not projected."""
    predicate = _predicate(query, get, now)
    start = query.offset or 0
    stop = None if query.limit is None else start + query.limit
    if not query.order_by and stop is not None:
        # Without ORDER BY the first matches are the answer; stop scanning early.
        return _first_matches(rows, predicate, stop)[start:]
    selected = [row for row in rows if predicate(row)]
    _sort(selected, query.order_by, get)
    return selected[start:stop]


def _first_matches(rows: Iterable[Row], predicate: Predicate, count: int) -> list[Row]:
    found: list[Row] = []
    if count <= 0:
        return found
    for row in rows:
        if predicate(row):
            found.append(row)
            if len(found) >= count:
                break
    return found


def _sort(rows: list[Row], order_by: tuple[OrderItem, ...], get: Getter) -> None:
    # Stable sorts from the last key to the first give a multi-key sort where each key
    # keeps its own direction and null placement.
    for item in reversed(order_by):
        rows.sort(key=_sort_key(item, get), reverse=item.descending)


def _sort_key(item: OrderItem, get: Getter) -> Callable[[Row], tuple[Any, ...]]:
    # Under reverse=True the largest key comes first, so "nulls high" flips with direction.
    null_key = (1,) if item.nulls_last != item.descending else (-1,)
    path = item.path

    def key(row: Row) -> tuple[Any, ...]:
        value = get(row, path)
        return null_key if value is None else (0, *_rank(value))

    return key


def _rank(value: Any) -> tuple[int, Any]:
    """Group values into mutually comparable kinds so mixed columns never raise."""
    if isinstance(value, str):
        return 1, value.lower()
    if isinstance(value, bool | int | float | Decimal):
        return 0, value
    if isinstance(value, datetime):
        return 3, _as_utc(value)
    if isinstance(value, date):
        return 2, value
    return 4, str(value)
