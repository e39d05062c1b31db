"""Downloads: short-lived URLs for an artifact's bytes and the store key of its thumbnail.

Reads only: the caller has checked permission.
"""

from __future__ import annotations

from django.conf import settings

from artifacts import paths, storage
from artifacts.models import Artifact, Blob


def download_url(artifact: Artifact, *, inline: bool = False) -> str | None:
    """A short-lived URL for the artifact's bytes (the caller checked permission), or None
    while the content is not verified."""
    blob = artifact.blob
    if blob.status != Blob.Status.VERIFIED:
        return None
    return storage.artifact_store().get_url(
        storage.object_key(blob.project_id, blob.sha256),
        filename=paths.file_name(artifact.path),
        media_type=artifact.media_type,
        inline=inline,
        expires=settings.ASSAY_DOWNLOAD_URL_EXPIRY_SECONDS,
    )


def thumbnail_key(artifact: Artifact) -> str | None:
    if not artifact.blob.thumbnail:
        return None
    return storage.derived_key(artifact.project_id, artifact.sha256, "thumbnail.png")
