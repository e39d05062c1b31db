"""The S3 backend against an S3-protocol server on loopback (moto's standalone server),
over real HTTP: presigned single and multipart PUTs, resume with the parts already stored,
promotion, processing, presigned downloads. The real ``minio`` client checks what the
store holds, independently of the adapter's boto3."""

from __future__ import annotations

import hashlib
import io
import socket
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from rest_framework.test import APIClient

from artifacts import services, storage
from artifacts.models import Artifact, Blob
from experiments.models import Run
from tests.artifacts.conftest import artifacts_path, complete, declare, file_entry
from tests.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager"), pytest.mark.xdist_group("moto")]

BUCKET = "assay-test"
PART = 5 * 1024 * 1024
OCTET = {"Content-Type": "application/octet-stream"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def minio_client(moto_url: str) -> Any:
    from minio import Minio

    return Minio(
        urlsplit(moto_url).netloc, access_key="testing", secret_key="testing", secure=False, region="us-east-1"
    )


@pytest.fixture
def s3(moto_url: str, minio_client: Any, settings: Any) -> Iterator[storage.S3Store]:
    if not minio_client.bucket_exists(BUCKET):
        minio_client.make_bucket(BUCKET)
    settings.ASSAY_ARTIFACTS = f"s3://{BUCKET}/assay"
    settings.S3_ENDPOINT_URL = moto_url
    settings.S3_ACCESS_KEY = "testing"
    settings.S3_SECRET_KEY = "testing"
    settings.ASSAY_MULTIPART_THRESHOLD = 6 * 1024 * 1024
    settings.ASSAY_UPLOAD_PART_BYTES = PART
    storage.artifact_store.cache_clear()
    store = storage.artifact_store()
    assert isinstance(store, storage.S3Store)
    yield store
    storage.artifact_store.cache_clear()


@pytest.fixture
def fresh_s3(s3: storage.S3Store, settings: Any) -> Iterator[storage.S3Store]:
    """The S3 store under a prefix of its own: moto keeps one bucket state per process, and
    other tests leave objects in it."""
    settings.ASSAY_ARTIFACTS = f"s3://{s3.bucket}/{uuid.uuid4().hex}"
    storage.artifact_store.cache_clear()
    store = storage.artifact_store()
    assert isinstance(store, storage.S3Store)
    yield store
    storage.artifact_store.cache_clear()


def put(url: str, data: bytes) -> httpx.Response:
    return httpx.put(url, content=data, headers=OCTET, timeout=30)


def test_the_readiness_check_reaches_the_bucket(s3: storage.S3Store) -> None:
    s3.check()


def test_a_presigned_single_put_goes_straight_to_the_store(
    s3: storage.S3Store, owner_client: APIClient, run: Run, minio_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    data = b"id,label\n1,cat\n2,dog\n"
    item = orjson.loads(declare(owner_client, run, [file_entry("data/labels.csv", data)]).content)["artifacts"][0]
    url = item["upload"]["url"]
    assert url.startswith(s3.client.meta.endpoint_url)
    assert "X-Amz-Signature=" in url

    assert put(url, data).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(owner_client, run, item["artifact"]["id"]).status_code == 200

    artifact = Artifact.objects.get()
    assert artifact.status == "ready"
    assert artifact.preview["columns"] == ["id", "label"]
    key = f"assay/objects/{run.project_id}/{hashlib.sha256(data).hexdigest()}"
    assert minio_client.get_object(BUCKET, key).read() == data
    # staging is gone: no URL a client ever held points at the verified object
    staged = [o.object_name for o in minio_client.list_objects(BUCKET, prefix="assay/staging/", recursive=True)]
    assert staged == []


def test_a_multipart_upload_resumes_and_completes_in_the_store(
    s3: storage.S3Store, owner_client: APIClient, run: Run, minio_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    data = bytes(range(256)) * (11 * 4096)  # 11 MiB → parts of 5, 5, 1 MiB
    first = orjson.loads(declare(owner_client, run, [file_entry("model/big.bin", data)]).content)["artifacts"][0]
    plan = first["upload"]
    assert [p["size"] for p in plan["parts"]] == [PART, PART, 1024 * 1024]
    assert put(plan["parts"][0]["url"], data[:PART]).status_code == 200  # then the client is interrupted

    assert_error(complete(owner_client, run, first["artifact"]["id"]), 400, code="upload_incomplete")
    again = orjson.loads(declare(owner_client, run, [file_entry("model/big.bin", data)]).content)["artifacts"][0]
    assert again["upload"]["parts_done"] == [1]
    for part in again["upload"]["parts"]:
        start = (part["number"] - 1) * PART
        assert put(part["url"], data[start : start + part["size"]]).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(owner_client, run, first["artifact"]["id"]).status_code == 200

    assert Artifact.objects.get().status == "ready"
    key = f"assay/objects/{run.project_id}/{hashlib.sha256(data).hexdigest()}"
    assert minio_client.stat_object(BUCKET, key).size == len(data)
    assert hashlib.sha256(minio_client.get_object(BUCKET, key).read()).hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_body_of_another_size_than_declared_is_not_accepted(
    s3: storage.S3Store, owner_client: APIClient, run: Run
) -> None:
    # Real S3 and MinIO refuse it at the PUT already (Content-Length is signed); moto does
    # not check signatures, which lets this test show the server's own check at complete.
    item = orjson.loads(declare(owner_client, run, [file_entry("a.bin", b"12345")]).content)["artifacts"][0]
    assert "content-length" in item["upload"]["url"].lower()
    assert put(item["upload"]["url"], b"123456").status_code == 200

    assert_error(complete(owner_client, run, item["artifact"]["id"]), 400, code="upload_incomplete")
    assert Artifact.objects.get().status == "pending"


def test_substituted_bytes_of_the_declared_size_fail_verification_in_the_worker(
    s3: storage.S3Store, owner_client: APIClient, run: Run, minio_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    declared = b"good weights"
    item = orjson.loads(declare(owner_client, run, [file_entry("w.bin", declared)]).content)["artifacts"][0]
    assert put(item["upload"]["url"], b"evil weights").status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        assert complete(owner_client, run, item["artifact"]["id"]).status_code == 200

    artifact = Artifact.objects.get()
    assert artifact.status == "failed"
    assert "sha256 mismatch" in artifact.reason
    assert list(minio_client.list_objects(BUCKET, prefix=f"assay/objects/{run.project_id}/", recursive=True)) == []


def test_a_presigned_download_is_an_attachment_and_html_is_not_served_as_html(
    s3: storage.S3Store, owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    data = b"<html><script>alert(1)</script></html>"
    item = orjson.loads(declare(owner_client, run, [file_entry("report.html", data)]).content)["artifacts"][0]
    assert put(item["upload"]["url"], data).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        complete(owner_client, run, item["artifact"]["id"])

    link = orjson.loads(owner_client.get(f"{artifacts_path(run)}{item['artifact']['id']}/download/").content)
    response = httpx.get(link["url"], timeout=30)

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-disposition"].startswith("attachment")
    assert response.headers["content-type"] == "application/octet-stream"


def test_an_image_thumbnail_is_stored_as_a_derived_object(
    s3: storage.S3Store, owner_client: APIClient, run: Run, minio_client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 128, 0)).save(out, format="PNG")
    data = out.getvalue()
    item = orjson.loads(declare(owner_client, run, [file_entry("plot.png", data)]).content)["artifacts"][0]
    assert put(item["upload"]["url"], data).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        complete(owner_client, run, item["artifact"]["id"])

    key = f"assay/derived/{run.project_id}/{hashlib.sha256(data).hexdigest()}/thumbnail.png"
    assert minio_client.stat_object(BUCKET, key).size > 0
    assert Blob.objects.get().thumbnail is True


def test_an_abandoned_multipart_upload_is_aborted_in_the_store(
    s3: storage.S3Store, owner_client: APIClient, run: Run, minio_client: Any
) -> None:
    from datetime import timedelta

    from django.utils import timezone

    data = b"q" * (7 * 1024 * 1024)
    item = orjson.loads(declare(owner_client, run, [file_entry("a.bin", data)]).content)["artifacts"][0]
    assert put(item["upload"]["parts"][0]["url"], data[:PART]).status_code == 200
    blob = Blob.objects.get()
    assert s3.multipart_parts(storage.staging_key(blob.id), upload_id=blob.upload_id) != []

    services.artifacts_sweep(now=timezone.now() + timedelta(days=2))

    assert s3.multipart_parts(storage.staging_key(blob.id), upload_id=blob.upload_id) == []
    assert Artifact.objects.get().status == "failed"


def _open_upload_ids(s3: storage.S3Store) -> set[str]:
    answer = s3.client.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{s3.prefix}staging/")
    return {str(u["UploadId"]) for u in answer.get("Uploads", [])}


def test_a_multipart_upload_of_a_rolled_back_declaration_is_aborted_by_the_sweep(
    s3: storage.S3Store, owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any, settings: Any
) -> None:
    import uuid
    from datetime import timedelta

    from django.utils import timezone

    # a prefix of its own: moto's state is per process, and other modules' uploads stay open in it
    settings.ASSAY_ARTIFACTS = f"s3://{BUCKET}/{uuid.uuid4().hex}"
    storage.artifact_store.cache_clear()
    store = storage.artifact_store()
    assert isinstance(store, storage.S3Store)
    s3 = store

    # given content the project holds (5 bytes), and a manifest whose first file starts a
    # multipart upload in the store before its second file is refused: the transaction
    # rolls back, no row knows the store's upload any more
    small = b"12345"
    item = orjson.loads(declare(owner_client, run, [file_entry("small.bin", small)]).content)["artifacts"][0]
    assert put(item["upload"]["url"], small).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        complete(owner_client, run, item["artifact"]["id"])
    big = b"b" * (7 * 1024 * 1024)
    lying = {"path": "lie.bin", "size": 6, "sha256": hashlib.sha256(small).hexdigest()}
    refused = declare(owner_client, run, [file_entry("big.bin", big), lying])
    assert_error(refused, 409, code="size_mismatch")
    assert not Blob.objects.filter(size=len(big)).exists()
    [orphan] = _open_upload_ids(s3)
    # and a live upload the sweep must leave alone
    live = orjson.loads(declare(owner_client, run, [file_entry("live.bin", big + b"x")]).content)["artifacts"][0]
    assert put(live["upload"]["parts"][0]["url"], big[:PART]).status_code == 200
    live_id = Blob.objects.get(size=len(big) + 1).upload_id
    assert _open_upload_ids(s3) == {orphan, live_id}

    # when the sweep runs after the expiry (moto dates every multipart upload 2010-11-10, so
    # the age rule itself is shown with the local store in test_api.py)
    # (the live upload's row was touched recently, its store-side upload is as old as the orphan)
    Blob.objects.filter(upload_id=live_id).update(updated_at=timezone.now() + timedelta(days=2))
    old = services.artifacts_sweep(now=timezone.now() + timedelta(days=1, hours=1))

    # then only the orphan is gone, in the store
    assert old["orphans"] == 1
    assert _open_upload_ids(s3) == {live_id}
