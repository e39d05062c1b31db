"""Artifact fixtures: a fresh local store per test, Celery in eager mode (the real-worker
tests live in test_worker.py), and helpers that speak the upload protocol through the
test client, as the SDK does over HTTP."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from rest_framework.test import APIClient

from artifacts import storage
from config.celery import app as celery_app
from experiments.models import Run
from tests.helpers import post_json


@pytest.fixture
def store_root(tmp_path: Path, settings: Any) -> Iterator[Path]:
    root = tmp_path / "artifacts"
    settings.ASSAY_ARTIFACTS = str(root)
    storage.artifact_store.cache_clear()
    yield root
    storage.artifact_store.cache_clear()


@pytest.fixture
def eager() -> Iterator[None]:
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def artifacts_path(run: Run | str) -> str:
    return f"/api/v1/runs/{run if isinstance(run, str) else run.id}/artifacts/"


def declare(client: APIClient, run: Run, files: list[dict[str, Any]], kind: str = "file") -> Any:
    return post_json(client, artifacts_path(run), {"kind": kind, "files": files})


def file_entry(path: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"path": path, "size": len(data), "sha256": sha(data), **extra}


def local_put(client: APIClient, url: str, data: bytes) -> Any:
    """PUT to a local-store URL (absolute, on PUBLIC_URL) through the test client."""
    parts = urlsplit(url)
    return client.generic("PUT", f"{parts.path}?{parts.query}", data, content_type="application/octet-stream")  # type: ignore[arg-type]


def local_get(client: APIClient, url: str) -> Any:
    parts = urlsplit(url)
    return client.get(f"{parts.path}?{parts.query}")


def upload(client: APIClient, answer: dict[str, Any], data: bytes) -> None:
    """Send the bytes an upload answer asks for (one PUT or every listed part)."""
    upload = answer["upload"]
    if upload is None:
        return
    if upload.get("multipart"):
        for part in upload["parts"]:
            start = (part["number"] - 1) * upload["part_size"]
            response = local_put(APIClient(), part["url"], data[start : start + part["size"]])
            assert response.status_code == 200, response.content
    elif upload["url"]:
        response = local_put(APIClient(), upload["url"], data)
        assert response.status_code == 200, response.content


def complete(client: APIClient, run: Run, artifact_id: str) -> Any:
    return client.post(f"{artifacts_path(run)}{artifact_id}/complete/")


def log_file(client: APIClient, run: Run, path: str, data: bytes, kind: str = "file", captured: Any = None) -> Any:
    """Declare, upload and complete one file; return the list entry afterwards."""
    answer = declare(client, run, [file_entry(path, data)], kind)
    assert answer.status_code == 201, answer.content
    item = orjson.loads(answer.content)["artifacts"][0]
    upload(client, item, data)
    done = complete(client, run, item["artifact"]["id"])
    assert done.status_code == 200, done.content
    return item
