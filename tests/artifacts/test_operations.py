"""Operations commands: ``artifacts_check`` (the store against the database) and
``retention`` (a project's policy, with a dry run), on the local store; the store check is
also run against an S3-protocol server."""

from __future__ import annotations

import json
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import AuditEvent, Project, User
from artifacts import storage
from artifacts.models import Artifact, Blob
from experiments.models import Experiment, MetricChunk, Run
from registry import services as registry_services
from tests.artifacts.conftest import log_file, sha
from tests.artifacts.test_s3 import fresh_s3, minio_client, moto_url, s3  # noqa: F401 - fixtures
from tests.factories import RunFactory
from tests.helpers import post_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("eager")]


def command(*args: str) -> tuple[int, str]:
    out = StringIO()
    try:
        call_command(*args, stdout=out)
    except CommandError as exc:
        return exc.returncode, out.getvalue()
    return 0, out.getvalue()


def logged(client: APIClient, run: Run, path: str, data: bytes, captured: Any) -> Artifact:
    with captured(execute=True):
        item = log_file(client, run, path, data)
    artifact = Artifact.objects.get(pk=item["artifact"]["id"])
    assert artifact.status == Artifact.Status.READY
    return artifact


# --- artifacts_check ------------------------------------------------------------------------------


@pytest.mark.usefixtures("store_root")
def test_a_consistent_store_passes(owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any) -> None:
    logged(owner_client, run, "a.txt", b"alpha\n", django_capture_on_commit_callbacks)
    logged(owner_client, run, "b.txt", b"beta\n", django_capture_on_commit_callbacks)

    code, out = command("artifacts_check")

    assert code == 0, out
    assert "2 blobs checked, 2 objects seen, 0 problems" in out


