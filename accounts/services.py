"""Every write on accounts: one function per use case.

Each one validates its input (raising a domain error (``core.errors``) naming the field, before
anything is written), runs in one transaction, and records what it did in the audit log
through ``accounts.audit.audit_record`` inside that transaction. Permission checks are
the caller's job (``accounts.access``); these functions assume the caller may act, except
``project_create`` and ``project_get_or_create``, where who may create a project in a
team is part of the use case (the API's create and the first run of a new project).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from accounts import access
from accounts.audit import audit_record
from accounts.models import ApiToken, Invitation, Membership, Project, ProjectGrant, ProjectRole, Team, User
from accounts.names import RESERVED_TEAM_NAMES, canonical, name_problem, parse_project_path
from accounts.sso import configured_providers
from core.errors import Conflict, Forbidden, Invalid, NotFound
from core.querycache import CompiledQuery
from core.validation import choice, string

TOKEN_PREFIX = "asy_"  # noqa: S105 - a public marker, not a secret
INVITATION_PREFIX = "inv_"
# last_used_at is advisory; writing it at most once a minute keeps hot paths read-only.
LAST_USED_RESOLUTION = timedelta(seconds=60)
MAX_TOKEN_LIFETIME = timedelta(days=366)
INVITATION_LIFETIME = timedelta(days=7)
MAX_TOKEN_NAME = 100


def _digest(raw: str) -> str:
    # Tokens carry 256 bits of randomness, so a plain SHA-256 is enough (no slow KDF needed).
    return hashlib.sha256(raw.encode()).hexdigest()


# --- API tokens -------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedToken:
    token: ApiToken
    raw: str  # shown once, never stored


@transaction.atomic
def token_create(
    *,
    user: User,
    name: str,
    scope: str = ApiToken.Scope.WRITE,
    expires_at: datetime | None = None,
) -> IssuedToken:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_TOKEN_NAME:
        raise Invalid(f"name must be 1-{MAX_TOKEN_NAME} characters.", field="name")
    scope = choice(scope, ApiToken.Scope.values, field="scope", message="scope must be 'read' or 'write'.")
    # SECURITY: a SCIM token creates, changes and deactivates accounts: only for site staff,
    # and never through the user-facing token forms (they offer read and write only).
    if scope == ApiToken.Scope.SCIM and not (user.is_active and user.is_staff):
        raise Invalid("A SCIM token belongs to a site administrator.", field="scope")
    if expires_at is not None:
        now = timezone.now()
        if expires_at <= now:
            raise Invalid("expires_at must be in the future.", field="expires_at")
        if expires_at > now + MAX_TOKEN_LIFETIME:
            raise Invalid("A token lives at most 366 days.", field="expires_at")
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name, scope=scope, expires_at=expires_at, prefix=raw[:12], digest=_digest(raw)
    )
    audit_record(
        actor=user,
        action="token.create",
        target=token,
        data={"scope": scope, "expires_at": expires_at.isoformat() if expires_at else None},
    )
    return IssuedToken(token=token, raw=raw)


@transaction.atomic
def token_revoke(*, token: ApiToken, actor: User | None = None) -> None:
    """Revoke at once: the API refuses the token from the commit on, and ``save()`` (not a
    queryset update) lets accounts/live.py close the WebSockets opened with it right away."""
    locked = ApiToken.objects.select_for_update().filter(pk=token.pk, revoked_at__isnull=True).first()
    if locked is None:
        return
    locked.revoked_at = timezone.now()
    locked.save(update_fields=["revoked_at"])
    token.revoked_at = locked.revoked_at
    audit_record(actor=actor or token.user, action="token.revoke", target=token)


# Every API request runs this query: compiled once (core/querycache.py), same SQL.
_TOKEN_BY_DIGEST = CompiledQuery(
    ApiToken,
    lambda digest: (
        ApiToken.objects.select_related("user")
        .filter(digest=digest, revoked_at__isnull=True, user__is_active=True)
        .order_by("pk")[:1]
    ),
    placeholders=["(placeholder: never a hex digest)"],
)


def token_authenticate(*, raw: str, scim: bool = False) -> ApiToken | None:
    """The live token behind ``raw``, or None. A ``scim`` token is only ever accepted with
    ``scim=True`` (the /scim/v2/ endpoints), and only those accept it: the API, the MLflow
    API and the sockets all come through here with the default."""
    if not raw.startswith(TOKEN_PREFIX) or len(raw) > 200:
        return None
    now = timezone.now()
    token = _TOKEN_BY_DIGEST.first(_digest(raw))
    # SECURITY: expired answers exactly as unknown (the caller sees one message for all).
    if token is None or (token.expires_at is not None and token.expires_at <= now):
        return None
    # SECURITY: the scope separates the two worlds both ways, with the same "not valid" answer.
    if (token.scope == ApiToken.Scope.SCIM) != scim:
        return None
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


# --- teams and memberships ----------------------------------------------------------------------


def handle_generate(txts: list[str | None]) -> str:
    """A free username that is also a valid, free team name, from the first usable text
    (``Ana.Lopez@corp.example`` → ``ana-lopez``, then ``ana-lopez-2``, …)."""
    base = ""
    for txt in txts:
        if not txt:
            continue
        candidate = re.sub(r"[^a-z0-9_-]+", "-", str(txt).split("@")[0].lower()).strip("-_")[:56]
        if candidate and candidate not in RESERVED_TEAM_NAMES:
            base = candidate
            break
    base = base or "user"
    name, n = base, 1
    while User.objects.filter(username__iexact=name).exists() or Team.objects.filter(name__iexact=name).exists():
        n += 1
        name = f"{base}-{n}"
    return name


@transaction.atomic
def personal_team_ensure(*, user: User) -> Team:
    """Every user has a team named after them, so ``<username>/<project>`` works on day one."""
    team = Team.objects.filter(personal_owner=user).first()
    if team is None:
        team = Team.objects.create(name=user.username.lower(), display_name=user.username, personal_owner=user)
        Membership.objects.create(team=team, user=user, role=Membership.Role.OWNER)
    return team


def _team_role(role: object) -> str:
    return choice(role, Membership.Role.values, field="role", message="role must be 'owner' or 'member'.")


def _not_personal(team: Team) -> None:
    if team.personal_owner_id is not None:
        raise Invalid(f"{team.name} is a personal team: it has exactly one member.", code="personal_team")


@transaction.atomic
def team_create(*, name: str, owner: User, display_name: str = "") -> Team:
    name = canonical(name) if isinstance(name, str) else ""
    problem = name_problem(name, team=True)
    if problem:
        raise Invalid(problem, field="name")
    display_name = string(display_name, field="display_name", max_length=128, allow_blank=True)
    # A user's personal team carries their username, so a new username is checked too.
    if Team.objects.filter(name__iexact=name).exists() or User.objects.filter(username__iexact=name).exists():
        raise Conflict(f"The name {name!r} is taken.", field="name")
    try:
        with transaction.atomic():
            team = Team.objects.create(name=name, display_name=display_name or name)
    except IntegrityError:
        raise Conflict(f"The name {name!r} is taken.", field="name") from None
    Membership.objects.create(team=team, user=owner, role=Membership.Role.OWNER)
    audit_record(actor=owner, action="team.create", target=team)
    return team


@transaction.atomic
def team_sso_required_set(*, team: Team, required: bool, actor: User) -> Team:
    """Members of ``team`` must (or need no longer) sign in through single sign-on
    (``accounts.sso.sso_required``; superusers stay exempt). Only with a provider configured:
    else nobody could sign in at all."""
    _not_personal(team)
    if required and not configured_providers():
        raise Invalid(
            "No identity provider is configured (ASSAY_OIDC_PROVIDERS): members could not sign in.",
            field="sso_required",
        )
    if team.sso_required != required:
        team.sso_required = required
        team.save(update_fields=["sso_required", "modified_at"])
        audit_record(actor=actor, action="team.sso_required", target=team, data={"required": required})
    return team


@transaction.atomic
def team_member_add(
    *,
    team: Team,
    user: User,
    role: str = Membership.Role.MEMBER,
    actor: User | None = None,
) -> Membership:
    role = _team_role(role)
    _not_personal(team)
    if not user.is_active:
        raise Invalid(f"{user.username} is deactivated.", field="username")
    if Membership.objects.filter(team=team, user=user).exists():
        raise Conflict(f"{user.username} is already a member of {team.name}.", field="username")
    membership = Membership.objects.create(team=team, user=user, role=role)
    audit_record(actor=actor, action="team.member_add", target=team, data={"user": user.username, "role": role})
    return membership


def _lock_owners(team: Team) -> int:
    """Lock the team's row (so two owners cannot both leave at once) and count its owners."""
    Team.objects.select_for_update().filter(pk=team.pk).first()
    return Membership.objects.filter(team=team, role=Membership.Role.OWNER).count()


