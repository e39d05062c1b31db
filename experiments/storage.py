"""The one storage adapter: object-store keys and URLs live here and nowhere else.

Two backends behind one interface: a local directory (embedded profile) and S3/MinIO
(production, ``ASSAY_ARTIFACTS=s3://bucket``). Uploads and processing arrive with the
artifacts issue; for now the adapter answers the readiness probe.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class ArtifactStore(Protocol):
    def check(self) -> None:
        """Raise if the store cannot be reached or written."""


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / ".ready"
        probe.write_bytes(b"ok")


class S3Store:
    def __init__(self, bucket: str) -> None:
        from minio import Minio

        endpoint = urlparse(settings.S3_ENDPOINT_URL or "https://s3.amazonaws.com")
        if not endpoint.hostname:
            raise ImproperlyConfigured("S3_ENDPOINT_URL must be a URL such as http://minio:9000")
        self.bucket = bucket
        self.client = Minio(
            endpoint.netloc,
            access_key=settings.S3_ACCESS_KEY or None,
            secret_key=settings.S3_SECRET_KEY or None,
            secure=endpoint.scheme == "https",
            region=settings.S3_REGION,
        )

    def check(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            raise LookupError("bucket missing")


@lru_cache(maxsize=1)
def artifact_store() -> ArtifactStore:
    target = settings.ASSAY_ARTIFACTS
    if target.startswith("s3://"):
        bucket = target[len("s3://") :].strip("/")
        if not bucket or "/" in bucket:
            raise ImproperlyConfigured("ASSAY_ARTIFACTS=s3://<bucket> takes a bucket name only")
        return S3Store(bucket)
    return LocalStore(Path(target))