@pytest.mark.usefixtures("store_root")
def test_missing_corrupted_and_orphan_objects_are_reported(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    # given three verified artifacts, one deleted from the store, one overwritten with
    # bytes of the same size, and a file no row knows about
    gone = logged(owner_client, run, "gone.txt", b"gone\n", django_capture_on_commit_callbacks)
    bad = logged(owner_client, run, "bad.txt", b"good\n", django_capture_on_commit_callbacks)
    logged(owner_client, run, "fine.txt", b"fine\n", django_capture_on_commit_callbacks)
    store = storage.artifact_store()
    store.delete(storage.object_key(run.project_id, gone.sha256))
    store.put_bytes(storage.object_key(run.project_id, bad.sha256), b"evil\n", content_type="text/plain")
    orphan = storage.object_key(run.project_id, sha(b"nobody"))
    store.put_bytes(orphan, b"nobody", content_type="text/plain")

    # when the store is checked
    code, out = command("artifacts_check", "--json")

    # then each problem is named with its key and the artifacts it affects; the exit code is 1
    assert code == 1
    problems = {p["kind"]: p for p in json.loads(out)["problems"]}
    assert set(problems) == {"missing", "digest_mismatch", "orphan"}
    assert problems["missing"]["key"] == storage.object_key(run.project_id, gone.sha256)
    assert problems["missing"]["artifacts"] == [gone.id]
    assert problems["digest_mismatch"]["artifacts"] == [bad.id]
    assert problems["orphan"]["key"] == orphan
    # sizes only: the overwritten object of the same size is not noticed
    assert {p["kind"] for p in json.loads(command("artifacts_check", "--json", "--no-digests")[1])["problems"]} == {
        "missing",
        "orphan",
    }


@pytest.mark.usefixtures("store_root")
def test_orphans_are_deleted_only_when_asked(owner_client: APIClient, run: Run) -> None:
    store = storage.artifact_store()
    orphan = storage.derived_key(run.project_id, sha(b"x"), "thumbnail.png")
    store.put_bytes(orphan, b"png", content_type="image/png")

    assert command("artifacts_check")[0] == 1
    assert store.size_of(orphan) == 3
    code, out = command("artifacts_check", "--delete-orphans")
    assert code == 0, out
    assert store.size_of(orphan) is None
    assert command("artifacts_check")[0] == 0


def test_the_check_lists_and_reads_an_s3_bucket(
    fresh_s3: storage.S3Store,  # noqa: F811
    owner_client: APIClient,
    run: Run,
    django_capture_on_commit_callbacks: Any,
) -> None:
    from tests.artifacts.conftest import declare, file_entry

    data = b"weights in s3\n"
    with django_capture_on_commit_callbacks(execute=True):
        item = declare(owner_client, run, [file_entry("w.bin", data)]).json()["artifacts"][0]
        import httpx

        assert httpx.put(item["upload"]["url"], content=data, timeout=30).status_code == 200
        assert (
            owner_client.post(f"/api/v1/runs/{run.id}/artifacts/{item['artifact']['id']}/complete/").status_code == 200
        )
    orphan = storage.object_key(run.project_id, sha(b"stray"))
    fresh_s3.put_bytes(orphan, b"stray", content_type="application/octet-stream")

    code, out = command("artifacts_check", "--json")

    report = json.loads(out)
    assert code == 1
    assert report["blobs_checked"] == 1
    assert [(p["kind"], p["key"]) for p in report["problems"]] == [("orphan", orphan)]
    fresh_s3.delete(orphan)
    assert command("artifacts_check")[0] == 0


# --- retention ---------------------------------------------------------------------------------------


def aged(run: Run, days: int) -> Run:
    ended = timezone.now() - timedelta(days=days)
    Run.objects.filter(pk=run.pk).update(status="finished", start_time=ended - timedelta(hours=1), end_time=ended)
    return Run.objects.get(pk=run.pk)


@pytest.mark.usefixtures("store_root")
def test_retention_deletes_old_runs_and_their_objects_after_a_dry_run(
    owner_client: APIClient,
    project: Project,
    experiment: Experiment,
    owner: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given a policy of 30 days, an old run with metrics and an artifact, a recent run, and an
    # old run that is still running
    old = RunFactory.create(project=project, experiment=experiment, author=owner, name="old")
    recent = RunFactory.create(project=project, experiment=experiment, author=owner, name="recent")
    running = RunFactory.create(project=project, experiment=experiment, author=owner, name="running")
    body = {"batch_id": "b1", "metrics": [{"key": "loss", "step": 0, "value": 1.0, "timestamp": 1}]}
    assert post_json(owner_client, f"/api/v1/runs/{old.id}/log/", body).status_code == 200
    artifact = logged(owner_client, old, "old.txt", b"old bytes\n", django_capture_on_commit_callbacks)
    logged(owner_client, recent, "new.txt", b"new bytes\n", django_capture_on_commit_callbacks)
    aged(old, 40)
    aged(recent, 5)
    Run.objects.filter(pk=running.pk).update(start_time=timezone.now() - timedelta(days=90))
    assert command("retention", "--set", "acme/proj", "--runs", "30")[0] == 0
    key = storage.object_key(project.id, artifact.sha256)

    # when the dry run is asked, it lists the old run and writes nothing
    code, out = command("retention", "--dry-run")
    assert code == 0
    assert f"acme/proj\trun\t{old.id}" in out
    assert f"acme/proj\tartifact\t{artifact.id}" in out
    assert "would delete 1 runs, 1 artifacts, 1 stored objects (10 bytes)" in out
    assert Run.objects.filter(pk=old.pk).exists()
    assert storage.artifact_store().size_of(key) == 10

    # then the real run deletes the run, its metrics, artifact, blob and object
    code, out = command("retention")
    assert "deleted 1 runs, 1 artifacts, 1 stored objects" in out
    assert set(Run.objects.values_list("name", flat=True)) == {"recent", "running"}
    assert not MetricChunk.objects.filter(run_id=old.id).exists()
    assert not Blob.objects.filter(sha256=artifact.sha256).exists()
    assert storage.artifact_store().size_of(key) is None
    assert AuditEvent.objects.filter(action="project.retention_enforced").count() == 1
    assert command("artifacts_check")[0] == 0  # nothing missing, nothing orphaned


@pytest.mark.usefixtures("store_root")
def test_artifact_retention_keeps_the_run_and_a_registered_binary(
    owner_client: APIClient, project: Project, owner: User, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    # given a run whose two artifacts are old, one of them the binary of a model version
    weights = logged(owner_client, run, "model.pkl", b"weights\n", django_capture_on_commit_callbacks)
    notes = logged(owner_client, run, "notes.txt", b"notes\n", django_capture_on_commit_callbacks)
    model = registry_services.model_create(user=owner, project=project, name="fraud")
    version = registry_services.version_register(user=owner, repository=model, run=run, artifact="model.pkl")
    Artifact.objects.update(created_at=timezone.now() - timedelta(days=10))
    project.artifact_retention_days = 7
    project.save()

    # when retention runs
    command("retention", "--project", "acme/proj")

    # then both artifact rows are gone, the run stays, the version's blob and object stay
    assert not Artifact.objects.exists()
    assert Run.objects.filter(pk=run.pk).exists()
    assert storage.artifact_store().size_of(storage.object_key(project.id, weights.sha256)) == len(b"weights\n")
    assert storage.artifact_store().size_of(storage.object_key(project.id, notes.sha256)) is None
    version.refresh_from_db()
    assert version.blob_id == weights.blob_id
    assert owner_client.get(f"/api/v1/projects/acme/proj/models/fraud/versions/{version.number}/").status_code == 200


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "acme/proj", "--runs", "0"], "run_retention_days must be a whole number of days"),
        (["--set", "acme/proj", "--artifacts", "99999999"], "artifact_retention_days must be"),
        (["--set", "acme/proj", "--runs", "soon"], "days must be a whole number or 'none'"),
        (["--set", "acme/nosuch", "--runs", "5"], "No project 'acme/nosuch'"),
        (["--project", "nosuch"], "No project 'nosuch'"),
    ],
)
def test_bad_retention_input_is_refused_naming_it(project: Project, args: list[str], message: str) -> None:
    with pytest.raises((CommandError, SystemExit)) as caught:
        call_command("retention", *args, stdout=StringIO(), stderr=StringIO())
    if isinstance(caught.value, CommandError):
        assert message in str(caught.value)
    project.refresh_from_db()
    assert (project.run_retention_days, project.artifact_retention_days) == (None, None)


