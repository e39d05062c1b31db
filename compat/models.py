"""What the MLflow-compatible API keeps beside Assay's own rows.

- :class:`LoggedModel`: an MLflow 3 "logged model" (``m-<32 hex>``): the metadata a client
  creates before it uploads a model's files. Its files are artifacts of its source run under
  ``models/<model id>/`` (Assay keeps a run's files with the run), so the dashboard, the
  pickle scan and registration see them like any other artifact.
- :class:`VersionSource`: what an MLflow client said a registered version came from (its
  ``source`` URI and logged model) and the folder of run artifacts the version's files are
  in, so ``get-download-uri`` and ``models:/name/N`` answer the whole model folder while
  Assay's version records its one binary.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from accounts.models import Project
from experiments.models import Experiment, Run
from registry.models import ModelVersion


def new_logged_model_id() -> str:
    return f"m-{uuid.uuid4().hex}"


class LoggedModel(models.Model):
    class Status(models.TextChoices):
        PENDING = "LOGGED_MODEL_PENDING"
        READY = "LOGGED_MODEL_READY"
        FAILED = "LOGGED_MODEL_UPLOAD_FAILED"

    id = models.CharField(primary_key=True, max_length=34, default=new_logged_model_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="+")
    # The run that produced it (None: logged outside a run, then it can hold no files).
    run = models.ForeignKey(Run, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    name = models.CharField(max_length=256)
    model_type = models.CharField(max_length=256, blank=True)
    status = models.CharField(max_length=32, choices=Status.choices, default=Status.PENDING)
    status_message = models.TextField(blank=True, max_length=2_000)
    tags = models.JSONField(default=dict, blank=True)
    params = models.JSONField(default=dict, blank=True)
    creator = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    deleted = models.BooleanField(default=False)

    class Meta:
        indexes = [models.Index(fields=["project", "experiment", "-created_at"], name="loggedmodel_project_time")]

    def __str__(self) -> str:
        return self.id

    @property
    def files_prefix(self) -> str:
        """Where its files are among its run's artifacts."""
        return f"models/{self.id}"


class VersionSource(models.Model):
    version = models.OneToOneField(ModelVersion, on_delete=models.CASCADE, related_name="mlflow_source")
    source = models.CharField(max_length=2_048)  # as the client sent it
    logged_model = models.ForeignKey(LoggedModel, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    model_id = models.CharField(max_length=34, blank=True)
    run_ref = models.CharField(max_length=32)
    files_prefix = models.CharField(max_length=1_024)  # the version's folder among the run's artifacts

    def __str__(self) -> str:
        return self.source
