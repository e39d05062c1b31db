"""Dashboard pages of the reviews app (included before frontend.urls in config/urls.py)."""

from __future__ import annotations

from django.urls import path

from reviews import views

ONE = "<str:team>/<str:project>/reviews/<int:number>/"

urlpatterns = [
    path("notifications/", views.notifications_page, name="notifications"),
    path("<str:team>/<str:project>/reviews/", views.review_list, name="review-list"),
    path("<str:team>/<str:project>/reviews/new/", views.review_new, name="review-new"),
    path(ONE, views.review_page, name="review-request"),
    path(ONE + "review/", views.review_submit_form, name="review-submit"),
    path(ONE + "comment/", views.comment_form, name="review-comment"),
    path(ONE + "update/", views.request_update_form, name="review-update"),
    path(ONE + "merge/", views.merge_form, name="review-merge"),
    path(ONE + "checks/", views.checks_rerun_form, name="review-checks-rerun"),
    path(ONE + "reviews/<str:review_id>/dismiss/", views.dismiss_form, name="review-dismiss"),
]
