from __future__ import annotations

from django.urls import path

from registry import api, imports_api

BASE = "projects/<str:team>/<str:project>/models/"

urlpatterns = [
    path(
        "projects/<str:team>/<str:project>/imports/models/",
        imports_api.ModelImportView.as_view(),
        name="api-import-models",
    ),
    path(BASE, api.ModelListView.as_view(), name="api-models"),
    path(BASE + "<str:model>/", api.ModelDetailView.as_view(), name="api-model"),
    path(BASE + "<str:model>/versions/", api.VersionListView.as_view(), name="api-model-versions"),
    path(BASE + "<str:model>/versions/<str:version>/", api.VersionDetailView.as_view(), name="api-model-version"),
    path(
        BASE + "<str:model>/versions/<str:version>/reproduce/",
        api.VersionReproduceView.as_view(),
        name="api-model-version-reproduce",
    ),
    path(
        BASE + "<str:model>/versions/<str:version>/download/",
        api.VersionDownloadView.as_view(),
        name="api-model-version-download",
    ),
    path(BASE + "<str:model>/aliases/<str:alias>/", api.AliasView.as_view(), name="api-model-alias"),
    path(BASE + "<str:model>/diff/", api.DiffView.as_view(), name="api-model-diff"),
]
