"""Users, teams, projects, project roles and API tokens. The rules over them live in access.py."""

from __future__ import annotations

import uuid

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import TextChoices
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.names import canonical, name_problem


def new_id() -> str:
    """An opaque, unguessable identifier: 32 hex characters (MLflow's run-id shape)."""
    return uuid.uuid4().hex


def validate_handle(value: str) -> None:
    """Usernames become personal team names, so they follow the team-name rule."""
    problem = name_problem(canonical(value), team=True)
    if problem:
        raise ValidationError(problem)


class User(AbstractUser):
    username = models.CharField(
        "username",
        max_length=64,
        unique=True,
        validators=[validate_handle],
        help_text="1-64 letters, digits, '-' and '_'; also the name of your personal team.",
        error_messages={"unique": "A user with that username already exists."},
    )
    # SCIM provisioning (accounts/scim_services.py): the provider's userName when it is not a
    # valid handle (an e-mail, a UPN; "" = the username is the userName), the provider's own id
    # for the person, and when the account last changed (meta.lastModified; not sign-ins).
    scim_user_name = models.CharField(max_length=255, blank=True, default="")
    external_id = models.CharField(max_length=255, blank=True, default="")
    modified_at = models.DateTimeField(auto_now=True, null=True)
    # Detached by a SCIM DELETE (deactivated, no longer a SCIM resource; the account stays).
    scim_deleted = models.BooleanField(default=False)
    # Bumped to sign the user out everywhere: every session carries a hash of it
    # (``_get_session_auth_hash``), so the sessions made before stop working, and stay dead
    # if the account is reactivated later.
    session_epoch = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            # Usernames are team names too (every user has a personal team), so "Ana"
            # and "ana" must not both exist.
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
            # SCIM's userName is unique across the service, case-insensitively.
            models.UniqueConstraint(
                Lower("scim_user_name"), condition=~models.Q(scim_user_name=""), name="user_scim_user_name_ci_unique"
            ),
        ]

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        # Epoch 0 keeps Django's own hash, so the sessions made before this field existed stay valid.
        if not self.session_epoch:
            return str(super()._get_session_auth_hash(secret=secret))  # type: ignore[misc]
        key_salt = "accounts.User.get_session_auth_hash"
        return salted_hmac(
            key_salt, f"{self.password}:{self.session_epoch}", secret=secret, algorithm="sha256"
        ).hexdigest()


