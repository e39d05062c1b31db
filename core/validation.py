"""Checks of input shapes shared by every interface, raising domain errors (no HTTP)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from core.errors import Invalid


def refuse_unknown_fields(value: Mapping[Any, Any], allowed: set[str], *, at: str = "") -> None:
    """A 400 naming the keys of a body object (at path ``at``, "" for the body itself) that
    are not in ``allowed``; ``field`` points at the first of them."""
    unknown = sorted(map(str, set(value) - allowed))
    if unknown:
        raise Invalid(f"Unknown field(s): {', '.join(unknown)}.", field=f"{at}.{unknown[0]}" if at else unknown[0])


def body_object(data: Any, allowed: set[str], *, not_null: Collection[str] = ()) -> dict[str, Any]:
    """A request body that must be a JSON object with only ``allowed`` keys, none of
    ``not_null`` given as ``null`` (see :func:`refuse_nulls`)."""
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    refuse_unknown_fields(data, allowed)
    refuse_nulls(data, not_null)
    return dict(data)


# The type is tested before the membership: a list or an object sent where a string is
# expected is unhashable, and ``value in some_set`` (or a dict lookup) raises TypeError,
# a 500 instead of a refusal naming the field (issue 17). Services check a closed set of
# strings through these two helpers rather than with a bare ``in``.


def choice(value: Any, allowed: Collection[str], *, field: str, message: str | None = None) -> str:
    """``value`` when it is one of the strings ``allowed``; otherwise Invalid naming ``field``
    (``message`` by default lists the allowed values)."""
    if not isinstance(value, str) or value not in allowed:
        raise Invalid(message or f"{field} must be one of: {', '.join(sorted(allowed))}.", field=field)
    return value


def choices(value: Any, allowed: Collection[str], *, field: str, max_items: int) -> list[str]:
    """A list of at most ``max_items`` strings, each one of ``allowed``, without duplicates
    (first occurrence kept). A value of the wrong type names ``field``; a wrong item names
    ``field.<index>``."""
    if not isinstance(value, list) or len(value) > max_items:
        raise Invalid(f"{field} must be a list of at most {max_items} of: {', '.join(sorted(allowed))}.", field=field)
    out: dict[str, None] = {}
    for index, item in enumerate(value):
        out[choice(item, allowed, field=f"{field}.{index}")] = None
    return list(out)


# Leniency is a refusal (issue 17): a number where a string is expected, an empty list or
# ``false`` where an object is expected, or ``null`` where the schema forbids it, is refused
# naming the field rather than coerced ("0") or silently replaced by a default ({}).


def string(value: Any, *, field: str, max_length: int, allow_blank: bool = False) -> str:
    """``value`` when it is a string of at most ``max_length`` characters (and not blank
    unless ``allow_blank``); otherwise Invalid naming ``field``. Numbers are not strings."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string.", field=field)
    if len(value) > max_length:
        raise Invalid(f"{field} is longer than {max_length} characters.", field=field)
    if not allow_blank and not value.strip():
        raise Invalid(f"{field} may not be blank.", field=field)
    return value


def mapping(value: Any, *, field: str) -> dict[str, Any]:
    """``value`` when it is a JSON object; ``0``, ``false``, ``""`` or ``[]`` are refused
    naming ``field`` (they used to be stored as ``{}``)."""
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be a JSON object.", field=field)
    return value


def refuse_nulls(body: Mapping[str, Any], fields: Collection[str]) -> None:
    """Invalid naming the first of ``fields`` that ``body`` holds as ``null``: where the
    schema does not say nullable, a ``null`` is not the same as leaving the field out."""
    for name in sorted(fields):
        if name in body and body[name] is None:
            raise Invalid(f"{name} may not be null.", field=name)


QUERY_TRUE = {"true", "1"}
QUERY_FALSE = {"false", "0"}


def query_bool(value: str | None, *, field: str, default: bool = False) -> bool:
    """A boolean query parameter: ``true``/``false``/``1``/``0`` (any case), or ``default``
    when absent; anything else (``null``, ``yes``, "") is Invalid naming ``field``."""
    if value is None:
        return default
    lowered = value.lower()
    if lowered in QUERY_TRUE:
        return True
    if lowered in QUERY_FALSE:
        return False
    raise Invalid(f"{field} takes true, false, 1 or 0.", field=field)
