"""The mlflow-artifacts proxy on the S3 path: the server keeps artifacts in an S3-protocol
store (moto's server on loopback, as tests/artifacts/test_s3.py), the real ``mlflow`` client
uploads through the proxy, or for a large file in parts straight to the store with presigned
part URLs (``mpu/create|complete|abort``, announced by ``server-info``), and downloads through
the store's presigned URLs (the proxy answers a redirect; the client's token is not sent to
the store)."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from artifacts.models import Artifact, Blob
from tests.artifacts.test_s3 import moto_url  # noqa: F401 - the moto server fixture
from tests.compat.conftest import MlflowServer, mlflow_client

pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.xdist_group("moto")]

BUCKET = "assay-mlflow"
PREFIX = f"mlflow-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module", autouse=True)
def s3_store(moto_url: str) -> Iterator[Any]:  # noqa: F811
    """The server's environment points its artifact store at the bucket (set before the
    module's server starts: autouse fixtures come first)."""
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=BUCKET)
    values = {
        "ASSAY_ARTIFACTS": f"s3://{BUCKET}/{PREFIX}",
        "S3_ENDPOINT_URL": moto_url,
        "S3_ACCESS_KEY": "testing",
        "S3_SECRET_KEY": "testing",
    }
    before = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    yield s3
    for key, value in before.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


PART = 5 * 1024 * 1024  # S3's smallest part
BIG = bytes(range(251)) * 50_000  # 12.55 MB: three parts of at most 5 MiB
SMALL = bytes(range(256)) * 1200  # 300 kB: one PUT through the proxy


@pytest.fixture(scope="module")
def uploaded(mlflow_server: MlflowServer) -> dict[str, Any]:
    """One script: small files through the proxy, a large one in parts straight to S3, then
    listed, downloaded and one deleted."""
    script = """
import os, tempfile, pathlib
from mlflow.store.artifact import http_artifact_repo
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
folder = pathlib.Path(tempfile.mkdtemp())
(folder / "data").mkdir()
(folder / "data" / "weights.bin").write_bytes(bytes(range(256)) * 1200)
(folder / "data" / "notes.txt").write_text("hello")
(folder / "report.html").write_text("<script>alert(1)</script>")
big = folder / "big.bin"
big.write_bytes(bytes(range(251)) * 50_000)
parts = []
original = http_artifact_repo.HttpArtifactRepository._upload_part
def counted(credential, local_file, size, start_byte):
    parts.append(credential.url.split("?")[0])
    return original(credential, local_file, size, start_byte)
http_artifact_repo.HttpArtifactRepository._upload_part = staticmethod(counted)
with mlflow.start_run() as run:
    mlflow.log_artifacts(str(folder / "data"), "data")
    mlflow.log_artifact(str(folder / "report.html"))
    mlflow.log_artifact(str(big), "weights")
out["run_id"] = run.info.run_id
out["parts"] = parts
out["root"] = sorted((f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id))
out["data"] = sorted((f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "data"))
target = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="data", dst_path=tempfile.mkdtemp())
out["same"] = (pathlib.Path(target) / "weights.bin").read_bytes() == (folder / "data" / "weights.bin").read_bytes()
out["notes"] = (pathlib.Path(target) / "notes.txt").read_text()
target = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="weights/big.bin",
                                             dst_path=tempfile.mkdtemp())
out["big_same"] = pathlib.Path(target).read_bytes() == big.read_bytes()
repo = MlflowArtifactsRepository(run.info.artifact_uri)
repo.delete_artifacts("data/notes.txt")
out["after_delete"] = sorted(f.path for f in client.list_artifacts(run.info.run_id, "data"))
"""
    env = {"MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(PART), "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(PART)}
    return mlflow_client(mlflow_server, script, env=env)


