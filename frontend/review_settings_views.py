"""The review policy pages (R10): a project's policy, the default of its models, and a
model's own policy (or "follow the project's"). Everyone who may see the project reads the
policy that applies, as the API's GET does; project admins change it through the same
services as the API's PATCH and DELETE (``reviews.services``), which hold every rule.

Thin: the form's text becomes the service's arguments (``parse_gate_lines``), a refusal is
a message naming the field (frontend/errors.py) with the submitted values kept, status 400,
nothing saved; the template receives ready booleans (``can_edit``), never rules.
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
from accounts.models import Project, ProjectRole
from core.errors import Invalid
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors
from registry.access import access_model
from registry.models import ModelRepository
from reviews import selectors, services
from reviews.models import ReviewPolicy

MAX_GATE_LINES = 100
APPROVER_ROLES = (("maintainer", "Maintainers and admins"), ("writer", "Writers, maintainers and admins"))
SOURCES = {
    "repository": "this model's own policy",
    "project": "the project's policy",
    "default": "the defaults (none saved)",
}


def parse_gate_lines(text: str) -> list[dict[str, str]]:
    """The form's gates, one ``name: expression`` a line (blank lines skipped); the service
    checks names and expressions. Raises Invalid naming the line."""
    lines = text.splitlines()
    if len(lines) > MAX_GATE_LINES:
        raise Invalid(f"gates: at most {MAX_GATE_LINES} lines.", field="gates")
    out: list[dict[str, str]] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        name, sep, expression = line.partition(":")
        if not sep:
            raise Invalid(f"gates line {number}: write name: expression.", field="gates")
        out.append({"name": name.strip(), "expression": expression.strip()})
    return out


def _form_of(settings: ReviewPolicy) -> dict[str, Any]:
    """The form's values for a saved (or default) policy."""
    return {
        "required_approvals": str(settings.required_approvals),
        "approver_role": ProjectRole(settings.approver_role).label.lower(),
        "gates": "\n".join(f"{g['name']}: {g['expression']}" for g in settings.gates),
        "required_checks": list(settings.required_checks),
        "block_unscanned": settings.block_unscanned,
    }


def _form_from_post(request: HttpRequest) -> dict[str, Any]:
    return {
        "required_approvals": request.POST.get("required_approvals", "").strip(),
        "approver_role": request.POST.get("approver_role", ""),
        "gates": request.POST.get("gates", ""),
        "required_checks": request.POST.getlist("required_checks"),
        "block_unscanned": request.POST.get("block_unscanned") == "on",
    }


def _changes(form: dict[str, Any]) -> dict[str, Any]:
    """The service's arguments from the submitted form; a number that is not one is passed
    as typed, for the service to refuse naming the field."""
    raw = form["required_approvals"]
    return {
        "required_approvals": int(raw) if raw.isdigit() else raw,
        "approver_role": form["approver_role"],
        "gates_config": parse_gate_lines(form["gates"]),
        "required_checks": form["required_checks"],
        "block_unscanned": form["block_unscanned"],
    }


def _render(
    request: HttpRequest,
    *,
    project: Project,
    repository: ModelRepository | None,
    settings: ReviewPolicy,
    form: dict[str, Any],
    error_field: str = "",
    status: int = 200,
) -> HttpResponse:
    checks = [c["name"] for c in selectors.configured_checks(settings)]
    # a gate named in the submitted form is offered too, so a refused form keeps its choice
    for name in form["required_checks"]:
        if name not in checks:
            checks.append(name)
    source = selectors.settings_source(settings)
    context = {
        "project": project,
        "repository": repository,
        "form": form,
        "checks": checks,
        "approver_roles": APPROVER_ROLES,
        "source": source,
        "source_label": SOURCES[source],
        "error_field": error_field.split(".")[0],
        "can_edit": access.can(request.user, "review.settings", project),
        "open_reviews": selectors.open_request_count(request.user, project, repository=repository),
    }
    return render(request, "reviews/review_settings.html", context, status=status)


def _save(request: HttpRequest, save: Any, *, project: Project, repository: ModelRepository | None) -> HttpResponse:
    form = _form_from_post(request)
    errors = form_errors(request, "Review policy not saved", with_field=True)
    with errors:
        save(**_changes(form))
        messages.success(request, "Review policy saved.")
        return redirect(request.path)
    field = errors.field
    # nothing was saved: the page names the policy that still applies, with the form as sent
    current = selectors.settings_for(repository) if repository is not None else selectors.project_settings_for(project)
    return _render(
        request, project=project, repository=repository, settings=current, form=form, error_field=field, status=400
    )


@login_required
def project_review_settings_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    if request.method == "POST":
        with policy_errors():
            proj = access_project(request.user, team, project, action="review.settings")
        user = request_user(request)
        return _save(
            request,
            lambda **changes: services.project_review_settings_update(user=user, project=proj, **changes),
            project=proj,
            repository=None,
        )
    with policy_errors():
        proj = access_project(request.user, team, project, action="review.view")
    settings = selectors.project_settings_for(proj)
    return _render(request, project=proj, repository=None, settings=settings, form=_form_of(settings))


@login_required
def model_review_settings_page(request: HttpRequest, team: str, project: str, model: str) -> HttpResponse:
    if request.method == "POST":
        with policy_errors():
            repository = access_model(request.user, team, project, model, action="review.settings")
        user = request_user(request)
        return _save(
            request,
            lambda **changes: services.review_settings_update(user=user, repository=repository, **changes),
            project=repository.project,
            repository=repository,
        )
    with policy_errors():
        repository = access_model(request.user, team, project, model)
    settings = selectors.settings_for(repository)
    return _render(
        request, project=repository.project, repository=repository, settings=settings, form=_form_of(settings)
    )


@login_required
@require_POST
def model_review_settings_reset(request: HttpRequest, team: str, project: str, model: str) -> HttpResponse:
    """Drop the model's own policy: its project's applies again."""
    with policy_errors():
        repository = access_model(request.user, team, project, model, action="review.settings")
    with form_errors(request, "Review policy not reset"):
        services.review_settings_delete(user=request_user(request), repository=repository)
        messages.success(request, "This model follows the project's review policy again.")
    return redirect(reverse("model-review-settings", args=[team, project, model]))
