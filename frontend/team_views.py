"""Team pages: the teams list (and team creation), a team's members, roles and invitations
(server-rendered, thin). Forms post to small action URLs that redirect back
(post/redirect/get), except an invitation's creation, whose answer shows its link once.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts import access, selectors, services
from accounts.access import access_project
from accounts.models import Invitation, Membership, Project, ProjectRole, Team, User
from accounts.sso import configured_providers
from frontend.common import request_user
from frontend.errors import form_errors, policy_errors


def _team(request: HttpRequest, name: str, *, manage: bool = False) -> Team:
    team = selectors.team_by_name(name)
    if team is None:
        raise Http404("Not found.")
    with policy_errors():
        access.require_team(request.user, team, manage=manage)
    return team


@login_required
def teams_page(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    if request.method == "POST":
        with form_errors(request):
            team = services.team_create(
                name=request.POST.get("name", ""),
                display_name=request.POST.get("display_name", "").strip(),
                owner=user,
            )
            messages.success(request, f"Team {team.name} created.")
            return redirect("team", team.name)
    roles = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
    teams = [(team, roles.get(team.pk)) for team in selectors.teams_visible_to(user)]
    return render(request, "accounts/teams.html", {"teams": teams, "can_create": access.can_create_team(user)})


@login_required
def team_page(request: HttpRequest, team: str) -> HttpResponse:
    found = _team(request, team)
    return _render_team(request, found)


def _render_team(
    request: HttpRequest,
    team: Team,
    *,
    issued: services.IssuedInvitation | None = None,
    invite: dict[str, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = request_user(request)
    can_manage = access.can_manage_team(user, team)
    personal = team.personal_owner_id is not None
    members = list(selectors.members_of(team))
    owners = sum(1 for m in members if m.role == Membership.Role.OWNER)
    rows = [
        {
            "membership": m,
            "is_you": m.user_id == user.pk,
            "can_change": can_manage and not personal and not m.managed_by,
            # Why a membership the identity provider manages offers no controls (access.py).
            "managed_reason": access.membership_managed_reason(m),
            # The last owner cannot leave or be demoted: the page says so instead of offering it.
            "is_last_owner": m.role == Membership.Role.OWNER and owners <= 1,
        }
        for m in members
    ]
    context = {
        "team": team,
        "rows": rows,
        "personal": personal,
        "can_manage": can_manage and not personal,
        "is_member": any(r["is_you"] for r in rows),
        "invitations": list(selectors.pending_invitations_of(team)) if can_manage else [],
        "issued": issued,
        "projects": selectors_projects_of(user, team),
        "team_roles": Membership.Role.values,
        # A personal team has one member: people come into its projects one project at a time.
        "invitable_projects": [p for p in selectors_projects_of(user, team) if access.can(user, "project.invite", p)]
        if personal
        else [],
        "project_roles": [role.label for role in ProjectRole],
        "invite": invite or {"invitee": "", "role": ProjectRole.MAINTAINER.label, "project": ""},
        "sso_available": bool(configured_providers()),
    }
    response = render(request, "accounts/team.html", context, status=status)
    if issued is not None:
        response["Cache-Control"] = "no-store"
    return response


def selectors_projects_of(user: User, team: Team) -> list[Project]:
    return list(access.visible_projects(user).filter(team=team).order_by("name"))


@login_required
@require_POST
def team_invite(request: HttpRequest, team: str) -> HttpResponse:
    found = _team(request, team)
    if found.personal_owner_id is not None:
        return _personal_team_invite(request, found)
    with policy_errors():
        access.require_team(request.user, found, manage=True)
    issued: services.IssuedInvitation | None = None
    with form_errors(request):
        target = request.POST.get("invitee", "").strip()
        issued = services.invitation_create(
            team=found,
            inviter=request_user(request),
            role=request.POST.get("role", Membership.Role.MEMBER),
            email=target if "@" in target else "",
            username="" if "@" in target else target,
        )
    # SECURITY: the link is shown in this response only.
    return _render_team(request, found, issued=issued, status=200 if issued else 400)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, team: str, invitation_id: str) -> HttpResponse:
    found = _team(request, team, manage=True)
    invitation = Invitation.objects.filter(team=found, pk=invitation_id[:32]).first()
    if invitation is None:
        raise Http404("Not found.")
    services.invitation_revoke(invitation=invitation, actor=request_user(request))
    messages.success(request, f"Invitation to {invitation.addressee} revoked.")
    return redirect("team", found.name)


@login_required
@require_POST
def team_sso(request: HttpRequest, team: str) -> HttpResponse:
    found = _team(request, team, manage=True)
    required = request.POST.get("sso_required") == "on"
    with form_errors(request):
        services.team_sso_required_set(team=found, required=required, actor=request_user(request))
        messages.success(
            request,
            f"Members of {found.name} must sign in through single sign-on."
            if required
            else f"Members of {found.name} may sign in with a password again.",
        )
    return redirect("team", found.name)


def _member(team: Team, username: str) -> Membership:
    membership = selectors.members_of(team).filter(user__username__iexact=username).first()
    if membership is None:
        raise Http404("Not found.")
    return membership


@login_required
@require_POST
def member_role(request: HttpRequest, team: str, username: str) -> HttpResponse:
    found = _team(request, team, manage=True)
    with form_errors(request):
        services.team_member_role_set(
            membership=_member(found, username),
            role=request.POST.get("role", ""),
            actor=request_user(request),
        )
        messages.success(request, f"{username} is now {request.POST.get('role')} of {found.name}.")
    return redirect("team", found.name)


@login_required
@require_POST
def member_remove(request: HttpRequest, team: str, username: str) -> HttpResponse:
    user = request_user(request)
    leaving = username.lower() == user.username.lower()
    found = _team(request, team, manage=not leaving)
    with form_errors(request):
        services.team_member_remove(membership=_member(found, username), actor=user)
        if leaving:
            messages.success(request, f"You left {found.name}.")
            return redirect("teams")
        messages.success(request, f"{username} removed from {found.name}.")
    return redirect("team", found.name)


def _personal_team_invite(request: HttpRequest, team: Team) -> HttpResponse:
    """A personal team has no other members: its invite form brings someone into one of its
    projects (the same service as the project's access page)."""
    form = {
        "invitee": request.POST.get("invitee", "").strip()[:300],
        "role": request.POST.get("role", "")[:20],
        "project": request.POST.get("project", "")[:64],
    }
    with policy_errors():
        project = access_project(request.user, team.name, form["project"], action="project.invite")
    errors = form_errors(request, "Not invited")
    with errors:
        done = services.project_invite(
            project=project, inviter=request_user(request), role=form["role"], invitee=form["invitee"]
        )
        if done.grant is not None:
            messages.success(
                request, f"{form['invitee']} is now {ProjectRole(done.grant.role).label} of {project.path}."
            )
            return redirect("team", team.name)
        return _render_team(request, team, issued=done.issued, invite={**form, "invitee": ""})
    return _render_team(request, team, invite=form, status=400)