@transaction.atomic
def team_member_role_set(*, membership: Membership, role: str, actor: User | None) -> Membership:
    role = _team_role(role)
    _not_personal(membership.team)
    owners = _lock_owners(membership.team)
    membership.refresh_from_db()
    access.require_membership_editable(membership)
    if membership.role == role:
        return membership
    if membership.role == Membership.Role.OWNER and owners <= 1:
        raise Conflict("A team keeps at least one owner: make someone else owner first.", code="last_owner")
    before = membership.role
    membership.role = role
    membership.save(update_fields=["role"])
    audit_record(
        actor=actor,
        action="team.member_role",
        target=membership.team,
        data={"user": membership.user.username, "from": before, "to": role},
    )
    return membership


@transaction.atomic
def team_member_remove(*, membership: Membership, actor: User | None) -> None:
    """Remove a member, or let one leave (``actor`` is the member). The last owner cannot go."""
    _not_personal(membership.team)
    owners = _lock_owners(membership.team)
    membership.refresh_from_db()
    access.require_membership_editable(membership)
    if membership.role == Membership.Role.OWNER and owners <= 1:
        raise Conflict("The last owner cannot leave the team: make someone else owner first.", code="last_owner")
    username = membership.user.username
    membership.delete()
    audit_record(
        actor=actor,
        action="team.member_leave" if actor is not None and actor.username == username else "team.member_remove",
        target=membership.team,
        data={"user": username},
    )


