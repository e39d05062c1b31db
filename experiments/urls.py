from __future__ import annotations

from django.urls import path

from experiments import api

urlpatterns = [
    path("projects/", api.ProjectListView.as_view(), name="api-projects"),
    path("projects/<str:team>/<str:project>/", api.ProjectDetailView.as_view(), name="api-project"),
    path("projects/<str:team>/<str:project>/experiments/", api.ExperimentListView.as_view(), name="api-experiments"),
    path("runs/", api.RunListView.as_view(), name="api-runs"),
    path("runs/<str:run_id>/", api.RunDetailView.as_view(), name="api-run"),
    path("runs/<str:run_id>/log/", api.RunLogView.as_view(), name="api-run-log"),
    path("runs/<str:run_id>/metrics/", api.RunMetricListView.as_view(), name="api-run-metrics"),
    path("runs/<str:run_id>/metrics/<path:key>/", api.RunMetricHistoryView.as_view(), name="api-run-metric"),
    path("runs/<str:run_id>/figures/", api.RunFigureListView.as_view(), name="api-run-figures"),
]
