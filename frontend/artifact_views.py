"""The run page's Artifacts section, and its download and thumbnail links.

Templates get ready rows (a tree flattened with depths, sizes, status text, findings as
sentences, previews as plain strings): no rules. Downloads go through a permission check
here, then redirect to a short-lived signed URL; thumbnails (PNG made by our workers) are
served from our origin so that the page's CSP (img-src 'self') holds in S3 mode too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from artifacts import downloads, selectors, storage
from artifacts.access import access_artifact
from artifacts.models import Artifact
from artifacts.presenters import scan_state
from experiments.models import Run
from frontend.errors import policy_errors

MAX_THUMBNAIL_BYTES = 2 * 1024 * 1024
STATUS_TEXT = {
    "pending": "uploading",
    "uploaded": "queued",
    "processing": "processing",
    "ready": "ready",
    "failed": "failed",
}


@dataclass
class ArtifactRow:
    depth: int
    name: str
    path: str
    size: int
    folder: bool = False
    artifact: Artifact | None = None
    status: str = ""
    status_text: str = ""
    unsafe: bool = False
    format: str = ""
    facts: list[str] = field(default_factory=list)
    unsafe_globals: list[str] = field(default_factory=list)
    # The content scan: "scanned", "not_scanned" (with scan_reason) or "not_needed"; "" for
    # a file still being processed.
    scan_state: str = ""
    scan_reason: str = ""
    preview_type: str = ""
    preview_lines: list[str] = field(default_factory=list)
    preview_columns: list[str] = field(default_factory=list)
    preview_rows: list[list[str]] = field(default_factory=list)
    thumbnail_url: str = ""
    download_url: str = ""


def _facts(findings: dict[str, Any]) -> list[str]:
    """What processing found, as short sentences."""
    facts: list[str] = []
    fmt = findings.get("format")
    if fmt == "safetensors":
        facts.append(f"{findings.get('tensor_count', 0)} tensors, {findings.get('parameters', 0):,} parameters")
        facts.extend(
            f"{t.get('name')}: {t.get('dtype')} {list(t.get('shape', []))}" for t in findings.get("tensors", [])[:8]
        )
    elif fmt == "onnx":
        opsets = ", ".join(f"{domain} {version}" for domain, version in (findings.get("opset") or {}).items())
        facts.append(
            f"opset {opsets}; {findings.get('nodes', 0)} nodes; {findings.get('producer') or 'unknown producer'}"
        )
        for label in ("inputs", "outputs"):
            for value in findings.get(label, [])[:8]:
                facts.append(f"{label[:-1]} {value.get('name')}: {value.get('dtype')} {list(value.get('shape', []))}")
    elif fmt in {"pickle", "joblib", "pytorch", "numpy"} or "scanner" in findings:
        count = len(findings.get("globals", []))
        if findings.get("not_scanned") and findings.get("unsafe"):
            facts.append(f"not scanned, treat as unsafe: {findings['not_scanned']}")
        elif findings.get("not_scanned") or findings.get("scan_error"):
            facts.append(f"not scanned: {scan_state(findings).get('reason')}")
        else:
            facts.append(f"scanned by {findings.get('scanner', 'picklescan')}: {count} imported name(s)")
        if findings.get("suspicious_globals"):
            facts.append("suspicious: " + ", ".join(findings["suspicious_globals"][:10]))
    elif fmt in {"zip", "keras"}:
        facts.append(f"{findings.get('entries', 0)} entries (not extracted)")
    if fmt in {"safetensors", "onnx", "hdf5", "keras"} and scan_state(findings)["state"] == "not_needed":
        facts.append(f"no pickle scan needed: {scan_state(findings)['reason']}")
    for error in findings.get("errors", [])[:3]:
        facts.append(f"could not inspect: {error}")
    return [str(f) for f in facts]


def artifact_rows(run: Run) -> list[ArtifactRow]:
    """The run's artifacts as a tree: a folder row before its files, depth for indenting."""
    items = list(selectors.artifacts_of(run))
    rows: list[ArtifactRow] = []
    folders: dict[str, ArtifactRow] = {}
    for item in items:
        segments = item.path.split("/")
        for depth in range(len(segments) - 1):
            folder = "/".join(segments[: depth + 1])
            row = folders.get(folder)
            if row is None:
                row = folders[folder] = ArtifactRow(
                    depth=depth, name=segments[depth] + "/", path=folder, size=0, folder=True
                )
                rows.append(row)
            row.size += item.size
        findings = item.findings if isinstance(item.findings, dict) else {}
        preview = item.preview if isinstance(item.preview, dict) else {}
        row = ArtifactRow(
            depth=len(segments) - 1,
            name=segments[-1],
            path=item.path,
            size=item.size,
            artifact=item,
            status=item.status,
            status_text=STATUS_TEXT.get(item.status, item.status),
            unsafe=bool(findings.get("unsafe")),
            format=str(findings.get("format") or ""),
            facts=_facts(findings),
            unsafe_globals=[str(g) for g in findings.get("unsafe_globals", [])[:20]],
            preview_type=str(preview.get("type") or ""),
        )
        if item.status == Artifact.Status.READY:
            scan = scan_state(findings)
            row.scan_state, row.scan_reason = scan["state"], scan.get("reason", "")
        if row.preview_type == "text":
            row.preview_lines = [str(line) for line in preview.get("lines", [])]
        elif row.preview_type == "table":
            row.preview_columns = [str(c) for c in preview.get("columns", [])]
            row.preview_rows = [[str(c) for c in r] for r in preview.get("rows", [])]
        args = [run.project.team.name, run.project.name, run.id, item.id]
        if preview.get("thumbnail"):
            row.thumbnail_url = reverse("artifact-thumbnail", args=args)
        if item.blob.status == item.blob.Status.VERIFIED:
            row.download_url = reverse("artifact-download", args=args)
        rows.append(row)
    return rows


