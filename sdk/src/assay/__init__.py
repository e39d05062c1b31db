"""Assay's SDK: log a training run in three lines, and never lose a point.

import assay
run = assay.init(project="team/project", config={"lr": 0.01})
run.log({"loss": 0.3}); run.finish()
"""

from __future__ import annotations

from assay._version import __version__
from assay.api import Api, MetricPoint, RunRecord, search_runs
from assay.artifacts import ArtifactNameError, UploadStats
from assay.client import Client
from assay.errors import (
    ApiError,
    AssayError,
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ProjectNotFoundError,
    ServerUnreachableError,
    UsageError,
    ValidationError,
)
from assay.fluent import (
    active_run,
    finish,
    init,
    log,
    log_artifact,
    log_confusion_matrix,
    log_dataset,
    log_model,
    log_params,
    register_model,
    set_tags,
)
from assay.registry import ModelVersion, diff, model_path, pull, reproduce, set_alias
from assay.run import Run, Summary
from assay.spool import SyncResult, sync

__all__ = [
    "Api",
    "ApiError",
    "ArtifactNameError",
    "AssayError",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "MetricPoint",
    "ModelVersion",
    "NotFoundError",
    "PermissionDeniedError",
    "ProjectNotFoundError",
    "Run",
    "RunRecord",
    "ServerUnreachableError",
    "Summary",
    "SyncResult",
    "UploadStats",
    "UsageError",
    "ValidationError",
    "__version__",
    "active_run",
    "diff",
    "finish",
    "init",
    "log",
    "log_artifact",
    "log_confusion_matrix",
    "log_dataset",
    "log_model",
    "log_params",
    "model_path",
    "pull",
    "register_model",
    "reproduce",
    "search_runs",
    "set_alias",
    "set_tags",
    "sync",
]
