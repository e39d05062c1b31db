"""The content hash of a model version, and the canonical form of its ingredients. Pure.

A version's ``content_hash`` is, like a git commit id, the SHA-256 of its ingredients:

    content_hash = sha256(canonical_json(ingredients(...))).hexdigest()

``canonical_json`` is JSON with object keys sorted by code point, no insignificant
whitespace (separators ``,`` and ``:``), non-ASCII characters written as themselves and
encoded as UTF-8, and no NaN or infinities (non-finite metric values are recorded as the
strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` before hashing). Numbers are written as
Python's ``json`` module writes them (integers in decimal, floats in their shortest
round-trip form). The ingredients object is::

    {"format": "assay.model-version/1",
     "binary": {"sha256": …, "size": …},
     "code": {"remote", "commit", "diff_sha256", "diff_truncated", "entry_point", "command"},
     "config": {…the run's config…}, "params": {key: value, …},
     "data": [{"name", "uri", "digest", "size", "rows"}, … sorted by name],
     "environment": {"python", "os", "accelerator", "packages": {name: version}},
     "run": "<source run id>", "metrics": {key: last value, …},
     "parents": ["<content hash>", … sorted]}

Metadata (author, time, description, tags) is not an ingredient: registering the same
ingredients twice in one repository is refused as the version that exists. Missing values
are ``null``.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

FORMAT = "assay.model-version/1"
CODE_HASHED = ("remote", "commit", "diff_sha256", "diff_truncated", "entry_point", "command")
DATASET_HASHED = ("name", "uri", "digest", "size", "rows")
ENVIRONMENT_HASHED = ("python", "os", "accelerator", "packages")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def finite(value: float) -> float | str:
    """A metric value as recorded: finite numbers as they are, others as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def ingredients(
    *,
    binary_sha256: str,
    binary_size: int,
    code: dict[str, Any],
    config: dict[str, Any],
    params: dict[str, str],
    datasets: list[dict[str, Any]],
    environment: dict[str, Any],
    run_id: str,
    metrics: dict[str, Any],
    parent_hashes: list[str],
) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "binary": {"sha256": binary_sha256, "size": binary_size},
        "code": {key: code.get(key) for key in CODE_HASHED},
        "config": config,
        "params": params,
        "data": sorted(
            ({key: item.get(key) for key in DATASET_HASHED} for item in datasets), key=lambda d: str(d["name"])
        ),
        "environment": {key: environment.get(key) for key in ENVIRONMENT_HASHED},
        "run": run_id,
        "metrics": metrics,
        "parents": sorted(parent_hashes),
    }


def content_hash(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()
