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


def body_object(data: Any, allowed: set[str]) -> dict[str, Any]:
    """A request body that must be a JSON object with only ``allowed`` keys."""
    if not isinstance(data, dict):
        raise Invalid("The body must be a JSON object.")
    refuse_unknown_fields(data, allowed)
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