# --- invitations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    raw: str  # the link's secret, shown to the inviter once and e-mailed; never stored

    @property
    def path(self) -> str:
        return reverse("invitation-accept", args=[self.raw])

    @property
    def url(self) -> str:
        return settings.PUBLIC_URL + self.path


@transaction.atomic
def invitation_create(
    *,
    team: Team,
    inviter: User,
    role: str = Membership.Role.MEMBER,
    email: str = "",
    username: str = "",
) -> IssuedInvitation:
    role = _team_role(role)
    _not_personal(team)
    email = (email or "").strip()
    username = (username or "").strip()
    if bool(email) == bool(username):
        raise Invalid("Give either a username or an e-mail address.", field="username" if username else "email")
    invitee: User | None = None
    if username:
        invitee = User.objects.filter(username__iexact=username, is_active=True).first()
        if invitee is None:
            raise Invalid(f"No user named {username!r}.", code="not_found", field="username")
        if Membership.objects.filter(team=team, user=invitee).exists():
            raise Conflict(f"{invitee.username} is already a member of {team.name}.", field="username")
    else:
        try:
            validate_email(email)
        except ValidationError:
            raise Invalid("Enter a valid e-mail address.", field="email") from None
        if len(email) > 254:
            raise Invalid("Enter a valid e-mail address.", field="email")
    raw = INVITATION_PREFIX + secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        team=team,
        email=email if invitee is None else invitee.email,
        invitee=invitee,
        role=role,
        digest=_digest(raw),
        created_by=inviter,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    issued = IssuedInvitation(invitation=invitation, raw=raw)
    audit_record(
        actor=inviter,
        action="team.invite",
        target=team,
        data={"to": invitation.addressee, "role": role},
    )
    recipient = invitation.email
    if recipient:
        subject = f"You are invited to join {team.name} on Assay"
        body = (
            f"{inviter.username} invites you to join the team {team.name} on Assay as {role}.\n\n"
            f"Accept the invitation: {issued.url}\n\nThe link expires in {INVITATION_LIFETIME.days} days."
        )
        # E-mail after commit: a rolled-back invitation sends nothing. The link is the
        # secret, so it is not handed to a Celery task (task arguments are stored in Redis).
        transaction.on_commit(lambda: send_mail(subject, body, None, [recipient], fail_silently=True))
    return issued


