"""Assay's SDK: log a training run in three lines, and never lose a point.

import assay
run = assay.init(project="team/project", config={"lr": 0.01})
run.log({"loss": 0.3}); run.finish()
"""

from __future__ import annotations

from assay._version import __version__
from assay.api import Api, MetricPoint, RunRecord
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
from assay.fluent import active_run, finish, init, log, log_confusion_matrix, log_params, set_tags
from assay.run import Run, Summary
from assay.spool import SyncResult, sync

__all__ = [
    "Api",
    "ApiError",
    "AssayError",
    "AuthenticationError",
    "Client",
    "ConfigurationError",
    "ConflictError",
    "MetricPoint",
    "NotFoundError",
    "PermissionDeniedError",
    "ProjectNotFoundError",
    "Run",
    "RunRecord",
    "ServerUnreachableError",
    "Summary",
    "SyncResult",
    "UsageError",
    "ValidationError",
    "__version__",
    "active_run",
    "finish",
    "init",
    "log",
    "log_confusion_matrix",
    "log_params",
    "set_tags",
    "sync",
]
