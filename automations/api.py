"""Webhooks REST API (thin: the policy through access_project, validation in the services).

/api/v1/projects/{team}/{project}/webhooks/                       list, create
/api/v1/projects/{team}/{project}/webhooks/{id}/                  get, patch, delete
/api/v1/projects/{team}/{project}/webhooks/{id}/test/             queue a test event
/api/v1/projects/{team}/{project}/webhooks/{id}/deliveries/       the last 100 deliveries, with attempts
/api/v1/projects/{team}/{project}/webhooks/{id}/deliveries/{d}/redeliver/
Every call needs the ``webhook.manage`` right (project admins); 404 for what the caller may not see."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project
from accounts.models import Project, User
from automations import services
from automations.models import Delivery, Webhook
from core.domain_events import EVENT_TYPES
from core.validation import body_object

FIELDS = {"name", "url", "secret", "events", "format", "model", "enabled"}
NOT_NULL = {"name", "url", "secret", "events", "format", "enabled"}


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated ran before the view
    return request.user


def _project(request: Request, team: str, project: str) -> Project:
    return access_project(request.user, team, project, action="webhook.manage")


def webhook_out(webhook: Webhook) -> dict[str, Any]:
    return {
        "id": webhook.id,
        "name": webhook.name,
        "url": webhook.url,
        "events": webhook.events,
        "format": webhook.format,
        "model": webhook.repository.name if webhook.repository is not None else None,
        "enabled": webhook.enabled,
        "disabled_reason": webhook.disabled_reason,
        "failed_deliveries": webhook.failed_deliveries,
        "secret_set": bool(webhook.secret),
        "created_at": webhook.created_at,
        "updated_at": webhook.updated_at,
    }


def delivery_out(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "event": delivery.event,
        "state": delivery.state,
        "attempts": [
            {
                "number": a.number,
                "started_at": a.started_at,
                "status": a.status_code,
                "ok": a.ok,
                "latency_ms": a.latency_ms,
                "error": a.error,
                "response_excerpt": a.response_excerpt,
            }
            for a in delivery.attempt_log.all()
        ],
        "redelivery_of": delivery.redelivery_of_id,
        "created_at": delivery.created_at,
        "finished_at": delivery.finished_at,
        "payload": delivery.payload,
    }


_EVENTS = serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_TYPES)))
_FORMAT = serializers.ChoiceField(choices=Webhook.Format.values)
WEBHOOK_IN = inline_serializer(
    "WebhookIn",
    {
        "url": serializers.CharField(help_text="http(s) URL; refused when it resolves to a non-public address"),
        "events": _EVENTS,
        "name": serializers.CharField(required=False),
        "secret": serializers.CharField(required=False, help_text="16-200 characters; generated when omitted"),
        "format": _FORMAT,
        "model": serializers.CharField(required=False, allow_null=True, help_text="only this model's events"),
        "enabled": serializers.BooleanField(required=False),
    },
)
WEBHOOK_PATCH = inline_serializer(
    "WebhookPatch",
    {
        "url": serializers.CharField(required=False),
        "events": serializers.ListField(child=serializers.ChoiceField(choices=list(EVENT_TYPES)), required=False),
        "name": serializers.CharField(required=False),
        "secret": serializers.CharField(required=False),
        "format": serializers.ChoiceField(choices=Webhook.Format.values, required=False),
        "model": serializers.CharField(required=False, allow_null=True),
        "enabled": serializers.BooleanField(required=False),
    },
)
_WEBHOOK_FIELDS: dict[str, serializers.Field[Any, Any, Any, Any]] = {
    "id": serializers.CharField(),
    "name": serializers.CharField(),
    "url": serializers.CharField(),
    "events": serializers.ListField(child=serializers.CharField()),
    "format": serializers.CharField(),
    "model": serializers.CharField(allow_null=True),
    "enabled": serializers.BooleanField(),
    "disabled_reason": serializers.CharField(),
    "failed_deliveries": serializers.IntegerField(),
    "secret_set": serializers.BooleanField(),
    "created_at": serializers.DateTimeField(),
    "updated_at": serializers.DateTimeField(),
}
WEBHOOK_OUT = inline_serializer("Webhook", _WEBHOOK_FIELDS)
WEBHOOK_CREATED = inline_serializer(
    "WebhookCreated", {**_WEBHOOK_FIELDS, "secret": serializers.CharField(help_text="shown once")}
)
DELIVERY_OUT = inline_serializer(
    "WebhookDelivery",
    {
        "id": serializers.CharField(help_text="sent as X-Assay-Delivery on every attempt"),
        "event": serializers.CharField(),
        "state": serializers.ChoiceField(choices=Delivery.State.values),
        "attempts": serializers.ListField(child=serializers.DictField()),
        "redelivery_of": serializers.CharField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "finished_at": serializers.DateTimeField(allow_null=True),
        "payload": serializers.DictField(),
    },
)


def _no_body(request: Request) -> None:
    if request.data:
        body_object(request.data, set())  # nothing to send: refuse unknown fields rather than ignore them


class WebhookListView(APIView):
    @extend_schema(responses=type(WEBHOOK_OUT)(many=True), summary="Webhooks of a project (admins)")
    def get(self, request: Request, team: str, project: str) -> Response:
        return Response([webhook_out(w) for w in services.webhooks_of(_project(request, team, project))])

    @extend_schema(
        request=WEBHOOK_IN,
        responses={201: WEBHOOK_CREATED},
        summary="Create a webhook (admins)",
        description="The secret (given or generated) is in this answer only. 400 names the field: `url` for a "
        "URL that is not http(s), does not resolve or resolves to a loopback, private, link-local or metadata "
        "address (unless ASSAY_WEBHOOK_ALLOW allows it).",
    )
    def post(self, request: Request, team: str, project: str) -> Response:
        proj = _project(request, team, project)
        body = body_object(request.data, FIELDS, not_null=NOT_NULL)
        webhook, secret = services.webhook_create(
            user=_user(request),
            project=proj,
            url=body.get("url"),
            events=body.get("events"),
            name=body.get("name"),
            secret=body.get("secret"),
            format=body.get("format", "json"),
            model=body.get("model"),
            enabled=body.get("enabled", True),
        )
        return Response({**webhook_out(webhook), "secret": secret}, status=status.HTTP_201_CREATED)


class WebhookDetailView(APIView):
    @extend_schema(responses=WEBHOOK_OUT, summary="A webhook (admins; the secret is never shown again)")
    def get(self, request: Request, team: str, project: str, webhook_id: str) -> Response:
        return Response(webhook_out(services.webhook_get(_project(request, team, project), webhook_id)))

    @extend_schema(request=WEBHOOK_PATCH, responses=WEBHOOK_OUT, summary="Edit a webhook (admins)")
    def patch(self, request: Request, team: str, project: str, webhook_id: str) -> Response:
        webhook = services.webhook_get(_project(request, team, project), webhook_id)
        body = body_object(request.data, FIELDS, not_null=NOT_NULL)
        return Response(webhook_out(services.webhook_update(user=_user(request), webhook=webhook, changes=body)))

    @extend_schema(request=None, responses={204: None}, summary="Delete a webhook and its delivery log (admins)")
    def delete(self, request: Request, team: str, project: str, webhook_id: str) -> Response:
        webhook = services.webhook_get(_project(request, team, project), webhook_id)
        services.webhook_delete(user=_user(request), webhook=webhook)
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookTestView(APIView):
    @extend_schema(request=None, responses={202: DELIVERY_OUT}, summary="Send a test event (admins)")
    def post(self, request: Request, team: str, project: str, webhook_id: str) -> Response:
        webhook = services.webhook_get(_project(request, team, project), webhook_id)
        _no_body(request)
        delivery = services.send_test(user=_user(request), webhook=webhook)
        return Response(delivery_out(delivery), status=status.HTTP_202_ACCEPTED)


class DeliveryListView(APIView):
    @extend_schema(
        responses=type(DELIVERY_OUT)(many=True), summary="The last 100 deliveries, newest first, with every attempt"
    )
    def get(self, request: Request, team: str, project: str, webhook_id: str) -> Response:
        webhook = services.webhook_get(_project(request, team, project), webhook_id)
        return Response([delivery_out(d) for d in services.deliveries_of(webhook)])


class RedeliverView(APIView):
    @extend_schema(
        request=None, responses={202: DELIVERY_OUT}, summary="Send a delivery's payload again, as a new delivery"
    )
    def post(self, request: Request, team: str, project: str, webhook_id: str, delivery_id: str) -> Response:
        webhook = services.webhook_get(_project(request, team, project), webhook_id)
        delivery = services.delivery_get(webhook, delivery_id)
        _no_body(request)
        again = services.redeliver(user=_user(request), webhook=webhook, delivery=delivery)
        return Response(delivery_out(again), status=status.HTTP_202_ACCEPTED)
