"""A project's access page: grants to users and teams, visibility and transfer
(server-rendered, thin). Every change is a service call; templates receive ready booleans
(``can_manage``), never rules; forms post to small action URLs that redirect back.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from accounts import access, selectors, services
from accounts.access import access_project
from accounts.models import Project, ProjectRole
from core.errors import Invalid
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors

ROLE_NAMES = [role.label for role in ProjectRole]
# What a teammate brought in to review needs by default: approving is for maintainers.
DEFAULT_INVITE_ROLE = ProjectRole.MAINTAINER.label


def _project(request: HttpRequest, team: str, project: str, action: str = "project.view") -> Project:
    with policy_errors():
        return access_project(request.user, team, project, action=action)


@login_required
def project_access_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    return _render_access(request, _project(request, team, project))


def _back_url(request: HttpRequest) -> str:
    """The page an invite form came from (the project, its review request …), if it is ours."""
    back = request.POST.get("next", "")
    if back and url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}) and back.startswith("/"):
        return back
    return ""


def _render_access(
    request: HttpRequest,
    proj: Project,
    *,
    issued: services.IssuedInvitation | None = None,
    invite: dict[str, str] | None = None,
    invite_error: str = "",
    status: int = 200,
) -> HttpResponse:
    user = request_user(request)
    can_manage = access.can(user, "project.manage_access", proj)
    can_invite = access.can(user, "project.invite", proj)
    context = {
        "project": proj,
        "can_invite": can_invite,
        "invitations": list(selectors.pending_project_invitations_of(proj)) if can_invite else [],
        "issued": issued,
        "invite": invite or {"invitee": "", "role": DEFAULT_INVITE_ROLE, "next": ""},
        "invite_error": invite_error,
        "grants": [(g, ProjectRole(g.role).label) for g in selectors.grants_of(proj)],
        "can_manage": can_manage,
        "can_transfer": access.can(user, "project.transfer", proj),
        "can_view_audit": access.can(user, "project.view_audit", proj),
        "transfer_targets": [t for t in selectors.transfer_targets(user, proj) if access.can_transfer_to(user, t)],
        "roles": ROLE_NAMES,
        "your_role": ProjectRole(access.role_on(user, proj) or ProjectRole.VIEWER).label,
    }
    response = render(request, "accounts/project_access.html", context, status=status)
    if issued is not None:
        response["Cache-Control"] = "no-store"  # SECURITY: the invitation link is in this response only
    return response


@login_required
@require_POST
def project_invite(request: HttpRequest, team: str, project: str) -> HttpResponse:
    """Invite someone into the project: a username gets the role at once (back to the page the
    form came from); an e-mail address gets an invitation link, shown once on the access page.
    Refused input answers the access page with the form's values kept and the error (400)."""
    proj = _project(request, team, project, "project.invite")
    form = {
        "invitee": request.POST.get("invitee", "").strip()[:300],
        "role": request.POST.get("role", "")[:20],
        "next": _back_url(request),
    }
    errors = form_errors(request, "Not invited")
    with errors:
        done = services.project_invite(
            project=proj, inviter=request_user(request), role=form["role"], invitee=form["invitee"]
        )
        if done.grant is not None:
            messages.success(
                request,
                f"{form['invitee']} is now {ProjectRole(done.grant.role).label} of {proj.path}: "
                "they can open it, and review, now.",
            )
            return redirect(form["next"] or reverse("project-access", args=[proj.team.name, proj.name]))
        return _render_access(request, proj, issued=done.issued, invite={**form, "invitee": ""})
    return _render_access(request, proj, invite=form, invite_error=errors.field or "invitee", status=400)


@login_required
@require_POST
def project_invitation_revoke(
    request: HttpRequest, team: str, project: str, project_invitation_id: str
) -> HttpResponse:
    proj = _project(request, team, project, "project.invite")
    invitation = selectors.pending_project_invitations_of(proj).filter(pk=project_invitation_id[:32]).first()
    if invitation is None:
        raise Http404("Not found.")
    services.invitation_revoke(invitation=invitation, actor=request_user(request))
    messages.success(request, f"Invitation to {invitation.addressee} revoked.")
    return redirect("project-access", proj.team.name, proj.name)


@login_required
@require_POST
def project_grant_add(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project, "project.manage_access")
    kind = request.POST.get("kind", "")
    name = request.POST.get("name", "").strip()
    with form_errors(request):
        role = services.project_role(request.POST.get("role", ""))
        grantee_user = selectors.user_by_name(name) if kind == "user" else None
        grantee_team = selectors.team_by_name(name) if kind == "team" else None
        if grantee_user is None and grantee_team is None:
            raise Invalid(f"No {kind if kind in ('user', 'team') else 'user or team'} named {name!r}.", field="name")
        services.grant_create(
            project=proj, role=role, user=grantee_user, team=grantee_team, actor=request_user(request)
        )
        messages.success(request, f"{kind} {name} is now {role.label} of {proj.path}.")
    return redirect("project-access", proj.team.name, proj.name)


def _grant_of(proj: Project, kind: str, name: str) -> object:
    grants = selectors.grants_of(proj)
    grant = (
        grants.filter(user__username__iexact=name).first()
        if kind == "user"
        else grants.filter(team__name__iexact=name).first()
        if kind == "team"
        else None
    )
    if grant is None:
        raise Http404("Not found.")
    return grant


@login_required
@require_POST
def project_grant_change(request: HttpRequest, team: str, project: str, kind: str, name: str) -> HttpResponse:
    proj = _project(request, team, project, "project.manage_access")
    grant = _grant_of(proj, kind, name)
    with form_errors(request):
        role = services.project_role(request.POST.get("role", ""))
        services.grant_role_set(grant=grant, role=role, actor=request_user(request))  # type: ignore[arg-type]
        messages.success(request, f"{kind} {name} is now {role.label} of {proj.path}.")
    return redirect("project-access", proj.team.name, proj.name)


@login_required
@require_POST
def project_grant_revoke(request: HttpRequest, team: str, project: str, kind: str, name: str) -> HttpResponse:
    proj = _project(request, team, project, "project.manage_access")
    grant = _grant_of(proj, kind, name)
    services.grant_revoke(grant=grant, actor=request_user(request))  # type: ignore[arg-type]
    messages.success(request, f"Revoked the role of {kind} {name} on {proj.path}.")
    return redirect("project-access", proj.team.name, proj.name)


@login_required
@require_POST
def project_visibility(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project, "project.manage_access")
    with form_errors(request):
        services.project_visibility_set(
            project=proj, visibility=request.POST.get("visibility", ""), actor=request_user(request)
        )
        messages.success(request, f"{proj.path} is now {proj.visibility}.")
    return redirect("project-access", proj.team.name, proj.name)


@login_required
@require_POST
def project_transfer(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project, "project.transfer")
    user = request_user(request)
    target = selectors.team_by_name(request.POST.get("team", "").strip())
    if target is None or not access.can_transfer_to(user, target):
        messages.error(request, "Choose a team you own.")
        return redirect("project-access", proj.team.name, proj.name)
    with form_errors(request):
        services.project_transfer(project=proj, team=target, actor=user)
        messages.success(request, f"Moved to {proj.path}.")
    return redirect("project-access", proj.team.name, proj.name)
