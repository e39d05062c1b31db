"""Dashboard pages of accounts. Every first segment here is a reserved team name
(accounts/names.py), so no team's URLs can be shadowed."""

from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("settings/", views.settings_page, name="account-settings"),
    path("settings/tokens/", views.tokens_page, name="tokens"),
    path("settings/tokens/<str:token_id>/revoke/", views.token_revoke, name="token-revoke"),
    path("teams/", views.teams_page, name="teams"),
    path("teams/<str:team>/", views.team_page, name="team"),
    path("teams/<str:team>/invite/", views.team_invite, name="team-invite"),
    path(
        "teams/<str:team>/invitations/<str:invitation_id>/revoke/",
        views.invitation_revoke,
        name="team-invitation-revoke",
    ),
    path("teams/<str:team>/members/<str:username>/role/", views.member_role, name="team-member-role"),
    path("teams/<str:team>/members/<str:username>/remove/", views.member_remove, name="team-member-remove"),
    path("invitations/", views.invitation_page, name="invitation"),
    path("invitations/<str:token>/", views.invitation_link, name="invitation-accept"),
    path("-/staff/users/", views.staff_users_page, name="staff-users"),
    path("-/staff/users/<str:username>/<str:action>/", views.staff_user_action, name="staff-user-action"),
    path("-/staff/audit/", views.staff_audit_page, name="staff-audit"),
    path("<str:team>/<str:project>/access/", views.project_access_page, name="project-access"),
    path("<str:team>/<str:project>/access/grants/", views.project_grant_add, name="project-grant-add"),
    path(
        "<str:team>/<str:project>/access/<str:kind>/<str:name>/role/",
        views.project_grant_change,
        name="project-grant-change",
    ),
    path(
        "<str:team>/<str:project>/access/<str:kind>/<str:name>/revoke/",
        views.project_grant_revoke,
        name="project-grant-revoke",
    ),
    path("<str:team>/<str:project>/access/visibility/", views.project_visibility, name="project-visibility"),
    path("<str:team>/<str:project>/access/transfer/", views.project_transfer, name="project-transfer"),
    path("<str:team>/<str:project>/audit/", views.project_audit_page, name="project-audit"),
]
