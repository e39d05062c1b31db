"""Input and output shapes of the accounts API.

# SECURITY: input serializers refuse keys they do not know (``core.api.StrictSerializer``), so a role,
# an owner, a team or a user can never ride along in a body (mass assignment); each role
# is set only by the one endpoint that exists for it.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from accounts.models import ApiToken, AuditEvent, Membership, Project, ProjectGrant, ProjectRole, Team
from core.api import NameField, StrictCharField, StrictSerializer

ROLE_NAMES = [role.label for role in ProjectRole]


# --- projects ---------------------------------------------------------------------------------


class ProjectIn(StrictSerializer):
    team = StrictCharField(max_length=64)
    name = NameField()
    description = StrictCharField(max_length=10_000, required=False, allow_blank=True, default="")


class ProjectOut(serializers.ModelSerializer[Project]):
    team = serializers.CharField(source="team.name")
    path = serializers.CharField()

    class Meta:
        model = Project
        fields = ["id", "team", "name", "path", "description", "created_at"]


# --- teams ------------------------------------------------------------------------------------


class TeamIn(StrictSerializer):
    name = NameField()
    display_name = StrictCharField(max_length=128, required=False, allow_blank=True, default="")


class TeamOut(serializers.ModelSerializer[Team]):
    personal = serializers.SerializerMethodField()
    your_role = serializers.SerializerMethodField()

    class Meta:
        model = Team
        fields = ["name", "display_name", "personal", "your_role", "created_at"]

    def get_personal(self, team: Team) -> bool:
        return team.personal_owner_id is not None

    def get_your_role(self, team: Team) -> str | None:
        roles: dict[int, str] = self.context.get("roles", {})
        return roles.get(team.pk)


class MemberAddIn(StrictSerializer):
    username = StrictCharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.MEMBER)


class MemberRoleIn(StrictSerializer):
    role = serializers.ChoiceField(choices=Membership.Role.choices)


class MemberOut(serializers.ModelSerializer[Membership]):
    username = serializers.CharField(source="user.username")
    managed_by = serializers.CharField(
        read_only=True,
        help_text="The OpenID Connect provider whose groups claim manages this membership (then it "
        "cannot be changed or removed by hand); empty when made by hand.",
    )

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at", "managed_by"]


class GrantIn(StrictSerializer):
    user = StrictCharField(max_length=150, required=False)
    team = StrictCharField(max_length=64, required=False)
    role = serializers.ChoiceField(choices=ROLE_NAMES)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if ("user" in attrs) == ("team" in attrs):
            raise serializers.ValidationError({"user": ['Give exactly one of "user" or "team".']})
        return attrs


class GrantRoleIn(StrictSerializer):
    role = serializers.ChoiceField(choices=ROLE_NAMES)


class GrantOut(serializers.ModelSerializer[ProjectGrant]):
    kind = serializers.SerializerMethodField()
    name = serializers.SerializerMethodField()
    role = serializers.SerializerMethodField()

    class Meta:
        model = ProjectGrant
        fields = ["kind", "name", "role", "created_at"]

    def get_kind(self, grant: ProjectGrant) -> str:
        return "user" if grant.user_id is not None else "team"

    def get_name(self, grant: ProjectGrant) -> str:
        if grant.user is not None:
            return grant.user.username
        return grant.team.name if grant.team is not None else ""

    def get_role(self, grant: ProjectGrant) -> str:
        return ProjectRole(grant.role).label


class VisibilityIn(StrictSerializer):
    visibility = serializers.ChoiceField(choices=["private", "internal"])


class TransferIn(StrictSerializer):
    team = StrictCharField(max_length=64)


class TokenIn(StrictSerializer):
    name = StrictCharField(max_length=100)
    # SCIM tokens are made by site staff for an identity provider (manage.py create_token --scope scim).
    scope = serializers.ChoiceField(choices=[ApiToken.Scope.READ, ApiToken.Scope.WRITE], default=ApiToken.Scope.WRITE)
    expires_in_days = serializers.IntegerField(
        min_value=1, max_value=366, required=False, allow_null=True, default=None, help_text="null: never expires"
    )


class TokenOut(serializers.ModelSerializer[ApiToken]):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "scope", "created_at", "expires_at", "last_used_at", "revoked_at"]


class TokenCreatedOut(TokenOut):
    token = serializers.SerializerMethodField(help_text="The token itself: shown this once, stored only hashed.")

    class Meta(TokenOut.Meta):
        fields = [*TokenOut.Meta.fields, "token"]

    def get_token(self, token: ApiToken) -> str:
        return str(self.context["raw"])


class AuditEventOut(serializers.ModelSerializer[AuditEvent]):
    actor = serializers.CharField(source="actor_label")
    target = serializers.SerializerMethodField()
    project = serializers.CharField(source="project_label")

    class Meta:
        model = AuditEvent
        fields = ["id", "created_at", "actor", "action", "target", "project", "ip", "data"]

    def get_target(self, event: AuditEvent) -> dict[str, str]:
        return {"type": event.target_type, "id": event.target_id, "label": event.target_label}