def test_a_policy_is_set_audited_and_cleared(project: Project) -> None:
    assert command("retention", "--set", "ACME/Proj", "--runs", "90", "--artifacts", "30")[0] == 0
    project.refresh_from_db()
    assert (project.run_retention_days, project.artifact_retention_days) == (90, 30)
    assert command("retention", "--set", "acme/proj", "--runs", "none")[0] == 0
    project.refresh_from_db()
    assert (project.run_retention_days, project.artifact_retention_days) == (None, 30)  # left out: kept
    assert command("retention", "--set", "acme/proj", "--artifacts", "forever")[0] == 0
    project.refresh_from_db()
    assert (project.run_retention_days, project.artifact_retention_days) == (None, None)
    assert AuditEvent.objects.filter(action="project.retention").count() == 3


@pytest.mark.usefixtures("store_root")
def test_beat_enforces_the_policies_daily(project: Project, experiment: Experiment, owner: User) -> None:
    from django.conf import settings

    from artifacts.tasks import retention_enforce_task

    old = aged(RunFactory.create(project=project, experiment=experiment, author=owner), 3)
    project.run_retention_days = 2
    project.save()

    entry = settings.CELERY_BEAT_SCHEDULE["retention-enforce"]
    assert entry["task"] == retention_enforce_task.name
    assert retention_enforce_task.delay().get() == {"projects": 1, "runs": 1, "artifacts": 0}
    assert not Run.objects.filter(pk=old.pk).exists()
