from __future__ import annotations

from django.urls import path

from automations import api

BASE = "projects/<str:team>/<str:project>/webhooks/"
ONE = BASE + "<str:webhook_id>/"

urlpatterns = [
    path(BASE, api.WebhookListView.as_view(), name="api-webhooks"),
    path(ONE, api.WebhookDetailView.as_view(), name="api-webhook"),
    path(ONE + "test/", api.WebhookTestView.as_view(), name="api-webhook-test"),
    path(ONE + "deliveries/", api.DeliveryListView.as_view(), name="api-webhook-deliveries"),
    path(ONE + "deliveries/<str:delivery_id>/redeliver/", api.RedeliverView.as_view(), name="api-webhook-redeliver"),
]
