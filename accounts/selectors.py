"""Reads on accounts (teams, projects, grants, tokens, the audit log) shared by the API and
the pages, narrowed by the policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from accounts import access
from accounts.models import ApiToken, AuditEvent, Invitation, Membership, Project, ProjectGrant, Team, User
from core.errors import Invalid

if TYPE_CHECKING:
    from accounts.access import AnyUser

AUDIT_PAGE_MAX = 500


def teams_visible_to(user: AnyUser | None) -> QuerySet[Team]:
    return access.visible_teams(user).order_by("name")


def transfer_targets(user: AnyUser | None, project: Project) -> QuerySet[Team]:
    """The teams the access page offers to move ``project`` into: those ``user`` owns by
    membership (site staff too: the page says "a team you own"), never another user's
    personal team, not the project's own team."""
    if not isinstance(user, User) or not user.is_active:
        return Team.objects.none()
    owned = Team.objects.filter(memberships__user=user, memberships__role=Membership.Role.OWNER)
    return (
        owned.filter(Q(personal_owner__isnull=True) | Q(personal_owner=user))
        .exclude(pk=project.team_id)
        .order_by("name")
    )


def projects_visible_to(user: AnyUser | None) -> QuerySet[Project]:
    return access.visible_projects(user, Project.objects.select_related("team"))


def team_by_name(name: str) -> Team | None:
    return Team.objects.filter(name__iexact=name).first() if isinstance(name, str) and len(name) <= 64 else None


def members_of(team: Team) -> QuerySet[Membership]:
    return Membership.objects.filter(team=team).select_related("user").order_by("user__username")


def pending_invitations_of(team: Team) -> QuerySet[Invitation]:
    """The team's own invitations (those into one of its projects are on the project's access page)."""
    return Invitation.objects.filter(
        team=team,
        project__isnull=True,
        accepted_at__isnull=True,
        revoked_at__isnull=True,
        expires_at__gt=timezone.now(),
    ).select_related("invitee", "created_by")


def pending_project_invitations_of(project: Project) -> QuerySet[Invitation]:
    return Invitation.objects.filter(
        project=project, accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now()
    ).select_related("created_by")


def grants_of(project: Project) -> QuerySet[ProjectGrant]:
    return (
        ProjectGrant.objects.filter(project=project)
        .select_related("user", "team")
        .order_by("team__name", "user__username")
    )


def tokens_of(user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at")


def user_by_name(username: str) -> User | None:
    if not isinstance(username, str) or len(username) > 150:
        return None
    return User.objects.filter(username__iexact=username).first()


@dataclass(frozen=True)
class AuditFilters:
    """Validated filters of the audit log (the API and the pages parse the query string into this)."""

    actor: str = ""
    action: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None


def audit_events(*, filters: AuditFilters, project: Project | None = None) -> QuerySet[AuditEvent]:
    """The log, newest first. The caller has checked that it may read it (site staff for
    all of it; the project's admins for ``project``)."""
    qs = AuditEvent.objects.all()
    if project is not None:
        qs = qs.filter(project=project)
    if filters.actor:
        qs = qs.filter(actor_label__iexact=filters.actor)
    if filters.action:
        # "grant" matches grant.create, grant.change, grant.revoke.
        qs = qs.filter(Q(action=filters.action) | Q(action__startswith=filters.action.rstrip(".") + "."))
    if filters.target:
        qs = qs.filter(Q(target_label__icontains=filters.target) | Q(project_label__iexact=filters.target))
    if filters.since is not None:
        qs = qs.filter(created_at__gte=filters.since)
    if filters.until is not None:
        qs = qs.filter(created_at__lt=filters.until)
    return qs.order_by("-created_at", "-id")


def users_for_admin(query: str = "") -> QuerySet[User]:
    qs = User.objects.order_by("username")
    if query:
        qs = qs.filter(Q(username__icontains=query) | Q(email__icontains=query))
    return qs


def audit_filters_from(query: Mapping[str, str]) -> AuditFilters:
    """Parse ``actor``, ``action``, ``target``, ``since``, ``until`` (ISO dates or datetimes)
    from a query string. Raises Invalid naming the parameter.

    # SECURITY: each value is used as a value of a fixed filter, never as a field name.
    """
    values: dict[str, Any] = {}
    for name in ("actor", "action", "target"):
        value = (query.get(name) or "").strip()
        if len(value) > 200:
            raise Invalid(f"{name} is at most 200 characters.", field=name)
        values[name] = value
    for name in ("since", "until"):
        raw = (query.get(name) or "").strip()
        if not raw:
            continue
        try:
            moment = parse_datetime(raw)
            day = parse_date(raw) if moment is None and len(raw) == 10 else None
        except ValueError:
            moment = day = None
        if moment is None:
            if day is None:
                raise Invalid(f"{name} must be a date (2026-01-31) or an ISO date-time.", field=name)
            moment = datetime.combine(day, time.min)
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        values[name] = moment
    return AuditFilters(**values)


# --- identity (the staff page: providers, group mappings, SCIM) ---------------------------------


def scim_tokens() -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(scope=ApiToken.Scope.SCIM).select_related("user").order_by("-created_at")


def scim_last_sync() -> datetime | None:
    """When an identity provider last called /scim/v2/ (a SCIM token's ``last_used_at``,
    written at most once a minute)."""
    return scim_tokens().aggregate(last=Max("last_used_at"))["last"]  # type: ignore[no-any-return]


def scim_last_change() -> AuditEvent | None:
    """The latest change SCIM made (the audit log's ``by: scim`` events)."""
    return AuditEvent.objects.filter(data__by="scim").order_by("-created_at", "-id").first()


def scim_groups_summary() -> QuerySet[Team]:
    return (
        Team.objects.filter(scim_group=True)
        .annotate(scim_members=Count("memberships", filter=Q(memberships__managed_by="scim")))
        .order_by("name")
    )
