from __future__ import annotations

from django.urls import path

from reviews import api

BASE = "projects/<str:team>/<str:project>/review-requests/"
ONE = BASE + "<int:number>/"

urlpatterns = [
    path(BASE, api.ReviewRequestListView.as_view(), name="api-review-requests"),
    path(ONE, api.ReviewRequestDetailView.as_view(), name="api-review-request"),
    path(ONE + "reviews/", api.ReviewListView.as_view(), name="api-review-reviews"),
    path(ONE + "reviews/<str:review_id>/dismiss/", api.ReviewDismissView.as_view(), name="api-review-dismiss"),
    path(ONE + "comments/", api.CommentListView.as_view(), name="api-review-comments"),
    path(ONE + "comments/<str:comment_id>/", api.CommentDetailView.as_view(), name="api-review-comment"),
    path(ONE + "checks/", api.CheckListView.as_view(), name="api-review-checks"),
    path(ONE + "timeline/", api.TimelineView.as_view(), name="api-review-timeline"),
    path(ONE + "merge/", api.MergeView.as_view(), name="api-review-merge"),
    path("projects/<str:team>/<str:project>/mentionables/", api.MentionableView.as_view(), name="api-mentionables"),
    path(
        "projects/<str:team>/<str:project>/models/<str:model>/review-settings/",
        api.ReviewSettingsView.as_view(),
        name="api-review-settings",
    ),
    path(
        "projects/<str:team>/<str:project>/review-settings/",
        api.ProjectReviewSettingsView.as_view(),
        name="api-project-review-settings",
    ),
    path("notifications/", api.NotificationListView.as_view(), name="api-notifications"),
    path("notifications/preferences/", api.NotificationPreferencesView.as_view(), name="api-notification-preferences"),
]
