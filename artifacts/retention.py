"""Retention policies: each project may keep runs and artifacts for a number of days.

A project's policy is two fields (``Project.run_retention_days``, ``artifact_retention_days``;
NULL keeps forever), set with ``project_retention_set`` (``manage.py retention --set``).
``retention_enforce`` (``manage.py retention [--dry-run]``) deletes:

* runs that are not running and ended (or, without an end time, started) before
  ``now - run_retention_days``: their metrics, params, tags, figures and artifact rows go
  with them (database cascades);
* artifacts created before ``now - artifact_retention_days``, in runs that stay;
* then the blobs those artifacts pointed at that nothing references any more (no other
  artifact, no model version), with their objects in the store (``objects/…`` and what
  processing derived from them).

Model versions are never deleted: a version keeps its blob (PROTECT) and its own copy of
the run's ingredients, so it stays complete when its run or artifact is gone. A running run
is never deleted, however old. A dry run computes the same lists and writes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from accounts.audit import audit_record
from accounts.models import Project, User
from artifacts import storage
from artifacts.models import Artifact, Blob
from core.errors import Invalid
from experiments.models import Run, RunStatus

MAX_RETENTION_DAYS = 36_500


@dataclass
class ProjectRetention:
    project: str
    runs: list[str] = field(default_factory=list)
    artifacts: list[str] = field(default_factory=list)
    blobs: list[str] = field(default_factory=list)
    bytes_freed: int = 0


def _days(value: object, *, field_name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_RETENTION_DAYS:
        raise Invalid(
            f"{field_name} must be a whole number of days from 1 to {MAX_RETENTION_DAYS}, or null.", field=field_name
        )
    return value


@transaction.atomic
def project_retention_set(*, project: Project, run_days: object, artifact_days: object, actor: User | None) -> Project:
    """Set a project's policy (None: keep forever); audited."""
    runs, artifacts = (
        _days(run_days, field_name="run_retention_days"),
        _days(artifact_days, field_name="artifact_retention_days"),
    )
    before = {"runs": project.run_retention_days, "artifacts": project.artifact_retention_days}
    project.run_retention_days, project.artifact_retention_days = runs, artifacts
    project.save(update_fields=["run_retention_days", "artifact_retention_days"])
    audit_record(
        actor=actor,
        action="project.retention",
        target=project,
        project=project,
        data={"from": before, "to": {"runs": runs, "artifacts": artifacts}},
    )
    return project


def _expired_runs(project: Project, now: datetime) -> list[str]:
    if project.run_retention_days is None:
        return []
    cutoff = now - timedelta(days=project.run_retention_days)
    return list(
        Run.objects.filter(project=project)
        .exclude(status=RunStatus.RUNNING)
        .annotate(ended=Coalesce("end_time", "start_time"))
        .filter(ended__lt=cutoff)
        .order_by("ended")
        .values_list("id", flat=True)
    )


def _expired_artifacts(project: Project, now: datetime, runs: list[str]) -> list[Artifact]:
    query = Q(run_id__in=runs)
    if project.artifact_retention_days is not None:
        query |= Q(created_at__lt=now - timedelta(days=project.artifact_retention_days))
    return list(Artifact.objects.filter(query, project=project).only("id", "blob_id", "size"))


def _unreferenced_blobs(blob_ids: set[str], artifact_ids: set[str]) -> list[Blob]:
    """Blobs among ``blob_ids`` that no artifact outside ``artifact_ids`` and no model version uses."""
    return list(
        Blob.objects.filter(pk__in=blob_ids)
        .exclude(artifacts__in=Artifact.objects.filter(blob_id__in=blob_ids).exclude(pk__in=artifact_ids))
        .exclude(model_versions__isnull=False)
        .distinct()
    )


def _delete_objects(blob: Blob) -> None:
    store = storage.artifact_store()
    store.delete(storage.object_key(blob.project_id, blob.sha256))
    if blob.thumbnail:
        store.delete(storage.derived_key(blob.project_id, blob.sha256, "thumbnail.png"))
    if blob.status in (Blob.Status.PENDING, Blob.Status.UPLOADED) and not blob.promoted:
        if blob.upload_id:
            store.multipart_abort(storage.staging_key(blob.id), upload_id=blob.upload_id)
        store.delete(storage.staging_key(blob.id))


def project_retention_enforce(*, project: Project, now: datetime | None = None, dry_run: bool) -> ProjectRetention:
    """Apply one project's policy (see the module docstring); with ``dry_run`` only report."""
    now = now or timezone.now()
    report = ProjectRetention(project=project.path)
    with transaction.atomic():
        report.runs = _expired_runs(project, now)
        artifacts = _expired_artifacts(project, now, report.runs)
        report.artifacts = sorted(a.id for a in artifacts)
        blobs = _unreferenced_blobs({a.blob_id for a in artifacts}, set(report.artifacts))
        report.blobs = sorted(b.id for b in blobs)
        report.bytes_freed = sum(b.size for b in blobs)
        if dry_run:
            return report
        Artifact.objects.filter(pk__in=report.artifacts).delete()
        Run.objects.filter(pk__in=report.runs).delete()
        Blob.objects.filter(pk__in=report.blobs).delete()
        if report.runs or report.artifacts:
            audit_record(
                actor=None,
                action="project.retention_enforced",
                target=project,
                project=project,
                data={"runs": len(report.runs), "artifacts": len(report.artifacts), "blobs": len(report.blobs)},
            )
    # The rows are gone (committed): only now the bytes. A failure here leaves orphans, which
    # `manage.py artifacts_check` lists; never a row without its object.
    for blob in blobs:
        _delete_objects(blob)
    return report


def retention_enforce(
    *, now: datetime | None = None, dry_run: bool, projects: list[Project] | None = None
) -> list[ProjectRetention]:
    """Apply every project's policy (or those given); projects without a policy are skipped."""
    if projects is None:
        projects = list(
            Project.objects.select_related("team")
            .filter(Q(run_retention_days__isnull=False) | Q(artifact_retention_days__isnull=False))
            .order_by("team__name", "name")
        )
    return [project_retention_enforce(project=p, now=now, dry_run=dry_run) for p in projects]