def uploads_pending(run: Run) -> dict[str, Any]:
    """What the SDK said it could not upload and kept for ``assay sync`` (run info
    ``uploads``): the names still pending, where they wait and why. Empty when none."""
    info = run.info if isinstance(run.info, dict) else {}
    uploads = info.get("uploads")
    if not isinstance(uploads, dict):
        return {}
    pending = uploads.get("pending")
    if not isinstance(pending, list) or not pending:
        return {}
    return {
        "names": [str(name) for name in pending[:1000]],
        "reason": str(uploads.get("reason") or ""),
        "spool": str(uploads.get("spool") or ""),
        "host": str(uploads.get("host") or ""),
    }


def artifact_context(run: Run) -> dict[str, Any]:
    rows = artifact_rows(run)
    files = [r for r in rows if not r.folder]
    waiting = uploads_pending(run)
    if waiting:
        names = set(waiting["names"])
        for row in files:
            if row.status == Artifact.Status.PENDING and row.path in names:
                row.status_text = "waiting for assay sync"
    return {
        "uploads_pending": waiting,
        "artifact_rows": rows,
        "artifact_count": len(files),
        "artifact_bytes": sum(r.size for r in files),
        "artifact_unsafe": sum(1 for r in files if r.unsafe),
        "artifact_unscanned": sum(1 for r in files if r.scan_state == "not_scanned" and not r.unsafe),
        "sdk_artifact_snippet": 'run.log_artifact("model.pkl", kind="model")',
    }


def _load(request: HttpRequest, team: str, project: str, run_id: str, artifact_id: str) -> Artifact:
    with policy_errors():
        artifact = access_artifact(request.user, run_id, artifact_id, action="artifact.view")
    if artifact.project.team.name.lower() != team.lower() or artifact.project.name.lower() != project.lower():
        raise Http404("Not found.")
    return artifact


@login_required
def artifact_download(request: HttpRequest, team: str, project: str, run_id: str, artifact_id: str) -> HttpResponse:
    url = downloads.download_url(_load(request, team, project, run_id, artifact_id))
    if url is None:
        raise Http404("This artifact is not verified yet.")
    if url.startswith(settings.PUBLIC_URL + "/"):
        # The local store is this server: stay on the origin the browser is using.
        url = url[len(settings.PUBLIC_URL) :]
    return HttpResponseRedirect(url)


@login_required
def artifact_thumbnail(request: HttpRequest, team: str, project: str, run_id: str, artifact_id: str) -> HttpResponse:
    artifact = _load(request, team, project, run_id, artifact_id)
    key = downloads.thumbnail_key(artifact)
    data = storage.artifact_store().read_bytes(key, limit=MAX_THUMBNAIL_BYTES) if key else None
    if data is None:
        raise Http404("No thumbnail.")
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=3600"
    return response
