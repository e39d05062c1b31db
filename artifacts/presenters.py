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
