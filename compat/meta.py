"""What the client asks before it authenticates: ``/health``, ``/version`` and
``/api/3.0/mlflow/server-info`` (which features this server offers), and the answers for
paths no handler serves: MLflow's JSON ``ENDPOINT_NOT_FOUND``, and a clear refusal for the
parts of MLflow Assay does not implement (GenAI tracing, evaluation, prompt optimisation,
the gateway)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from compat import artifacts, wire

# The MLflow client release this API is tested with (docs/mlflow.md, requirements-mlflow.lock).
MLFLOW_VERSION = "3.17.2"

# What server-info announces; the artifacts proxy sets the multipart flags it supports.
SERVER_INFO: dict[str, Any] = {
    "store_type": None,
    "workspaces_enabled": False,
    "trace_archival_enabled": False,
    "multipart_uploads_enabled": False,
    "multipart_downloads_enabled": False,
    "presigned_upload_run_id_supported": False,
    "presigned_upload_model_id_supported": False,
    "features_enabled": {"gateway": False},
}

OUT_OF_SCOPE = {
    "traces": "GenAI tracing",
    "unified-traces": "GenAI tracing",
    "get-online-trace-details": "GenAI tracing",
    "issues": "GenAI tracing",
    "label-schemas": "GenAI evaluation",
    "review-queues": "GenAI evaluation",
    "datasets": "evaluation datasets",
    "search-datasets": "evaluation datasets",
    "scorers": "GenAI evaluation",
    "prompt-optimization": "prompt optimisation",
    "gateway": "the AI gateway",
    "workspaces": "workspaces (Assay's teams and projects take their place)",
}


def health(request: HttpRequest, team: str, project: str) -> HttpResponse:
    return HttpResponse("OK", content_type="text/plain")


def version(request: HttpRequest, team: str, project: str) -> HttpResponse:
    return HttpResponse(MLFLOW_VERSION, content_type="text/plain")


def server_info(request: HttpRequest, team: str, project: str) -> HttpResponse:
    return wire.json_response({**SERVER_INFO, **artifacts.server_info_flags()})


@csrf_exempt
def out_of_scope(request: HttpRequest, team: str, project: str, area: str, rest: str = "") -> HttpResponse:
    feature = OUT_OF_SCOPE.get(area, area)
    return wire.error_response(
        "NOT_IMPLEMENTED",
        f"Assay's MLflow API does not implement {feature} ({request.method} {request.path}); "
        "it serves tracking, the model registry, logged models and artifacts (see docs/mlflow.md).",
    )


@csrf_exempt
def not_found(request: HttpRequest, team: str, project: str, rest: str = "") -> HttpResponse:
    return wire.error_response("ENDPOINT_NOT_FOUND", f"No MLflow endpoint at {request.method} {request.path}.")


@csrf_exempt
def outside_a_project(request: HttpRequest, rest: str = "") -> HttpResponse:
    """A path under /mlflow/ that names no project (``/mlflow/acme/``): MLflow's JSON 404,
    not a page (config/urls.py; the team name ``mlflow`` is reserved for this)."""
    return wire.error_response(
        "ENDPOINT_NOT_FOUND",
        f"No MLflow endpoint at {request.method} {request.path}: the tracking URI is <public URL>/mlflow/<team>/<project>.",
    )
