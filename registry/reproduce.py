"""The reproduce manifest of a version: what the SDK's ``assay reproduce`` turns into a
script, and an honest list of what cannot be reproduced."""

from __future__ import annotations

from typing import Any

from registry import selectors
from registry.models import ModelVersion

FORMAT = "assay.reproduce/1"


def problems_of(version: ModelVersion) -> tuple[list[str], list[str]]:
    """(blocking problems, warnings) in plain sentences."""
    code = version.code or {}
    blocking: list[str] = []
    warnings: list[str] = []
    if not code.get("commit"):
        blocking.append(
            "No git commit was recorded: the code cannot be checked out (was the run started outside a git repository, or with ASSAY_CAPTURE_CODE=0?)."
        )
    if not code.get("remote"):
        warnings.append(
            "No git remote was recorded: pass --repo URL (or a local path) to `assay reproduce` to say where to clone from."
        )
    if code.get("diff_truncated"):
        blocking.append(
            "The uncommitted changes (dirty diff) were larger than the SDK's cap and were cut: they cannot be re-applied exactly."
        )
    if not code.get("command"):
        blocking.append("No command line was recorded: there is nothing to run.")
    if not (version.environment or {}).get("packages"):
        warnings.append(
            "No package list was recorded (ASSAY_CAPTURE_ENVIRONMENT=0?): the environment cannot be rebuilt; the current one is used."
        )
    for item in version.datasets:
        if not item.get("digest"):
            warnings.append(f"Dataset {item.get('name')!r} has no digest: that it is unchanged cannot be verified.")
        elif not item.get("path") and not item.get("uri"):
            warnings.append(f"Dataset {item.get('name')!r} has no path or URI: it cannot be found to verify.")
    return blocking, warnings


def manifest(version: ModelVersion) -> dict[str, Any]:
    blocking, warnings = problems_of(version)
    repository = version.repository
    project = repository.project
    return {
        "format": FORMAT,
        "model": f"{project.team.name}/{project.name}/{repository.name}",
        "version": version.number,
        "content_hash": version.content_hash,
        "url": selectors.version_url(version),
        "run": {"id": version.source_run_ref, "name": version.source_run_name, "experiment": version.source_experiment},
        "binary": {"sha256": version.binary_sha256, "size": version.binary_size, "path": version.binary_path},
        "code": version.code,
        "config": version.config,
        "params": version.params,
        "datasets": version.datasets,
        "environment": version.environment,
        "metrics": version.metrics,
        "reproducible": not blocking,
        "problems": blocking,
        "warnings": warnings,
    }
