"""Every page's URL, by feature, in the order Django tries them. The account, team and staff
pages come first: their first segments (``settings``, ``teams``, ``invitations``, ``-``) are
reserved team names (accounts/names.py), so no team's URLs can be shadowed, and they must be
tried before ``<team>/<project>/``."""

from __future__ import annotations

from allauth.account import views as allauth_views
from django.urls import path

from frontend import (
    access_views,
    account_views,
    admin_views,
    alert_views,
    artifact_views,
    notification_settings_views,
    project_views,
    registry_views,
    report_views,
    review_settings_views,
    review_views,
    run_views,
    search_views,
    team_views,
    tried_views,
    webhook_views,
)

account_patterns = [
    path("settings/", account_views.settings_page, name="account-settings"),
    path("settings/tokens/", account_views.tokens_page, name="tokens"),
    path(
        "settings/notifications/",
        notification_settings_views.notification_settings_page,
        name="notification-settings",
    ),
    path("settings/tokens/<str:token_id>/revoke/", account_views.token_revoke, name="token-revoke"),
    path("teams/", team_views.teams_page, name="teams"),
    path("teams/<str:team>/", team_views.team_page, name="team"),
    path("teams/<str:team>/invite/", team_views.team_invite, name="team-invite"),
    path("teams/<str:team>/sso/", team_views.team_sso, name="team-sso"),
    path(
        "teams/<str:team>/invitations/<str:invitation_id>/revoke/",
        team_views.invitation_revoke,
        name="team-invitation-revoke",
    ),
    path("teams/<str:team>/members/<str:username>/role/", team_views.member_role, name="team-member-role"),
    path("teams/<str:team>/members/<str:username>/remove/", team_views.member_remove, name="team-member-remove"),
    path("invitations/", account_views.invitation_page, name="invitation"),
    path("invitations/<str:token>/", account_views.invitation_link, name="invitation-accept"),
    path("-/staff/users/", admin_views.staff_users_page, name="staff-users"),
    path("-/staff/users/<str:username>/<str:action>/", admin_views.staff_user_action, name="staff-user-action"),
    path("-/staff/audit/", admin_views.staff_audit_page, name="staff-audit"),
    path("-/staff/identity/", admin_views.staff_identity_page, name="staff-identity"),
    path("-/staff/identity/scim-tokens/", admin_views.staff_scim_token_create, name="staff-scim-token-create"),
    path(
        "-/staff/identity/scim-tokens/<str:scim_token_id>/revoke/",
        admin_views.staff_scim_token_revoke,
        name="staff-scim-token-revoke",
    ),
    path("<str:team>/<str:project>/access/", access_views.project_access_page, name="project-access"),
    path("<str:team>/<str:project>/access/grants/", access_views.project_grant_add, name="project-grant-add"),
    path("<str:team>/<str:project>/access/invite/", access_views.project_invite, name="project-invite"),
    path(
        "<str:team>/<str:project>/access/invitations/<str:project_invitation_id>/revoke/",
        access_views.project_invitation_revoke,
        name="project-invitation-revoke",
    ),
    path(
        "<str:team>/<str:project>/access/<str:kind>/<str:name>/role/",
        access_views.project_grant_change,
        name="project-grant-change",
    ),
    path(
        "<str:team>/<str:project>/access/<str:kind>/<str:name>/revoke/",
        access_views.project_grant_revoke,
        name="project-grant-revoke",
    ),
    path("<str:team>/<str:project>/access/visibility/", access_views.project_visibility, name="project-visibility"),
    path("<str:team>/<str:project>/access/transfer/", access_views.project_transfer, name="project-transfer"),
    path("<str:team>/<str:project>/audit/", admin_views.project_audit_page, name="project-audit"),
    path("<str:team>/<str:project>/tried/", tried_views.tried_page, name="project-tried"),
]

registry_patterns = [
    path("<str:team>/<str:project>/models/", registry_views.models_page, name="models"),
    path("<str:team>/<str:project>/models/<str:model>/", registry_views.model_page, name="model"),
    path(
        "<str:team>/<str:project>/models/<str:model>/aliases/", registry_views.alias_move_form, name="model-alias-move"
    ),
    path("<str:team>/<str:project>/models/<str:model>/edit/", registry_views.metadata_form, name="model-edit"),
    path(
        "<str:team>/<str:project>/models/<str:model>/v<int:number>/", registry_views.version_page, name="model-version"
    ),
    path(
        "<str:team>/<str:project>/models/<str:model>/v<int:number>/edit/",
        registry_views.metadata_form,
        name="model-version-edit",
    ),
    path(
        "<str:team>/<str:project>/models/<str:model>/v<int:number>/download/",
        registry_views.version_download,
        name="model-version-download",
    ),
    path(
        "<str:team>/<str:project>/runs/<str:run_id>/register-model/",
        registry_views.register_form,
        name="run-register-model",
    ),
]

REVIEW = "<str:team>/<str:project>/reviews/<int:number>/"

