"""Account, team, access, token and administration pages (server-rendered, thin).

Every page asks the policy (``accounts.access``) and calls a
service for every change; templates receive ready booleans (``can_manage``), never rules.
Forms post to small action URLs that redirect back (post/redirect/get), except token and
invitation creation, whose answer shows the secret once and must not be stored anywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from allauth.account.models import EmailAddress
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts import access, selectors, services
from accounts.access import access_project
from accounts.adapters import INVITATION_SESSION_KEY, AccountAdapter
from accounts.models import ApiToken, Invitation, Membership, Project, ProjectRole, Team, User
from core.errors import DomainError, Invalid
from core.pages import raise_for_page
from frontend.views import policy_errors

ROLE_NAMES = [role.label for role in ProjectRole]
AUDIT_PER_PAGE = 50
TOKEN_EXPIRY_CHOICES = [("30", "30 days"), ("90", "90 days"), ("366", "1 year"), ("", "Never")]


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)  # login_required ran first
    return request.user


@contextmanager
def service_errors(request: HttpRequest) -> Iterator[None]:
    """A refused change (bad input, conflict) becomes a message on the page it came from."""
    try:
        yield
    except DomainError as exc:
        raise_for_page(exc)
        messages.error(request, exc.message)


# --- account settings ------------------------------------------------------------------------------


@login_required
def settings_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    context = {
        "teams": selectors.teams_visible_to(user).filter(memberships__user=user),
        "token_count": selectors.tokens_of(user).filter(revoked_at__isnull=True).count(),
        "email_verified": EmailAddress.objects.filter(user=user, verified=True).exists(),
    }
    return render(request, "accounts/settings.html", context)


@login_required
def tokens_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    issued: services.IssuedToken | None = None
    status = 200
    if request.method == "POST":
        days = request.POST.get("expires_in_days", "")
        if days not in {value for value, _ in TOKEN_EXPIRY_CHOICES}:
            messages.error(request, "Choose an expiry from the list.")
            status = 400
        else:
            try:
                issued = services.token_create(
                    user=user,
                    name=request.POST.get("name", ""),
                    scope=request.POST.get("scope", ""),
                    expires_at=timezone.now() + timedelta(days=int(days)) if days else None,
                )
            except DomainError as exc:
                messages.error(request, exc.message)
                status = 400
    now = timezone.now()
    tokens = [
        (token, token.revoked_at is None and (token.expires_at is None or token.expires_at > now))
        for token in selectors.tokens_of(user)
    ]
    context = {
        "tokens": tokens,
        "issued": issued,
        "expiry_choices": TOKEN_EXPIRY_CHOICES,
        "scopes": ApiToken.Scope.values,
    }
    # SECURITY: the raw token is in this one response only (never in a message or the session).
    response = render(request, "accounts/tokens.html", context, status=status)
    if issued is not None:
        response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, token_id: str) -> HttpResponse:
    user = _user(request)
    token = selectors.tokens_of(user).filter(pk=token_id[:32]).first()
    if token is None:
        raise Http404("Not found.")
    services.token_revoke(token=token, actor=user)
    messages.success(request, f"Token {token.prefix}… revoked.")
    return redirect("tokens")


# --- teams ----------------------------------------------------------------------------------------


def _team(request: HttpRequest, name: str, *, manage: bool = False) -> Team:
    team = selectors.team_by_name(name)
    if team is None:
        raise Http404("Not found.")
    with policy_errors():
        access.require_team(request.user, team, manage=manage)
    return team


@login_required
def teams_page(request: HttpRequest) -> HttpResponse:
    user = _user(request)
    if request.method == "POST":
        with service_errors(request):
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
    request: HttpRequest, team: Team, *, issued: services.IssuedInvitation | None = None, status: int = 200
) -> HttpResponse:
    user = _user(request)
    can_manage = access.can_manage_team(user, team)
    personal = team.personal_owner_id is not None
    members = list(selectors.members_of(team))
    owners = sum(1 for m in members if m.role == Membership.Role.OWNER)
    rows = [
        {
            "membership": m,
            "is_you": m.user_id == user.pk,
            "can_change": can_manage and not personal,
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
    found = _team(request, team, manage=True)
    issued: services.IssuedInvitation | None = None
    with service_errors(request):
        target = request.POST.get("invitee", "").strip()
        issued = services.invitation_create(
            team=found,
            inviter=_user(request),
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
    services.invitation_revoke(invitation=invitation, actor=_user(request))
    messages.success(request, f"Invitation to {invitation.addressee} revoked.")
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
    with service_errors(request):
        services.team_member_role_set(
            membership=_member(found, username),
            role=request.POST.get("role", ""),
            actor=_user(request),
        )
        messages.success(request, f"{username} is now {request.POST.get('role')} of {found.name}.")
    return redirect("team", found.name)


@login_required
@require_POST
def member_remove(request: HttpRequest, team: str, username: str) -> HttpResponse:
    user = _user(request)
    leaving = username.lower() == user.username.lower()
    found = _team(request, team, manage=not leaving)
    with service_errors(request):
        services.team_member_remove(membership=_member(found, username), actor=user)
        if leaving:
            messages.success(request, f"You left {found.name}.")
            return redirect("teams")
        messages.success(request, f"{username} removed from {found.name}.")
    return redirect("team", found.name)


# --- invitations ------------------------------------------------------------------------------------


def invitation_link(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed link. Its secret is moved into the session at once and the browser is
    sent to ``/invitations/``, so the secret is in the URL of this one request only: never
    in a page's address (history, bookmarks, screenshots), never in a Referer header, and
    never in a 4xx log line (unknown links are redirected like valid ones)."""
    # SECURITY: the bounded, well-formed raw value is kept for invitation_find; nothing is logged.
    well_formed = isinstance(token, str) and token.startswith(services.INVITATION_PREFIX) and len(token) <= 200
    request.session[INVITATION_SESSION_KEY] = token if well_formed else ""  # "": a link, but no invitation
    response = redirect("invitation")
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store"
    return response


