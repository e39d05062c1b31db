"""JSON in and out of Assay: the one check every JSON request body passes, and the one
encoder of JSON answers and live events.

A body (``loads``) is refused with ``Invalid`` naming the field as a dotted path
(``config.x``, ``metrics.3.key``; null for the body itself) when it holds

- an **integer outside the signed 64-bit range**: PostgreSQL would keep it, but no JSON
  encoder of ours can write it back, and orjson would silently round it to a float.
  Floats stay floats (``1e20`` is accepted);
- a **NUL character** (``\\u0000``) in a string or a key: PostgreSQL refuses it in
  ``jsonb`` and ``text``, SQLite would keep it;
- a **duplicate key** in one object: orjson silently keeps the last, other parsers the
  first, and parsers that disagree are a security smell.

Bodies without any of these pay for a few scans of the raw bytes in C, not for a walk
in Python: see :func:`_may_break_a_rule`. Only a body that might break a rule is parsed
a second time with the standard library, which keeps exact integers and every key.

Writing (``dumps``): PostgreSQL's ``jsonb`` stores a float such as ``1e20`` as the
integer ``100000000000000000000`` and gives it back as a Python int, which orjson refuses
to encode ("Integer exceeds 64-bit range"). Rows written before the rule above may also
hold such integers. ``dumps`` then writes every integer outside the signed 64-bit range
as the float it stands for, so such a row reads back as the float it was sent as.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

from core.errors import Invalid

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# An integer outside the 64-bit range has at least 19 digits (2**63 has 19). In JSON an
# integer literal is never preceded by a digit, ".", "e", "E" or "+" (a "-" is its sign or an
# exponent's): so after mapping digits to "9", those four to "." and every other byte to
# " ", a wide integer shows as " " and 19 nines. The digits of a fraction, such as those of
# 0.0005005005005005005, follow a "."; digits inside strings may match (harmless: the
# exact check runs). One translate and one search in C, where a regular expression over
# the many digits of a metric batch takes ten times as long.
_NUMBERS = bytes(ord("9") if 48 <= b <= 57 else ord(".") if b in b".eE+" else ord(" ") for b in range(256))
_WIDE_INTEGER = b" " + b"9" * 19


def loads(raw: bytes) -> Any:
    """The JSON value of ``raw``; ``orjson.JSONDecodeError`` when it is not JSON, ``Invalid``
    naming the field when it breaks one of the rules of this module."""
    value = orjson.loads(raw)
    if _may_break_a_rule(raw, value):
        _check(raw)
    return value


def _may_break_a_rule(raw: bytes, value: Any) -> bool:
    """False when ``raw`` (that parsed as ``value``) surely keeps every rule.

    - A NUL can only be written ``\\u0000`` (a raw control character is not JSON), so
      not without a backslash, which a body seldom has.
    - A wide integer needs 19 digits in a row, outside a float (``_NUMBERS``).
    - Duplicate keys: outside strings, a colon only ever follows a key. So the colons of
      ``raw`` are its keys plus the colons inside its strings, and the colons of
      ``orjson.dumps(value)`` are the keys kept plus the colons of the strings kept
      (orjson writes a colon as itself). The counts are equal exactly when no key was
      dropped, provided every colon of a string is written as itself in ``raw`` too
      (``\\u003a`` is the only other way to write one).

    Measured on a 1,000-point log batch: see tests/core/test_jsonsafe.py and the report
    of issue 17 (about as much again as ``orjson.loads`` itself).
    """
    if b"\\" in raw and (b"\\u0000" in raw or b"\\u003a" in raw or b"\\u003A" in raw):
        return True
    if _WIDE_INTEGER in b" " + raw.translate(_NUMBERS):
        return True
    if not isinstance(value, (dict, list)):
        return False
    return raw.count(b":") != orjson.dumps(value).count(b":")


class _Duplicate:
    """Stands for the value of a key that appears more than once in one object."""


_DUPLICATE = _Duplicate()


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        obj[key] = _DUPLICATE if key in obj else value
    return obj


def _dotted(path: tuple[str, ...]) -> str | None:
    return ".".join(part.replace("\x00", "\\u0000") for part in path) or None


def _check(raw: bytes) -> None:
    """Parse ``raw`` again, keeping exact integers and every key, and raise ``Invalid`` at
    the first value (in document order) that breaks a rule."""
    try:
        value = json.loads(raw, object_pairs_hook=_pairs)
    except RecursionError:
        raise Invalid("The JSON is nested too deeply.") from None
    stack: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            for key in node:
                if "\x00" in key:
                    raise Invalid(
                        "A key may not contain the NUL character (\\u0000).",
                        code="nul_character",
                        field=_dotted((*path, key)),
                    )
                if node[key] is _DUPLICATE:
                    raise Invalid(
                        f"The key {key!r} appears more than once in one object.",
                        code="duplicate_key",
                        field=_dotted((*path, key)),
                    )
            stack.extend((item, (*path, key)) for key, item in reversed(node.items()))
        elif isinstance(node, list):
            stack.extend((item, (*path, str(index))) for index, item in reversed(list(enumerate(node))))
        elif isinstance(node, str):
            if "\x00" in node:
                raise Invalid(
                    "A string may not contain the NUL character (\\u0000).", code="nul_character", field=_dotted(path)
                )
        elif isinstance(node, int) and not isinstance(node, bool) and not INT64_MIN <= node <= INT64_MAX:
            raise Invalid(
                "Integers must lie within the signed 64-bit range (-2**63 to 2**63-1); "
                "send a larger number as a float (e.g. 1e20) or a string.",
                code="integer_out_of_range",
                field=_dotted(path),
            )


def dumps(value: Any, *, option: int = 0) -> bytes:
    """``orjson.dumps``, writing integers outside the signed 64-bit range as floats."""
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError as exc:
        if "64-bit" not in str(exc):
            raise
    return orjson.dumps(_wide_ints_as_floats(value), option=option)


def _wide_ints_as_floats(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _wide_ints_as_floats(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_wide_ints_as_floats(item) for item in value]
    if isinstance(value, int) and not isinstance(value, bool) and not INT64_MIN <= value <= INT64_MAX:
        try:
            return float(value)
        except OverflowError:  # beyond any float: only a row written by hand holds one
            return str(value)
    return value
