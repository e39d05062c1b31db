"""Project settings → Alerts: the project's metric alert rules and what they fired; project
admins create, edit and delete rules (``alert.manage``), everyone who sees the project reads
them (``alert.view``). 404 for who may not see the project, 403 for a lower role's write.
Thin: the form's fields become the spec the API sends to the same services
(``automations.alerts``), which hold every rule; a refusal is a message naming the field,
status 400, the form kept, nothing saved.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts import access
from accounts.access import access_project
from accounts.models import Project
from automations import alerts
from automations.models import AlertRule
from experiments.selectors import experiments_of
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors

BLANK_FORM: dict[str, Any] = {
    "name": "",
    "kind": "threshold",
    "condition": "",
    "key": "",
    "minutes": "",
    "goal": "min",
    "percent": "",
    "experiment": "",
    "enabled": True,
}


def _project(request: HttpRequest, team: str, project: str) -> Project:
    with policy_errors():
        return access_project(request.user, team, project, action="alert.view")


def _rule(request: HttpRequest, team: str, project: str, rule_id: str) -> AlertRule:
    proj = _project(request, team, project)
    with policy_errors():
        return alerts.rule_get(proj, rule_id)


def _number(text: str) -> Any:
    """A form's number as the API would send it: an int or a float when it reads as one,
    else the text itself (the service refuses it naming the field)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def _form_from_post(request: HttpRequest) -> dict[str, Any]:
    form: dict[str, Any] = {k: request.POST.get(k, "").strip() for k in BLANK_FORM if k != "enabled"}
    form["enabled"] = request.POST.get("enabled") == "on"
    return form


def _spec(form: dict[str, Any]) -> dict[str, Any]:
    """Only the fields of the chosen kind (the form shows all of them), blanks left out."""
    kind = form["kind"]
    own = alerts.KIND_FIELDS.get(kind, set())
    spec: dict[str, Any] = {"kind": kind, "enabled": form["enabled"]}
    if form["name"]:
        spec["name"] = form["name"]
    spec["experiment"] = form["experiment"] or None
    for field in ("condition", "key", "goal"):
        if field in own and form[field]:
            spec[field] = form[field]
    for field in ("minutes", "percent"):
        if field in own and form[field]:
            spec[field] = _number(form[field])
    return spec


def _form_of(rule: AlertRule) -> dict[str, Any]:
    spec = alerts.spec_of(rule)
    form = {**BLANK_FORM, **{k: ("" if v is None else v) for k, v in spec.items()}}
    if isinstance(form["percent"], float):
        form["percent"] = f"{form['percent']:g}"
    return form


def _context(request: HttpRequest, project: Project, form: dict[str, Any], error_field: str = "") -> dict[str, Any]:
    return {
        "project": project,
        "form": form,
        "kinds": AlertRule.Kind.choices,
        "goals": alerts.GOALS,
        "can_manage": access.can(request.user, "alert.manage", project),
        "experiments": experiments_of(project).order_by("name"),
        "error_field": error_field.split(".")[0],
    }


@login_required
def alerts_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project)
    form, status, field = dict(BLANK_FORM), 200, ""
    if request.method == "POST":
        form = _form_from_post(request)
        errors = form_errors(request, "Alert rule not created", with_field=True)
        with errors:
            rule = alerts.rule_create(user=request_user(request), project=proj, spec=_spec(form))
            messages.success(request, f"Alert rule {rule.name} created.")
            return redirect(reverse("alerts", args=[proj.team.name, proj.name]))
        status, field = 400, errors.field
    context = {
        **_context(request, proj, form, field),
        "rules": [(r, alerts.condition_text(r)) for r in alerts.rules_of(proj)],
        "fired": alerts.firings_of(proj, limit=50),
    }
    return render(request, "automations/alerts.html", context, status=status)


@login_required
def alert_page(request: HttpRequest, team: str, project: str, rule_id: str) -> HttpResponse:
    rule = _rule(request, team, project, rule_id)
    form, status, field = _form_of(rule), 200, ""
    if request.method == "POST":
        form = _form_from_post(request)
        errors = form_errors(request, "Alert rule not saved", with_field=True)
        with errors:
            alerts.rule_update(user=request_user(request), rule=rule, changes=_spec(form))
            messages.success(request, "Alert rule saved.")
            return redirect(request.path)
        status, field = 400, errors.field
    context = {
        **_context(request, rule.project, form, field),
        "rule": rule,
        "condition": alerts.condition_text(rule),
        "fired": alerts.firings_of(rule.project, rule=rule, limit=50),
    }
    return render(request, "automations/alert.html", context, status=status)


@login_required
@require_POST
def alert_delete(request: HttpRequest, team: str, project: str, rule_id: str) -> HttpResponse:
    rule = _rule(request, team, project, rule_id)
    with form_errors(request, "Alert rule not deleted"):
        alerts.rule_delete(user=request_user(request), rule=rule)
        messages.success(request, f"Alert rule {rule.name} deleted.")
        return redirect(reverse("alerts", args=[team, project]))
    return redirect(reverse("alert", args=[team, project, rule.id]))
