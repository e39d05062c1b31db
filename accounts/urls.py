"""The accounts API under /api/v1/ (teams, members, projects and their access, tokens, audit)."""

from __future__ import annotations

from django.urls import path

from accounts import api

urlpatterns = [
    path("me/", api.MeView.as_view(), name="api-me"),
    path("teams/", api.TeamListView.as_view(), name="api-teams"),
    path("teams/<str:team>/members/", api.TeamMemberListView.as_view(), name="api-team-members"),
    path("teams/<str:team>/members/<str:username>/", api.TeamMemberDetailView.as_view(), name="api-team-member"),
    path("projects/", api.ProjectListView.as_view(), name="api-projects"),
    path("projects/<str:team>/<str:project>/", api.ProjectDetailView.as_view(), name="api-project"),
    path("projects/<str:team>/<str:project>/access/", api.ProjectAccessView.as_view(), name="api-project-access"),
    path(
        "projects/<str:team>/<str:project>/access/<str:kind>/<str:name>/",
        api.ProjectAccessDetailView.as_view(),
        name="api-project-grant",
    ),
    path(
        "projects/<str:team>/<str:project>/visibility/",
        api.ProjectVisibilityView.as_view(),
        name="api-project-visibility",
    ),
    path("projects/<str:team>/<str:project>/transfer/", api.ProjectTransferView.as_view(), name="api-project-transfer"),
    path("tokens/", api.TokenListView.as_view(), name="api-tokens"),
    path("tokens/<str:token_id>/", api.TokenDetailView.as_view(), name="api-token"),
    path("audit/", api.AuditListView.as_view(), name="api-audit"),
]
