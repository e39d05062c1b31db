"""Artifact processing, the workers' side of the upload protocol (artifacts/services.py):
verify the bytes that arrived against the declared size and sha256, promote them from
staging to their content-addressed key, inspect them (artifacts/inspection.py: format,
tensor shapes, unsafe pickle globals, a preview, a thumbnail), and record the result once.

Every step is idempotent, so a task delivered again after a worker died in the middle
finds where the first delivery stopped.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from artifacts import events, inspection, storage
from artifacts.models import Artifact, Blob


@transaction.atomic
def _processing_start(artifact_id: str) -> Artifact | None:
    artifact = Artifact.objects.select_for_update().filter(pk=artifact_id).first()
    if artifact is None or artifact.status not in (Artifact.Status.UPLOADED, Artifact.Status.PROCESSING):
        return None  # done already (a redelivered task), or not uploaded yet
    artifact.status = Artifact.Status.PROCESSING
    artifact.attempts += 1
    artifact.save(update_fields=["status", "attempts", "updated_at"])
    return artifact


@transaction.atomic
def _blob_promote(blob_id: str) -> Blob:
    """Finish the store's side of the upload once: complete the multipart upload and move
    the bytes from staging to the object key no client URL can write."""
    blob = Blob.objects.select_for_update().get(pk=blob_id)
    if blob.status != Blob.Status.UPLOADED or blob.promoted:
        return blob
    store = storage.artifact_store()
    staging = storage.staging_key(blob.id)
    final = storage.object_key(blob.project_id, blob.sha256)
    if blob.upload_id and store.size_of(staging) is None:
        parts = store.multipart_parts(staging, upload_id=blob.upload_id)
        store.multipart_complete(staging, upload_id=blob.upload_id, parts=parts)
    if store.size_of(staging) is not None:
        store.promote(staging, final)
    elif store.size_of(final) is None:
        raise FileNotFoundError("neither the staged upload nor the promoted object exists")
    blob.promoted = True
    blob.save(update_fields=["promoted", "updated_at"])
    return blob


@transaction.atomic
def _blob_verified(blob_id: str, *, sha256: str, size: int) -> str | None:
    """Record what hashing found; return the failure reason, or None when it matched."""
    blob = Blob.objects.select_for_update().get(pk=blob_id)
    if blob.status == Blob.Status.VERIFIED:
        return None
    if blob.status == Blob.Status.FAILED:
        return "The upload failed verification."
    reason = None
    if size != blob.size:
        reason = f"Size mismatch: {size} bytes arrived, {blob.size} were declared."
    elif sha256 != blob.sha256:
        reason = f"sha256 mismatch: the bytes that arrived hash to {sha256}, not the declared {blob.sha256}."
    if reason is None:
        blob.status = Blob.Status.VERIFIED
        blob.save(update_fields=["status", "updated_at"])
        return None
    # SECURITY: corrupted or substituted bytes are never kept under the sha256 they lie about.
    storage.artifact_store().delete(storage.object_key(blob.project_id, blob.sha256))
    blob.status = Blob.Status.FAILED
    blob.save(update_fields=["status", "updated_at"])
    unfinished = Artifact.objects.filter(blob=blob).exclude(status__in=[Artifact.Status.READY, Artifact.Status.FAILED])
    failed = list(unfinished.values_list("id", "project_id"))
    unfinished.update(status=Artifact.Status.FAILED, reason=reason, updated_at=timezone.now())
    for artifact_id, project_id in failed:
        events.artifact_finished(artifact_id, project_id=project_id)
    return reason


@transaction.atomic
def _processing_finish(artifact_id: str, result: inspection.Inspection) -> bool:
    artifact = Artifact.objects.select_for_update().get(pk=artifact_id)
    if artifact.status != Artifact.Status.PROCESSING:
        return False  # another delivery finished first: results are written once
    artifact.media_type = result.media_type
    artifact.findings = result.findings
    artifact.preview = result.preview
    artifact.status = Artifact.Status.READY
    artifact.reason = ""
    artifact.processed += 1
    artifact.save()
    events.artifact_processed(artifact_id)
    return True


def artifact_process(*, artifact_id: str) -> None:
    """Verify, promote and inspect one artifact; idempotent (safe to run again after a
    worker died in the middle, and a no-op once the artifact is ready or failed)."""
    artifact = _processing_start(artifact_id)
    if artifact is None:
        return
    blob = _blob_promote(artifact.blob_id)
    store = storage.artifact_store()
    key = storage.object_key(blob.project_id, blob.sha256)
    with store.local_copy(key) as local:
        if settings.ASSAY_TEST_PROCESSING_DELAY:
            time.sleep(settings.ASSAY_TEST_PROCESSING_DELAY)
        if blob.status != Blob.Status.VERIFIED:
            sha256, size = storage.sha256_of(local)
            if _blob_verified(blob.id, sha256=sha256, size=size) is not None:
                return
        result = inspection.inspect_file(local, artifact.path)
    if result.thumbnail is not None:
        store.put_bytes(
            storage.derived_key(blob.project_id, blob.sha256, "thumbnail.png"),
            result.thumbnail,
            content_type="image/png",
        )
        Blob.objects.filter(pk=blob.pk).update(thumbnail=True)
        result.preview["thumbnail"] = True
    _processing_finish(artifact_id, result)


@transaction.atomic
def artifact_fail(*, artifact_id: str, reason: str) -> None:
    """Give up on an artifact (processing kept failing): failed, with the reason shown."""
    # Once: an artifact ready or failed already is left as it is (and tells no one again).
    failed = (
        Artifact.objects.filter(pk=artifact_id)
        .exclude(status__in=[Artifact.Status.READY, Artifact.Status.FAILED])
        .update(status=Artifact.Status.FAILED, reason=reason[:2000], updated_at=timezone.now())
    )
    if failed:
        events.artifact_processed(artifact_id)
