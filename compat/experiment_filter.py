"""MLflow's filter and order syntax for ``search_experiments``, compiled to a Q over Experiment.

    name LIKE 'fraud-%' AND tags.team = 'risk' AND creation_time > 1764150000000

Clauses are joined by AND (MLflow has no OR here). Fields: ``name`` (also
``attribute.name``/``attributes.name``), ``creation_time``, ``last_update_time`` (ms since
the epoch), ``tags.<key>`` (backticks or double quotes around a key with other
characters). Operators: ``=``, ``!=``, ``LIKE``, ``ILIKE`` for strings; ``=``, ``!=``,
``<``, ``<=``, ``>``, ``>=`` for times. Values: single- or double-quoted strings, integers.
Order: ``name``, ``experiment_id``, ``creation_time``, ``last_update_time``, each with an
optional ``ASC``/``DESC``. Errors are ``MlflowError`` (INVALID_PARAMETER_VALUE) saying where.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from django.db.models import Exists, OuterRef, Q

from compat.wire import MlflowError
from experiments.models import ExperimentTag

MAX_FILTER_LENGTH = 4000

_SPACE = re.compile(r"\s*")
_FIELD = re.compile(
    r"(?:(?P<entity>attributes?|tags?)\.)?(?P<key>`[^`]+`|\"[^\"]+\"|[A-Za-z0-9_.:/ -]+?)(?=\s*(?:!=|<=|>=|=|<|>|\s))",
    re.IGNORECASE,
)
_OP = re.compile(r"(!=|<=|>=|=|<|>|not\s+ilike\b|not\s+like\b|ilike\b|like\b)", re.IGNORECASE)
_VALUE = re.compile(r"'((?:[^']|'')*)'|\"((?:[^\"]|\"\")*)\"|(-?\d+)")
_AND = re.compile(r"and\b", re.IGNORECASE)

_TIMES = {"creation_time": "created_at", "last_update_time": "updated_at"}
_STRING_OPS = {"=", "!=", "like", "ilike", "not like", "not ilike"}
_NUMBER_OPS = {"=", "!=", "<", "<=", ">", ">="}
ORDER_FIELDS = {"name": "name", "experiment_id": "pk", "creation_time": "created_at", "last_update_time": "updated_at"}


def _fail(text: str, position: int, what: str) -> MlflowError:
    return MlflowError(f"Invalid filter {text!r} at character {position}: {what}.")


def like_regex(pattern: str) -> str:
    """A SQL LIKE pattern (``%`` any run, ``_`` one character) as an anchored regular expression."""
    return "^" + "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern) + "$"


def _string_q(column: str, op: str, value: str) -> Q:
    if op == "=":
        return Q(**{column: value})
    if op == "!=":
        return ~Q(**{column: value})
    lookup = f"{column}__iregex" if "ilike" in op else f"{column}__regex"
    q = Q(**{lookup: like_regex(value)})
    return ~q if op.startswith("not") else q


def parse(text: str) -> Q:
    """The Q of a filter (empty: every experiment)."""
    if len(text) > MAX_FILTER_LENGTH:
        raise MlflowError(f"A filter is at most {MAX_FILTER_LENGTH} characters.")
    q = Q()
    pos = _SPACE.match(text, 0).end()  # type: ignore[union-attr]
    while pos < len(text):
        field = _FIELD.match(text, pos)
        if field is None:
            raise _fail(text, pos, "expected a field: name, creation_time, last_update_time or tags.<key>")
        entity = (field["entity"] or "attribute").lower().rstrip("s")
        key = field["key"].strip()
        if key[:1] in '`"':
            key = key[1:-1]
        pos = _SPACE.match(text, field.end()).end()  # type: ignore[union-attr]
        op_match = _OP.match(text, pos)
        if op_match is None:
            raise _fail(text, pos, "expected an operator (=, !=, <, <=, >, >=, LIKE, ILIKE)")
        op = re.sub(r"\s+", " ", op_match[1].lower())
        pos = _SPACE.match(text, op_match.end()).end()  # type: ignore[union-attr]
        value_match = _VALUE.match(text, pos)
        if value_match is None:
            raise _fail(text, pos, "expected a quoted string or an integer")
        if value_match[3] is not None:
            value: str | int = int(value_match[3])
        else:
            raw = value_match[1] if value_match[1] is not None else value_match[2]
            value = raw.replace("''", "'") if value_match[1] is not None else raw.replace('""', '"')
        q &= _clause(text, pos, entity, key, op, value)
        pos = _SPACE.match(text, value_match.end()).end()  # type: ignore[union-attr]
        if pos < len(text):
            and_match = _AND.match(text, pos)
            if and_match is None:
                raise _fail(text, pos, "expected AND")
            pos = _SPACE.match(text, and_match.end()).end()  # type: ignore[union-attr]
            if pos >= len(text):
                raise _fail(text, pos, "expected a clause after AND")
    return q


def _clause(text: str, pos: int, entity: str, key: str, op: str, value: str | int) -> Q:
    if entity == "tag":
        if op not in _STRING_OPS or not isinstance(value, str):
            raise _fail(text, pos, "a tag compares with =, !=, LIKE or ILIKE to a quoted string")
        tag_q = Q(experiment=OuterRef("pk"), key=key)
        if op == "!=":
            return Q(Exists(ExperimentTag.objects.filter(tag_q).exclude(value=value)))
        return Q(Exists(ExperimentTag.objects.filter(tag_q & _string_q("value", op, value))))
    if entity != "attribute":
        raise _fail(text, pos, f"unknown entity {entity!r}")
    if key == "name":
        if op not in _STRING_OPS or not isinstance(value, str):
            raise _fail(text, pos, "name compares with =, !=, LIKE or ILIKE to a quoted string")
        return _string_q("name", op, value)
    if key in _TIMES:
        if op not in _NUMBER_OPS or not isinstance(value, int):
            raise _fail(text, pos, f"{key} compares with =, !=, <, <=, >, >= to an integer (ms since the epoch)")
        moment = datetime.fromtimestamp(value / 1000, tz=UTC)
        column = _TIMES[key]
        lookups = {"=": "", "<": "__lt", "<=": "__lte", ">": "__gt", ">=": "__gte"}
        if op == "!=":
            return ~Q(**{column: moment})
        return Q(**{column + lookups[op]: moment})
    raise _fail(text, pos, f"unknown attribute {key!r}: name, creation_time or last_update_time")


def order(items: list[str]) -> list[str]:
    """ORM orderings for MLflow's ``order_by`` items (default: newest first, then by id)."""
    out: list[str] = []
    for item in items:
        words = item.strip().split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise MlflowError(f"Invalid order_by clause {item!r}: a field, then optionally ASC or DESC.")
        name = words[0].removeprefix("attributes.").removeprefix("attribute.")
        if name not in ORDER_FIELDS:
            raise MlflowError(f"Invalid order_by field {words[0]!r}: one of {', '.join(ORDER_FIELDS)}.")
        descending = len(words) == 2 and words[1].upper() == "DESC"
        out.append(("-" if descending else "") + ORDER_FIELDS[name])
    if not out:
        out = ["-created_at"]
    return [*out, "pk"]
