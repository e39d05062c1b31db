from __future__ import annotations

from django.urls import path

from experiments import api, imports_api, search_api

urlpatterns = [
    path("projects/<str:team>/<str:project>/experiments/", api.ExperimentListView.as_view(), name="api-experiments"),
    path("projects/<str:team>/<str:project>/keys/", search_api.ProjectKeysView.as_view(), name="api-project-keys"),
    path("projects/<str:team>/<str:project>/tried/", api.TriedView.as_view(), name="api-tried"),
    path(
        "projects/<str:team>/<str:project>/tried/settings/", api.TriedSettingsView.as_view(), name="api-tried-settings"
    ),
    path(
        "projects/<str:team>/<str:project>/imports/runs/", imports_api.RunImportView.as_view(), name="api-import-runs"
    ),
    path(
        "projects/<str:team>/<str:project>/imports/runs/lookup/",
        imports_api.RunImportLookupView.as_view(),
        name="api-import-runs-lookup",
    ),
    path(
        "projects/<str:team>/<str:project>/imports/runs/<str:run_id>/complete/",
        imports_api.RunImportCompleteView.as_view(),
        name="api-import-run-complete",
    ),
    path("runs/", api.RunListView.as_view(), name="api-runs"),
    path("compare/", search_api.CompareView.as_view(), name="api-compare"),
    path("export/histories/", search_api.HistoryExportView.as_view(), name="api-export-histories"),
    path("search/", search_api.GlobalSearchView.as_view(), name="api-search"),
    path("runs/<str:run_id>/", api.RunDetailView.as_view(), name="api-run"),
    path("runs/<str:run_id>/log/", api.RunLogView.as_view(), name="api-run-log"),
    path("runs/<str:run_id>/metrics/", api.RunMetricListView.as_view(), name="api-run-metrics"),
    path("runs/<str:run_id>/metrics/<path:key>/", api.RunMetricHistoryView.as_view(), name="api-run-metric"),
    path("runs/<str:run_id>/figures/", api.RunFigureListView.as_view(), name="api-run-figures"),
]
