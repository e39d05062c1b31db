"""The permission matrix: every URL pattern of the API and the pages × every kind of caller.

The patterns are enumerated from the URL configuration itself, so a new endpoint or page
without a row in ``ROWS`` fails ``test_every_url_pattern_has_a_row`` (and its own
parametrised case) with a message naming the pattern. Only the explicit ``EXCLUDED``
prefixes are left out (static files, Django's admin, allauth's own account pages, the
OpenAPI schema and docs).

A row says, per HTTP method, which rule guards it; the expected answer for each caller
follows from the rule (``expected()``):

* API: no or bad credentials (anonymous, revoked token, expired token, deactivated user)
  → 401; a read-scoped token on an unsafe method → 403; an object the caller may not
  know exists → 404; a visible object but too low a role → 403; otherwise allowed (2xx).
* Pages: no session → redirect to the login page; then 404 / 403 / allowed (2xx or a
  redirect elsewhere) as for the API.

Each caller's request runs inside a savepoint that is rolled back, so all callers meet
the same world: acme/proj (owned by ``owner``) and the samples of test_endpoints.py.
Samples (path values, bodies) come from tests/security/test_endpoints.py, so a new API
endpoint adds its sample there once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, Membership, Project, ProjectGrant, ProjectRole, User
from accounts.services import invitation_create, project_invite, team_create, token_create, token_revoke
from experiments.models import Run, SavedView
from tests.factories import ProjectFactory, UserFactory
from tests.security.test_endpoints import VALID_BODIES, sample_kwargs, victim_run  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db

SAFE = {"get", "head", "options"}
METHODS = ("get", "post", "put", "patch", "delete")

# Patterns outside the matrix, on purpose: each has its own tests.
EXCLUDED = (
    "static/",  # WhiteNoise, not routed through Django's URLs in production
    "-/admin/",  # Django's admin: staff only, by Django itself (tests/accounts/test_admin.py)
    "accounts/",  # allauth's own pages (sign-up, e-mail, password, MFA, OIDC callbacks)
    "api/schema/",  # the OpenAPI schema and its docs are public on purpose
    "api/docs/",
    # The MLflow API (compat/): token-only, MLflow's own error codes and request messages;
    # every tracking endpoint x anonymous, outsider, viewer and read token is walked in
    # tests/compat/test_tracking_wire.py, with the real client in tests/compat/.
    "mlflow/",
    # SCIM (accounts/scim.py): its own token scope and Error format; every route x anonymous,
    # an API token and a session in tests/security/test_endpoints.py, the rest in
    # tests/accounts/test_scim.py and the compliance checker in test_scim_live.py.
    "scim/v2/",
)

# --- rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """Who may call: ``project`` (a minimum role on acme/proj), ``team`` (see acme, or
    ``manage`` it), ``user`` (any signed-in user), ``staff`` (site administrators),
    ``nobody`` (another user's own object: 404 for everyone but its owner), ``public``
    (anyone, signed in or not), ``same`` (a capability URL or an IP-restricted probe: the
    answer must not depend on who calls)."""

    scope: str
    minimum: ProjectRole | None = None
    manage: bool = False
    # What an allowed caller gets when the sample lacks what the URL serves (a thumbnail
    # of a file that is no image): still through the policy, but no 2xx to show for it.
    allowed_as: str = "allowed"


def P(role: ProjectRole) -> Rule:
    return Rule("project", minimum=role)


VIEW, WRITE, MAINTAIN, ADMIN = (P(r) for r in ProjectRole)
TEAM_VIEW, TEAM_MANAGE = Rule("team"), Rule("team", manage=True)
# Creating a project in acme needs membership of acme, which no caller but staff has here:
# it answers as managing the team does (404 unseen, 403 seen, staff allowed).
TEAM_MEMBER = TEAM_MANAGE
USER, STAFF, NOBODY, PUBLIC, SAME = Rule("user"), Rule("staff"), Rule("nobody"), Rule("public"), Rule("same")

# route → {method: rule}. A new pattern needs a row here.
ROWS: dict[str, dict[str, Rule]] = {
    # --- API: accounts
    "api/v1/me/": {"get": USER},
    "api/v1/teams/": {"get": USER, "post": USER},
    "api/v1/teams/<str:team>/members/": {"get": TEAM_VIEW, "post": TEAM_MANAGE},
    "api/v1/teams/<str:team>/members/<str:username>/": {"patch": TEAM_MANAGE, "delete": TEAM_MANAGE},
    "api/v1/projects/<str:team>/<str:project>/access/": {"get": VIEW, "post": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/access/<str:kind>/<str:name>/": {"patch": ADMIN, "delete": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/visibility/": {"put": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/transfer/": {"post": ADMIN},
    "api/v1/tokens/": {"get": USER, "post": USER},
    "api/v1/tokens/<str:token_id>/": {"delete": NOBODY},
    "api/v1/audit/": {"get": STAFF},
    # --- API: tracking
    "api/v1/projects/": {"get": USER, "post": TEAM_MEMBER},
    "api/v1/projects/<str:team>/<str:project>/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/experiments/": {"get": VIEW, "post": WRITE},
    "api/v1/runs/": {"get": VIEW, "post": WRITE},
    "api/v1/runs/<str:run_id>/": {"get": VIEW, "patch": WRITE},
    "api/v1/runs/<str:run_id>/log/": {"post": WRITE},
    "api/v1/runs/<str:run_id>/metrics/": {"get": VIEW},
    "api/v1/runs/<str:run_id>/metrics/<path:key>/": {"get": VIEW},
    "api/v1/runs/<str:run_id>/figures/": {"get": VIEW, "post": WRITE},
    "api/v1/runs/<str:run_id>/artifacts/": {"get": VIEW, "post": WRITE},
    "api/v1/runs/<str:run_id>/artifacts/<str:artifact_id>/complete/": {"post": WRITE},
    "api/v1/runs/<str:run_id>/artifacts/<str:artifact_id>/download/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/keys/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/tried/": {"post": VIEW},
    "api/v1/projects/<str:team>/<str:project>/tried/settings/": {"get": VIEW, "put": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/imports/runs/": {"post": WRITE},
    "api/v1/projects/<str:team>/<str:project>/imports/runs/lookup/": {"post": VIEW},
    "api/v1/projects/<str:team>/<str:project>/imports/runs/<str:run_id>/complete/": {"post": WRITE},
    "api/v1/projects/<str:team>/<str:project>/imports/models/": {"post": MAINTAIN},
    "api/v1/compare/": {"get": VIEW},
    "api/v1/export/histories/": {"get": VIEW},
    "api/v1/search/": {"get": USER},
    # --- API: model registry
    "api/v1/projects/<str:team>/<str:project>/models/": {"get": VIEW, "post": MAINTAIN},
    "api/v1/projects/<str:team>/<str:project>/models/<str:model>/": {"get": VIEW, "patch": MAINTAIN},
    "api/v1/projects/<str:team>/<str:project>/models/<str:model>/versions/": {"get": VIEW, "post": MAINTAIN},
    "api/v1/projects/<str:team>/<str:project>/models/<str:model>/versions/<str:version>/": {
        "get": VIEW,
        "patch": MAINTAIN,
    },
    "api/v1/projects/<str:team>/<str:project>/models/<str:model>/versions/<str:version>/reproduce/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/models/<str:model>/versions/<str:version>/download/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/models/<str:model>/aliases/<str:alias>/": {"get": VIEW, "put": MAINTAIN},
    "api/v1/projects/<str:team>/<str:project>/models/<str:model>/diff/": {"get": VIEW},
    # --- API: review requests (the sample request #1 is the owner's; reviews/policy.py decides)
    "api/v1/projects/<str:team>/<str:project>/review-requests/": {"get": VIEW, "post": WRITE},
    # editing is for the author or a maintainer: a writer who is not the author gets 403
    "api/v1/projects/<str:team>/<str:project>/review-requests/<int:number>/": {"get": VIEW, "patch": MAINTAIN},
    "api/v1/projects/<str:team>/<str:project>/review-requests/<int:number>/reviews/": {"get": VIEW, "post": WRITE},
    "api/v1/projects/<str:team>/<str:project>/review-requests/<int:number>/reviews/<str:review_id>/dismiss/": {
        "post": MAINTAIN
    },
    "api/v1/projects/<str:team>/<str:project>/review-requests/<int:number>/comments/": {"get": VIEW, "post": WRITE},
    # a comment is its author's; maintainers moderate (the sample comment is the owner's)
    "api/v1/projects/<str:team>/<str:project>/review-requests/<int:number>/comments/<str:comment_id>/": {
        "patch": MAINTAIN,
        "delete": MAINTAIN,
    },
    "api/v1/projects/<str:team>/<str:project>/review-requests/<int:number>/checks/": {"get": VIEW, "post": MAINTAIN},
    "api/v1/projects/<str:team>/<str:project>/review-requests/<int:number>/timeline/": {"get": VIEW},
    # the sample merge is an explicit bypass (R9): project admins only
    "api/v1/projects/<str:team>/<str:project>/review-requests/<int:number>/merge/": {"post": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/mentionables/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/models/<str:model>/review-settings/": {
        "get": VIEW,
        "patch": ADMIN,
        "delete": ADMIN,
    },
    "api/v1/projects/<str:team>/<str:project>/review-settings/": {"get": VIEW, "patch": ADMIN},
    # webhooks: project admins only, reads included (targets, delivery logs)
    "api/v1/projects/<str:team>/<str:project>/webhooks/": {"get": ADMIN, "post": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/webhooks/<str:webhook_id>/": {
        "get": ADMIN,
        "patch": ADMIN,
        "delete": ADMIN,
    },
    "api/v1/projects/<str:team>/<str:project>/webhooks/<str:webhook_id>/test/": {"post": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/webhooks/<str:webhook_id>/deliveries/": {"get": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver/": {
        "post": ADMIN
    },
    # metric alerts: viewers read the rules and what fired; project admins change them
    "api/v1/projects/<str:team>/<str:project>/alerts/": {"get": VIEW, "post": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/alerts/fired/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/alerts/<str:rule_id>/": {"get": VIEW, "patch": ADMIN, "delete": ADMIN},
    "api/v1/projects/<str:team>/<str:project>/alerts/<str:rule_id>/fired/": {"get": VIEW},
    "api/v1/notifications/": {"get": USER, "post": USER},
    "api/v1/notifications/preferences/": {"get": USER, "put": USER},
    # --- API: reports (issue 22; delete: the author, here the owner, or maintainers)
    "api/v1/projects/<str:team>/<str:project>/reports/": {"get": VIEW, "post": WRITE},
    "api/v1/projects/<str:team>/<str:project>/reports/<int:report>/": {"get": VIEW, "patch": WRITE, "delete": MAINTAIN},
    "api/v1/projects/<str:team>/<str:project>/reports/<int:report>/revisions/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/reports/<int:report>/revisions/<int:revision>/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/reports/<int:report>/diff/": {"get": VIEW},
    "api/v1/projects/<str:team>/<str:project>/reports/<int:report>/freeze/": {"post": WRITE},
    "api/v1/projects/<str:team>/<str:project>/reports/<int:report>/comments/": {"get": VIEW, "post": WRITE},
    "api/v1/projects/<str:team>/<str:project>/reports/<int:report>/links/": {"get": VIEW, "post": WRITE},
    "api/v1/projects/<str:team>/<str:project>/reports/<int:report>/links/<str:link_id>/": {"delete": WRITE},
    # --- probes and capability URLs
    "healthz": {"get": PUBLIC},
    "favicon.ico": {"get": PUBLIC},  # a redirect to the static icon
    "readyz": {"get": SAME},
    "metrics": {"get": SAME},
    "-/store/": {"get": SAME, "put": SAME},
    # --- pages: sign-in
    "login/": {"get": PUBLIC},
    "logout/": {"get": PUBLIC},
    "invitations/": {"get": PUBLIC, "post": USER},
    "invitations/<str:token>/": {"get": PUBLIC},
    # --- pages: dashboard
    "": {"get": USER},
    "<str:team>/<str:project>/": {"get": VIEW},
    "<str:team>/<str:project>/runs/<str:run_id>/": {"get": VIEW},
    "<str:team>/<str:project>/runs/<str:run_id>/artifacts/<str:artifact_id>/download/": {"get": VIEW},
    "<str:team>/<str:project>/runs/<str:run_id>/artifacts/<str:artifact_id>/thumbnail.png": {
        "get": Rule("project", minimum=ProjectRole.VIEWER, allowed_as="404")
    },
    "-/search/": {"get": USER},
    "<str:team>/<str:project>/runs/<str:run_id>/notes/": {"get": VIEW, "post": WRITE},
    # --- pages: reports
    "<str:team>/<str:project>/reports/": {"get": VIEW},
    "<str:team>/<str:project>/reports/new/": {"get": WRITE, "post": WRITE},
    "<str:team>/<str:project>/reports/<int:number>/": {"get": VIEW},
    "<str:team>/<str:project>/reports/<int:number>/edit/": {"get": WRITE, "post": WRITE},
    "<str:team>/<str:project>/reports/<int:number>/freeze/": {"post": WRITE},
    "<str:team>/<str:project>/reports/<int:number>/delete/": {"post": MAINTAIN},
    "<str:team>/<str:project>/reports/<int:number>/revisions/": {"get": VIEW},
    "<str:team>/<str:project>/reports/<int:number>/revisions/<int:revision>/": {"get": VIEW},
    "<str:team>/<str:project>/reports/<int:number>/diff/": {"get": VIEW},
    "<str:team>/<str:project>/reports/<int:number>/comment/": {"post": WRITE},
    "<str:team>/<str:project>/reports/<int:number>/link/": {"post": WRITE},
    "<str:team>/<str:project>/reports/<int:number>/links/<str:link_id>/remove/": {"post": WRITE},
    "<str:team>/<str:project>/reports/<int:number>/export.html": {"get": VIEW},
    "<str:team>/<str:project>/reviews/<int:number>/evidence/": {"post": WRITE},
    "<str:team>/<str:project>/models/<str:model>/v<int:number>/evidence/": {"post": WRITE},
    # --- pages: model registry
    "<str:team>/<str:project>/models/": {"get": VIEW},
    "<str:team>/<str:project>/models/<str:model>/": {"get": VIEW},
    "<str:team>/<str:project>/models/<str:model>/aliases/": {"post": MAINTAIN},
    "<str:team>/<str:project>/models/<str:model>/v<int:number>/": {"get": VIEW},
    "<str:team>/<str:project>/models/<str:model>/v<int:number>/download/": {"get": VIEW},
    "<str:team>/<str:project>/models/<str:model>/edit/": {"get": MAINTAIN, "post": MAINTAIN},
    "<str:team>/<str:project>/models/<str:model>/v<int:number>/edit/": {"get": MAINTAIN, "post": MAINTAIN},
    "<str:team>/<str:project>/runs/<str:run_id>/register-model/": {"get": MAINTAIN, "post": MAINTAIN},
    "<str:team>/<str:project>/compare/": {"get": VIEW},
    # --- pages: review requests
    "<str:team>/<str:project>/reviews/": {"get": VIEW},
    "<str:team>/<str:project>/reviews/new/": {"get": WRITE, "post": WRITE},
    "<str:team>/<str:project>/reviews/<int:number>/": {"get": VIEW},
    "<str:team>/<str:project>/reviews/<int:number>/review/": {"post": WRITE},
    "<str:team>/<str:project>/reviews/<int:number>/comment/": {"post": WRITE},
    "<str:team>/<str:project>/reviews/<int:number>/update/": {"post": MAINTAIN},
    # a refused merge (the sample lacks approvals) is a message on the page: allowed
    "<str:team>/<str:project>/reviews/<int:number>/merge/": {"post": MAINTAIN},
    "<str:team>/<str:project>/reviews/<int:number>/checks/": {"post": MAINTAIN},
    "<str:team>/<str:project>/reviews/<int:number>/reviews/<str:review_id>/dismiss/": {"post": MAINTAIN},
    "notifications/": {"get": USER, "post": USER},
    # --- pages: review policy (as the API: everyone who sees it reads, admins change it)
    "<str:team>/<str:project>/review-settings/": {"get": VIEW, "post": ADMIN},
    # alerts settings: everyone who sees the project reads; project admins change
    "<str:team>/<str:project>/settings/alerts/": {"get": VIEW, "post": ADMIN},
    "<str:team>/<str:project>/settings/alerts/<str:rule_id>/": {"get": VIEW, "post": ADMIN},
    "<str:team>/<str:project>/settings/alerts/<str:rule_id>/delete/": {"post": ADMIN},
    # webhooks settings: project admins only, reads included
    "<str:team>/<str:project>/settings/webhooks/": {"get": ADMIN, "post": ADMIN},
    "<str:team>/<str:project>/settings/webhooks/<str:webhook_id>/": {"get": ADMIN, "post": ADMIN},
    "<str:team>/<str:project>/settings/webhooks/<str:webhook_id>/test/": {"post": ADMIN},
    "<str:team>/<str:project>/settings/webhooks/<str:webhook_id>/delete/": {"post": ADMIN},
    "<str:team>/<str:project>/settings/webhooks/<str:webhook_id>/deliveries/<str:delivery_id>/redeliver/": {
        "post": ADMIN
    },
    "<str:team>/<str:project>/models/<str:model>/review-settings/": {"get": VIEW, "post": ADMIN},
    "<str:team>/<str:project>/models/<str:model>/review-settings/reset/": {"post": ADMIN},
    "<str:team>/<str:project>/export.csv": {"get": VIEW},
    "<str:team>/<str:project>/views/": {"post": VIEW},
    # a saved view is its owner's (the sample is the owner's): 404 for everyone else
    "<str:team>/<str:project>/views/<str:view_id>/": {"get": NOBODY},
    "<str:team>/<str:project>/views/<str:view_id>/delete/": {"post": NOBODY},
    # the runs table's layout is the caller's own: anyone who may see the project keeps one
    "<str:team>/<str:project>/table/columns/": {"post": VIEW},
    "<str:team>/<str:project>/runs/<str:run_id>/pin/": {"post": VIEW},
    # --- pages: account, tokens, teams
    "settings/": {"get": USER},
    "settings/tokens/": {"get": USER, "post": USER},
    "settings/notifications/": {"get": USER, "post": USER},
    "settings/tokens/<str:token_id>/revoke/": {"post": NOBODY},
    "teams/": {"get": USER, "post": USER},
    "teams/<str:team>/": {"get": TEAM_VIEW},
    "teams/<str:team>/invite/": {"post": TEAM_MANAGE},
    "teams/<str:team>/sso/": {"post": TEAM_MANAGE},
    "teams/<str:team>/invitations/<str:invitation_id>/revoke/": {"post": TEAM_MANAGE},
    "teams/<str:team>/members/<str:username>/role/": {"post": TEAM_MANAGE},
    "teams/<str:team>/members/<str:username>/remove/": {"post": TEAM_MANAGE},
    # --- pages: project access and audit
    "<str:team>/<str:project>/access/": {"get": VIEW},
    "<str:team>/<str:project>/access/grants/": {"post": ADMIN},
    "<str:team>/<str:project>/access/invite/": {"post": ADMIN},  # accounts.access "project.invite"
    "<str:team>/<str:project>/access/invitations/<str:project_invitation_id>/revoke/": {"post": ADMIN},
    "<str:team>/<str:project>/access/<str:kind>/<str:name>/role/": {"post": ADMIN},
    "<str:team>/<str:project>/access/<str:kind>/<str:name>/revoke/": {"post": ADMIN},
    "<str:team>/<str:project>/access/visibility/": {"post": ADMIN},
    "<str:team>/<str:project>/access/transfer/": {"post": ADMIN},
    "<str:team>/<str:project>/audit/": {"get": ADMIN},
    "<str:team>/<str:project>/tried/": {"get": VIEW, "post": VIEW},  # "has this been tried?": run.view
    # --- pages: site administration
    "-/staff/users/": {"get": STAFF},
    "-/staff/users/<str:username>/<str:action>/": {"post": STAFF},
    "-/staff/audit/": {"get": STAFF},
    "-/staff/identity/": {"get": STAFF},
    "-/staff/identity/scim-tokens/": {"post": STAFF},
    "-/staff/identity/scim-tokens/<str:scim_token_id>/revoke/": {"post": STAFF},
}

# Query strings some rows need to reach their object.
QUERIES: dict[tuple[str, str], str] = {
    ("api/v1/runs/", "get"): "?project=acme/proj",
    ("api/v1/compare/", "get"): "?runs={run_id}",
    ("api/v1/export/histories/", "get"): "?project=acme/proj",
    ("api/v1/search/", "get"): "?q=proj",
    ("<str:team>/<str:project>/compare/", "get"): "?runs={run_id}",
    ("-/search/", "get"): "?q=proj",
}

# Bodies of the pages' forms (the API's come from test_endpoints.VALID_BODIES). A callable
# gets the caller's username (a transfer goes to the caller's own personal team).
PAGE_BODIES: dict[str, dict[str, Any] | Callable[[str], dict[str, Any]]] = {
    "tokens": {"name": "laptop", "scope": "read", "expires_in_days": "30"},
    "staff-scim-token-create": {"name": "okta"},
    "teams": {"name": "brandnew"},
    "team-invite": {"invitee": "newcomer", "role": "member"},
    "team-member-role": {"role": "owner"},
    "project-grant-add": {"kind": "user", "name": "newcomer", "role": "writer"},
    "project-invite": {"invitee": "newcomer", "role": "writer"},
    "model-alias-move": {"alias": "staging", "version": "1", "reason": "matrix"},
    "project-grant-change": {"role": "maintainer"},
    "project-visibility": {"visibility": "internal"},
    "project-transfer": lambda username: {"team": username},
    "saved-view-create": {"name": "mine", "query": "sort=-start_time"},
    "project-tried": {"config": "lr: 0.01"},
    "project-table-columns": {"back": "sort=name"},
    "run-pin": {"pinned": "1"},
    "run-register-model": {"name": "matrix-model", "artifact": "model.bin"},
    "model-edit": {"description": "# Edited", "tags": "stage=edited"},
    "model-version-edit": {"description": "# Edited", "tags": "stage=edited"},
    "review-new": {"model": "fraud", "version": "1", "alias": "canary", "title": "Canary"},
    "review-submit": {"verdict": "comment", "body": "fine"},
    "review-comment": {"body": "a comment"},
    "review-update": {"state": "closed"},
    "review-dismiss": {"reason": "addressed"},
    "webhooks": {"url": "https://93.184.215.14/hook", "events": "alias.moved", "format": "json"},
    "webhook": {"url": "https://93.184.215.14/hook", "events": "alias.moved", "format": "json", "name": "x"},
    "alerts": {"kind": "threshold", "condition": "loss > 2"},
    "alert": {"kind": "nonfinite", "name": "renamed", "enabled": "on"},
    "project-review-settings": {"required_approvals": "2", "approver_role": "maintainer", "gates": ""},
    "model-review-settings": {"required_approvals": "2", "approver_role": "maintainer", "gates": ""},
    "notification-settings": {"email": ["mention"]},
    "run-notes": {"notes": "edited"},
    "report-new": {"title": "New", "body": "text", "action": "save"},
    "report-edit": {"title": "Edited", "body": "text", "action": "save"},
    "report-comment": {"body": "a comment"},
    "report-link": {"review_request": "1"},
    "review-cite-report": {"report": "1"},
    "version-cite-report": {"report": "1"},
}
API_BODIES: dict[str, Callable[[str], dict[str, Any]]] = {
    "api-project-transfer": lambda username: {"team": username},
}


# --- the URL configuration -------------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def routed_patterns() -> list[tuple[str, URLPattern]]:
    return [(route, p) for route, p in _walk(get_resolver().url_patterns) if not route.startswith(EXCLUDED)]


def api_methods(pattern: URLPattern) -> set[str]:
    view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
    return {m for m in METHODS if view is not None and hasattr(view, m)}


PATTERNS = routed_patterns()
CASES = [(route, method) for route, _ in PATTERNS for method in sorted(ROWS.get(route, {"?": PUBLIC}))]


def test_every_url_pattern_has_a_row() -> None:
    missing = [route for route, _ in PATTERNS if route not in ROWS]
    assert not missing, (
        "These URL patterns have no row in tests/security/test_permission_matrix.py ROWS "
        f"(say which rule guards each method): {missing}"
    )


def test_every_api_method_has_a_rule_and_no_row_is_stale() -> None:
    routes = {route: pattern for route, pattern in PATTERNS}
    problems = [f"{route}: row for a pattern that no longer exists" for route in ROWS if route not in routes]
    for route, pattern in PATTERNS:
        if route.startswith("api/") and route in ROWS:
            lacking = api_methods(pattern) - set(ROWS[route])
            problems += [f"{m.upper()} /{route}: no rule in its ROWS entry" for m in sorted(lacking)]
    assert not problems, problems


# --- the callers -----------------------------------------------------------------------------


@dataclass
class Caller:
    name: str
    user: User | None = None
    role: ProjectRole | None = None  # effective role on acme/proj
    token: str | None = None  # API credential; None: anonymous on the API
    read_only: bool = False
    signed_in: bool = True  # has a working session on the pages
    valid: bool = True  # its API credential authenticates
    staff: bool = False


@pytest.fixture
def callers(victim_run: Run, owner: User) -> list[Caller]:  # noqa: F811 (the imported fixture)
    project = victim_run.project

    def granted(username: str, role: ProjectRole, **extra: Any) -> User:
        user = UserFactory.create(username=username, **extra)
        ProjectGrant.objects.create(project=project, user=user, role=role)
        return user

    viewer = granted("m-viewer", ProjectRole.VIEWER)
    writer = granted("m-writer", ProjectRole.WRITER)
    maintainer = granted("m-maintainer", ProjectRole.MAINTAINER)
    admin = granted("m-admin", ProjectRole.ADMIN)
    outsider = UserFactory.create(username="m-outsider")
    other_admin = UserFactory.create(username="m-other-admin")
    ProjectFactory.create(team=team_create(name="otherteam", owner=other_admin), name="theirs")
    site_admin = UserFactory.create(username="m-site-admin", is_staff=True, is_superuser=True)
    deactivated = granted("m-deactivated", ProjectRole.ADMIN)
    deactivated_token = token_create(user=deactivated, name="t").raw
    User.objects.filter(pk=deactivated.pk).update(is_active=False)
    revoked = token_create(user=admin, name="revoked")
    token_revoke(token=revoked.token)
    expired = token_create(user=admin, name="expired", expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=expired.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    def tok(user: User, scope: str = "write") -> str:
        return token_create(user=user, name="matrix", scope=scope).raw

    return [
        Caller("anonymous", signed_in=False, valid=False),
        Caller("signed-in, no role", outsider, token=tok(outsider)),
        Caller("viewer", viewer, ProjectRole.VIEWER, tok(viewer)),
        Caller("writer", writer, ProjectRole.WRITER, tok(writer)),
        Caller("maintainer", maintainer, ProjectRole.MAINTAINER, tok(maintainer)),
        Caller("project admin", admin, ProjectRole.ADMIN, tok(admin)),
        Caller("admin of another team's project", other_admin, token=tok(other_admin)),
        Caller("site admin", site_admin, ProjectRole.ADMIN, tok(site_admin), staff=True),
        # Tokens exist only on the API: on the pages these callers carry no session.
        Caller(
            "read-scoped token",
            maintainer,
            ProjectRole.MAINTAINER,
            tok(maintainer, "read"),
            read_only=True,
            signed_in=False,
        ),
        Caller("revoked token", admin, ProjectRole.ADMIN, revoked.raw, signed_in=False, valid=False),
        Caller("expired token", admin, ProjectRole.ADMIN, expired.raw, signed_in=False, valid=False),
        Caller("deactivated user", deactivated, ProjectRole.ADMIN, deactivated_token, signed_in=False, valid=False),
    ]


@pytest.fixture
def page_kwargs(victim_run: Run, owner: User) -> dict[str, str]:  # noqa: F811
    team = victim_run.project.team
    invitation = invitation_create(team=team, inviter=owner, email="someone@example.com")
    into_project = project_invite(
        project=victim_run.project, inviter=owner, role="writer", invitee="someone-else@example.com"
    )
    assert into_project.issued is not None
    view = SavedView.objects.create(project=victim_run.project, owner=owner, name="owners", query="sort=name")
    return {
        "view_id": view.id,
        "number": "1",
        **sample_kwargs(victim_run),
        "invitation_id": invitation.invitation.id,
        "project_invitation_id": into_project.issued.invitation.id,
        "token": invitation.raw,
        "action": "deactivate",
        # an identity provider's token, made by a site administrator
        "scim_token_id": token_create(
            user=UserFactory.create(username="idp-admin", is_staff=True), name="okta", scope="scim"
        ).token.id,
    }


# --- expectations ------------------------------------------------------------------------------


def expected(rule: Rule, caller: Caller, method: str, *, api: bool) -> str:
    """``allowed``, ``401``, ``403``, ``404`` or ``login`` (a redirect to the login page)."""
    if rule.scope in {"public", "same"}:
        return "allowed"
    if api:
        if not caller.valid or caller.token is None:
            return "401"
        if caller.read_only and method not in SAFE:
            return "403"
    elif not caller.signed_in:
        return "login"
    if rule.scope == "user":
        return "allowed"
    if rule.scope == "staff":
        return "allowed" if caller.staff else "403"
    if rule.scope == "nobody":
        return "404"
    if rule.scope == "team":
        # acme is visible to its members and to whoever sees one of its projects.
        if caller.role is None:
            return "404"
        return "403" if rule.manage and not caller.staff else "allowed"
    assert rule.scope == "project"
    assert rule.minimum is not None
    if caller.role is None:
        return "404"
    return rule.allowed_as if caller.role >= rule.minimum else "403"


def outcome(response: Any) -> str:
    status = response.status_code
    if status in (301, 302, 303) and response["Location"].split("?")[0] in ("/login/", "/accounts/login/"):
        return "login"
    if status < 400:
        return "allowed"
    return str(status)


class _Rollback(Exception):
    pass


def _send(caller: Caller, method: str, url: str, body: dict[str, Any] | None, *, api: bool) -> Any:
    if api:
        client: Client = APIClient()
        if caller.token is not None:
            client.credentials(HTTP_AUTHORIZATION="Bearer " + caller.token)  # type: ignore[attr-defined]
        if method in SAFE:
            return client.get(url)
        return getattr(client, method)(url, data=orjson.dumps(body or {}), content_type="application/json")
    client = Client()
    if caller.user is not None and caller.signed_in:
        client.force_login(caller.user)
    elif caller.token is not None:
        client.defaults["HTTP_AUTHORIZATION"] = "Bearer " + caller.token  # a token is no session
    if method in SAFE:
        return client.get(url)
    if method == "post":
        return client.post(url, body or {})
    return getattr(client, method)(url, data=orjson.dumps(body or {}), content_type="application/json")


def _url(route: str, kwargs: dict[str, str]) -> str:
    from tests.security.test_endpoints import build_url

    return build_url(route, kwargs)


@pytest.mark.parametrize(("route", "method"), CASES, ids=[f"{m.upper()} /{r}" for r, m in CASES])
def test_permission_matrix(
    route: str,
    method: str,
    callers: list[Caller],
    page_kwargs: dict[str, str],
    victim_run: Run,  # noqa: F811
) -> None:
    assert route in ROWS, f"/{route} has no row in ROWS: add one saying which rule guards each method"
    rule = ROWS[route][method]
    pattern = dict(PATTERNS)[route]
    api = route.startswith("api/")
    url = _url(route, page_kwargs) + QUERIES.get((route, method), "").format(**page_kwargs)
    seen: dict[str, tuple[str, str, int]] = {}
    for caller in callers:
        username = caller.user.username if caller.user else ""
        body: Any = (API_BODIES if api else PAGE_BODIES).get(pattern.name or "") or (
            VALID_BODIES.get(pattern.name or "") if api else None
        )
        if callable(body):
            body = body(username)
        try:
            with transaction.atomic():
                response = _send(caller, method, url, body, api=api)
                raise _Rollback
        except _Rollback:
            pass
        assert response.status_code < 500, (caller.name, response.status_code)
        seen[caller.name] = (expected(rule, caller, method, api=api), outcome(response), response.status_code)

    if rule.scope == "same":
        assert len({status for _, _, status in seen.values()}) == 1, seen
        return
    if rule.scope == "public":  # signing out while signed out sends you to the login page: fine
        seen = {
            name: (want, "allowed" if got == "login" else got, status) for name, (want, got, status) in seen.items()
        }
    wrong = {
        name: f"expected {want}, got {got} ({status})" for name, (want, got, status) in seen.items() if want != got
    }
    assert not wrong, f"{method.upper()} /{route}: {wrong}"


def test_the_matrix_knows_every_kind_of_caller(callers: list[Caller]) -> None:
    names = {c.name for c in callers}

    assert names >= {
        "anonymous",
        "signed-in, no role",
        "viewer",
        "writer",
        "maintainer",
        "project admin",
        "admin of another team's project",
        "read-scoped token",
        "revoked token",
        "expired token",
        "deactivated user",
    }
    # and their roles are what the names say
    project = Project.objects.get(team__name="acme", name="proj")
    from accounts import access

    for caller in callers:
        if caller.user is not None and caller.user.is_active:
            assert access.role_on(caller.user, project) == caller.role, caller.name
    assert not Membership.objects.filter(team=project.team, user__username__startswith="m-").exists()
