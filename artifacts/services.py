"""Artifact services: every write of the upload protocol, one function per use case
(declare, complete, sweep).

The protocol: the client declares files (path, size, sha256, media type) → the server
answers with presigned upload URLs (one PUT, or multipart parts above
``ASSAY_MULTIPART_THRESHOLD``) or with nothing to upload when the project already holds
that content → the client PUTs straight to the store and completes → a worker verifies,
promotes and inspects the bytes (artifacts/processing.py, queued here through
artifacts/tasks.py) → ``ready`` or ``failed`` with a reason.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from artifacts import paths, storage
from artifacts.models import Artifact, Blob
from core.errors import Conflict, Invalid, TooLarge
from core.tasks import enqueue_on_commit
from core.validation import choice, refuse_unknown_fields
from experiments.models import Run

log = logging.getLogger(__name__)

SHA256 = re.compile(r"^[0-9a-f]{64}$")
MAX_FILES_PER_DECLARE = 1_000
MAX_MEDIA_TYPE = 255
MEDIA_TYPE_PATTERN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9!#$&^_.+-]+(;[ -~]*)?"
MAX_PARTS = 10_000  # S3's limit
MIN_PART_BYTES = 5 * 1024**2  # S3's limit for every part but the last
UPLOAD_HEADERS = {"Content-Type": "application/octet-stream"}


@dataclass(frozen=True)
class DeclaredFile:
    path: str
    size: int
    sha256: str
    media_type: str


def check_manifest(files: Any, kind: Any) -> tuple[list[DeclaredFile], str]:
    """Validate a whole manifest before anything is written (all or nothing)."""
    kind = choice(
        kind, Artifact.Kind.values, field="kind", message=f"kind must be one of {', '.join(Artifact.Kind.values)}."
    )
    if not isinstance(files, list) or not files:
        raise Invalid("files must be a non-empty list of {path, size, sha256, media_type}.", field="files")
    if len(files) > MAX_FILES_PER_DECLARE:
        raise Invalid(f"At most {MAX_FILES_PER_DECLARE} files in one declaration.", field="files")
    out: list[DeclaredFile] = []
    seen: set[str] = set()
    for index, item in enumerate(files):
        at = f"files.{index}"
        if not isinstance(item, dict):
            raise Invalid("Each file must be an object {path, size, sha256, media_type}.", field=at)
        refuse_unknown_fields(item, {"path", "size", "sha256", "media_type"}, at=at)
        try:
            path = paths.normalize_path(item.get("path"))
        except paths.PathError as exc:
            raise Invalid(f"Refused artifact path: {exc}", code="invalid_path", field=f"{at}.path") from None
        if path in seen:
            raise Invalid(f"The path {path!r} appears twice.", field=f"{at}.path")
        seen.add(path)
        size = item.get("size")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise Invalid("size must be an integer ≥ 0 (bytes).", field=f"{at}.size")
        if size > settings.ASSAY_MAX_ARTIFACT_BYTES:
            raise TooLarge(
                f"The file is {size} bytes; artifacts are at most {settings.ASSAY_MAX_ARTIFACT_BYTES} bytes.",
                code="too_large",
                field=f"{at}.size",
            )
        sha = item.get("sha256")
        if not isinstance(sha, str) or not SHA256.match(sha.lower()):
            raise Invalid("sha256 must be 64 hexadecimal characters.", field=f"{at}.sha256")
        # Left out or "": the default. Anything else that is not a MIME type (null, {}) is refused.
        media_type = item.get("media_type", "")
        if media_type == "":
            media_type = "application/octet-stream"
        if (
            not isinstance(media_type, str)
            or len(media_type) > MAX_MEDIA_TYPE
            or not re.fullmatch(MEDIA_TYPE_PATTERN, media_type)
        ):
            raise Invalid("media_type must be a MIME type such as text/csv.", field=f"{at}.media_type")
        out.append(DeclaredFile(path=path, size=size, sha256=sha.lower(), media_type=media_type))
    return out, str(kind)


def part_size_for(size: int) -> int:
    wanted = max(settings.ASSAY_UPLOAD_PART_BYTES, MIN_PART_BYTES)
    return max(wanted, math.ceil(size / MAX_PARTS))


def expected_parts(size: int, part_size: int) -> list[tuple[int, int]]:
    """(number, size) of every part of a multipart upload."""
    count = max(1, math.ceil(size / part_size))
    return [(n, min(part_size, size - (n - 1) * part_size)) for n in range(1, count + 1)]


def upload_instructions(blob: Blob) -> dict[str, Any]:
    """Fresh presigned URLs for what is still missing of a pending blob's upload."""
    store = storage.artifact_store()
    key = storage.staging_key(blob.id)
    expires = settings.ASSAY_UPLOAD_URL_EXPIRY_SECONDS
    if not blob.upload_id:
        done = store.size_of(key) == blob.size
        return {
            "method": "PUT",
            "url": None if done else store.put_url(key, size=blob.size, expires=expires),
            "headers": UPLOAD_HEADERS,
            "done": done,
            "expires_in": expires,
        }
    assert blob.part_size is not None
    stored = {p.number: p.size for p in store.multipart_parts(key, upload_id=blob.upload_id)}
    parts: list[dict[str, Any]] = []
    parts_done: list[int] = []
    for number, size in expected_parts(blob.size, blob.part_size):
        if stored.get(number) == size:
            parts_done.append(number)
            continue
        url = store.part_url(key, upload_id=blob.upload_id, number=number, size=size, expires=expires)
        parts.append({"number": number, "size": size, "url": url})
    return {
        "method": "PUT",
        "multipart": True,
        "part_size": blob.part_size,
        "parts": parts,
        "parts_done": parts_done,
        "headers": UPLOAD_HEADERS,
        "expires_in": expires,
    }