def invitation_page(request: HttpRequest) -> HttpResponse:
    """The invitation opened in this browser (see invitation_link). Signed out: it stays in
    the session (it opens sign-up in invite-only mode) and the page offers sign-in or
    sign-up, which come back here. Accepting (POST) needs a signed-in user."""
    raw = request.session.get(INVITATION_SESSION_KEY)
    invitation = services.invitation_find(raw) if isinstance(raw, str) else None
    if request.method == "POST" and not request.user.is_authenticated:
        return redirect(f"{reverse('login')}?next={reverse('invitation')}")
    if invitation is None:
        if request.method == "POST":
            messages.error(request, "There is no valid invitation open in this browser.")
            return redirect("invitation")
        opened = raw is not None
        return _invitation_response(request, {"invitation": None, "opened": opened}, status=404 if opened else 200)
    if not request.user.is_authenticated:
        here = reverse("invitation")
        return _invitation_response(
            request,
            {
                "invitation": invitation,
                "login_url": f"{reverse('login')}?next={here}",
                "signup_url": f"{reverse('account_signup')}?next={here}",
                "can_sign_up": AccountAdapter(request).is_open_for_signup(request),
            },
        )
    user = _user(request)
    wrong_account = invitation.invitee_id is not None and invitation.invitee_id != user.pk
    if request.method == "POST" and not wrong_account:
        with service_errors(request):
            services.invitation_accept(raw=raw, user=user)  # type: ignore[arg-type]
            request.session.pop(INVITATION_SESSION_KEY, None)
            messages.success(request, f"You joined {invitation.team.name}.")
            return redirect("team", invitation.team.name)
    return _invitation_response(request, {"invitation": invitation, "wrong_account": wrong_account})


def _invitation_response(request: HttpRequest, context: dict[str, object], status: int = 200) -> HttpResponse:
    # The site's Referrer-Policy (same-origin) stays: this address holds no secret, and with
    # no-referrer browsers send "Origin: null" on the form's POST, which CSRF refuses.
    response = render(request, "accounts/invitation.html", context, status=status)
    response["Cache-Control"] = "no-store"
    return response


# --- project access ------------------------------------------------------------------------------------


def _project(request: HttpRequest, team: str, project: str, action: str = "project.view") -> Project:
    with policy_errors():
        return access_project(request.user, team, project, action=action)


