from __future__ import annotations

from django.urls import path

from automations import alerts_api, api

BASE = "projects/<str:team>/<str:project>/webhooks/"
ONE = BASE + "<str:webhook_id>/"
ALERTS = "projects/<str:team>/<str:project>/alerts/"

urlpatterns = [
    path(BASE, api.WebhookListView.as_view(), name="api-webhooks"),
    path(ONE, api.WebhookDetailView.as_view(), name="api-webhook"),
    path(ONE + "test/", api.WebhookTestView.as_view(), name="api-webhook-test"),
    path(ONE + "deliveries/", api.DeliveryListView.as_view(), name="api-webhook-deliveries"),
    path(ONE + "deliveries/<str:delivery_id>/redeliver/", api.RedeliverView.as_view(), name="api-webhook-redeliver"),
    path(ALERTS, alerts_api.AlertListView.as_view(), name="api-alerts"),
    path(ALERTS + "fired/", alerts_api.FiredListView.as_view(), name="api-alerts-fired"),
    path(ALERTS + "<str:rule_id>/", alerts_api.AlertDetailView.as_view(), name="api-alert"),
    path(ALERTS + "<str:rule_id>/fired/", alerts_api.RuleFiredListView.as_view(), name="api-alert-fired"),
]