class Team(models.Model):
    name = models.SlugField(max_length=64, help_text="URL name: /<team>/<project>/")
    display_name = models.CharField(max_length=128, blank=True)
    # A personal team belongs to one user and carries their username (a W&B entity).
    personal_owner = models.OneToOneField(
        User, null=True, blank=True, on_delete=models.CASCADE, related_name="personal_team"
    )
    members = models.ManyToManyField(User, through="Membership", related_name="teams")
    created_at = models.DateTimeField(auto_now_add=True)
    # Members must sign in through single sign-on (accounts/sso.py ``sso_required``).
    sso_required = models.BooleanField(default=False)
    # A team provisioned as a SCIM group (accounts/scim_services.py): the provider's id for
    # the group, and when the group last changed (meta.lastModified).
    scim_group = models.BooleanField(default=False)
    external_id = models.CharField(max_length=255, blank=True, default="")
    modified_at = models.DateTimeField(auto_now=True, null=True)

    class Meta:
        constraints = [models.UniqueConstraint(Lower("name"), name="team_name_ci_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner"
        MEMBER = "member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.MEMBER)
    created_at = models.DateTimeField(auto_now_add=True)
    # The id of the OpenID Connect provider whose groups claim made this membership, or
    # ``scim`` for one made by SCIM provisioning ("" = by hand). Such a membership follows the
    # provider (its groups at every sign-in, or its SCIM calls) and cannot be edited by hand.
    managed_by = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_unique")]


class Project(models.Model):
    """A team's project (``/<team>/<project>/``): what runs, models and reviews belong to,
    and what roles are granted on (``ProjectGrant``, the policy in access.py)."""

    # Not ``models.TextChoices``: in this class body mypy's Django plugin resolves ``models``
    # to Project's reverse accessor of ModelRepository.project (related_name="models").
    class Visibility(TextChoices):
        PRIVATE = "private"  # only the team and the grants (accounts/access.py)
        INTERNAL = "internal"  # every signed-in active user is at least a viewer

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="projects")
    name = models.SlugField(max_length=64)
    description = models.TextField(blank=True, max_length=10_000)
    visibility = models.CharField(max_length=16, choices=Visibility.choices, default=Visibility.PRIVATE)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    # Retention policy (artifacts/retention.py, `manage.py retention`): runs that ended,
    # and artifacts logged, more than this many days ago are deleted. NULL keeps them forever.
    run_retention_days = models.PositiveIntegerField(null=True, blank=True)
    artifact_retention_days = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        # The table keeps the name it had when projects lived in the experiments app
        # (moved by a state-only migration: accounts 0004, experiments 0007).
        db_table = "experiments_project"
        constraints = [models.UniqueConstraint("team", Lower("name"), name="project_team_name_ci_unique")]
        ordering = ["team__name", "name"]

    def __str__(self) -> str:
        return f"{self.team.name}/{self.name}"

    @property
    def path(self) -> str:
        return f"{self.team.name}/{self.name}"


class ProjectRole(models.IntegerChoices):
    """Ordered: a higher number includes every right of the lower ones."""

    VIEWER = 10, "viewer"
    WRITER = 20, "writer"
    MAINTAINER = 30, "maintainer"
    ADMIN = 40, "admin"


class ProjectGrant(models.Model):
    """A role on one project, granted to a user or to a whole team (exactly one of them)."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="grants")
    user = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="project_grants")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.CASCADE, related_name="project_grants")
    role = models.PositiveSmallIntegerField(choices=ProjectRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(user__isnull=False, team__isnull=True) | models.Q(user__isnull=True, team__isnull=False)
                ),
                name="grant_user_xor_team",
            ),
            models.UniqueConstraint(fields=["project", "user"], name="grant_project_user_unique"),
            models.UniqueConstraint(fields=["project", "team"], name="grant_project_team_unique"),
        ]


class ApiToken(models.Model):
    """A bearer token. Only its SHA-256 and a short clear prefix (to tell tokens apart) are kept.

    A token acts as its user, so it never grants more than the user has; a ``read`` token
    is further limited to safe methods (``accounts.permissions.TokenScopePermission``); a
    ``scim`` token serves /scim/v2/ and nothing else.
    """

    class Scope(models.TextChoices):
        READ = "read"
        WRITE = "write"
        # For an identity provider's SCIM client: /scim/v2/ only, never /api/v1 or sockets
        # (accounts/services.py ``token_authenticate``). Created by staff for a staff user.
        SCIM = "scim"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16)
    digest = models.CharField(max_length=64, unique=True)
    scope = models.CharField(max_length=8, choices=Scope.choices, default=Scope.WRITE)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.name})"


class Invitation(models.Model):
    """An invitation to join a team, sent to an e-mail address or to an existing user.

    Only the SHA-256 of the link's token is kept; the link is shown to the inviter once
    and e-mailed to the invitee.
    """

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(blank=True)
    invitee = models.ForeignKey(User, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations")
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    digest = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(User, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)
    # An invitation into one project (``team`` is then the project's team, joined by no one):
    # accepting it grants ``project_role`` on the project instead of a team membership. The
    # way to bring someone into a personal team's project, which has no other members.
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.CASCADE, related_name="invitations")
    project_role = models.PositiveSmallIntegerField(null=True, blank=True, choices=ProjectRole.choices)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.team.name}: {self.invitee.username if self.invitee else self.email}"

    @property
    def project_role_label(self) -> str:
        return ProjectRole(self.project_role).label if self.project_role is not None else ""

    @property
    def addressee(self) -> str:
        return self.invitee.username if self.invitee is not None else self.email


class AuditEventQuerySet(models.QuerySet["AuditEvent"]):
    # SECURITY: the audit log is append-only; bulk updates and deletes are refused here
    # (the model refuses them for single rows). Rows reach the log only through audit_record().
    def update(self, **kwargs: object) -> int:
        raise TypeError("The audit log is append-only.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise TypeError("The audit log is append-only.")


class AuditEvent(models.Model):
    """Who did what, when, from which address. Written by ``accounts.audit.audit_record`` only."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Labels keep the log readable after the user, target or project is gone.
    actor_label = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=64, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_events")
    project_label = models.CharField(max_length=140, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["project", "-created_at"], name="audit_project_created")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor_label or '-'} {self.action} {self.target_label}"

    def save(self, *args: object, **kwargs: object) -> None:
        if not self._state.adding:
            raise TypeError("The audit log is append-only.")
        super().save(*args, **kwargs)  # type: ignore[arg-type]

    def delete(self, *args: object, **kwargs: object) -> tuple[int, dict[str, int]]:
        raise TypeError("The audit log is append-only.")
