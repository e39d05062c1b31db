from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from accounts.models import ApiToken, AuditEvent, Invitation, Membership, ProjectGrant, Team, User

admin.site.register(User, UserAdmin)


class MembershipInline(admin.TabularInline[Membership, Team]):
    model = Membership
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin[Team]):
    list_display = ["name", "display_name", "personal_owner", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(ProjectGrant)
class ProjectGrantAdmin(admin.ModelAdmin[ProjectGrant]):
    list_display = ["project", "user", "team", "role"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin[ApiToken]):
    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "digest", "created_at", "last_used_at"]


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: the audit log is append-only (no add, change or delete from the admin)."""

    list_display = ["created_at", "actor_label", "action", "target_label", "project_label", "ip"]
    list_filter = ["action"]
    search_fields = ["actor_label", "target_label", "project_label"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin[Invitation]):
    list_display = ["team", "email", "invitee", "role", "created_by", "expires_at", "accepted_at", "revoked_at"]
    readonly_fields = ["digest", "created_at", "accepted_at", "accepted_by"]