def invitation_find(raw: str) -> Invitation | None:
    """The pending invitation behind a link, or None (unknown, used, revoked or expired alike)."""
    if not isinstance(raw, str) or not raw.startswith(INVITATION_PREFIX) or len(raw) > 200:
        return None
    return (
        Invitation.objects.select_related("team", "invitee", "created_by", "project__team")
        .filter(digest=_digest(raw), accepted_at__isnull=True, revoked_at__isnull=True, expires_at__gt=timezone.now())
        .first()
    )


@dataclass(frozen=True)
class ProjectInvite:
    """What inviting someone into a project did: a role granted at once (an existing user,
    by username) or an invitation link issued (an e-mail address)."""

    grant: ProjectGrant | None = None
    issued: IssuedInvitation | None = None


MAX_INVITEE = 254


@transaction.atomic
def project_invite(*, project: Project, inviter: User, role: object, invitee: object) -> ProjectInvite:
    """Bring someone into ``project`` with ``role`` (the caller checked ``project.invite``).

    ``invitee`` is a username (the role is granted at once, or raised to ``role``) or an
    e-mail address (an invitation link, e-mailed and shown once, whose acceptance grants the
    role: the way in for people without an account). Errors name ``invitee`` or ``role``:
    an unknown or deactivated user, an invalid address, the inviter themselves, someone who
    already holds the role (or higher), a pending invitation to the same address."""
    project_role_ = project_role(role, field="role")
    target = string(invitee, field="invitee", max_length=MAX_INVITEE, allow_blank=True).strip()
    if not target:
        raise Invalid("Give a username or an e-mail address.", field="invitee")
    if "@" in target:
        try:
            validate_email(target)
        except ValidationError:
            raise Invalid(f"{target!r} is not a valid e-mail address.", field="invitee") from None
        pending = Invitation.objects.filter(
            project=project,
            email__iexact=target,
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=timezone.now(),
        )
        if pending.exists():
            raise Conflict(
                f"An invitation to {target} for {project.path} is pending: revoke it to send a new one.",
                code="invitation_pending",
                field="invitee",
            )
        return ProjectInvite(
            issued=_project_invitation_issue(project=project, inviter=inviter, role=project_role_, email=target)
        )
    user = User.objects.filter(username__iexact=target).first()
    if user is None or not user.is_active:
        raise Invalid(
            f"No active user named {target!r}: invite them by e-mail instead.", code="not_found", field="invitee"
        )
    if user.pk == inviter.pk:
        raise Invalid("You cannot invite yourself.", field="invitee")
    current = access.role_on(user, project)
    if current is not None and current >= project_role_:
        raise Conflict(
            f"{user.username} is already {ProjectRole(current).label} of {project.path}.",
            code="already_has_role",
            field="invitee",
        )
    grant = ProjectGrant.objects.filter(project=project, user=user).first()
    if grant is not None:
        return ProjectInvite(grant=grant_role_set(grant=grant, role=project_role_, actor=inviter))
    return ProjectInvite(grant=grant_create(project=project, role=project_role_, actor=inviter, user=user))


