"""The audit logs (a project's, and the whole site's) and the site administrators' user
list (server-rendered, thin; every filter is checked by accounts.selectors)."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import access, selectors, services
from accounts.access import access_project
from accounts.models import Project, User
from core.errors import DomainError
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors

AUDIT_PER_PAGE = 50
STAFF_USER_ACTIONS = {"deactivate", "reactivate", "make-admin", "remove-admin"}


def _audit_context(request: HttpRequest, project: Project | None) -> tuple[dict[str, object], int]:
    problems: list[str] = []
    try:
        filters = selectors.audit_filters_from(request.GET)
    except DomainError as exc:
        problems.append(exc.message)
        filters = selectors.AuditFilters()
    events = selectors.audit_events(filters=filters, project=project)
    page = Paginator(events, AUDIT_PER_PAGE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return {
        "project": project,
        "page": page,
        "filters": filters,
        "problems": problems,
        "query": query.urlencode(),
    }, 400 if problems else 200


@login_required
def project_audit_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    with policy_errors():
        proj = access_project(request.user, team, project, action="project.view_audit")
    context, status = _audit_context(request, proj)
    return render(request, "accounts/audit.html", context, status=status)


def _staff(request: HttpRequest) -> User:
    user = request_user(request)
    with policy_errors():
        access.require_site_admin(user)
    return user


@login_required
def staff_audit_page(request: HttpRequest) -> HttpResponse:
    _staff(request)
    context, status = _audit_context(request, None)
    return render(request, "accounts/audit.html", context, status=status)


@login_required
def staff_users_page(request: HttpRequest) -> HttpResponse:
    me = _staff(request)
    query = request.GET.get("q", "").strip()[:150]
    page = Paginator(selectors.users_for_admin(query), 100).get_page(request.GET.get("page"))
    rows = [{"user": u, "is_you": u.pk == me.pk} for u in page.object_list]
    return render(request, "accounts/staff_users.html", {"page": page, "rows": rows, "q": query})


@login_required
@require_POST
def staff_user_action(request: HttpRequest, username: str, action: str) -> HttpResponse:
    me = _staff(request)
    target = selectors.user_by_name(username)
    if target is None or action not in STAFF_USER_ACTIONS:
        raise Http404("Not found.")
    with form_errors(request):
        if action in {"deactivate", "reactivate"}:
            services.user_set_active(user=target, active=action == "reactivate", actor=me)
        else:
            services.user_set_site_admin(user=target, admin=action == "make-admin", actor=me)
        messages.success(request, f"{target.username}: {action.replace('-', ' ')} done.")
    return redirect("staff-users")
