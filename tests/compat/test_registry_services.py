"""The registry and artifact services the MLflow API needed and Assay lacked: rename, delete
(models, versions, aliases) and storing bytes the server received itself. The rules stay the
registry's: rights from the one policy, protected aliases refused, history kept."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from accounts.models import AuditEvent, Project, User
from artifacts import services as artifact_services
from artifacts import storage
from artifacts.models import Artifact, Blob
from config.celery import app as celery_app
from core.errors import Conflict, Forbidden, NotFound
from experiments.models import Run
from registry import services
from registry.models import Alias, ModelRepository, ModelVersion
from tests.registry import conftest as registry_fixtures
from tests.registry.conftest import MakeArtifact, MakeRun

# The registry's fixtures, used here as there.
make_run = registry_fixtures.make_run
make_artifact = registry_fixtures.make_artifact
maintainer = registry_fixtures.maintainer


@pytest.fixture
def fraud(project: Project, owner: User) -> ModelRepository:
    return services.model_create(user=owner, project=project, name="fraud")


@pytest.fixture
def v1(fraud: ModelRepository, owner: User, make_run: MakeRun, make_artifact: MakeArtifact) -> ModelVersion:
    run = make_run()
    make_artifact(run, "model.pkl", b"weights-1")
    return services.version_register(user=owner, repository=fraud, run=run, artifact="model.pkl")


# --- rename --------------------------------------------------------------------------------------------


def test_rename_keeps_versions_and_is_audited(fraud: ModelRepository, v1: ModelVersion, owner: User) -> None:
    renamed = services.model_rename(user=owner, repository=fraud, new_name="Fraud-Detector")

    assert renamed.name == "fraud-detector"
    assert ModelVersion.objects.get(pk=v1.pk).repository_id == fraud.id
    event = AuditEvent.objects.filter(action="model.rename").get()
    assert event.data == {"before": "fraud", "after": "fraud-detector"}


def test_rename_to_a_taken_name_is_refused_naming_the_field(
    project: Project, fraud: ModelRepository, owner: User
) -> None:
    services.model_create(user=owner, project=project, name="churn")
    with pytest.raises(Conflict) as refused:
        services.model_rename(user=owner, repository=fraud, new_name="CHURN")
    assert (refused.value.code, refused.value.field) == ("model_exists", "new_name")
    assert ModelRepository.objects.get(pk=fraud.pk).name == "fraud"


def test_a_writer_may_not_rename(fraud: ModelRepository, member: User) -> None:
    with pytest.raises(Forbidden):
        services.model_rename(user=member, repository=fraud, new_name="other")


# --- aliases ---------------------------------------------------------------------------------------------


def test_alias_delete_removes_an_unprotected_alias(fraud: ModelRepository, v1: ModelVersion, owner: User) -> None:
    services.alias_move_direct(user=owner, repository=fraud, alias="staging", version=1)

    services.alias_delete(user=owner, repository=fraud, alias="Staging")

    assert not Alias.objects.filter(repository=fraud).exists()
    assert AuditEvent.objects.filter(action="model.alias.delete", data__alias="staging", data__from=1).exists()


def test_alias_delete_refuses_a_protected_alias_even_for_an_admin(
    fraud: ModelRepository, v1: ModelVersion, owner: User
) -> None:
    services.alias_move(alias="production", version=v1, user=owner, merge=_merge(v1, "production"))

    with pytest.raises(Conflict) as refused:
        services.alias_delete(user=owner, repository=fraud, alias="production")

    assert refused.value.code == "protected_alias"
    assert Alias.objects.filter(repository=fraud, name="production").exists()


def test_alias_delete_needs_the_move_right_and_an_existing_alias(
    fraud: ModelRepository, v1: ModelVersion, owner: User, member: User
) -> None:
    services.alias_move_direct(user=owner, repository=fraud, alias="staging", version=1)
    with pytest.raises(Forbidden):
        services.alias_delete(user=member, repository=fraud, alias="staging")
    with pytest.raises(NotFound):
        services.alias_delete(user=owner, repository=fraud, alias="canary")


def _merge(version: ModelVersion, alias: str) -> services.ReviewMerge:
    # Stands for a merged review request (see ReviewMerge's docstring: tests may build one).
    return services.ReviewMerge(review_request_id="r" * 32, number=1, alias=alias, version_id=version.id)


# --- deleting versions and models ----------------------------------------------------------------------


def test_a_version_nothing_refers_to_is_deleted(fraud: ModelRepository, v1: ModelVersion, owner: User) -> None:
    services.version_delete(user=owner, version=v1)

    assert not ModelVersion.objects.filter(pk=v1.pk).exists()
    assert AuditEvent.objects.filter(action="model.version.delete", target_label="fraud v1").exists()


def test_an_aliased_version_and_one_in_the_alias_log_stay(
    fraud: ModelRepository, v1: ModelVersion, owner: User, make_run: MakeRun, make_artifact: MakeArtifact
) -> None:
    run = make_run(params={"seed": "2"})
    make_artifact(run, "model.pkl", b"weights-2")
    v2 = services.version_register(user=owner, repository=fraud, run=run, artifact="model.pkl")
    services.alias_move_direct(user=owner, repository=fraud, alias="staging", version=1)

    with pytest.raises(Conflict) as aliased:
        services.version_delete(user=owner, version=v1)
    assert aliased.value.code == "version_aliased"

    services.alias_move_direct(user=owner, repository=fraud, alias="staging", version=2)
    with pytest.raises(Conflict) as logged:
        services.version_delete(user=owner, version=v1)  # the alias log names it as "from"
    assert logged.value.code == "version_in_history"
    assert ModelVersion.objects.filter(pk__in=[v1.pk, v2.pk]).count() == 2


def test_deleting_needs_the_admin_role(fraud: ModelRepository, v1: ModelVersion, maintainer: User) -> None:
    with pytest.raises(Forbidden):
        services.version_delete(user=maintainer, version=v1)
    with pytest.raises(Forbidden):
        services.model_delete(user=maintainer, repository=fraud)


def test_a_model_holding_a_protected_alias_is_not_deleted(
    fraud: ModelRepository, v1: ModelVersion, owner: User
) -> None:
    services.alias_move(alias="production", version=v1, user=owner, merge=_merge(v1, "production"))

    with pytest.raises(Conflict) as refused:
        services.model_delete(user=owner, repository=fraud)

    assert refused.value.code == "protected_alias"
    assert ModelRepository.objects.filter(pk=fraud.pk).exists()


def test_a_model_without_history_is_deleted_with_its_versions(
    fraud: ModelRepository, v1: ModelVersion, owner: User
) -> None:
    services.model_delete(user=owner, repository=fraud)

    assert not ModelRepository.objects.filter(pk=fraud.pk).exists()
    assert not ModelVersion.objects.filter(pk=v1.pk).exists()
    assert Blob.objects.filter(pk=v1.blob_id).exists()  # the run's artifact still holds the bytes


# --- bytes the server received -------------------------------------------------------------------------


@pytest.fixture
def store_root(tmp_path: Path, settings: Any) -> Iterator[Path]:
    root = tmp_path / "artifacts"
    settings.ASSAY_ARTIFACTS = str(root)
    storage.artifact_store.cache_clear()
    yield root
    storage.artifact_store.cache_clear()


def _received(run: Run, path: str, data: bytes, tmp_path: Path) -> Artifact:
    local = tmp_path / "upload"
    local.write_bytes(data)
    return artifact_services.artifact_store_received(
        run=run,
        path=path,
        local_file=local,
        sha256=hashlib.sha256(data).hexdigest(),
        size=len(data),
        media_type="application/octet-stream",
    )


def test_received_bytes_are_stored_by_content_and_queued_for_processing(
    run: Run, store_root: Path, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    data = b"model bytes"
    with django_capture_on_commit_callbacks() as queued:
        artifact = _received(run, "model/model.pkl", data, tmp_path)

    digest = hashlib.sha256(data).hexdigest()
    assert (store_root / "objects" / run.project_id / digest).read_bytes() == data
    assert artifact.status == Artifact.Status.UPLOADED
    assert (artifact.blob.status, artifact.blob.promoted) == (Blob.Status.VERIFIED, True)
    assert len(queued) == 1  # the same processing task as an SDK upload


def test_the_same_path_takes_the_same_content_again_but_no_other(run: Run, store_root: Path, tmp_path: Path) -> None:
    first = _received(run, "model.pkl", b"one", tmp_path)
    again = _received(run, "model.pkl", b"one", tmp_path)
    assert again.pk == first.pk

    with pytest.raises(Conflict) as refused:
        _received(run, "model.pkl", b"two", tmp_path)
    assert (refused.value.code, refused.value.field) == ("artifact_exists", "path")


def test_received_bytes_complete_a_pending_sdk_upload_of_the_same_content(
    run: Run, store_root: Path, tmp_path: Path
) -> None:
    data = b"shared"
    digest = hashlib.sha256(data).hexdigest()
    pending = Blob.objects.create(project=run.project, sha256=digest, size=len(data), status=Blob.Status.PENDING)

    artifact = _received(run, "w.bin", data, tmp_path)

    pending.refresh_from_db()
    assert artifact.blob_id == pending.id
    assert pending.status == Blob.Status.VERIFIED


def test_deleting_a_folder_keeps_a_registered_versions_binary(
    fraud: ModelRepository, owner: User, run: Run, store_root: Path, tmp_path: Path
) -> None:
    _received(run, "model/model.pkl", b"w", tmp_path)
    _received(run, "model/MLmodel", b"m", tmp_path)
    _received(run, "modelx", b"x", tmp_path)
    version = services.version_register(user=owner, repository=fraud, run=run, artifact="model/model.pkl")

    assert artifact_services.artifacts_delete(run=run, path="model") == 2

    assert list(Artifact.objects.filter(run=run).values_list("path", flat=True)) == ["modelx"]
    version.refresh_from_db()
    assert version.blob_id is not None
    assert version.binary_path == "model/model.pkl"


def test_received_bytes_get_the_same_scan_as_an_sdk_upload(
    run: Run, store_root: Path, tmp_path: Path, django_capture_on_commit_callbacks: Any
) -> None:
    # given a pickle that would run os.system when loaded (written by hand, never loaded)
    data = b"cos\nsystem\n(S'id'\ntR."
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        # when the proxy stores it and the queued processing runs
        with django_capture_on_commit_callbacks(execute=True):
            artifact = _received(run, "model/model.pkl", data, tmp_path)
    finally:
        celery_app.conf.task_always_eager = eager

    # then the worker's processing scanned it like any artifact
    artifact.refresh_from_db()
    assert artifact.status == Artifact.Status.READY
    assert artifact.findings["unsafe"] is True
    assert "os.system" in artifact.findings["unsafe_globals"]
