"""Parse a run filter string into a small AST. Pure Python (lark), no Django.

The language is MLflow's search filter, unchanged, completed with what it lacks:

    metrics.acc > 0.9 and params.lr = '0.01'
    attributes.status = 'FAILED' or tags.team ILIKE '%nlp%'
    not (params.optimizer in ('adam', 'sgd')) and metrics.`val loss` is not null
    params.lr < 0.01                      -- numeric comparison of params that are numbers
    config.optimizer.name = 'adam' and config.lr > 0.001   -- the run's config, flattened
    attributes.created > '2026-01-01'     -- time literals (ISO dates/times, or ms since epoch)

Fields are ``<entity>.<key>``: ``metrics``/``metric``, ``params``/``param``, ``config``
(the run's config, nested keys joined with dots: ``config.optimizer.lr``; compared as
params are), ``tags``/``tag``, ``attributes``/``attribute``/``run``. A key is a run of letters, digits and
``_ . / : -``, or any text in backticks or double quotes. Values are single- or
double-quoted strings ('' or "" inside doubles the quote) or numbers. Keywords are
case-insensitive. ``NOT`` binds tighter than ``AND``, which binds tighter than ``OR``.

Errors are :class:`FilterError` with the 0-based character ``position`` and, for syntax
errors, the tokens that were ``expected`` there.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.exceptions import VisitError

MAX_FILTER_LENGTH = 4000
MAX_IN_VALUES = 1000
MAX_CLAUSES = 100

Entity = Literal["metric", "param", "tag", "attribute", "config"]
Value = str | float

ENTITY_ALIASES: dict[str, Entity] = {
    "metrics": "metric",
    "metric": "metric",
    "params": "param",
    "param": "param",
    "parameters": "param",
    "tags": "tag",
    "tag": "tag",
    "config": "config",
    "attributes": "attribute",
    "attribute": "attribute",
    "attr": "attribute",
    "run": "attribute",
}

# The prefix a field is written with (Field.name, messages).
ENTITY_PREFIXES: dict[Entity, str] = {
    "metric": "metrics",
    "param": "params",
    "tag": "tags",
    "attribute": "attributes",
    "config": "config",
}

# attribute name (and MLflow aliases) -> (canonical name, kind)
AttrKind = Literal["string", "time", "number", "status"]
ATTRIBUTES: dict[str, tuple[str, AttrKind]] = {
    "id": ("id", "string"),
    "run_id": ("id", "string"),
    "name": ("name", "string"),
    "run_name": ("name", "string"),
    "status": ("status", "status"),
    "experiment": ("experiment", "string"),
    "experiment_name": ("experiment", "string"),
    "author": ("author", "string"),
    "user": ("author", "string"),
    "user_id": ("author", "string"),
    "start_time": ("start_time", "time"),
    "created": ("start_time", "time"),
    "end_time": ("end_time", "time"),
    "created_at": ("created_at", "time"),
    "updated_at": ("updated_at", "time"),
    "duration": ("duration", "number"),
    "notes": ("notes", "string"),
    # The run's configuration fingerprint (experiments/fingerprint.py): same value, same configuration.
    "fingerprint": ("fingerprint", "string"),
    "config_fingerprint": ("fingerprint", "string"),
}
# The attribute names offered to users (completion, docs); aliases are accepted too.
ATTRIBUTE_NAMES = ["name", "status", "experiment", "author", "start_time", "end_time", "created", "duration", "id"]
STATUSES = ("running", "finished", "failed", "killed")
NULLABLE_ATTRIBUTES = {"end_time", "duration", "author"}

COMPARE_OPS = ("=", "!=", "<", "<=", ">", ">=")
TEXT_OPS = ("like", "ilike", "not like", "not ilike")


@dataclass(frozen=True)
class Field:
    entity: Entity
    key: str
    position: int = field(default=0, compare=False)

    @property
    def name(self) -> str:
        return f"{ENTITY_PREFIXES[self.entity]}.{self.key}"


@dataclass(frozen=True)
class Compare:
    """``field op value``; ``op`` is one of COMPARE_OPS or TEXT_OPS (lower case)."""

    field: Field
    op: str
    value: Value


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Value, ...]
    negated: bool = False


@dataclass(frozen=True)
class IsNull:
    field: Field
    negated: bool = False  # IS NOT NULL


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | In | IsNull | And | Or | Not


class FilterError(ValueError):
    """``source`` says which input is at fault: "filter", "order_by" or "cursor"."""

    def __init__(
        self, message: str, position: int, expected: list[str] | None = None, *, source: str = "filter"
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.expected = expected or []
        self.source = source


GRAMMAR = r"""
?start: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> negation
         | atom
