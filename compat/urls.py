"""The MLflow REST API of one project, mounted at ``/mlflow/<team>/<project>/`` (config/urls.py):
the client's ``MLFLOW_TRACKING_URI`` is that URL, and it appends the paths below.

Every path is a view built by ``wire.route`` from handlers of ``tracking`` (experiments,
runs, metrics), and of the registry, logged-model and artifact modules. A path not served
answers MLflow's JSON ``ENDPOINT_NOT_FOUND``; the GenAI parts answer ``NOT_IMPLEMENTED``.
"""

from __future__ import annotations

from django.urls import URLPattern, path, re_path
from django.urls.resolvers import RoutePattern

from compat import artifacts, logged_models, meta, registry, tracking, webhooks
from compat.wire import route

V2 = "api/2.0/mlflow/"

tracking_urls = [
    path(V2 + "experiments/create", route(POST=tracking.experiment_create)),
    path(V2 + "experiments/get", route(GET=tracking.experiment_get)),
    path(V2 + "experiments/get-by-name", route(GET=tracking.experiment_get_by_name)),
    path(V2 + "experiments/search", route(GET=tracking.experiment_search, POST=tracking.experiment_search)),
    path(V2 + "experiments/update", route(POST=tracking.experiment_update)),
    path(V2 + "experiments/delete", route(POST=tracking.experiment_delete)),
    path(V2 + "experiments/restore", route(POST=tracking.experiment_restore)),
    path(V2 + "experiments/set-experiment-tag", route(POST=tracking.experiment_set_tag)),
    path(V2 + "experiments/delete-experiment-tag", route(POST=tracking.experiment_delete_tag)),
    path(V2 + "runs/create", route(POST=tracking.run_create)),
    path(V2 + "runs/get", route(GET=tracking.run_get)),
    path(V2 + "runs/update", route(POST=tracking.run_update)),
    path(V2 + "runs/delete", route(POST=tracking.run_delete)),
    path(V2 + "runs/restore", route(POST=tracking.run_restore)),
    path(V2 + "runs/search", route(POST=tracking.run_search)),
    path(V2 + "runs/log-metric", route(POST=tracking.run_log_metric)),
    path(V2 + "runs/log-parameter", route(POST=tracking.run_log_param)),
    path(V2 + "runs/set-tag", route(POST=tracking.run_set_tag)),
    path(V2 + "runs/delete-tag", route(POST=tracking.run_delete_tag)),
    path(V2 + "runs/log-batch", route(POST=tracking.run_log_batch)),
    path(V2 + "runs/log-inputs", route(POST=tracking.run_log_inputs)),
    path(V2 + "runs/outputs", route(POST=tracking.run_log_outputs)),
    path(V2 + "runs/log-model", route(POST=tracking.run_log_model)),
    path(V2 + "metrics/get-history", route(GET=tracking.metric_history)),
    path(V2 + "metrics/get-history-bulk-interval", route(GET=tracking.metric_history_bulk_interval)),
]

RM = V2 + "registered-models/"
MV = V2 + "model-versions/"
registry_urls = [
    path(RM + "create", route(POST=registry.model_create)),
    path(RM + "get", route(GET=registry.model_get)),
    path(RM + "update", route(PATCH=registry.model_update)),
    path(RM + "rename", route(POST=registry.model_rename)),
    path(RM + "delete", route(DELETE=registry.model_delete)),
    path(RM + "search", route(GET=registry.model_search)),
    path(RM + "set-tag", route(POST=registry.model_tag_set)),
    path(RM + "delete-tag", route(DELETE=registry.model_tag_delete)),
    path(RM + "get-latest-versions", route(GET=registry.latest_versions, POST=registry.latest_versions)),
    path(RM + "alias", route(GET=registry.alias_get, POST=registry.alias_set, DELETE=registry.alias_delete)),
    path(MV + "create", route(POST=registry.version_create)),
    path(MV + "get", route(GET=registry.version_get)),
    path(MV + "update", route(PATCH=registry.version_update)),
    path(MV + "delete", route(DELETE=registry.version_delete)),
    path(MV + "search", route(GET=registry.version_search)),
    path(MV + "set-tag", route(POST=registry.version_tag_set)),
    path(MV + "delete-tag", route(DELETE=registry.version_tag_delete)),
    path(MV + "get-download-uri", route(GET=registry.version_download_uri)),
    path(MV + "transition-stage", route(POST=registry.stage_transition)),
]
WH = V2 + "webhooks"
webhook_urls = [
    path(WH, route(POST=webhooks.create, GET=webhooks.list_)),
    path(WH + "/<str:webhook_id>", route(GET=webhooks.get, PATCH=webhooks.update, DELETE=webhooks.delete)),
    path(WH + "/<str:webhook_id>/test", route(POST=webhooks.test)),
]
LM = V2 + "logged-models"
logged_model_urls = [
    path(LM, route(POST=logged_models.create)),
    path(LM + "/search", route(POST=logged_models.search)),
    path(
        LM + "/<str:model_id>",
        route(GET=logged_models.get, PATCH=logged_models.finalize, DELETE=logged_models.delete),
    ),
    path(LM + "/<str:model_id>/tags", route(PATCH=logged_models.tags_set)),
    path(LM + "/<str:model_id>/tags/<path:tag_key>", route(DELETE=logged_models.tag_delete)),
    path(LM + "/<str:model_id>/params", route(POST=logged_models.params_log)),
]
ARTIFACTS = "api/2.0/mlflow-artifacts/"
artifact_urls = [
    path(ARTIFACTS + "artifacts", route(GET=artifacts.list_handler)),
    path(ARTIFACTS + "artifacts/<path:artifact_path>", artifacts.file_view),
    path(ARTIFACTS + "mpu/create/<path:artifact_path>", route(POST=artifacts.mpu_create)),
    path(ARTIFACTS + "mpu/complete/<path:artifact_path>", route(POST=artifacts.mpu_complete)),
    path(ARTIFACTS + "mpu/abort/<path:artifact_path>", route(POST=artifacts.mpu_abort)),
    re_path(r"^api/2\.0/mlflow-artifacts/(?P<rest>.*)$", meta.out_of_scope, {"area": "mlflow-artifacts"}),
]

meta_urls = [
    path("health", meta.health),
    path("version", meta.version),
    path("api/3.0/mlflow/server-info", meta.server_info),
    path("ajax-api/3.0/mlflow/server-info", meta.server_info),
    re_path(
        r"^api/[23]\.0/mlflow/(?P<area>" + "|".join(meta.OUT_OF_SCOPE) + r")(?:/(?P<rest>.*))?$", meta.out_of_scope
    ),
    re_path(r"^(?P<rest>.*)$", meta.not_found),
]


def _ajax(patterns: list[URLPattern]) -> list[URLPattern]:
    """The same paths under ``ajax-api/``: MLflow's server answers its REST API there too (its
    web UI's prefix), and scripts written against MLflow's server use it."""
    return [
        path("ajax-" + str(p.pattern), p.callback, p.default_args)
        for p in patterns
        if isinstance(p.pattern, RoutePattern) and str(p.pattern).startswith("api/")
    ]


api_urls = [*tracking_urls, *registry_urls, *webhook_urls, *logged_model_urls, *artifact_urls]
urlpatterns = [*api_urls, *_ajax(api_urls), *meta_urls]
