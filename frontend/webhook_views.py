"""Project settings → Webhooks: list and create, edit, send a test event, the deliveries with
every attempt and "redeliver", delete. Project admins only (``webhook.manage``): 404 for
who may not see the project, 403 for a lower role. Thin: the form's fields become the
arguments of the same services as the API (``automations.services``), which hold every rule;
a refusal is a message naming the field, status 400, the form kept, nothing saved.

# SECURITY: the secret is never put back into a page (the edit form leaves it blank:
# blank = keep the current one).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from accounts.access import access_project
from accounts.models import Project
from automations import services
from automations.models import Webhook
from core.domain_events import EVENT_TYPES
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors


def _project(request: HttpRequest, team: str, project: str) -> Project:
    with policy_errors():
        return access_project(request.user, team, project, action="webhook.manage")


def _webhook(request: HttpRequest, team: str, project: str, webhook_id: str) -> Webhook:
    proj = _project(request, team, project)
    with policy_errors():
        return services.webhook_get(proj, webhook_id)


def _form_from_post(request: HttpRequest) -> dict[str, Any]:
    return {
        "name": request.POST.get("name", "").strip(),
        "url": request.POST.get("url", "").strip(),
        "secret": request.POST.get("secret", ""),
        "events": request.POST.getlist("events"),
        "format": request.POST.get("format", "json"),
        "model": request.POST.get("model", "").strip(),
        "enabled": request.POST.get("enabled") == "on",
    }


def _form_of(webhook: Webhook) -> dict[str, Any]:
    return {
        "name": webhook.name,
        "url": webhook.url,
        "secret": "",
        "events": list(webhook.events),
        "format": webhook.format,
        "model": webhook.repository.name if webhook.repository is not None else "",
        "enabled": webhook.enabled,
    }


def _context(project: Project, form: dict[str, Any], error_field: str = "") -> dict[str, Any]:
    return {
        "project": project,
        "form": form,
        "event_types": EVENT_TYPES,
        "formats": Webhook.Format.values,
        "error_field": error_field.split(".")[0],
    }


@login_required
def webhooks_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project)
    form: dict[str, Any] = {"name": "", "url": "", "secret": "", "events": ["alias.moved"], "format": "json"}
    form.update({"model": "", "enabled": True})
    status, field = 200, ""
    if request.method == "POST":
        form = _form_from_post(request)
        errors = form_errors(request, "Webhook not created", with_field=True)
        with errors:
            webhook, secret = services.webhook_create(
                user=request_user(request),
                project=proj,
                url=form["url"],
                events=form["events"],
                name=form["name"] or None,
                secret=form["secret"] or None,
                format=form["format"],
                model=form["model"] or None,
                enabled=form["enabled"],
            )
            shown = "" if form["secret"] else f" Its generated signing secret, shown this once: {secret}"
            messages.success(request, f"Webhook {webhook.name} created.{shown}")
            return redirect(reverse("webhook", args=[proj.team.name, proj.name, webhook.id]))
        status, field = 400, errors.field
    context = {**_context(proj, form, field), "webhooks": services.webhooks_of(proj)}
    return render(request, "automations/webhooks.html", context, status=status)


@login_required
def webhook_page(request: HttpRequest, team: str, project: str, webhook_id: str) -> HttpResponse:
    webhook = _webhook(request, team, project, webhook_id)
    form, status, field = _form_of(webhook), 200, ""
    if request.method == "POST":
        form = _form_from_post(request)
        changes = {k: v for k, v in form.items() if k != "secret" and k != "model"}
        changes["model"] = form["model"] or None
        if form["secret"]:
            changes["secret"] = form["secret"]
        errors = form_errors(request, "Webhook not saved", with_field=True)
        with errors:
            services.webhook_update(user=request_user(request), webhook=webhook, changes=changes)
            messages.success(request, "Webhook saved.")
            return redirect(request.path)
        status, field = 400, errors.field
    context = {
        **_context(webhook.project, form, field),
        "webhook": webhook,
        "deliveries": services.deliveries_of(webhook, limit=50),
    }
    return render(request, "automations/webhook.html", context, status=status)


@login_required
@require_POST
def webhook_test(request: HttpRequest, team: str, project: str, webhook_id: str) -> HttpResponse:
    webhook = _webhook(request, team, project, webhook_id)
    with form_errors(request, "Test event not sent"):
        services.send_test(user=request_user(request), webhook=webhook)
        messages.success(request, "Test event queued: it shows below once sent.")
    return redirect(reverse("webhook", args=[team, project, webhook.id]))


@login_required
@require_POST
def webhook_redeliver(request: HttpRequest, team: str, project: str, webhook_id: str, delivery_id: str) -> HttpResponse:
    webhook = _webhook(request, team, project, webhook_id)
    with policy_errors():
        delivery = services.delivery_get(webhook, delivery_id)
    with form_errors(request, "Not redelivered"):
        services.redeliver(user=request_user(request), webhook=webhook, delivery=delivery)
        messages.success(request, f"Delivery {delivery.id[:8]} queued again.")
    return redirect(reverse("webhook", args=[team, project, webhook.id]))


@login_required
@require_POST
def webhook_delete(request: HttpRequest, team: str, project: str, webhook_id: str) -> HttpResponse:
    webhook = _webhook(request, team, project, webhook_id)
    with form_errors(request, "Webhook not deleted"):
        services.webhook_delete(user=request_user(request), webhook=webhook)
        messages.success(request, f"Webhook {webhook.name} deleted.")
    return redirect(reverse("webhooks", args=[team, project]))