def _start_upload(blob: Blob) -> None:
    store = storage.artifact_store()
    blob.status = Blob.Status.PENDING
    blob.promoted = False
    if blob.size > settings.ASSAY_MULTIPART_THRESHOLD:
        blob.part_size = part_size_for(blob.size)
        blob.upload_id = store.multipart_create(storage.staging_key(blob.id))
    else:
        blob.part_size = None
        blob.upload_id = ""


# The processing task's registered name (artifacts/tasks.py names it with this constant).
ARTIFACT_PROCESS_TASK = "artifacts.tasks.artifact_process_task"


def _queue_processing(artifact_ids: list[str]) -> None:
    for artifact_id in artifact_ids:
        enqueue_on_commit(ARTIFACT_PROCESS_TASK, artifact_id)


@transaction.atomic
def artifact_declare(*, run: Run, files: list[DeclaredFile], kind: str) -> list[tuple[Artifact, dict[str, Any] | None]]:
    """Record a manifest of files for ``run``; answer, per file, what to upload (None when
    the project already holds the content). Declaring the same path with the same content
    again is a resume: the answer lists only the parts still missing."""
    out: list[tuple[Artifact, dict[str, Any] | None]] = []
    to_process: list[str] = []
    for index, declared in enumerate(files):
        blob = Blob.objects.select_for_update().filter(project=run.project, sha256=declared.sha256).first()
        created = False
        if blob is None:
            blob = Blob(project=run.project, sha256=declared.sha256, size=declared.size)
            _start_upload(blob)
            try:
                with transaction.atomic():
                    blob.save()
                created = True
            except IntegrityError:
                # Two runs declared the same content at once (an import sends runs in
                # parallel, and MLflow model folders share files): the other one made the
                # blob; this declaration joins it.
                _abort_upload(blob)
                blob = Blob.objects.select_for_update().get(project=run.project, sha256=declared.sha256)
        if not created and blob.size != declared.size:
            if (
                blob.status in (Blob.Status.PENDING, Blob.Status.FAILED)
                and not blob.artifacts.exclude(status=Artifact.Status.FAILED)
                .exclude(run=run, path=declared.path)
                .exists()
            ):
                _abort_upload(blob)
                blob.size = declared.size
                _start_upload(blob)
                blob.save()
            else:
                raise Conflict(
                    f"This project holds content with sha256 {declared.sha256} of {blob.size} bytes, "
                    f"not {declared.size}.",
                    code="size_mismatch",
                    field=f"files.{index}.size",
                )
        elif not created and blob.status == Blob.Status.FAILED:
            _abort_upload(blob)
            _start_upload(blob)
            blob.save()

        artifact = Artifact.objects.select_for_update().filter(run=run, path=declared.path).first()
        if (
            artifact is not None
            and artifact.sha256 != declared.sha256
            and artifact.status not in (Artifact.Status.PENDING, Artifact.Status.FAILED)
        ):
            raise Conflict(
                f"The run already has an artifact {declared.path!r} with other content.",
                code="artifact_exists",
                field=f"files.{index}.path",
            )
        if artifact is None:
            artifact = Artifact(project=run.project, run=run, path=declared.path)
        if artifact.sha256 != declared.sha256 or artifact.status == Artifact.Status.FAILED:
            artifact.blob = blob
            artifact.sha256 = declared.sha256
            artifact.size = declared.size
            artifact.status = Artifact.Status.PENDING
            artifact.reason = ""
            artifact.findings = {}
            artifact.preview = {}
        artifact.kind = kind
        if artifact.status == Artifact.Status.PENDING:
            artifact.media_type = declared.media_type
        if blob.status == Blob.Status.PENDING:
            upload: dict[str, Any] | None = upload_instructions(blob)
        else:
            upload = None
            if artifact.status == Artifact.Status.PENDING:
                artifact.status = Artifact.Status.UPLOADED
                to_process.append(artifact.id)
        artifact.save()
        out.append((artifact, upload))
    _queue_processing(to_process)
    return out


