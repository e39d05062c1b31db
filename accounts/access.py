"""The permission policy: the one module that answers "may user U do A on project P?".

The API, the pages, the WebSocket consumers and the querysets all ask it. Roles are
ordered (viewer < writer < maintainer < admin); an action names the lowest role that may
perform it. A user's role on a project is the highest of:

* site staff: admin everywhere;
* the project's team: its owners are admins, its members writers;
* grants on the project to the user or to a team the user belongs to.

# SECURITY: "missing" and "not visible" must look the same to the caller (404), so the
# access_* helpers raise NotFound for both and PermissionDenied only when the caller can
# already see the object but their role is too low.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Exists, OuterRef, Q, QuerySet
from rest_framework.exceptions import NotFound, PermissionDenied

from accounts.models import Membership, ProjectGrant, ProjectRole, Team, User

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from experiments.models import Project

    AnyUser = User | AnonymousUser

# action -> the lowest role that may perform it
ACTIONS: dict[str, ProjectRole] = {
    "project.view": ProjectRole.VIEWER,
    "run.view": ProjectRole.VIEWER,
    "run.create": ProjectRole.WRITER,
    "run.update": ProjectRole.WRITER,
    "run.log": ProjectRole.WRITER,
    "experiment.create": ProjectRole.WRITER,
    "model.register": ProjectRole.MAINTAINER,
    "project.update": ProjectRole.ADMIN,
    "project.manage_access": ProjectRole.ADMIN,
}

TEAM_OWNER_ROLE = ProjectRole.ADMIN
TEAM_MEMBER_ROLE = ProjectRole.WRITER


def _is_active(user: AnyUser | None) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def role_on(user: AnyUser | None, project: Project) -> ProjectRole | None:
    """The caller's effective role on ``project``, or None when they have none."""
    if not _is_active(user):
        return None
    assert isinstance(user, User)
    if user.is_staff:
        return ProjectRole.ADMIN
    roles: list[int] = []
    team_role = Membership.objects.filter(team_id=project.team_id, user=user).values_list("role", flat=True).first()
    if team_role == Membership.Role.OWNER:
        roles.append(TEAM_OWNER_ROLE)
    elif team_role == Membership.Role.MEMBER:
        roles.append(TEAM_MEMBER_ROLE)
    roles.extend(
        ProjectGrant.objects.filter(project=project)
        .filter(Q(user=user) | Q(team__memberships__user=user))
        .values_list("role", flat=True)
    )
    return ProjectRole(max(roles)) if roles else None


def can(user: AnyUser | None, action: str, project: Project) -> bool:
    minimum = ACTIONS[action]  # a KeyError here is a programming error: unknown action
    role = role_on(user, project)
    return role is not None and role >= minimum


def require(user: AnyUser | None, action: str, project: Project) -> None:
    """Raise NotFound if the project is invisible to the caller, PermissionDenied if the role is too low."""
    role = role_on(user, project)
    if role is None:
        raise NotFound("Not found.")
    if role < ACTIONS[action]:
        raise PermissionDenied(
            f"This needs the {ACTIONS[action].label} role on {project}; you are {ProjectRole(role).label}."
        )


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
    return Q(by_team) | Q(Exists(grants))


def visible_projects(user: AnyUser | None, queryset: QuerySet[Project] | None = None) -> QuerySet[Project]:
    from experiments.models import Project

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
