"""Checks of input shapes shared by every interface, raising domain errors (no HTTP)."""

from __future__ import annotations

from collections.abc import Mapping
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
