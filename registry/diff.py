"""Diff two model versions ingredient by ingredient. Pure (no Django).

Input: two version documents as :func:`registry.selectors.version_document` builds them
(``params``, ``config``, ``metrics``, ``environment``, ``code``, ``datasets``, ``binary``).
Output: a JSON-ready dict with one section per ingredient; ``a`` is the "from" side and
``b`` the "to" side (``delta = b - a``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from packaging.version import InvalidVersion, Version

from experiments.config_values import as_text, flatten

_PACKAGE_NAME = re.compile(r"[-_.]+")


def effective_params(doc: Mapping[str, Any]) -> dict[str, str]:
    """The run's config (flattened, written as text as experiments.config_values does) and its
    logged params; the one place config and params merge, and a logged param wins."""
    merged = {key: as_text(value) for key, value in flatten(doc.get("config") or {}).items()}
    merged.update({str(k): as_text(v) for k, v in (doc.get("params") or {}).items()})
    return merged


def diff_mapping(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    added = {k: b[k] for k in sorted(b) if k not in a}
    removed = {k: a[k] for k in sorted(a) if k not in b}
    changed = {k: {"from": a[k], "to": b[k]} for k in sorted(a) if k in b and a[k] != b[k]}
    return {"added": added, "removed": removed, "changed": changed}


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if value == "NaN":
        return math.nan
    if value == "Infinity":
        return math.inf
    if value == "-Infinity":
        return -math.inf
    return None


def diff_metrics(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per key present on either side: both values, ``delta`` (b - a) and
    ``relative`` (delta / |a|) when both are finite numbers (None otherwise)."""
    rows = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        na, nb = _number(va), _number(vb)
        delta = relative = None
        if na is not None and nb is not None and math.isfinite(na) and math.isfinite(nb):
            delta = nb - na
            relative = delta / abs(na) if na != 0 else None
        rows.append(
            {
                "key": key,
                "a": va,
                "b": vb,
                "delta": delta,
                "relative": relative,
                "status": "added" if key not in a else "removed" if key not in b else "same" if va == vb else "changed",
            }
        )
    return rows


def normalize_package(name: str) -> str:
    """PEP 503: ``Scikit_Learn`` and ``scikit-learn`` are the same package."""
    return _PACKAGE_NAME.sub("-", name).lower()


def diff_packages(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    pa = {normalize_package(str(k)): str(v) for k, v in a.items()}
    pb = {normalize_package(str(k)): str(v) for k, v in b.items()}
    out: dict[str, Any] = {
        "added": {k: pb[k] for k in sorted(pb) if k not in pa},
        "removed": {k: pa[k] for k in sorted(pa) if k not in pb},
        "upgraded": {},
        "downgraded": {},
        "changed": {},  # versions that packaging cannot order
    }
    for name in sorted(set(pa) & set(pb)):
        old, new = pa[name], pb[name]
        if old == new:
            continue
        try:
            older, newer = Version(old), Version(new)
        except InvalidVersion:
            out["changed"][name] = {"from": old, "to": new}
            continue
        if newer > older:
            out["upgraded"][name] = {"from": old, "to": new}
        elif newer < older:
            out["downgraded"][name] = {"from": old, "to": new}
        else:  # "1.0" and "1.0.0": equal versions spelled differently
            out["changed"][name] = {"from": old, "to": new}
    return out


def _field_change(a: Any, b: Any) -> dict[str, Any] | None:
    return None if a == b else {"from": a, "to": b}


def diff_code(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "commit": _field_change(a.get("commit"), b.get("commit")),
        "remote": _field_change(a.get("remote"), b.get("remote")),
        "diff": _field_change(a.get("diff_sha256"), b.get("diff_sha256")),
        "entry_point": _field_change(a.get("entry_point"), b.get("entry_point")),
        "command": _field_change(a.get("command"), b.get("command")),
    }


DATASET_FIELDS = ("uri", "digest", "size", "rows")


def diff_datasets(a: list[Mapping[str, Any]], b: list[Mapping[str, Any]]) -> dict[str, Any]:
    da = {str(d.get("name")): d for d in a}
    db = {str(d.get("name")): d for d in b}
    changed = []
    for name in sorted(set(da) & set(db)):
        fields = {f: {"from": da[name].get(f), "to": db[name].get(f)} for f in DATASET_FIELDS}
        fields = {f: change for f, change in fields.items() if change["from"] != change["to"]}
        if fields:
            changed.append({"name": name, "fields": fields})
    return {
        "added": [db[n] for n in sorted(db) if n not in da],
        "removed": [da[n] for n in sorted(da) if n not in db],
        "changed": changed,
    }


def diff_environment(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "python": _field_change(a.get("python"), b.get("python")),
        "os": _field_change(a.get("os"), b.get("os")),
        "accelerator": _field_change(a.get("accelerator"), b.get("accelerator")),
        "packages": diff_packages(a.get("packages") or {}, b.get("packages") or {}),
    }


def diff_versions(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    binary_a, binary_b = a.get("binary") or {}, b.get("binary") or {}
    params = diff_mapping(effective_params(a), effective_params(b))
    metrics = diff_metrics(a.get("metrics") or {}, b.get("metrics") or {})
    environment = diff_environment(a.get("environment") or {}, b.get("environment") or {})
    code = diff_code(a.get("code") or {}, b.get("code") or {})
    datasets = diff_datasets(list(a.get("datasets") or []), list(b.get("datasets") or []))
    binary = {
        "changed": binary_a.get("sha256") != binary_b.get("sha256"),
        "from": binary_a.get("sha256"),
        "to": binary_b.get("sha256"),
        "size_from": binary_a.get("size"),
        "size_to": binary_b.get("size"),
    }
    return {
        "params": params,
        "metrics": metrics,
        "environment": environment,
        "code": code,
        "datasets": datasets,
        "binary": binary,
        "summary": {
            "params": sum(len(params[k]) for k in ("added", "removed", "changed")),
            "metrics": sum(1 for row in metrics if row["status"] != "same"),
            "packages": sum(len(environment["packages"][k]) for k in environment["packages"]),
            "code": sum(1 for change in code.values() if change is not None),
            "datasets": sum(len(datasets[k]) for k in ("added", "removed", "changed")),
            "binary": 1 if binary["changed"] else 0,
        },
    }
