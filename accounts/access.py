"""The permission policy: the one module that answers "may user U do A on project P?".

The API, the pages, the WebSocket consumers and the querysets all ask it. Roles are
ordered (viewer < writer < maintainer < admin); an action names the lowest role that may
perform it. A user's role on a project is the highest of:

* site staff: admin everywhere;
* the project's team: its owners are admins, its members writers;
* grants on the project to the user or to a team the user belongs to;
* an ``internal`` project: every signed-in active user is at least a viewer.

Teams: their members see them (and so does anyone who can see one of their projects);
owners (and staff) manage members and invitations. Site staff alone administer users
and read the whole audit log; a project's admins read the project's audit events.
An API token acts as its user, so it never grants more than the user has; a ``read``
token may only use safe methods (``token_allows``).

# SECURITY: "missing" and "not visible" must look the same to the caller (404), so the
# access_* helpers raise NotFound for both and Forbidden only when the caller can
# already see the object but their role is too low.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from accounts.models import Membership, Project, ProjectGrant, ProjectRole, Team, User
from core.errors import Conflict, Forbidden, NotFound

if TYPE_CHECKING:
    from collections.abc import Iterable

    from django.contrib.auth.models import AnonymousUser

    AnyUser = User | AnonymousUser

# action -> the lowest role that may perform it
ACTIONS: dict[str, ProjectRole] = {
    "project.view": ProjectRole.VIEWER,
    "run.view": ProjectRole.VIEWER,
    "run.create": ProjectRole.WRITER,
    "run.update": ProjectRole.WRITER,
    "run.log": ProjectRole.WRITER,
    "artifact.view": ProjectRole.VIEWER,
    "artifact.upload": ProjectRole.WRITER,
    "experiment.create": ProjectRole.WRITER,
    "experiment.update": ProjectRole.WRITER,  # rename, tags (the MLflow API)
    "experiment.delete": ProjectRole.MAINTAINER,  # soft delete and restore, with its runs (the MLflow API)
    "run.delete": ProjectRole.WRITER,  # soft delete and restore (the MLflow API)
    "model.view": ProjectRole.VIEWER,
    "model.create": ProjectRole.MAINTAINER,
    "model.register": ProjectRole.MAINTAINER,
    "model.update": ProjectRole.MAINTAINER,
    "model.protect": ProjectRole.ADMIN,  # which aliases only a merged review may move
    "alias.move": ProjectRole.MAINTAINER,  # unprotected aliases only: protected ones never move directly
    # delete a model repository or a version (never one an alias, a review or the alias log holds)
    "model.delete": ProjectRole.ADMIN,
    "review.view": ProjectRole.VIEWER,
    "review.create": ProjectRole.WRITER,  # open a review request, comment, review
    "review.comment": ProjectRole.WRITER,
    "review.merge": ProjectRole.MAINTAINER,  # also: dismiss reviews, re-run checks (reviews.policy decides the rest)
    "review.settings": ProjectRole.ADMIN,  # the review policy of a project or a model repository (R10)
    "project.update": ProjectRole.ADMIN,
    "project.manage_access": ProjectRole.ADMIN,
    "project.invite": ProjectRole.ADMIN,  # bring someone in (by username or e-mail) with a role
    "project.transfer": ProjectRole.ADMIN,
    "project.view_audit": ProjectRole.ADMIN,
    "webhook.manage": ProjectRole.ADMIN,  # webhooks: see and edit targets, secrets, deliveries
    # `assay import`: runs with their source's ids, times and authors; models with their versions
    # and aliases (an unprotected alias as alias.move; a protected one only as project admin).
    "run.import": ProjectRole.WRITER,
    "model.import": ProjectRole.MAINTAINER,
    "alias.import_protected": ProjectRole.ADMIN,
}

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

TEAM_OWNER_ROLE = ProjectRole.ADMIN
TEAM_MEMBER_ROLE = ProjectRole.WRITER


def _is_active(user: AnyUser | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def _combine(project: Project, team_role: str | None, grant_roles: Iterable[int | None]) -> ProjectRole | None:
    """The rule itself: the highest of the team role, the grants and internal visibility."""
    roles: list[int] = [r for r in grant_roles if r is not None]
    if team_role == Membership.Role.OWNER:
        roles.append(TEAM_OWNER_ROLE)
    elif team_role == Membership.Role.MEMBER:
        roles.append(TEAM_MEMBER_ROLE)
    if project.visibility == Project.Visibility.INTERNAL:
        roles.append(ProjectRole.VIEWER)
    return ProjectRole(max(roles)) if roles else None


# Names of the annotations role_annotations() adds (see role_on(annotated=...)).
TEAM_ROLE_ANNOTATION = "_access_team_role"
GRANT_ROLE_ANNOTATION = "_access_grant_role"


def role_needs_query(user: AnyUser | None) -> bool:
    """Whether the caller's role on a project depends on their memberships and grants (it
    does not for anonymous, inactive and staff users: role_on answers those at once)."""
    return _is_active(user) and not getattr(user, "is_staff", False)


def role_annotations(user: AnyUser | None, *, prefix: str = "") -> dict[str, Subquery]:
    """Subqueries that carry, on each row of a queryset over Project (or, with
    ``prefix="project__"``, over anything with a project FK), what role_on needs: the
    caller's team membership role and highest grant. Loading an object and the caller's
    role in one query; role_on(user, project, annotated=row) then applies the rule. Empty
    for anonymous, inactive and staff users (their role needs no query)."""
    if not role_needs_query(user):
        return {}
    assert isinstance(user, User)
    team_role = Membership.objects.filter(team=OuterRef(f"{prefix}team"), user=user).values("role")[:1]
    grant_role = (
        ProjectGrant.objects.filter(project=OuterRef(f"{prefix}pk" if prefix else "pk"))
        .filter(Q(user=user) | Q(team__memberships__user=user))
        .order_by("-role")
        .values("role")[:1]
    )
    return {TEAM_ROLE_ANNOTATION: Subquery(team_role), GRANT_ROLE_ANNOTATION: Subquery(grant_role)}


def role_on(user: AnyUser | None, project: Project, *, annotated: object | None = None) -> ProjectRole | None:
    """The caller's effective role on ``project``, or None when they have none.

    ``annotated``: a row loaded with role_annotations(user) in the same request: its
    annotations are used instead of two more queries (never cached across requests)."""
    if not _is_active(user):
        return None
    assert isinstance(user, User)
    if user.is_staff:
        return ProjectRole.ADMIN
    if annotated is not None and hasattr(annotated, TEAM_ROLE_ANNOTATION):
        return _combine(project, getattr(annotated, TEAM_ROLE_ANNOTATION), [getattr(annotated, GRANT_ROLE_ANNOTATION)])
    team_role = Membership.objects.filter(team_id=project.team_id, user=user).values_list("role", flat=True).first()
    grants = (
        ProjectGrant.objects.filter(project=project)
        .filter(Q(user=user) | Q(team__memberships__user=user))
        .values_list("role", flat=True)
    )
    return _combine(project, team_role, grants)


def can(user: AnyUser | None, action: str, project: Project, *, annotated: object | None = None) -> bool:
    """``annotated``: see role_on (a project loaded by access_project carries the caller's role)."""
    minimum = ACTIONS[action]  # a KeyError here is a programming error: unknown action
    role = role_on(user, project, annotated=annotated)
    return role is not None and role >= minimum


def require(user: AnyUser | None, action: str, project: Project, *, annotated: object | None = None) -> None:
    """Raise NotFound if the project is invisible to the caller, Forbidden if the role is too low.
    ``annotated``: see role_on."""
    role = role_on(user, project, annotated=annotated)
    if role is None:
        raise NotFound("Not found.")
    if role < ACTIONS[action]:
        raise Forbidden(f"This needs the {ACTIONS[action].label} role on {project}; you are {ProjectRole(role).label}.")


def access_project(user: AnyUser | None, team: str, name: str, *, action: str = "project.view") -> Project:
    """The project ``team/name`` (names compared case-insensitively) if ``user`` may do
    ``action`` on it. # SECURITY: NotFound for a missing project and an invisible one alike."""
    project = (
        Project.objects.select_related("team")
        .filter(team__name__iexact=team, name__iexact=name)
        .annotate(**role_annotations(user))  # the caller's role in the same query
        .first()
    )
    if project is None:
        raise NotFound("Not found.")
    require(user, action, project, annotated=project)
    return project


def project_filter(user: AnyUser | None, *, prefix: str = "", minimum: ProjectRole = ProjectRole.VIEWER) -> Q:
    """A Q over Project (or, with ``prefix="project__"``, over anything with a project FK)
    that keeps exactly the projects on which ``user`` holds at least ``minimum``."""
    if not _is_active(user):
        return Q(pk__in=[])
    assert isinstance(user, User)
    if user.is_staff:
        return Q()
    p = prefix
    member_roles = (
        [Membership.Role.OWNER] if minimum > TEAM_MEMBER_ROLE else [Membership.Role.OWNER, Membership.Role.MEMBER]
    )
    if minimum > TEAM_OWNER_ROLE:
        member_roles = []
    # Exists, not a join over memberships: a join yields one row per team member, so a
    # project (or run) seen through a grant would be listed once per member.
    by_team = Exists(Membership.objects.filter(team=OuterRef(f"{p}team"), user=user, role__in=member_roles))
    grants = ProjectGrant.objects.filter(project=OuterRef(f"{p}pk" if p else "pk"), role__gte=minimum).filter(
        Q(user=user) | Q(team__memberships__user=user)
    )
    visible = Q(by_team) | Q(Exists(grants))
    if minimum <= ProjectRole.VIEWER:
        visible |= Q(**{f"{p}visibility": Project.Visibility.INTERNAL})
    return visible


def visible_projects(user: AnyUser | None, queryset: QuerySet[Project] | None = None) -> QuerySet[Project]:
    qs = queryset if queryset is not None else Project.objects.all()
    return qs.filter(project_filter(user)).distinct()


def can_create_project(user: AnyUser | None, team: Team) -> bool:
    """Members of a team (and site staff) may create projects in it, as in W&B."""
    if not _is_active(user):
        return False
    assert isinstance(user, User)
    return user.is_staff or Membership.objects.filter(team=team, user=user).exists()


def can_see_team(user: AnyUser | None, team: Team) -> bool:
    if not _is_active(user):
        return False
    assert isinstance(user, User)
    if user.is_staff or Membership.objects.filter(team=team, user=user).exists():
        return True
    return visible_projects(user).filter(team=team).exists()


# --- teams ---------------------------------------------------------------------------------


def team_role(user: AnyUser | None, team: Team) -> str | None:
    """``owner``, ``member`` or None."""
    if not _is_active(user):
        return None
    assert isinstance(user, User)
    return Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()


def can_manage_team(user: AnyUser | None, team: Team) -> bool:
    """Owners (and site staff) invite, remove and change the roles of members."""
    if not _is_active(user):
        return False
    assert isinstance(user, User)
    return user.is_staff or team_role(user, team) == Membership.Role.OWNER


def require_team(user: AnyUser | None, team: Team, *, manage: bool = False) -> None:
    """NotFound when the caller may not see the team, Forbidden when they may not manage it."""
    if not can_see_team(user, team):
        raise NotFound("Not found.")
    if manage and not can_manage_team(user, team):
        raise Forbidden(f"Only the owners of team {team.name} may do this.")


def membership_managed_reason(membership: Membership) -> str | None:
    """Why a membership cannot be edited by hand (its role changed, it removed), or None.
    A membership made from an identity provider's groups follows those groups at every
    sign-in: change the groups at the provider instead."""
    if membership.managed_by:
        return (
            f"{membership.user.username}'s membership of {membership.team.name} is managed by the "
            f"identity provider {membership.managed_by!r} (its groups claim): change their groups there."
        )
    return None


def require_membership_editable(membership: Membership) -> None:
    reason = membership_managed_reason(membership)
    if reason:
        raise Conflict(reason, code="managed_by_idp")


def can_create_team(user: AnyUser | None) -> bool:
    return _is_active(user)


def can_transfer_to(user: AnyUser | None, team: Team) -> bool:
    """A project moves only into a team the caller owns (or anywhere, for site staff), but
    never into another user's personal team: that belongs to its user alone."""
    if team.personal_owner_id is not None and team.personal_owner_id != getattr(user, "pk", None):
        return False
    return can_manage_team(user, team)


def visible_teams(user: AnyUser | None) -> QuerySet[Team]:
    if not _is_active(user):
        return Team.objects.none()
    assert isinstance(user, User)
    if user.is_staff:
        return Team.objects.all()
    return Team.objects.filter(Q(memberships__user=user) | Q(projects__in=visible_projects(user))).distinct()


# --- site administration, audit, tokens --------------------------------------------------------


def is_site_admin(user: AnyUser | None) -> bool:
    return _is_active(user) and bool(getattr(user, "is_staff", False))


def require_site_admin(user: AnyUser | None) -> None:
    if not is_site_admin(user):
        raise Forbidden("Only site administrators may do this.")


def token_allows(scope: str, method: str) -> bool:
    """A ``read`` token may only use safe methods; a ``write`` token whatever its user may."""
    return scope == "write" or method.upper() in SAFE_METHODS
