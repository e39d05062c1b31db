"""The one storage adapter: object-store keys and URLs live here and nowhere else.

Two backends behind one interface: a local directory (embedded profile) and S3/MinIO
(production, ``ASSAY_ARTIFACTS=s3://bucket[/prefix]``).

Keys are generated here from ids the server owns, never from a client's path:

* ``staging/<blob id>``: where a client uploads (through a presigned URL);
* ``objects/<project id>/<sha256>``: the verified content, written only by workers
  (promoted from staging), so no URL ever handed to a client can overwrite it;
* ``derived/<project id>/<sha256>/<name>``: what processing made (thumbnails).

Both backends speak the same protocol to clients: a presigned PUT per object, or a
multipart upload whose parts are PUT to presigned part URLs. The local store's URLs point
at this server (``/-/store/?t=<signed token>``, see artifacts/store_views.py); their
tokens are signed with ``django.core.signing`` and expire like S3's presigned URLs.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode, urlparse

from django.conf import settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured

from accounts.models import new_id

STORE_SALT = "assay.store"
_KEY = re.compile(r"^(staging|objects|derived)(/[A-Za-z0-9][A-Za-z0-9._-]{0,127}){1,3}$")
# Files that a browser would run as active content if served inline from our origin
# (security.md class 5): always downloads, never their own media type.
ACTIVE_TYPES = {"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"}
INLINE_TYPES = {"image/png", "image/jpeg", "image/gif", "image/webp"}


@dataclass(frozen=True)
class Part:
    number: int
    size: int
    etag: str


@dataclass(frozen=True)
class OpenUpload:
    """A multipart upload the store holds open (started, neither completed nor aborted)."""

    key: str
    upload_id: str
    started: datetime


def staging_key(blob_id: str) -> str:
    return f"staging/{blob_id}"


def object_key(project_id: str, sha256: str) -> str:
    return f"objects/{project_id}/{sha256}"


def derived_key(project_id: str, sha256: str, name: str) -> str:
    return f"derived/{project_id}/{sha256}/{name}"


def check_key(key: str) -> str:
    # SECURITY: keys come from the functions above; anything else is a programming error
    # and must never reach the file system or the bucket.
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"not a store key: {key!r}")
    return key


def safe_content_type(media_type: str) -> str:
    base = media_type.split(";", 1)[0].strip().lower()
    return "application/octet-stream" if base in ACTIVE_TYPES or not base else media_type


def content_disposition(filename: str, *, inline: bool) -> str:
    from django.utils.http import content_disposition_header

    return content_disposition_header(not inline, filename) or "attachment"


class ArtifactStore(Protocol):
    name: str

    def check(self) -> None:
        """Raise if the store cannot be reached or written."""

    def put_url(self, key: str, *, size: int, expires: int) -> str: ...
    def multipart_create(self, key: str) -> str: ...
    def part_url(self, key: str, *, upload_id: str, number: int, size: int | None, expires: int) -> str:
        """A presigned PUT of one part; ``size`` None leaves the length unsigned (a client that
        does not say its part sizes: the MLflow client's multipart upload)."""
        ...

    def multipart_parts(self, key: str, *, upload_id: str) -> list[Part]: ...
    def multipart_complete(self, key: str, *, upload_id: str, parts: list[Part]) -> None: ...
    def multipart_abort(self, key: str, *, upload_id: str) -> None: ...
    def open_uploads(self, *, started_before: datetime) -> list[OpenUpload]:
        """Multipart uploads under ``staging/`` started before the time and still open."""

    def staged_keys(self, *, modified_before: datetime) -> list[str]:
        """``staging/…`` objects last written before the time."""

    def size_of(self, key: str) -> int | None: ...
    def promote(self, source: str, target: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None: ...
    def read_bytes(self, key: str, *, limit: int) -> bytes | None: ...
    def local_copy(self, key: str) -> Any: ...
    def get_url(self, key: str, *, filename: str, media_type: str, inline: bool, expires: int) -> str: ...
    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        """(key, size) of every object under ``prefix`` (``objects/``, ``derived/``, ``staging/``)."""
        ...

    def put_file(self, key: str, path: Path) -> None:
        """Store the file at ``path`` under ``key`` (streamed; the backup restore uses it)."""
        ...


def _sign(payload: dict[str, Any]) -> str:
    return signing.dumps(payload, salt=STORE_SALT, compress=True)


def read_token(token: str, *, op: str) -> dict[str, Any]:
    """The payload of a local-store URL token; ``signing.BadSignature`` when it is forged,
    altered, expired or meant for another operation."""
    payload = signing.loads(token, salt=STORE_SALT)
    if not isinstance(payload, dict) or payload.get("op") != op:
        raise signing.BadSignature("wrong operation")
    expires_at = payload.get("exp")
    if not isinstance(expires_at, int) or time.time() > expires_at:
        raise signing.SignatureExpired("expired")
    check_key(str(payload.get("k", "")))
    return payload


class LocalStore:
    """A directory. Uploads and downloads go through this server's ``/-/store/`` view."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _parts_dir(self, upload_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
            raise ValueError("not an upload id")
        return self.root / "multipart" / upload_id

    def check(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        probe = self.root / ".ready"
        probe.write_bytes(b"ok")

    def _url(self, payload: dict[str, Any], expires: int) -> str:
        payload["exp"] = int(time.time()) + expires
        # The token rides in the query string: Django logs the path of failed requests,
        # never the query (security.md class 10: no presigned URL in any log).
        return f"{settings.PUBLIC_URL}/-/store/?{urlencode({'t': _sign(payload)})}"

    def put_url(self, key: str, *, size: int, expires: int) -> str:
        return self._url({"op": "put", "k": check_key(key), "s": size}, expires)

    def multipart_create(self, key: str) -> str:
        upload_id = new_id()
        self._parts_dir(upload_id).mkdir(parents=True, exist_ok=True)
        return upload_id

    def part_url(self, key: str, *, upload_id: str, number: int, size: int | None, expires: int) -> str:
        if size is None:
            raise ValueError("the local store signs every part with its size")
        return self._url({"op": "put", "k": check_key(key), "u": upload_id, "n": number, "s": size}, expires)

    def multipart_parts(self, key: str, *, upload_id: str) -> list[Part]:
        folder = self._parts_dir(upload_id)
        if not folder.is_dir():
            return []
        parts = []
        for entry in folder.iterdir():
            if entry.name.isdigit():
                parts.append(Part(number=int(entry.name), size=entry.stat().st_size, etag=entry.name))
        return sorted(parts, key=lambda p: p.number)

    def multipart_complete(self, key: str, *, upload_id: str, parts: list[Part]) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = self._parts_dir(upload_id)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
            for part in parts:
                with open(folder / f"{part.number:05d}", "rb") as source:
                    shutil.copyfileobj(source, out, 1024 * 1024)
        os.replace(out.name, target)
        shutil.rmtree(folder, ignore_errors=True)

    def multipart_abort(self, key: str, *, upload_id: str) -> None:
        shutil.rmtree(self._parts_dir(upload_id), ignore_errors=True)

    def open_uploads(self, *, started_before: datetime) -> list[OpenUpload]:
        # A local upload's folder is named by its id alone; the staging key is not needed to abort it.
        folder = self.root / "multipart"
        if not folder.is_dir():
            return []
        out = []
        for entry in folder.iterdir():
            started = datetime.fromtimestamp(entry.stat().st_mtime, tz=UTC)
            if re.fullmatch(r"[0-9a-f]{32}", entry.name) and started < started_before:
                out.append(OpenUpload(key="", upload_id=entry.name, started=started))
        return out

    def staged_keys(self, *, modified_before: datetime) -> list[str]:
        folder = self.root / "staging"
        if not folder.is_dir():
            return []
        cutoff = modified_before.timestamp()
        return [
            f"staging/{entry.name}"
            for entry in folder.iterdir()
            if entry.is_file() and not entry.name.startswith(".") and entry.stat().st_mtime < cutoff
        ]

    def write_upload(self, payload: dict[str, Any], stream: Any) -> int:
        """Write a PUT body (a file-like object) for a verified token; refuse more than the
        signed size. Returns the number of bytes written."""
        key, limit = str(payload["k"]), int(payload["s"])
        if payload.get("u") is not None:
            folder = self._parts_dir(str(payload["u"]))
            if not folder.is_dir():
                raise FileNotFoundError("no such upload")
            target = folder / f"{int(payload['n']):05d}"
        else:
            target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        written = 0
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False, prefix=".put-") as out:
            try:
                while True:
                    chunk = stream.read(1024 * 1024)
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > limit:
                        raise OverflowError("more bytes than the URL was signed for")
                    out.write(chunk)
            except BaseException:
                out.close()
                os.unlink(out.name)
                raise
        if written != limit:
            os.unlink(out.name)
            raise EOFError(f"{written} bytes arrived, the URL was signed for {limit}")
        os.replace(out.name, target)
        return written

    def size_of(self, key: str) -> int | None:
        try:
            return self.path(key).stat().st_size
        except FileNotFoundError:
            return None

    def promote(self, source: str, target: str) -> None:
        destination = self.path(target)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.path(source), destination)

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out:
            out.write(data)
        os.replace(out.name, target)

    def read_bytes(self, key: str, *, limit: int) -> bytes | None:
        try:
            with open(self.path(key), "rb") as handle:
                return handle.read(limit)
        except FileNotFoundError:
            return None

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        yield self.path(key)

    def get_url(self, key: str, *, filename: str, media_type: str, inline: bool, expires: int) -> str:
        return self._url({"op": "get", "k": check_key(key), "f": filename, "t": media_type, "i": inline}, expires)

    def put_file(self, key: str, path: Path) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as out, open(path, "rb") as source:
            shutil.copyfileobj(source, out, 1024 * 1024)
        os.replace(out.name, target)

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        folder = self.root / prefix.strip("/")
        if not folder.is_dir():
            return
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                yield path.relative_to(self.root).as_posix(), path.stat().st_size


class S3Store:
    """S3 or MinIO through boto3.

    Why boto3 and not the ``minio`` client: presigned *multipart* uploads need
    CreateMultipartUpload, ListParts, CompleteMultipartUpload and AbortMultipartUpload,
    which minio-py 7.2 keeps private (only presigned PUT/GET and ``get_presigned_url`` are
    public). boto3 has all of them public and signs with SigV4, which MinIO accepts; one
    client does everything here rather than two mixed. Presigned PUTs sign
    ``Content-Length``, so the store itself refuses a body of another size.
    """

    name = "s3"

    def __init__(self, bucket: str, prefix: str = "") -> None:
        import boto3
        from botocore.config import Config

        endpoint = settings.S3_ENDPOINT_URL or None
        if endpoint and not urlparse(endpoint).hostname:
            raise ImproperlyConfigured("S3_ENDPOINT_URL must be a URL such as http://minio:9000")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        config = Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5,
            read_timeout=60,
        )
        common: dict[str, Any] = {
            "aws_access_key_id": settings.S3_ACCESS_KEY or None,
            "aws_secret_access_key": settings.S3_SECRET_KEY or None,
            "region_name": settings.S3_REGION,
            "config": config,
        }
        self.client = boto3.client("s3", endpoint_url=endpoint, **common)
        # Clients may reach the store under another name than the server does (a proxy).
        public = settings.S3_PUBLIC_ENDPOINT_URL or endpoint
        self.signer = self.client if public == endpoint else boto3.client("s3", endpoint_url=public, **common)

    def _k(self, key: str) -> str:
        return self.prefix + check_key(key)

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def put_url(self, key: str, *, size: int, expires: int) -> str:
        params = {"Bucket": self.bucket, "Key": self._k(key), "ContentLength": size}
        return str(self.signer.generate_presigned_url("put_object", Params=params, ExpiresIn=expires))

    def multipart_create(self, key: str) -> str:
        answer = self.client.create_multipart_upload(
            Bucket=self.bucket, Key=self._k(key), ContentType="application/octet-stream"
        )
        return str(answer["UploadId"])

    def part_url(self, key: str, *, upload_id: str, number: int, size: int | None, expires: int) -> str:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": self._k(key),
            "UploadId": upload_id,
            "PartNumber": number,
        }
        if size is not None:
            params["ContentLength"] = size
        return str(self.signer.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires))

    def multipart_parts(self, key: str, *, upload_id: str) -> list[Part]:
        from botocore.exceptions import ClientError

        parts: list[Part] = []
        marker = 0
        while True:
            try:
                answer = self.client.list_parts(
                    Bucket=self.bucket, Key=self._k(key), UploadId=upload_id, PartNumberMarker=marker
                )
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") in {"NoSuchUpload", "404"}:
                    return []
                raise
            for item in answer.get("Parts", []):
                parts.append(Part(number=int(item["PartNumber"]), size=int(item["Size"]), etag=str(item["ETag"])))
            if not answer.get("IsTruncated"):
                return sorted(parts, key=lambda p: p.number)
            marker = int(answer["NextPartNumberMarker"])

    def multipart_complete(self, key: str, *, upload_id: str, parts: list[Part]) -> None:
        self.client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self._k(key),
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": p.number, "ETag": p.etag} for p in parts]},
        )

    def multipart_abort(self, key: str, *, upload_id: str) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._k(key), UploadId=upload_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"NoSuchUpload", "404"}:
                raise

    def open_uploads(self, *, started_before: datetime) -> list[OpenUpload]:
        prefix = self._k("staging/x")[: -len("x")]
        out: list[OpenUpload] = []
        for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Uploads", []):
                started = item["Initiated"]
                if started < started_before:
                    key = str(item["Key"])[len(self.prefix) :]
                    out.append(OpenUpload(key=key, upload_id=str(item["UploadId"]), started=started))
        return out

    def staged_keys(self, *, modified_before: datetime) -> list[str]:
        prefix = self._k("staging/x")[: -len("x")]
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                if item["LastModified"] < modified_before:
                    out.append(str(item["Key"])[len(self.prefix) :])
        return out

    def size_of(self, key: str) -> int | None:
        from botocore.exceptions import ClientError

        try:
            return int(self.client.head_object(Bucket=self.bucket, Key=self._k(key))["ContentLength"])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def promote(self, source: str, target: str) -> None:
        # A server-side copy (multipart copy above 8 MiB): the bytes stay in the store.
        self.client.copy(
            {"Bucket": self.bucket, "Key": self._k(source)},
            self.bucket,
            self._k(target),
            ExtraArgs={"ContentType": "application/octet-stream"},
        )
        self.delete(source)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self._k(key))

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._k(key), Body=data, ContentType=content_type)

    def read_bytes(self, key: str, *, limit: int) -> bytes | None:
        from botocore.exceptions import ClientError

        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._k(key), Range=f"bytes=0-{limit - 1}")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise
        return bytes(answer["Body"].read(limit))

    @contextmanager
    def local_copy(self, key: str) -> Iterator[Path]:
        """Stream the object into a temporary file (workers only; deleted afterwards)."""
        with tempfile.TemporaryDirectory(prefix="assay-object-") as folder:
            path = Path(folder) / "object"
            self.client.download_file(self.bucket, self._k(key), str(path))
            yield path

    def get_url(self, key: str, *, filename: str, media_type: str, inline: bool, expires: int) -> str:
        params = {
            "Bucket": self.bucket,
            "Key": self._k(key),
            "ResponseContentType": safe_content_type(media_type) if not inline else media_type,
            "ResponseContentDisposition": content_disposition(filename, inline=inline),
        }
        return str(self.signer.generate_presigned_url("get_object", Params=params, ExpiresIn=expires))

    def put_file(self, key: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self._k(key))

    def keys(self, prefix: str) -> Iterator[tuple[str, int]]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix.strip("/") + "/"):
            for item in page.get("Contents", []):
                yield str(item["Key"])[len(self.prefix) :], int(item["Size"])


def sha256_of(path: Path) -> tuple[str, int]:
    """(hex digest, size) of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while block := handle.read(1024 * 1024):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


@lru_cache(maxsize=1)
def artifact_store() -> ArtifactStore:
    target = settings.ASSAY_ARTIFACTS
    if target.startswith("s3://"):
        bucket, _, prefix = target[len("s3://") :].partition("/")
        if not bucket:
            raise ImproperlyConfigured("ASSAY_ARTIFACTS=s3://<bucket>[/prefix] needs a bucket name")
        return S3Store(bucket, prefix)
    return LocalStore(Path(target))
