from __future__ import annotations

from django.urls import path

from reports import api

BASE = "projects/<str:team>/<str:project>/reports/"
ONE = BASE + "<int:report>/"

urlpatterns = [
    path(BASE, api.ReportListView.as_view(), name="api-reports"),
    path(ONE, api.ReportDetailView.as_view(), name="api-report"),
    path(ONE + "revisions/", api.RevisionListView.as_view(), name="api-report-revisions"),
    path(ONE + "revisions/<int:revision>/", api.RevisionDetailView.as_view(), name="api-report-revision"),
    path(ONE + "diff/", api.RevisionDiffView.as_view(), name="api-report-diff"),
    path(ONE + "freeze/", api.FreezeView.as_view(), name="api-report-freeze"),
    path(ONE + "comments/", api.CommentListView.as_view(), name="api-report-comments"),
    path(ONE + "links/", api.LinkListView.as_view(), name="api-report-links"),
    path(ONE + "links/<str:link_id>/", api.LinkDetailView.as_view(), name="api-report-link"),
]
