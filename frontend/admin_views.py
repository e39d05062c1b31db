"""The audit logs (a project's, and the whole site's), the site administrators' user
list, the identity page (providers, group mappings, SCIM tokens and the last sync);
server-rendered and thin, every filter checked by accounts.selectors."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import access, selectors, services
from accounts.access import access_project
from accounts.models import ApiToken, Project, Team, User
from accounts.sso import configured_providers
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


# --- identity: providers, group mappings, SCIM ----------------------------------------------------


def _identity_context(request: HttpRequest, *, issued: services.IssuedToken | None = None) -> dict[str, object]:
    teams = {
        t.name: t for t in Team.objects.filter(name__in=[team for team, _ in settings.ASSAY_OIDC_GROUP_MAP.values()])
    }
    providers = [
        {
            "id": app["provider_id"],
            "name": app["name"],
            "server_url": app["settings"].get("server_url", ""),
            "client_id": app["client_id"],
            # SECURITY: whether a secret is set, never the secret
            "has_secret": bool(app.get("secret")),
            "redirect_uri": f"{settings.PUBLIC_URL}/accounts/oidc/{app['provider_id']}/login/callback/",
        }
        for app in configured_providers()
    ]
    return {
        "providers": providers,
        "signup": settings.ASSAY_OIDC_SIGNUP,
        "groups_claim": settings.ASSAY_OIDC_GROUPS_CLAIM,
        "required_domains": settings.ASSAY_SSO_REQUIRED_DOMAINS,
        "sso_teams": Team.objects.filter(sso_required=True).order_by("name"),
        "mappings": [
            {"group": group, "team": team, "role": role, "exists": team in teams}
            for group, (team, role) in sorted(settings.ASSAY_OIDC_GROUP_MAP.items())
        ],
        "scim_url": f"{settings.PUBLIC_URL}/scim/v2",
        "scim_tokens": selectors.scim_tokens(),
        "scim_groups": selectors.scim_groups_summary(),
        "last_sync": selectors.scim_last_sync(),
        "last_change": selectors.scim_last_change(),
        "issued": issued,
        "now": timezone.now(),
    }


@login_required
def staff_identity_page(request: HttpRequest) -> HttpResponse:
    _staff(request)
    return render(request, "accounts/staff_identity.html", _identity_context(request))


@login_required
@require_POST
def staff_scim_token_create(request: HttpRequest) -> HttpResponse:
    me = _staff(request)
    issued: services.IssuedToken | None = None
    with form_errors(request):
        issued = services.token_create(user=me, name=request.POST.get("name", ""), scope=ApiToken.Scope.SCIM)
    # SECURITY: the raw token is in this one response only (never in a message or the session).
    response = render(
        request,
        "accounts/staff_identity.html",
        _identity_context(request, issued=issued),
        status=200 if issued else 400,
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def staff_scim_token_revoke(request: HttpRequest, scim_token_id: str) -> HttpResponse:
    me = _staff(request)
    token = selectors.scim_tokens().filter(pk=scim_token_id[:32]).first()
    if token is None:
        raise Http404("Not found.")
    services.token_revoke(token=token, actor=me)
    messages.success(request, f"SCIM token {token.name} revoked: the identity provider's calls now answer 401.")
    return redirect("staff-identity")
