"""Dashboard pages of the registry (included before frontend.urls in config/urls.py)."""

from __future__ import annotations

from django.urls import path

from registry import views

urlpatterns = [
    path("<str:team>/<str:project>/models/", views.models_page, name="models"),
    path("<str:team>/<str:project>/models/<str:model>/", views.model_page, name="model"),
    path("<str:team>/<str:project>/models/<str:model>/aliases/", views.alias_move_form, name="model-alias-move"),
    path("<str:team>/<str:project>/models/<str:model>/edit/", views.metadata_form, name="model-edit"),
    path("<str:team>/<str:project>/models/<str:model>/v<int:number>/", views.version_page, name="model-version"),
    path(
        "<str:team>/<str:project>/models/<str:model>/v<int:number>/edit/",
        views.metadata_form,
        name="model-version-edit",
    ),
    path(
        "<str:team>/<str:project>/models/<str:model>/v<int:number>/download/",
        views.version_download,
        name="model-version-download",
    ),
    path("<str:team>/<str:project>/runs/<str:run_id>/register-model/", views.register_form, name="run-register-model"),
]