def _project_invitation_issue(*, project: Project, inviter: User, role: ProjectRole, email: str) -> IssuedInvitation:
    raw = INVITATION_PREFIX + secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        team=project.team,
        project=project,
        project_role=role,
        email=email,
        digest=_digest(raw),
        created_by=inviter,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    issued = IssuedInvitation(invitation=invitation, raw=raw)
    audit_record(
        actor=inviter, action="project.invite", target=project, project=project, data={"to": email, "role": role.label}
    )
    subject = f"You are invited to {project.path} on Assay"
    body = (
        f"{inviter.username} invites you to the project {project.path} on Assay as {role.label}.\n\n"
        f"Accept the invitation (and create an account if you have none): {issued.url}\n\n"
        f"The link expires in {INVITATION_LIFETIME.days} days."
    )
    # As for team invitations: after commit, and never through a task (the link is the secret).
    transaction.on_commit(lambda: send_mail(subject, body, None, [email], fail_silently=True))
    return issued


def _project_invitation_accept(invitation: Invitation, user: User) -> ProjectGrant:
    assert invitation.project is not None
    assert invitation.project_role is not None
    role = ProjectRole(invitation.project_role)
    grant = ProjectGrant.objects.filter(project=invitation.project, user=user).first()
    if grant is None:
        return grant_create(project=invitation.project, role=role, actor=user, user=user)
    if grant.role < role:
        return grant_role_set(grant=grant, role=role, actor=user)
    return grant


@transaction.atomic
def invitation_accept(*, raw: str, user: User) -> Membership | ProjectGrant:
    """Accept the invitation behind ``raw`` as ``user``: the team membership it offers, or, for
    a project invitation, the user's grant on the project (no team membership)."""
    invitation = invitation_find(raw)
    if invitation is not None:
        invitation = Invitation.objects.select_for_update().filter(pk=invitation.pk, accepted_at__isnull=True).first()
    if invitation is None:
        raise NotFound("This invitation is unknown, used, revoked or expired.", code="not_found")
    if invitation.invitee_id is not None and invitation.invitee_id != user.pk:
        raise Forbidden(
            "This invitation is for another account: sign in as the invited user.",
            code="permission_denied",
        )
    if invitation.project_id is not None:
        grant = _project_invitation_accept(invitation, user)
        invitation.accepted_at = timezone.now()
        invitation.accepted_by = user
        invitation.save(update_fields=["accepted_at", "accepted_by"])
        audit_record(
            actor=user,
            action="project.invitation_accept",
            target=invitation.project,
            project=invitation.project,
            data={
                "role": invitation.project_role_label,
                "invited_by": invitation.created_by.username if invitation.created_by else None,
            },
        )
        return grant
    membership = Membership.objects.filter(team=invitation.team, user=user).first()
    if membership is None:
        membership = Membership.objects.create(team=invitation.team, user=user, role=invitation.role)
    elif invitation.role == Membership.Role.OWNER and membership.role != Membership.Role.OWNER:
        membership.role = Membership.Role.OWNER
        membership.save(update_fields=["role"])
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        actor=user,
        action="team.invitation_accept",
        target=invitation.team,
        data={"role": membership.role, "invited_by": invitation.created_by.username if invitation.created_by else None},
    )
    return membership