?atom: "(" or_expr ")"
     | predicate
predicate: FIELD OP value                     -> compare
         | FIELD NOT? LIKE value              -> like
         | FIELD NOT? ILIKE value             -> ilike
         | FIELD NOT? _IN "(" value ("," value)* ")" -> in_list
         | FIELD _IS NOT? _NULL               -> is_null
value: STRING | NUMBER
FIELD: /[A-Za-z_]+\.(`[^`]*`|"(?:[^"]|"")*"|[A-Za-z0-9_.\/:\-]+)/
OP: "!=" | "<>" | "<=" | ">=" | "=" | "==" | "<" | ">"
STRING: /'(?:[^']|'')*'/ | /"(?:[^"]|"")*"/
NUMBER: /[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?/
_AND: /and\b/i
_OR: /or\b/i
NOT: /not\b/i
_IN: /in\b/i
_IS: /is\b/i
_NULL: /null\b/i
LIKE: /like\b/i
ILIKE: /ilike\b/i
%import common.WS
%ignore WS
"""

# Human names for the grammar's terminals, for "expected …" messages.
TERMINAL_NAMES = {
    "FIELD": "a field such as metrics.acc",
    "OP": "an operator (=, !=, <, <=, >, >=)",
    "STRING": "a quoted string",
    "NUMBER": "a number",
    "_AND": "AND",
    "_OR": "OR",
    "NOT": "NOT",
    "_IN": "IN",
    "_IS": "IS",
    "_NULL": "NULL",
    "LIKE": "LIKE",
    "ILIKE": "ILIKE",
    "LPAR": "(",
    "RPAR": ")",
    "COMMA": ",",
    "$END": "the end of the filter",
}

_parser = Lark(GRAMMAR, parser="lalr", propagate_positions=True, maybe_placeholders=False)


def _unquote_string(raw: str) -> str:
    quote = raw[0]
    return raw[1:-1].replace(quote * 2, quote)


def _parse_field(token: Token) -> Field:
    text = str(token)
    position = token.start_pos or 0
    prefix, _, rest = text.partition(".")
    entity = ENTITY_ALIASES.get(prefix.lower())
    if entity is None:
        raise FilterError(
            f"Unknown field {text!r}: fields start with metrics., params., config., tags. or attributes.", position
        )
    if rest.startswith("`"):
        key = rest[1:-1]
    elif rest.startswith('"'):
        key = rest[1:-1].replace('""', '"')
    else:
        key = rest
    if not key:
        raise FilterError(f"{text!r} names no key after the {prefix!r} prefix.", position)
    if len(key) > 250:
        raise FilterError("Keys are at most 250 characters.", position)
    if entity == "attribute":
        known = ATTRIBUTES.get(key.lower())
        if known is None:
            raise FilterError(
                f"Unknown attribute {key!r}: one of {', '.join(ATTRIBUTE_NAMES)}.",
                position,
            )
        key = known[0]
    return Field(entity, key, position)


def _value(token: Token) -> Value:
    if token.type == "STRING":
        return _unquote_string(str(token))
    number = float(str(token))
    if not math.isfinite(number):
        raise FilterError(f"{token} is out of range.", token.start_pos or 0)
    return number


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?$")


def parse_time(value: Value, position: int) -> datetime:
    """A time literal: an ISO date or date-time (UTC unless it says otherwise), or a number
    of milliseconds since the epoch (as MLflow's start_time)."""
    if isinstance(value, float):
        if not 0 <= value <= 253402300799999:  # year 9999
            raise FilterError("A time in ms since the epoch must be between 0 and 253402300799999.", position)
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    text = value.strip()
    if _DATE_RE.match(text):
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    raise FilterError(
        f"{value!r} is not a time: use an ISO date ('2026-01-01'), date-time ('2026-01-01T12:00:00Z') "
        "or milliseconds since the epoch.",
        position,
    )