review_patterns = [
    path("notifications/", review_views.notifications_page, name="notifications"),
    path("<str:team>/<str:project>/reviews/", review_views.review_list, name="review-list"),
    path("<str:team>/<str:project>/reviews/new/", review_views.review_new, name="review-new"),
    path("<str:team>/<str:project>/settings/alerts/", alert_views.alerts_page, name="alerts"),
    path("<str:team>/<str:project>/settings/alerts/<str:rule_id>/", alert_views.alert_page, name="alert"),
    path(
        "<str:team>/<str:project>/settings/alerts/<str:rule_id>/delete/", alert_views.alert_delete, name="alert-delete"
    ),
    path("<str:team>/<str:project>/settings/webhooks/", webhook_views.webhooks_page, name="webhooks"),
    path("<str:team>/<str:project>/settings/webhooks/<str:webhook_id>/", webhook_views.webhook_page, name="webhook"),
    path(
        "<str:team>/<str:project>/settings/webhooks/<str:webhook_id>/test/",
        webhook_views.webhook_test,
        name="webhook-test",
    ),
    path(
        "<str:team>/<str:project>/settings/webhooks/<str:webhook_id>/delete/",
        webhook_views.webhook_delete,
        name="webhook-delete",
    ),
    path(
        "<str:team>/<str:project>/settings/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver/",
        webhook_views.webhook_redeliver,
        name="webhook-redeliver",
    ),
    path(
        "<str:team>/<str:project>/review-settings/",
        review_settings_views.project_review_settings_page,
        name="project-review-settings",
    ),
    path(
        "<str:team>/<str:project>/models/<str:model>/review-settings/",
        review_settings_views.model_review_settings_page,
        name="model-review-settings",
    ),
    path(
        "<str:team>/<str:project>/models/<str:model>/review-settings/reset/",
        review_settings_views.model_review_settings_reset,
        name="model-review-settings-reset",
    ),
    path(REVIEW, review_views.review_page, name="review-request"),
    path(REVIEW + "review/", review_views.review_submit_form, name="review-submit"),
    path(REVIEW + "comment/", review_views.comment_form, name="review-comment"),
    path(REVIEW + "update/", review_views.request_update_form, name="review-update"),
    path(REVIEW + "merge/", review_views.merge_form, name="review-merge"),
    path(REVIEW + "checks/", review_views.checks_rerun_form, name="review-checks-rerun"),
    path(REVIEW + "reviews/<str:review_id>/dismiss/", review_views.dismiss_form, name="review-dismiss"),
]

REPORT = "<str:team>/<str:project>/reports/<int:number>/"

report_patterns = [
    path("<str:team>/<str:project>/reports/", report_views.report_list, name="report-list"),
    path("<str:team>/<str:project>/reports/new/", report_views.report_new, name="report-new"),
    path(REPORT, report_views.report_page, name="report"),
    path(REPORT + "edit/", report_views.report_edit, name="report-edit"),
    path(REPORT + "freeze/", report_views.report_freeze, name="report-freeze"),
    path(REPORT + "delete/", report_views.report_delete, name="report-delete"),
    path(REPORT + "revisions/", report_views.report_history, name="report-history"),
    path(REPORT + "revisions/<int:revision>/", report_views.report_revision, name="report-revision"),
    path(REPORT + "diff/", report_views.report_diff, name="report-diff"),
    path(REPORT + "comment/", report_views.report_comment, name="report-comment"),
    path(REPORT + "link/", report_views.report_link, name="report-link"),
    path(REPORT + "links/<str:link_id>/remove/", report_views.report_unlink, name="report-unlink"),
    path(REPORT + "export.html", report_views.report_export, name="report-export"),
    path(
        "<str:team>/<str:project>/reviews/<int:number>/evidence/",
        report_views.review_cite_report,
        name="review-cite-report",
    ),
    path(
        "<str:team>/<str:project>/models/<str:model>/v<int:number>/evidence/",
        report_views.version_cite_report,
        name="version-cite-report",
    ),
]

# The run URL shape is also built by the API (experiments.presenters.run_url): keep them in step.
project_patterns = [
    path("", project_views.home, name="home"),
    # django-allauth's views (login by username or e-mail, rate-limited) at the short paths.
    path("login/", allauth_views.login, name="login"),
    path("logout/", allauth_views.logout, name="logout"),
    path("-/search/", search_views.search_page, name="search"),
    path("<str:team>/<str:project>/", project_views.project_page, name="project"),
    path("<str:team>/<str:project>/compare/", search_views.compare_page, name="project-compare"),
    path("<str:team>/<str:project>/export.csv", search_views.project_export, name="project-export"),
    path("<str:team>/<str:project>/views/", search_views.saved_view_create, name="saved-view-create"),
    path("<str:team>/<str:project>/views/<str:view_id>/", search_views.saved_view_open, name="saved-view"),
    path(
        "<str:team>/<str:project>/views/<str:view_id>/delete/",
        search_views.saved_view_delete,
        name="saved-view-delete",
    ),
    path("<str:team>/<str:project>/runs/<str:run_id>/", run_views.run_page, name="run"),
    path("<str:team>/<str:project>/runs/<str:run_id>/notes/", run_views.run_notes, name="run-notes"),
    path(
        "<str:team>/<str:project>/runs/<str:run_id>/artifacts/<str:artifact_id>/download/",
        artifact_views.artifact_download,
        name="artifact-download",
    ),
    path(
        "<str:team>/<str:project>/runs/<str:run_id>/artifacts/<str:artifact_id>/thumbnail.png",
        artifact_views.artifact_thumbnail,
        name="artifact-thumbnail",
    ),
    # The runs table's layout, per user (issue 20).
    path("<str:team>/<str:project>/table/columns/", project_views.table_columns, name="project-table-columns"),
    path("<str:team>/<str:project>/runs/<str:run_id>/pin/", project_views.run_pin, name="run-pin"),
]

urlpatterns = account_patterns + registry_patterns + review_patterns + report_patterns + project_patterns
