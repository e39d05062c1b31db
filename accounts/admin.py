from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin

from accounts.models import ApiToken, Membership, ProjectGrant, Team, User

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
