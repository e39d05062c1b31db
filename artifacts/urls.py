from __future__ import annotations

from django.urls import path

from artifacts import api

urlpatterns = [
    path("runs/<str:run_id>/artifacts/", api.RunArtifactListView.as_view(), name="api-run-artifacts"),
    path(
        "runs/<str:run_id>/artifacts/<str:artifact_id>/complete/",
        api.ArtifactCompleteView.as_view(),
        name="api-artifact-complete",
    ),
    path(
        "runs/<str:run_id>/artifacts/<str:artifact_id>/download/",
        api.ArtifactDownloadView.as_view(),
        name="api-artifact-download",
    ),
]