@login_required
def project_access_page(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project)
    user = _user(request)
    can_manage = access.can(user, "project.manage_access", proj)
    context = {
        "project": proj,
        "grants": [(g, ProjectRole(g.role).label) for g in selectors.grants_of(proj)],
        "can_manage": can_manage,
        "can_transfer": access.can(user, "project.transfer", proj),
        "can_view_audit": access.can(user, "project.view_audit", proj),
        "transfer_targets": [
            t for t in selectors.teams_visible_to(user) if t.pk != proj.team_id and access.can_transfer_to(user, t)
        ],
        "roles": ROLE_NAMES,
        "your_role": ProjectRole(access.role_on(user, proj) or ProjectRole.VIEWER).label,
    }
    return render(request, "accounts/project_access.html", context)


@login_required
@require_POST
def project_grant_add(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project, "project.manage_access")
    kind = request.POST.get("kind", "")
    name = request.POST.get("name", "").strip()
    with service_errors(request):
        role = services.project_role(request.POST.get("role", ""))
        grantee_user = selectors.user_by_name(name) if kind == "user" else None
        grantee_team = selectors.team_by_name(name) if kind == "team" else None
        if grantee_user is None and grantee_team is None:
            raise Invalid(f"No {kind if kind in ('user', 'team') else 'user or team'} named {name!r}.", field="name")
        services.grant_create(project=proj, role=role, user=grantee_user, team=grantee_team, actor=_user(request))
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
    with service_errors(request):
        role = services.project_role(request.POST.get("role", ""))
        services.grant_role_set(grant=grant, role=role, actor=_user(request))  # type: ignore[arg-type]
        messages.success(request, f"{kind} {name} is now {role.label} of {proj.path}.")
    return redirect("project-access", proj.team.name, proj.name)


@login_required
@require_POST
def project_grant_revoke(request: HttpRequest, team: str, project: str, kind: str, name: str) -> HttpResponse:
    proj = _project(request, team, project, "project.manage_access")
    grant = _grant_of(proj, kind, name)
    services.grant_revoke(grant=grant, actor=_user(request))  # type: ignore[arg-type]
    messages.success(request, f"Revoked the role of {kind} {name} on {proj.path}.")
    return redirect("project-access", proj.team.name, proj.name)


@login_required
@require_POST
def project_visibility(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project, "project.manage_access")
    with service_errors(request):
        services.project_visibility_set(
            project=proj, visibility=request.POST.get("visibility", ""), actor=_user(request)
        )
        messages.success(request, f"{proj.path} is now {proj.visibility}.")
    return redirect("project-access", proj.team.name, proj.name)


@login_required
@require_POST
def project_transfer(request: HttpRequest, team: str, project: str) -> HttpResponse:
    proj = _project(request, team, project, "project.transfer")
    user = _user(request)
    target = selectors.team_by_name(request.POST.get("team", "").strip())
    if target is None or not access.can_transfer_to(user, target):
        messages.error(request, "Choose a team you own.")
        return redirect("project-access", proj.team.name, proj.name)
    with service_errors(request):
        services.project_transfer(project=proj, team=target, actor=user)
        messages.success(request, f"Moved to {proj.path}.")
    return redirect("project-access", proj.team.name, proj.name)


# --- audit log and site administration --------------------------------------------------------------


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
    proj = _project(request, team, project, "project.view_audit")
    context, status = _audit_context(request, proj)
    return render(request, "accounts/audit.html", context, status=status)


def _staff(request: HttpRequest) -> User:
    user = _user(request)
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


STAFF_USER_ACTIONS = {"deactivate", "reactivate", "make-admin", "remove-admin"}


@login_required
@require_POST
def staff_user_action(request: HttpRequest, username: str, action: str) -> HttpResponse:
    me = _staff(request)
    target = selectors.user_by_name(username)
    if target is None or action not in STAFF_USER_ACTIONS:
        raise Http404("Not found.")
    with service_errors(request):
        if action in {"deactivate", "reactivate"}:
            services.user_set_active(user=target, active=action == "reactivate", actor=me)
        else:
            services.user_set_site_admin(user=target, admin=action == "make-admin", actor=me)
        messages.success(request, f"{target.username}: {action.replace('-', ' ')} done.")
    return redirect("staff-users")
