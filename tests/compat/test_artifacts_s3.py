"""The mlflow-artifacts proxy on the S3 path: the server keeps artifacts in an S3-protocol
store (moto's server on loopback, as tests/artifacts/test_s3.py), the real ``mlflow`` client
uploads through the proxy and downloads through the store's presigned URLs (the proxy
answers a redirect, and the client's token is not sent to the store)."""

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


def test_files_go_through_the_proxy_to_s3_and_come_back_from_presigned_urls(
    mlflow_server: MlflowServer, s3_store: Any
) -> None:
    payload = bytes(range(256)) * 1200  # 300 kB, written again by the script
    script = """
import os, tempfile, pathlib
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
folder = pathlib.Path(tempfile.mkdtemp())
(folder / "data").mkdir()
(folder / "data" / "weights.bin").write_bytes(bytes(range(256)) * 1200)
(folder / "data" / "notes.txt").write_text("hello")
(folder / "report.html").write_text("<script>alert(1)</script>")
with mlflow.start_run() as run:
    mlflow.log_artifacts(str(folder / "data"), "data")
    mlflow.log_artifact(str(folder / "report.html"))
out["run_id"] = run.info.run_id
out["root"] = sorted((f.path, f.is_dir) for f in client.list_artifacts(run.info.run_id))
out["data"] = sorted((f.path, f.file_size) for f in client.list_artifacts(run.info.run_id, "data"))
target = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="data", dst_path=tempfile.mkdtemp())
out["same"] = (pathlib.Path(target) / "weights.bin").read_bytes() == (folder / "data" / "weights.bin").read_bytes()
out["notes"] = (pathlib.Path(target) / "notes.txt").read_text()
repo = MlflowArtifactsRepository(run.info.artifact_uri)
repo.delete_artifacts("data/notes.txt")
out["after_delete"] = sorted(f.path for f in client.list_artifacts(run.info.run_id, "data"))
"""
    result = mlflow_client(mlflow_server, script)

    assert result["root"] == [["data", True], ["report.html", False]]
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
    mlflow_server: MlflowServer,
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