def _check_value_kind(fld: Field, op: str, value: Value, position: int) -> Value:
    """Refuse comparisons that cannot mean anything, so a typo is an error, not an empty result."""
    if fld.entity == "metric":
        if not isinstance(value, float):
            raise FilterError(f"{fld.name} is a number: compare it with a number, not {value!r}.", position)
        if op in TEXT_OPS:
            raise FilterError(f"{op.upper()} compares text; {fld.name} is a number.", position)
        return value
    if op in TEXT_OPS and isinstance(value, str):
        _check_pattern(value, position)
    if fld.entity in ("param", "tag", "config"):
        if isinstance(value, float) and op in TEXT_OPS:
            raise FilterError(f"{op.upper()} needs a quoted pattern, such as '%adam%'.", position)
        return value
    kind = ATTRIBUTES[fld.key][1]
    if kind == "time":
        if op in TEXT_OPS:
            raise FilterError(f"{op.upper()} compares text; {fld.name} is a time.", position)
        parse_time(value, position)
        return value
    if kind == "number":
        if not isinstance(value, float) or op in TEXT_OPS:
            raise FilterError(f"{fld.name} is a number of seconds: compare it with a number.", position)
        return value
    if isinstance(value, float):
        raise FilterError(f"{fld.name} is text: quote the value ('{_format_number(value)}').", position)
    if kind == "status":
        if op in TEXT_OPS:
            return value
        if op not in ("=", "!="):
            raise FilterError(f"{fld.name} compares with = , != , IN or LIKE.", position)
        lowered = value.lower()
        if lowered not in STATUSES:
            raise FilterError(f"Unknown status {value!r}: one of {', '.join(STATUSES)}.", position)
        return lowered
    return value


def _check_pattern(pattern: str, position: int) -> None:
    """LIKE patterns: % any run of characters, _ one character, \\ escapes the next one; a
    pattern may not end with a lone backslash (PostgreSQL refuses it)."""
    escaped = False
    for char in pattern:
        escaped = not escaped and char == "\\"
    if escaped:
        raise FilterError("A LIKE pattern may not end with a lone backslash (it escapes the next character).", position)


def like_regex(pattern: str, *, case_insensitive: bool) -> re.Pattern[str]:
    """The Python regex equivalent to a LIKE pattern (for evaluating filters in Python)."""
    out = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            out.append(re.escape(next(chars, "")))
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def _format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _negated(items: list[Token]) -> bool:
    return any(isinstance(t, Token) and t.type == "NOT" for t in items)


def _values(items: list[Token]) -> list[Token]:
    return [t for t in items if isinstance(t, Token) and t.type in ("STRING", "NUMBER")]


class _ToAst(Transformer[Token, Node]):
    def __init__(self) -> None:
        super().__init__()
        self.clauses = 0

    def _field(self, token: Token) -> Field:
        fld = _parse_field(token)
        self.clauses += 1
        if self.clauses > MAX_CLAUSES:
            raise FilterError(f"A filter has at most {MAX_CLAUSES} conditions.", fld.position)
        return fld

    def value(self, items: list[Token]) -> Token:
        return items[0]

    def compare(self, items: list[Token]) -> Node:
        field_token, op_token, value_token = items
        fld = self._field(field_token)
        op = {"==": "=", "<>": "!="}.get(str(op_token), str(op_token))
        value = _check_value_kind(fld, op, _value(value_token), value_token.start_pos or 0)
        return Compare(fld, op, value)

    def _like(self, items: list[Token], op: str) -> Node:
        fld = self._field(items[0])
        value_token = _values(items)[0]
        full_op = f"not {op}" if _negated(items) else op
        value = _check_value_kind(fld, full_op, _value(value_token), value_token.start_pos or 0)
        return Compare(fld, full_op, value)

    def like(self, items: list[Token]) -> Node:
        return self._like(items, "like")

    def ilike(self, items: list[Token]) -> Node:
        return self._like(items, "ilike")

    def in_list(self, items: list[Token]) -> Node:
        fld = self._field(items[0])
        value_tokens = _values(items)
        if len(value_tokens) > MAX_IN_VALUES:
            raise FilterError(f"IN takes at most {MAX_IN_VALUES} values.", fld.position)
        values = tuple(_check_value_kind(fld, "=", _value(t), t.start_pos or 0) for t in value_tokens)
        return In(fld, values, negated=_negated(items))

    def is_null(self, items: list[Token]) -> Node:
        return IsNull(self._field(items[0]), negated=_negated(items))

    def negation(self, items: list[Token | Node]) -> Node:
        node = items[-1]
        assert not isinstance(node, Token)
        return Not(node)

    def and_expr(self, items: list[Node]) -> Node:
        flat: list[Node] = []
        for item in items:
            flat.extend(item.items if isinstance(item, And) else (item,))
        return And(tuple(flat))

    def or_expr(self, items: list[Node]) -> Node:
        flat: list[Node] = []
        for item in items:
            flat.extend(item.items if isinstance(item, Or) else (item,))
        return Or(tuple(flat))