@transaction.atomic
def invitation_revoke(*, invitation: Invitation, actor: User) -> None:
    updated = Invitation.objects.filter(pk=invitation.pk, accepted_at__isnull=True, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    if updated:
        audit_record(
            actor=actor,
            action="team.invitation_revoke",
            target=invitation.team,
            data={"to": invitation.addressee},
        )


# --- projects -----------------------------------------------------------------------------------


def _team_for_new_project(*, user: User, team_name: str, field: str) -> Team:
    """The team named ``team_name`` if ``user`` may see it (NotFound otherwise, naming ``field``)."""
    team = Team.objects.filter(name__iexact=team_name).first()
    if team is None or not access.can_see_team(user, team):
        raise NotFound(f"No team named {team_name!r}.", code="not_found", field=field)
    return team


def _require_project_creator(*, user: User, team: Team, field: str) -> None:
    if not access.can_create_project(user, team):
        raise Forbidden(f"You may not create projects in team {team.name!r}.", code="permission_denied", field=field)


def _project_insert(*, user: User, team: Team, name: str, description: str = "") -> Project:
    problem = name_problem(canonical(name), team=False)
    if problem:
        raise Invalid(problem, field="name")
    try:
        with transaction.atomic():
            return Project.objects.create(team=team, name=name.lower(), description=description, created_by=user)
    except IntegrityError:
        # Created concurrently by another request: use theirs.
        return Project.objects.select_related("team").get(team=team, name__iexact=name)


def project_create(*, user: User, team_name: str, name: str, description: str = "") -> Project:
    """Create the project ``team_name/name`` for ``user``, who must be a member of the team
    (or site staff). NotFound (``team``) when the team is missing or invisible to ``user``,
    Forbidden (``team``) when they may not create projects in it, Conflict (``name``) when
    the project exists, Invalid (``name``) for a name that is not a URL slug."""
    team = _team_for_new_project(user=user, team_name=team_name, field="team")
    _require_project_creator(user=user, team=team, field="team")
    name = name.lower()
    if Project.objects.filter(team=team, name__iexact=name).exists():
        raise Conflict(f"Project {team.name}/{name} exists.", code="conflict", field="name")
    return _project_insert(user=user, team=team, name=name, description=description)


def project_get_or_create(*, user: User, path: str, for_action: str = "run.create") -> Project:
    """Find ``team/project`` for ``user`` and check ``for_action``; create the project when it
    does not exist and the user may create projects in the team (as ``wandb.init`` does).
    The errors name ``project``, the field that carries the path."""
    team_name, project_name = parse_project_path(path)
    team = _team_for_new_project(user=user, team_name=team_name, field="project")
    project = Project.objects.select_related("team").filter(team=team, name__iexact=project_name).first()
    if project is None:
        _require_project_creator(user=user, team=team, field="project")
        project = _project_insert(user=user, team=team, name=project_name)
    access.require(user, for_action, project)
    return project


# --- project access -----------------------------------------------------------------------------


def project_role(value: object, *, field: str = "role") -> ProjectRole:
    """``"viewer"`` … ``"admin"`` → ProjectRole; anything else is a 400 naming ``field``."""
    for role in ProjectRole:
        if value == role.label:
            return role
    raise Invalid("role must be one of viewer, writer, maintainer, admin.", field=field)


def _grant_label(grant: ProjectGrant) -> str:
    return f"user:{grant.user.username}" if grant.user is not None else f"team:{grant.team.name if grant.team else ''}"


@transaction.atomic
def grant_create(
    *,
    project: Project,
    role: ProjectRole,
    actor: User | None,
    user: User | None = None,
    team: Team | None = None,
) -> ProjectGrant:
    if (user is None) == (team is None):
        raise Invalid("Grant a role to either a user or a team.", field="user")
    if user is not None and not user.is_active:
        raise Invalid(f"{user.username} is deactivated.", field="user")
    existing = ProjectGrant.objects.filter(project=project, **({"user": user} if user else {"team": team}))
    if existing.exists():
        raise Conflict(
            "This grant exists: change its role instead.", code="grant_exists", field="user" if user else "team"
        )
    grant = ProjectGrant.objects.create(project=project, user=user, team=team, role=role)
    audit_record(
        actor=actor,
        action="grant.create",
        target=grant,
        target_label=_grant_label(grant),
        project=project,
        data={"role": role.label},
    )
    return grant


@transaction.atomic
def grant_role_set(*, grant: ProjectGrant, role: ProjectRole, actor: User | None) -> ProjectGrant:
    before = ProjectRole(grant.role).label
    if grant.role != role:
        grant.role = role
        grant.save(update_fields=["role"])
        audit_record(
            actor=actor,
            action="grant.change",
            target=grant,
            target_label=_grant_label(grant),
            project=grant.project,
            data={"from": before, "to": role.label},
        )
    return grant


@transaction.atomic
def grant_revoke(*, grant: ProjectGrant, actor: User | None) -> None:
    label, role, project = _grant_label(grant), ProjectRole(grant.role).label, grant.project
    grant_id = grant.pk
    grant.delete()
    grant.pk = grant_id
    audit_record(
        actor=actor,
        action="grant.revoke",
        target=grant,
        target_label=label,
        project=project,
        data={"role": role},
    )


@transaction.atomic
def project_visibility_set(*, project: Project, visibility: str, actor: User | None) -> Project:
    visibility = choice(
        visibility, Project.Visibility.values, field="visibility", message="visibility must be 'private' or 'internal'."
    )
    if project.visibility != visibility:
        before = project.visibility
        project.visibility = visibility
        project.save(update_fields=["visibility"])
        audit_record(
            actor=actor,
            action="project.visibility",
            target=project,
            project=project,
            data={"from": before, "to": visibility},
        )
    return project


@transaction.atomic
def project_transfer(*, project: Project, team: Team, actor: User | None) -> Project:
    """Move a project (runs, experiments, grants) to another team. Its URL changes."""
    if team.pk == project.team_id:
        raise Invalid(f"{project.path} already belongs to {team.name}.", field="team")
    if Project.objects.filter(team=team, name__iexact=project.name).exists():
        raise Conflict(f"{team.name} already has a project named {project.name}.", field="team")
    before = project.path
    project.team = team
    project.save(update_fields=["team"])
    audit_record(
        actor=actor,
        action="project.transfer",
        target=project,
        project=project,
        data={"from": before, "to": project.path},
    )
    return project


# --- site administration ------------------------------------------------------------------------


@transaction.atomic
def user_set_active(*, user: User, active: bool, actor: User) -> User:
    """Deactivate (see :func:`user_deactivate`) or reactivate an account (staff pages)."""
    if user.pk == actor.pk and not active:
        raise Invalid("You cannot deactivate your own account.", field="username")
    if user.is_active == active:
        return user
    if active:
        user.is_active = True
        user.save(update_fields=["is_active", "modified_at"])
        audit_record(actor=actor, action="user.reactivate", target=user)
    else:
        user_deactivate(user=user, actor=actor)
    return user


@transaction.atomic
def user_deactivate(*, user: User, actor: User | None, audit: dict[str, Any] | None = None) -> None:
    """THE way an account is deactivated, by staff or by the identity provider (SCIM): the
    user can no longer sign in; every session ends (``session_epoch``: for good, also if
    the account is reactivated later), every token is revoked, and the sockets opened with
    them or with a session close (accounts/live.py, on these saves)."""
    user.is_active = False
    user.session_epoch += 1
    user.save(update_fields=["is_active", "session_epoch", "modified_at"])
    revoked = 0
    for token in ApiToken.objects.filter(user=user, revoked_at__isnull=True):
        token_revoke(token=token, actor=actor)
        revoked += 1
    audit_record(actor=actor, action="user.deactivate", target=user, data={**(audit or {}), "tokens_revoked": revoked})


@transaction.atomic
def user_set_site_admin(*, user: User, admin: bool, actor: User) -> User:
    if user.pk == actor.pk and not admin:
        raise Invalid("You cannot remove your own administrator rights.", field="username")
    if user.is_staff != admin or user.is_superuser != admin:
        user.is_staff = admin
        user.is_superuser = admin
        user.save(update_fields=["is_staff", "is_superuser"])
        audit_record(actor=actor, action="user.make_admin" if admin else "user.remove_admin", target=user)
    return user
