"""A run's configuration fingerprint: "has this exact configuration been tried?". Pure, no Django.

The *effective configuration* of a run is its config (``Run.config``, flattened with dots as
in :mod:`experiments.config_values`) together with its logged params. When the same key is
both a config key and a param, **the logged param wins**, the rule a model version's
effective params already follow (``registry.diff``): a param is what the job says it used.

Canonical form, so that spellings of one configuration share one fingerprint:

* keys are flattened with dots and sorted; a key is compared as written (case matters);
* numbers are normalised: ``0.01``, ``1e-2``, ``"0.01"`` and ``"1E-2"`` all read as the
  number 0.01, and an integral float is its integer (``1.0`` is ``1``); integers beyond
  2**53 keep their exact digits;
* ``true``/``false`` (also the strings ``"True"``/``"false"``, which is how Python params
  arrive) are booleans, ``null``/``"None"`` is null;
* lists are compared element by element under the same rules, as JSON;
* keys the project excludes (seeds, output paths: :data:`DEFAULT_EXCLUDE`) are left out.
  A pattern is an ``fnmatch`` glob tried on the whole dotted key and on its last part, so
  ``seed`` excludes ``seed`` and ``trainer.seed`` and ``*_path`` excludes ``data.cache_path``.

The fingerprint is the sha256 (hex) of the canonical JSON of the sorted ``[key, value]``
pairs. Changing these rules changes every fingerprint: add a migration that recomputes them.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from experiments.config_values import flatten

DEFAULT_EXCLUDE: tuple[str, ...] = (
    "seed",
    "*_seed",
    "random_state",
    "random_seed",
    "output_dir",
    "output_path",
    "*_path",
    "logging_dir",
    "checkpoint_dir",
    "run_name",
)
MAX_EXCLUDE_PATTERNS = 100
MAX_PATTERN_LENGTH = 250
PATTERN_RE = re.compile(r"^[A-Za-z0-9_.*?\[\]!-]+$")

_NUMBER_RE = re.compile(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$")
_EXACT_INT_LIMIT = 2**53


def _number(value: float | int) -> Any:
    """A JSON-able canonical number: integral values as ints, others as Python's repr."""
    if isinstance(value, int):
        return value
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value.is_integer() and abs(value) <= _EXACT_INT_LIMIT:
        return int(value)
    return float(value)


def normalise(value: Any) -> Any:
    """One leaf in canonical form (see the module's rules)."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float):
        return _number(value)
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
        if lowered in ("null", "none"):
            return None
        if lowered in ("nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity"):
            return _number(float(lowered))
        if _NUMBER_RE.match(value):
            text = value.strip()
            if re.fullmatch(r"[+-]?\d+", text):
                return _number(int(text))
            return _number(float(text))
        return value
    if isinstance(value, list | tuple):
        return [normalise(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}  # only an empty object reaches here
    return str(value)


@functools.lru_cache(maxsize=256)
def _exclusion(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One compiled regex for a list of globs (the near scan tests ~10,000 keys a lookup)."""
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{fnmatch.translate(p)})" for p in patterns))


def is_excluded(key: str, patterns: Iterable[str]) -> bool:
    matcher = _exclusion(tuple(patterns))
    if matcher is None:
        return False
    return bool(matcher.match(key) or matcher.match(key.rsplit(".", 1)[-1]))


def effective(
    config: Mapping[str, Any], params: Mapping[str, Any], *, exclude: Iterable[str] = DEFAULT_EXCLUDE
) -> dict[str, Any]:
    """The canonical ``key -> value`` pairs of a configuration, sorted by key."""
    matcher = _exclusion(tuple(exclude))
    merged = {**flatten(config), **dict(params)}  # the logged param wins
    return {
        key: normalise(merged[key])
        for key in sorted(merged)
        if key and not (matcher and (matcher.match(key) or matcher.match(key.rsplit(".", 1)[-1])))
    }


def fingerprint_of(entries: Mapping[str, Any]) -> str:
    """sha256 of canonical pairs (as :func:`effective` returns them)."""
    text = json.dumps(
        [[key, entries[key]] for key in sorted(entries)], ensure_ascii=False, separators=(",", ":"), allow_nan=False
    )
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(
    config: Mapping[str, Any], params: Mapping[str, Any] | None = None, *, exclude: Iterable[str] = DEFAULT_EXCLUDE
) -> str:
    return fingerprint_of(effective(config, params or {}, exclude=exclude))


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """The keys whose canonical values differ (a key present on one side only counts)."""
    return sorted(
        key
        for key in set(a) | set(b)
        if key not in a
        or key not in b
        or a[key] != b[key]
        or isinstance(a[key], bool) is not isinstance(b[key], bool)  # true is not 1
    )


def check_exclude(value: Any) -> list[str]:
    """Validate an exclusion list; returns it, or raises ValueError naming the problem."""
    if not isinstance(value, list):
        raise ValueError("must be a list of key patterns.")
    if len(value) > MAX_EXCLUDE_PATTERNS:
        raise ValueError(f"holds at most {MAX_EXCLUDE_PATTERNS} patterns.")
    out: list[str] = []
    for item in value:
        if not isinstance(item, str) or not item or len(item) > MAX_PATTERN_LENGTH or not PATTERN_RE.match(item):
            raise ValueError(
                f"{item!r} is not a key pattern (letters, digits, _ . - and the globs * ? [ ], "
                f"1-{MAX_PATTERN_LENGTH} characters)."
            )
        if item not in out:
            out.append(item)
    return out