@transaction.atomic
def artifact_complete(*, artifact: Artifact) -> Artifact:
    """The client says its upload is done: check that every byte (or part) arrived, then
    queue processing. Completing again is harmless."""
    blob = Blob.objects.select_for_update().get(pk=artifact.blob_id)
    if blob.status == Blob.Status.PENDING:
        store = storage.artifact_store()
        key = storage.staging_key(blob.id)
        if not blob.upload_id:
            arrived = store.size_of(key)
            if arrived != blob.size:
                raise Invalid(
                    f"The upload is not complete: {arrived or 0} of {blob.size} bytes arrived.",
                    code="upload_incomplete",
                )
        else:
            assert blob.part_size is not None
            stored = {p.number: p.size for p in store.multipart_parts(key, upload_id=blob.upload_id)}
            missing = [n for n, size in expected_parts(blob.size, blob.part_size) if stored.get(n) != size]
            if missing:
                shown = ", ".join(map(str, missing[:20])) + (" …" if len(missing) > 20 else "")
                raise Invalid(
                    f"The upload is not complete: {len(missing)} part(s) missing ({shown}).",
                    code="upload_incomplete",
                )
        blob.status = Blob.Status.UPLOADED
        blob.save(update_fields=["status", "updated_at"])
    elif blob.status == Blob.Status.FAILED:
        raise Invalid("This upload failed or expired; declare the file again.", code="upload_failed")
    waiting = list(
        Artifact.objects.select_for_update()
        .filter(blob=blob, status=Artifact.Status.PENDING)
        .values_list("id", flat=True)
    )
    Artifact.objects.filter(id__in=waiting).update(status=Artifact.Status.UPLOADED, updated_at=timezone.now())
    _queue_processing(waiting)
    artifact.refresh_from_db()
    return artifact


def _abort_upload(blob: Blob) -> None:
    store = storage.artifact_store()
    key = storage.staging_key(blob.id)
    if blob.upload_id:
        store.multipart_abort(key, upload_id=blob.upload_id)
    store.delete(key)


# --- the periodic sweep (artifacts/tasks.py, CELERY_BEAT_SCHEDULE) ---------------------------------


def _orphans_sweep(cutoff: datetime) -> int:
    """Abort multipart uploads and delete staged objects that no live upload owns: their
    declaration was rolled back after the store had started the upload (a later file of
    the manifest was refused, the server died mid-request), or bytes were PUT after the
    blob expired. Only what is older than ``cutoff`` is touched, so an upload whose
    transaction is still open is never taken for an orphan."""
    store = storage.artifact_store()
    live = Blob.objects.filter(status__in=[Blob.Status.PENDING, Blob.Status.UPLOADED], promoted=False)
    removed = 0
    open_uploads = store.open_uploads(started_before=cutoff)
    owned = set(live.filter(upload_id__in=[u.upload_id for u in open_uploads]).values_list("upload_id", flat=True))
    for upload in open_uploads:
        if upload.upload_id in owned:
            continue
        try:
            store.multipart_abort(upload.key, upload_id=upload.upload_id)
        except ValueError:  # a key this server never makes: not ours to remove
            log.warning("store sweep: left the foreign upload %s alone", upload.upload_id)
            continue
        removed += 1
    staged = {key.split("/", 1)[1]: key for key in store.staged_keys(modified_before=cutoff)}
    kept = set(live.filter(id__in=list(staged)).values_list("id", flat=True))
    for blob_id, key in staged.items():
        if blob_id in kept:
            continue
        try:
            store.delete(key)
        except ValueError:
            continue
        removed += 1
    return removed