def _expected(names: set[str]) -> list[str]:
    return sorted({TERMINAL_NAMES.get(n, n) for n in names if not n.startswith("__")})


def parse(text: str) -> Node | None:
    """The AST of ``text``, or None for an empty filter (every run)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"A filter is at most {MAX_FILTER_LENGTH} characters.", MAX_FILTER_LENGTH)
    if "\x00" in text:
        raise FilterError("A filter may not contain NUL characters.", text.index("\x00"))
    if not text.strip():
        return None
    try:
        tree = _parser.parse(text)
    except UnexpectedCharacters as exc:
        expected = _expected(set(exc.allowed or ()))
        position = exc.pos_in_stream or 0
        raise FilterError(
            f"Unexpected character {text[position]!r} at position {position}; "
            f"expected {', '.join(expected) or 'something else'}.",
            position,
            expected,
        ) from None
    except UnexpectedToken as exc:
        position = exc.token.start_pos if exc.token.type != "$END" else len(text)
        expected = _expected(set(exc.expected or ()))
        found = "The filter ends too early" if exc.token.type == "$END" else f"Unexpected {str(exc.token)!r}"
        raise FilterError(
            f"{found} at position {position}; expected {', '.join(expected) or 'something else'}.",
            position or 0,
            expected,
        ) from None
    except UnexpectedEOF as exc:
        expected = _expected(set(exc.expected or ()))
        raise FilterError(f"The filter ends too early; expected {', '.join(expected)}.", len(text), expected) from None
    except UnexpectedInput as exc:  # pragma: no cover - the three above are lark's concrete kinds
        raise FilterError("Invalid filter.", getattr(exc, "pos_in_stream", 0) or 0) from None
    try:
        node = _ToAst().transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, FilterError):
            raise exc.orig_exc from None
        raise
    return node


# A param or tag value counts as a number when it matches this (and is at most 32
# characters), so that comparing it with a number can never overflow PostgreSQL's float8.
# The compiler applies the same rule in SQL.
# The same pattern is a PostgreSQL ARE and a Python regex (the lookahead bounds the length).
NUMERIC_TEXT_PATTERN = r"^(?=.{1,32}$)[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,2})?$"
_NUMERIC_TEXT_RE = re.compile(NUMERIC_TEXT_PATTERN)


def numeric_text(value: str) -> float | None:
    """The number a param/tag value stands for, or None when it is not a number."""
    if _NUMERIC_TEXT_RE.match(value) and "\n" not in value:
        return float(value)
    return None


@dataclass(frozen=True)
class OrderTerm:
    field: Field
    descending: bool


MAX_ORDER_TERMS = 5
_ORDER_RE = re.compile(r"^\s*(?P<field>.+?)(?:\s+(?P<dir>asc|desc))?\s*$", re.IGNORECASE | re.DOTALL)


def parse_order_by(text: str) -> OrderTerm:
    """One ``order_by`` item: ``metrics.acc DESC``, ``params.lr``, ``attributes.start_time ASC``
    (ascending by default). The old ``sort`` spelling, ``-metrics.acc``, is accepted too."""
    if len(text) > 300:
        raise FilterError("An order_by item is at most 300 characters.", 300, source="order_by")
    match = _ORDER_RE.match(text)
    if match is None:
        raise FilterError("order_by names a field, then optionally ASC or DESC.", 0, source="order_by")
    raw = match.group("field")
    descending = (match.group("dir") or "asc").lower() == "desc"
    if raw.startswith("-") and match.group("dir") is None:
        raw, descending = raw[1:], True
    if "." not in raw:
        raw = f"attributes.{raw}"  # "start_time" as a bare attribute, as MLflow allows
    try:
        tokens = list(_parser.lex(raw))
    except UnexpectedInput:
        tokens = []
    if len(tokens) != 1 or tokens[0].type != "FIELD":
        raise FilterError(
            f"Cannot order by {raw!r}: use metrics.<key>, params.<key>, config.<key>, tags.<key> or attributes.<name>, "
            "then ASC or DESC.",
            0,
            source="order_by",
        )
    try:
        return OrderTerm(_parse_field(tokens[0]), descending)
    except FilterError as exc:
        raise FilterError(exc.message, exc.position, source="order_by") from None
