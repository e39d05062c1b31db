"""Files a run logs: content stored once per project (``Blob``) and the run's named files
(``Artifact``) that point at it.

The tables keep the names they had when these models lived in the experiments app
(``experiments_blob``, ``experiments_artifact``): the move was a state-only migration.
"""

from __future__ import annotations

from django.db import models

from accounts.models import Project, new_id
from experiments.models import Run


class Blob(models.Model):
    """Content stored once per project, keyed by its sha256 (uploading it again stores nothing).

    The object store holds it at ``objects/<project>/<sha256>`` once verified; until then a
    client uploads to ``staging/<blob id>`` (single PUT, or multipart with ``upload_id``).
    """

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for the client's bytes
        UPLOADED = "uploaded"  # the client said it is complete; a worker verifies it
        VERIFIED = "verified"  # size and sha256 match; promoted to its object key
        FAILED = "failed"  # never completed, or the bytes did not match (declared again → pending)

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="blobs")
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    upload_id = models.CharField(max_length=1024, blank=True)  # multipart upload id, "" for a single PUT
    part_size = models.BigIntegerField(null=True, blank=True)
    # Finalisation of the upload (multipart complete + promotion) is done: survives a worker kill.
    promoted = models.BooleanField(default=False)
    thumbnail = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "experiments_blob"
        constraints = [models.UniqueConstraint(fields=["project", "sha256"], name="blob_project_sha256_unique")]
        indexes = [models.Index(fields=["status", "updated_at"], name="blob_status_updated")]


class Artifact(models.Model):
    class Kind(models.TextChoices):
        FILE = "file"
        MODEL = "model"
        DATASET = "dataset"

    class Status(models.TextChoices):
        PENDING = "pending"
        UPLOADED = "uploaded"
        PROCESSING = "processing"
        READY = "ready"
        FAILED = "failed"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="artifacts")
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    blob = models.ForeignKey(Blob, on_delete=models.PROTECT, related_name="artifacts")
    path = models.CharField(max_length=1024)  # normalised by artifacts/paths.py
    sha256 = models.CharField(max_length=64)
    size = models.BigIntegerField()
    media_type = models.CharField(max_length=255, default="application/octet-stream")
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.FILE)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.TextField(blank=True)
    findings = models.JSONField(default=dict, blank=True)
    preview = models.JSONField(default=dict, blank=True)
    # Processing bookkeeping: attempts started, and how many times results were written
    # (at most once: a redelivered task after a worker kill finds the artifact done).
    attempts = models.IntegerField(default=0)
    processed = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "experiments_artifact"
        constraints = [models.UniqueConstraint(fields=["run", "path"], name="artifact_run_path_unique")]
        indexes = [models.Index(fields=["status", "updated_at"], name="artifact_status_updated")]
        ordering = ["path"]

    def __str__(self) -> str:
        return self.path