def artifacts_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Periodic: abort and remove uploads never completed within ASSAY_UPLOAD_EXPIRY_HOURS
    (and store-side uploads no blob owns any more, after the same age), and queue again
    artifacts whose processing was lost (a Redis restart, a dead worker)."""
    now = now or timezone.now()
    expired = 0
    cutoff = now - timedelta(hours=settings.ASSAY_UPLOAD_EXPIRY_HOURS)
    for blob_id in Blob.objects.filter(status=Blob.Status.PENDING, updated_at__lt=cutoff).values_list("id", flat=True):
        with transaction.atomic():
            blob = Blob.objects.select_for_update().filter(pk=blob_id, status=Blob.Status.PENDING).first()
            if blob is None:
                continue
            _abort_upload(blob)
            blob.status = Blob.Status.FAILED
            blob.upload_id = ""
            blob.save(update_fields=["status", "upload_id", "updated_at"])
            Artifact.objects.filter(blob=blob, status=Artifact.Status.PENDING).update(
                status=Artifact.Status.FAILED,
                reason=f"The upload was never completed and expired after {settings.ASSAY_UPLOAD_EXPIRY_HOURS} h.",
                updated_at=now,
            )
            expired += 1
    orphans = _orphans_sweep(cutoff)
    stale_cutoff = now - timedelta(minutes=settings.ASSAY_ARTIFACT_STALE_MINUTES)
    with transaction.atomic():
        stale = list(
            Artifact.objects.filter(
                status__in=[Artifact.Status.UPLOADED, Artifact.Status.PROCESSING], updated_at__lt=stale_cutoff
            ).values_list("id", flat=True)
        )
        _queue_processing(stale)
    return {"expired": expired, "orphans": orphans, "requeued": len(stale)}


# --- files whose bytes this server received itself (the MLflow artifact proxy) ---------------------


@transaction.atomic
def artifact_store_received(
    *,
    run: Run,
    path: str,
    sha256: str,
    size: int,
    media_type: str,
    kind: str = "file",
    local_file: Path | None = None,
    staged_key: str | None = None,
) -> Artifact:
    """Record a file of ``run`` whose bytes this server received and hashed itself while
    reading them (``local_file``, ``sha256`` and ``size`` come from that one pass). The
    bytes go straight to their content-addressed key (nothing to verify: the hash is the
    server's own), unless the project holds them already; the artifact is ``uploaded`` and
    queued for the same processing as an SDK upload (inspection, the pickle scan, a
    preview). The same path with the same content again is harmless; with other content
    it is 409 ``artifact_exists`` (a run's files are not overwritten). The bytes are either
    ``local_file`` or already in the store at ``staged_key`` (a multipart upload the client
    sent straight to the store, which the server read back to hash): then they are promoted
    to their content key, or dropped when the project holds them already."""
    if (local_file is None) == (staged_key is None):
        raise ValueError("give the bytes as local_file or as staged_key, not both")
    if size > settings.ASSAY_MAX_ARTIFACT_BYTES:
        raise TooLarge(
            f"The file is {size} bytes; artifacts are at most {settings.ASSAY_MAX_ARTIFACT_BYTES} bytes.",
            code="too_large",
            field="path",
        )
    store = storage.artifact_store()
    artifact = Artifact.objects.select_for_update().filter(run=run, path=path).first()
    kept = artifact is not None and artifact.status != Artifact.Status.FAILED
    if artifact is not None and kept and (artifact.sha256 == sha256 or artifact.status != Artifact.Status.PENDING):
        # The same content again (harmless), or other content where the run has a file.
        if staged_key is not None:
            store.delete(staged_key)
        if artifact.sha256 == sha256:
            return artifact
        raise Conflict(
            f"The run already has an artifact {path!r} with other content.", code="artifact_exists", field="path"
        )
    blob = Blob.objects.select_for_update().filter(project=run.project, sha256=sha256).first()
    if blob is None or blob.status != Blob.Status.VERIFIED:
        if staged_key is not None:
            store.promote(staged_key, storage.object_key(run.project_id, sha256))
        else:
            assert local_file is not None
            store.put_file(storage.object_key(run.project_id, sha256), local_file)
        if blob is None:
            blob = Blob(project=run.project, sha256=sha256, size=size)
        elif blob.upload_id:
            # An SDK upload of the same content was under way: the bytes are here now.
            _abort_upload(blob)
        blob.size = size
        blob.status = Blob.Status.VERIFIED
        blob.promoted = True
        blob.upload_id = ""
        blob.part_size = None
        blob.save()
    elif staged_key is not None:
        store.delete(staged_key)
    if artifact is None:
        artifact = Artifact(project=run.project, run=run, path=path)
    artifact.blob = blob
    artifact.sha256 = sha256
    artifact.size = size
    artifact.media_type = media_type
    artifact.kind = kind
    artifact.status = Artifact.Status.UPLOADED
    artifact.reason = ""
    artifact.findings = {}
    artifact.preview = {}
    artifact.save()
    _queue_processing([artifact.id])
    return artifact


@transaction.atomic
def artifacts_delete(*, run: Run, path: str | None) -> int:
    """Remove the run's artifact at ``path`` and everything under it as a folder (all of the
    run's artifacts when ``path`` is None). The content stays in the store while another
    artifact or a model version holds it; a registered version keeps its binary."""
    found = Artifact.objects.filter(run=run)
    if path is not None:
        found = found.filter(Q(path=path) | Q(path__startswith=f"{path}/"))
    deleted, _ = found.delete()
    return deleted
