from __future__ import annotations

from allauth.account import views as allauth_views
from django.urls import path

from frontend import artifact_views, search_views, views

# The run URL shape is also built by the API (experiments.presenters.run_url): keep them in step.
urlpatterns = [
    path("", views.home, name="home"),
    # django-allauth's views (login by username or e-mail, rate-limited) at the short paths.
    path("login/", allauth_views.login, name="login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("-/search/", search_views.search_page, name="search"),
    path("<str:team>/<str:project>/", views.project_page, name="project"),
    path("<str:team>/<str:project>/compare/", search_views.compare_page, name="project-compare"),
    path("<str:team>/<str:project>/export.csv", search_views.project_export, name="project-export"),
    path("<str:team>/<str:project>/views/", search_views.saved_view_create, name="saved-view-create"),
    path("<str:team>/<str:project>/views/<str:view_id>/", search_views.saved_view_open, name="saved-view"),
    path(
        "<str:team>/<str:project>/views/<str:view_id>/delete/",
        search_views.saved_view_delete,
        name="saved-view-delete",
    ),
    path("<str:team>/<str:project>/runs/<str:run_id>/", views.run_page, name="run"),
    path(
        "<str:team>/<str:project>/runs/<str:run_id>/artifacts/<str:artifact_id>/download/",
        artifact_views.artifact_download,
        name="artifact-download",
    ),
    path(
        "<str:team>/<str:project>/runs/<str:run_id>/artifacts/<str:artifact_id>/thumbnail.png",
        artifact_views.artifact_thumbnail,
        name="artifact-thumbnail",
    ),
]
