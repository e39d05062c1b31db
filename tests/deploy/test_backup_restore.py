"""Backup and restore as docs/deploy.md tells it: ``deploy/backup.sh`` (pg_dump + a copy of
the bucket), wipe the database and the bucket, ``deploy/restore.sh``, and the API answers
with the same runs, metric histories and artifact bytes. The store is an S3-protocol server
(moto's, over HTTP); the database is the test database itself, dropped and created again."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import psycopg
import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from artifacts import storage
from experiments.models import Run
from tests.artifacts.conftest import declare, file_entry
from tests.artifacts.test_s3 import BUCKET, fresh_s3, minio_client, moto_url, s3  # noqa: F401 - fixtures
from tests.helpers import post_json

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("eager"),
    pytest.mark.xdist_group("moto"),
]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def eager() -> Any:
    from config.celery import app as celery_app

    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


def database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (f":{quote(s['PASSWORD'], safe='')}" if s["PASSWORD"] else "")
    return f"postgresql://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def release_connections() -> None:
    connections.close_all()
    for conn in connections.all():
        if hasattr(conn, "close_pool"):
            conn.close_pool()


def script(name: str, folder: Path, store: storage.S3Store, moto: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": database_url(),
            "ASSAY_ARTIFACTS": f"s3://{store.bucket}/{store.prefix.rstrip('/')}",
            "S3_ENDPOINT_URL": moto,
            "S3_ACCESS_KEY": "testing",
            "S3_SECRET_KEY": "testing",
            "PYTHON": sys.executable,
        }
    )
    done = subprocess.run([str(ROOT / "deploy" / name), str(folder)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def snapshot(client: APIClient, run_ids: list[str]) -> dict[str, Any]:
    """What the API says about the runs: records, metric histories, artifacts and their bytes."""
    volatile = {"updated_at"}
    out: dict[str, Any] = {"runs": client.get("/api/v1/runs/", {"project": "acme/proj"}).json()}
    for run_id in run_ids:
        out[f"{run_id}/loss"] = client.get(f"/api/v1/runs/{run_id}/metrics/loss/", {"limit": 10_000}).json()
        artifacts = client.get(f"/api/v1/runs/{run_id}/artifacts/").json()
        out[f"{run_id}/artifacts"] = [{k: v for k, v in a.items() if k not in volatile} for a in artifacts]
        for artifact in artifacts:
            url = client.get(f"/api/v1/runs/{run_id}/artifacts/{artifact['id']}/download/").json()["url"]
            out[f"{run_id}/{artifact['path']}"] = httpx.get(url, timeout=30).content
    return out


def test_backup_wipe_restore_gives_back_the_same_runs_metrics_and_artifacts(
    fresh_s3: storage.S3Store,  # noqa: F811
    moto_url: str,  # noqa: F811
    owner_client: APIClient,
    run: Run,
    tmp_path: Path,
) -> None:
    # given a run with 200 points and two uploaded, processed artifacts in the bucket
    body = {
        "batch_id": "b1",
        "metrics": [{"key": "loss", "step": s, "value": 1 / (1 + s), "timestamp": s} for s in range(200)],
    }
    assert post_json(owner_client, f"/api/v1/runs/{run.id}/log/", body).status_code == 200
    for path, data in [("model.bin", os.urandom(3000)), ("notes.txt", b"a note\n")]:
        item = declare(owner_client, run, [file_entry(path, data)]).json()["artifacts"][0]
        assert httpx.put(item["upload"]["url"], content=data, timeout=30).status_code == 200
        assert (
            owner_client.post(f"/api/v1/runs/{run.id}/artifacts/{item['artifact']['id']}/complete/").status_code == 200
        )
    before = snapshot(owner_client, [run.id])
    assert [a["status"] for a in before[f"{run.id}/artifacts"]] == ["ready", "ready"]
    assert before[f"{run.id}/loss"]["total"] == 200
    token = owner_client._credentials["HTTP_AUTHORIZATION"]  # type: ignore[attr-defined]

    # when it is backed up ...
    backup = tmp_path / "backup"
    out = script("backup.sh", backup, fresh_s3, moto_url)
    assert "backed up 2 objects" in out
    assert (backup / "assay.dump").stat().st_size > 0

    # ... the database and the bucket are wiped ...
    release_connections()
    name = connection.settings_dict["NAME"]
    admin = database_url().rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    keys = [key for prefix in ("objects", "derived") for key, _ in fresh_s3.keys(prefix)]
    for key in keys:
        fresh_s3.delete(key)
    assert len(keys) == 2
    assert not list(fresh_s3.keys("objects"))

    # ... and restored
    out = script("restore.sh", backup, fresh_s3, moto_url)
    assert "restored 2 objects" in out

    # then the API answers as before, with the same token
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=token)
    assert snapshot(client, [run.id]) == before


def test_restore_refuses_a_folder_that_is_not_a_backup(tmp_path: Path) -> None:
    done = subprocess.run([str(ROOT / "deploy" / "restore.sh"), str(tmp_path)], capture_output=True, text=True)

    assert done.returncode == 2
    assert "not a backup folder" in done.stderr
