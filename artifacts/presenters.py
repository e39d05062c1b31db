"""The one JSON shape of an artifact: REST answers (artifacts/api.py) and live events
(artifacts/events.py) build it here, so they cannot drift apart."""

from __future__ import annotations

from typing import Any

from artifacts.models import Artifact


def artifact_out(artifact: Artifact) -> dict[str, Any]:
    return {
        "id": artifact.id,
        "path": artifact.path,
        "size": artifact.size,
        "sha256": artifact.sha256,
        "media_type": artifact.media_type,
        "kind": artifact.kind,
        "status": artifact.status,
        "reason": artifact.reason,
        "findings": artifact.findings,
        "preview": artifact.preview,
        "created_at": artifact.created_at,
        "updated_at": artifact.updated_at,
    }


# Formats whose files hold no code at all: no scan, and no warning.
_INERT_FORMATS = {"image", "csv", "json", "text"}


def scan_state(findings: dict[str, Any]) -> dict[str, str]:
    """What the content scan of an artifact came to, from its findings, in one shape for
    the run, version and check pages: ``{"state": "scanned"}``, ``{"state":
    "not_scanned", "reason": ...}`` or ``{"state": "not_needed", "reason": ...}``.
    Findings written before ``scan`` existed (picklescan's ``scan_error`` and
    ``not_scanned``) are read the same way."""
    scan = findings.get("scan")
    if isinstance(scan, dict) and scan.get("state") in ("scanned", "not_scanned", "not_needed"):
        out = {"state": str(scan["state"])}
        if scan.get("reason"):
            out["reason"] = str(scan["reason"])
        if out["state"] != "scanned" and "reason" not in out:
            out["reason"] = "no reason recorded"
        return out
    if findings.get("not_scanned"):
        return {"state": "not_scanned", "reason": str(findings["not_scanned"])}
    if findings.get("scan_error"):
        return {"state": "not_scanned", "reason": "the pickle scan did not complete"}
    if "scanner" in findings:
        return {"state": "scanned"}
    fmt = str(findings.get("format") or "unknown")
    if fmt in _INERT_FORMATS:
        return {"state": "not_needed", "reason": f"a {fmt} file holds no code"}
    if fmt in ("zip", "keras") and findings.get("has_pickles") is False:
        return {"state": "not_needed", "reason": "the archive holds no pickle"}
    if fmt in ("safetensors", "onnx"):
        return {"state": "not_needed", "reason": f"{fmt} holds no pickle"}
    return {"state": "not_scanned", "reason": f"no scanner for this file's format ({fmt})"}