def test_files_go_through_the_proxy_to_s3_and_come_back_from_presigned_urls(
    uploaded: dict[str, Any], s3_store: Any
) -> None:
    result = uploaded
    payload = SMALL

    assert result["root"] == [["data", True], ["report.html", False], ["weights", True]]
    assert result["data"] == [["data/notes.txt", 5], ["data/weights.bin", len(payload)]]
    assert result["same"] is True
    assert result["notes"] == "hello"
    assert result["after_delete"] == ["data/weights.bin"]
    # the bytes are in the bucket under their content key, the run's artifacts point at them
    weights = Artifact.objects.select_related("blob").get(run_id=result["run_id"], path="data/weights.bin")
    digest = hashlib.sha256(payload).hexdigest()
    assert weights.sha256 == digest
    assert weights.blob.status == Blob.Status.VERIFIED
    stored = s3_store.get_object(Bucket=BUCKET, Key=f"{PREFIX}/objects/{weights.project_id}/{digest}")["Body"].read()
    assert stored == payload
    assert Artifact.objects.get(run_id=result["run_id"], path="report.html").media_type == "text/html"


def test_a_download_redirects_to_a_presigned_url_that_serves_html_as_an_attachment(
    mlflow_server: MlflowServer, uploaded: dict[str, Any]
) -> None:
    artifact = Artifact.objects.select_related("run").get(path="report.html")
    path = f"api/2.0/mlflow-artifacts/artifacts/{artifact.run.experiment_id}/{artifact.run_id}/artifacts/report.html"
    with mlflow_server.http() as http:
        answer = http.get(path)
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert "X-Amz-Signature=" in location
    assert mlflow_server.tokens["owner"] not in location
    import httpx

    fetched = httpx.get(location, timeout=30)
    assert fetched.status_code == 200
    assert fetched.headers["content-disposition"].startswith("attachment")
    assert fetched.text == "<script>alert(1)</script>"


def test_a_large_file_goes_to_s3_in_presigned_parts(
    mlflow_server: MlflowServer, uploaded: dict[str, Any], s3_store: Any
) -> None:
    with mlflow_server.http(None) as http:
        assert http.get("api/3.0/mlflow/server-info").json()["multipart_uploads_enabled"] is True
    assert len(uploaded["parts"]) == 3
    assert all(url.startswith(s3_store.meta.endpoint_url) for url in uploaded["parts"])  # straight to the store
    assert uploaded["big_same"] is True
    artifact = Artifact.objects.select_related("blob").get(run_id=uploaded["run_id"], path="weights/big.bin")
    assert (artifact.size, artifact.sha256) == (len(BIG), hashlib.sha256(BIG).hexdigest())
    assert artifact.blob.status == Blob.Status.VERIFIED
    staged = s3_store.list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/staging/").get("KeyCount", 0)
    assert staged == 0  # promoted to its content key
    assert s3_store.list_multipart_uploads(Bucket=BUCKET, Prefix=f"{PREFIX}/").get("Uploads", []) == []


def test_an_upload_id_of_another_path_completes_nothing(mlflow_server: MlflowServer, uploaded: dict[str, Any]) -> None:
    run = Artifact.objects.get(path="weights/big.bin").run
    base = f"api/2.0/mlflow-artifacts/mpu/{{}}/{run.experiment_id}/{run.id}/artifacts/"
    with mlflow_server.http() as http:
        upload = {"path": "/tmp/x/a.bin", "num_parts": 1}
        created = http.post(base.format("create") + "dir", json=upload).json()
        token = created["upload_id"]
        other_path = http.post(base.format("complete") + "dir", json={"path": "b.bin", "upload_id": token, "parts": []})
        forged = http.post(base.format("abort") + "dir", json={"path": "a.bin", "upload_id": token + "x"})
        bad_count = http.post(base.format("create") + "dir", json={"path": "c.bin", "num_parts": 0})
        traversal = http.post(base.format("create") + "dir", json={"path": "..", "num_parts": 1})
        aborted = http.post(base.format("abort") + "dir", json={"path": "C:\\x\\a.bin", "upload_id": token})
    assert len(created["credentials"]) == 1
    assert (other_path.status_code, other_path.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert (forged.status_code, forged.json()["error_code"]) == (404, "RESOURCE_DOES_NOT_EXIST")
    assert (bad_count.status_code, bad_count.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert (traversal.status_code, traversal.json()["error_code"]) == (400, "INVALID_PARAMETER_VALUE")
    assert aborted.status_code == 200, aborted.text
    assert not Artifact.objects.filter(path__startswith="dir/").exists()
