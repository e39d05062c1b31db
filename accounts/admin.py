"""Django's admin at ``/-/admin/``, for site administrators only (``access.is_site_admin``).

Every add, change and delete made here is written to the audit log (``admin.add``,
``admin.change``, ``admin.delete``) through ``audit_record``, in the admin's own transaction,
with Django's change message (which fields changed, which inline rows were added, changed
or deleted: names, never values) and a snapshot of the access-deciding fields afterwards
(``values``). The audit log itself is read-only here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import ValidationError
from django.db import models
from django.http import HttpRequest

from accounts import access
from accounts.audit import audit_record
from accounts.models import ApiToken, AuditEvent, Invitation, Membership, ProjectGrant, ProjectRole, Team, User
from accounts.sso import sso_required


def _stamp(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def audit_values(obj: models.Model) -> dict[str, Any]:
    """The fields of ``obj`` that decide who may do what (no secrets, no free text)."""
    if isinstance(obj, User):
        return {"is_active": obj.is_active, "is_staff": obj.is_staff, "is_superuser": obj.is_superuser}
    if isinstance(obj, Team):
        return {"members": {m.user.username: m.role for m in obj.memberships.select_related("user")}}
    if isinstance(obj, ProjectGrant):
        holder = f"user:{obj.user.username}" if obj.user is not None else f"team:{obj.team.name if obj.team else ''}"
        return {"grantee": holder, "role": ProjectRole(obj.role).label}
    if isinstance(obj, Membership):
        return {"team": obj.team.name, "user": obj.user.username, "role": obj.role}
    if isinstance(obj, ApiToken):
        return {"user": obj.user.username, "scope": obj.scope, "expires_at": _stamp(obj.expires_at)}
    if isinstance(obj, Invitation):
        return {"team": obj.team.name, "to": obj.addressee, "role": obj.role, "revoked_at": _stamp(obj.revoked_at)}
    return {}


def _project_of(obj: models.Model) -> Any:
    return obj.project if isinstance(obj, ProjectGrant) else None


class AuditedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Site administrators only, and every write audited."""

    def _audit(self, request: HttpRequest, action: str, obj: models.Model, message: Any = None) -> None:
        data: dict[str, Any] = {"values": audit_values(obj)}
        if message:
            data["changes"] = message
        audit_record(
            actor=request.user,
            action=action,
            target=obj,
            project=_project_of(obj),
            data=data,
        )

    def log_addition(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        self._audit(request, "admin.add", obj, message)
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: models.Model, message: Any) -> Any:
        self._audit(request, "admin.change", obj, message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset: Iterable[models.Model]) -> Any:
        objects = list(queryset)  # called before the deletion (one object, or the action's selection)
        for obj in objects:
            self._audit(request, "admin.delete", obj)
        return super().log_deletions(request, objects)  # type: ignore[arg-type]  # any iterable of rows

    def has_module_permission(self, request: HttpRequest) -> bool:
        return access.is_site_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_site_admin(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access.is_site_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_site_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_site_admin(request.user)


@admin.register(User)
class AssayUserAdmin(AuditedAdmin, UserAdmin):  # type: ignore[type-arg]
    pass


class MembershipInline(admin.TabularInline[Membership, Team]):
    model = Membership
    extra = 0

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_site_admin(request.user)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_site_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_site_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_site_admin(request.user)


@admin.register(Team)
class TeamAdmin(AuditedAdmin):
    list_display = ["name", "display_name", "personal_owner", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(ProjectGrant)
class ProjectGrantAdmin(AuditedAdmin):
    list_display = ["project", "user", "team", "role"]


@admin.register(ApiToken)
class ApiTokenAdmin(AuditedAdmin):
    """Tokens are created by their users (the secret is shown to them once), never here."""

    list_display = ["prefix", "name", "user", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["prefix", "digest", "created_at", "last_used_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin[AuditEvent]):
    """Read-only: the audit log is append-only (no add, change or delete from the admin)."""

    list_display = ["created_at", "actor_label", "action", "target_label", "project_label", "ip"]
    list_filter = ["action"]
    search_fields = ["actor_label", "target_label", "project_label"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return access.is_site_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return access.is_site_admin(request.user)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


@admin.register(Invitation)
class InvitationAdmin(AuditedAdmin):
    list_display = ["team", "email", "invitee", "role", "created_by", "expires_at", "accepted_at", "revoked_at"]
    readonly_fields = ["digest", "created_at", "accepted_at", "accepted_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # invitations are issued by invitation_create, whose link is shown once


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's own password form obeys SSO-required too (accounts/sso.py)."""

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if sso_required(user):
            raise ValidationError(
                "Your organisation signs in through single sign-on: sign in on the site's sign-in page.",
                code="sso_required",
            )


admin.site.login_form = AdminLoginForm
