"""Typed readers of the environment: the only place settings read ``os.environ``.

Each helper fails fast with ``ImproperlyConfigured`` naming the variable, so a typo in a
deployment stops the process at start instead of surfacing as odd behaviour later.
The embedded default needs no variable at all.
"""

from __future__ import annotations

import os

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, got {raw!r}") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str, *, debug: bool) -> str:
    """A secret that production must set; development gets a fixed, clearly unsafe one."""
    value = os.environ.get(name, "")
    if value:
        return value
    if debug:
        return "django-insecure-embedded-development-only"
    raise ImproperlyConfigured(f"{name} must be set when ASSAY_DEBUG is off")
