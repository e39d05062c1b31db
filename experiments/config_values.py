"""A run's config as flat ``key -> text`` pairs, the form search, tables and exports use.
Pure, no Django.

``assay.init(config={"optimizer": {"name": "adam", "lr": 0.01}})`` is stored as JSON on
the run and, flattened, as one indexed row per leaf: ``optimizer.name = "adam"``,
``optimizer.lr = "0.01"``. The rules:

* nested objects are flattened with dots; a non-empty object never becomes a value itself
  (an empty one is the value ``{}``); lists are values, written as JSON (``[1, 2]``);
* a value is text as a param's is: strings as they are, numbers as Python writes them
  (``0.01``, ``1e-05``, ``32``), ``true``/``false``, ``null``; so ``config.lr > 0.001``
  compares numerically exactly when ``params.lr > 0.001`` would;
* when two paths flatten to the same key (``{"a.b": 1, "a": {"b": 2}}``), the one written
  later in the object wins, as it would in a JSON object with a repeated key;
* keys longer than :data:`MAX_KEY_LENGTH` characters and leaves beyond the first
  :data:`MAX_ENTRIES` stay in the run's JSON config only (not searchable, not columns).

Config and params are separate namespaces: ``config.lr`` and ``params.lr`` are two
fields and a run may have both; nothing merges them except a model version's
"effective params" (registry.diff) and the configuration fingerprint
(experiments/fingerprint.py), where the logged param wins.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

MAX_KEY_LENGTH = 250
MAX_ENTRIES = 2_000


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested config → dotted keys (``{"opt": {"lr": 0.1}}`` → ``{"opt.lr": 0.1}``)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            for inner, leaf in flatten(value, name).items():
                out.pop(inner, None)  # a later path wins and takes the later position
                out[inner] = leaf
        else:
            out.pop(name, None)
            out[name] = value
    return out


def as_text(value: Any) -> str:
    """A config leaf as the text a param would hold."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def config_entries(config: Mapping[str, Any]) -> dict[str, str]:
    """The searchable ``key -> text`` pairs of a run's config (see the module's rules)."""
    out: dict[str, str] = {}
    for key, value in flatten(config).items():
        if len(key) > MAX_KEY_LENGTH or not key:
            continue
        if len(out) >= MAX_ENTRIES:
            break
        out[key] = as_text(value)
    return out
