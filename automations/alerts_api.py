"""Metric alerts REST API (thin: the policy through access_project, validation in
automations.alerts).

/api/v1/projects/{team}/{project}/alerts/                 list (viewers), create (admins)
/api/v1/projects/{team}/{project}/alerts/fired/           what the project's rules fired, newest first
/api/v1/projects/{team}/{project}/alerts/{id}/            get (viewers), patch, delete (admins)
/api/v1/projects/{team}/{project}/alerts/{id}/fired/      what this rule fired
404 for what the caller may not see; 403 for a viewer's write."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project
from accounts.models import Project, User
from automations import alerts
from automations.alerts import GOALS, SPEC_FIELDS
from automations.models import AlertFiring, AlertRule
from core.validation import body_object

NOT_NULL = {"name", "kind", "enabled", "condition", "minutes", "goal", "percent"}


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated ran before the view
    return request.user


def _project(request: Request, team: str, project: str) -> Project:
    # Reads need alert.view (viewers); the services require alert.manage for writes, which
    # access_project would answer with the same 404/403.
    return access_project(request.user, team, project, action="alert.view")


def rule_out(rule: AlertRule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "name": rule.name,
        "kind": rule.kind,
        "condition": alerts.condition_text(rule),
        "key": rule.key or None,
        "op": rule.op or None,
        "value": rule.value,
        "minutes": rule.minutes,
        "goal": rule.goal or None,
        "percent": rule.percent,
        "experiment": rule.experiment.name if rule.experiment is not None else None,
        "enabled": rule.enabled,
        "created_by": rule.created_by.username if rule.created_by is not None else None,
        "created_at": rule.created_at,
        "updated_at": rule.updated_at,
    }


def firing_out(firing: AlertFiring) -> dict[str, Any]:
    run = firing.run
    return {
        "id": firing.id,
        "rule": {"id": firing.rule.id, "name": firing.rule.name, "kind": firing.rule.kind},
        "run": {"id": run.id, "name": run.name, "experiment": run.experiment.name, "status": run.status},
        "key": firing.key or None,
        "value": alerts.firing_value(firing.value),
        "step": firing.step,
        "message": firing.message,
        "created_at": firing.created_at,
    }


_RULE_FIELDS: dict[str, Any] = {
    "name": serializers.CharField(required=False, help_text="defaults to the condition"),
    "kind": serializers.ChoiceField(choices=AlertRule.Kind.values),
    "condition": serializers.CharField(
        required=False, help_text='threshold: "<metric key> <op> <number>", op one of > >= < <= (e.g. "val/loss > 2")'
    ),
    "key": serializers.CharField(
        required=False, allow_null=True, help_text="nonfinite (blank: any key) and versus_best: the metric key"
    ),
    "minutes": serializers.IntegerField(
        required=False, min_value=1, max_value=alerts.MAX_MINUTES, help_text=f"stalled: 1 to {alerts.MAX_MINUTES}"
    ),
    "goal": serializers.ChoiceField(choices=list(GOALS), required=False, help_text="versus_best: which is better"),
    "percent": serializers.FloatField(
        required=False,
        min_value=0,
        max_value=alerts.MAX_PERCENT,
        help_text="versus_best: fires when worse than the best by more than this % of it",
    ),
    "experiment": serializers.CharField(required=False, allow_null=True, help_text="only this experiment's runs"),
    "enabled": serializers.BooleanField(required=False),
}
RULE_IN = inline_serializer("AlertRuleIn", _RULE_FIELDS)
RULE_PATCH = inline_serializer(
    "AlertRulePatch", {**_RULE_FIELDS, "kind": serializers.ChoiceField(choices=AlertRule.Kind.values, required=False)}
)
RULE_OUT = inline_serializer(
    "AlertRule",
    {
        "id": serializers.CharField(),
        "name": serializers.CharField(),
        "kind": serializers.ChoiceField(choices=AlertRule.Kind.values),
        "condition": serializers.CharField(help_text="the rule in one line"),
        "key": serializers.CharField(allow_null=True),
        "op": serializers.CharField(allow_null=True),
        "value": serializers.FloatField(allow_null=True),
        "minutes": serializers.IntegerField(allow_null=True),
        "goal": serializers.CharField(allow_null=True),
        "percent": serializers.FloatField(allow_null=True),
        "experiment": serializers.CharField(allow_null=True),
        "enabled": serializers.BooleanField(),
        "created_by": serializers.CharField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
    },
)
FIRING_OUT = inline_serializer(
    "AlertFiring",
    {
        "id": serializers.CharField(),
        "rule": serializers.DictField(),
        "run": serializers.DictField(),
        "key": serializers.CharField(allow_null=True),
        "value": serializers.JSONField(help_text='a number, or "NaN", "Infinity", "-Infinity"; null for stalled'),
        "step": serializers.IntegerField(allow_null=True),
        "message": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
    },
)


class AlertListView(APIView):
    @extend_schema(responses=type(RULE_OUT)(many=True), summary="Alert rules of a project (viewers)")
    def get(self, request: Request, team: str, project: str) -> Response:
        return Response([rule_out(r) for r in alerts.rules_of(_project(request, team, project))])

    @extend_schema(
        request=RULE_IN,
        responses={201: RULE_OUT},
        summary="Create an alert rule (admins)",
        description="`kind` decides the other fields: threshold needs `condition`; nonfinite takes `key` "
        "(blank: any); stalled needs `minutes`; versus_best needs `key`, `goal`, `percent`. A field of "
        "another kind, a missing one or a malformed condition is 400 naming the field.",
    )
    def post(self, request: Request, team: str, project: str) -> Response:
        proj = _project(request, team, project)
        body = body_object(request.data, SPEC_FIELDS, not_null=NOT_NULL)
        rule = alerts.rule_create(user=_user(request), project=proj, spec=body)
        return Response(rule_out(rule), status=status.HTTP_201_CREATED)


class AlertDetailView(APIView):
    @extend_schema(responses=RULE_OUT, summary="An alert rule (viewers)")
    def get(self, request: Request, team: str, project: str, rule_id: str) -> Response:
        return Response(rule_out(alerts.rule_get(_project(request, team, project), rule_id)))

    @extend_schema(request=RULE_PATCH, responses=RULE_OUT, summary="Edit an alert rule (admins)")
    def patch(self, request: Request, team: str, project: str, rule_id: str) -> Response:
        rule = alerts.rule_get(_project(request, team, project), rule_id)
        body = body_object(request.data, SPEC_FIELDS, not_null=NOT_NULL)
        return Response(rule_out(alerts.rule_update(user=_user(request), rule=rule, changes=body)))

    @extend_schema(request=None, responses={204: None}, summary="Delete an alert rule and what it fired (admins)")
    def delete(self, request: Request, team: str, project: str, rule_id: str) -> Response:
        rule = alerts.rule_get(_project(request, team, project), rule_id)
        alerts.rule_delete(user=_user(request), rule=rule)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FiredListView(APIView):
    @extend_schema(responses=type(FIRING_OUT)(many=True), summary="The last 100 alerts fired in a project (viewers)")
    def get(self, request: Request, team: str, project: str) -> Response:
        return Response([firing_out(f) for f in alerts.firings_of(_project(request, team, project))])


class RuleFiredListView(APIView):
    @extend_schema(responses=type(FIRING_OUT)(many=True), summary="The last 100 alerts one rule fired (viewers)")
    def get(self, request: Request, team: str, project: str, rule_id: str) -> Response:
        proj = _project(request, team, project)
        rule = alerts.rule_get(proj, rule_id)
        return Response([firing_out(f) for f in alerts.firings_of(proj, rule=rule)])
