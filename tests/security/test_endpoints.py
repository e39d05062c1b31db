"""Every /api/v1/ endpoint, enumerated from the URL configuration so that a new endpoint is
covered the day it is added: anonymous callers get 401, outsiders get 404 (never 403: they
may not learn that the object exists), and neither leaves a side effect. The OpenAPI
schema lists every endpoint.

A new endpoint needs at most a sample body in ``VALID_BODIES`` (the owner must succeed
with it, which proves the outsider's 404 comes from the policy and not from validation)
and, when it has no path parameter, an entry in ``OUTSIDER_CHECKS``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.test import APIClient

from accounts.models import ApiToken, Membership, Project, ProjectGrant, ProjectRole, Team, User
from artifacts.models import Artifact, Blob
from experiments.models import Experiment, Figure, LogBatch, MetricChunk, MetricSummary, Param, Run, Tag
from tests.conftest import ClientFor
from tests.factories import UserFactory
from tests.helpers import assert_error, log_path, post_json

pytestmark = pytest.mark.django_db

UNSAFE = {"post", "put", "patch", "delete"}


def _walk(patterns: list[Any], prefix: str = "") -> Iterator[tuple[str, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern), pattern


def api_endpoints() -> list[tuple[str, str, str]]:
    """(method, route, url name) for every view method under api/v1/."""
    found = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if not route.startswith("api/v1/"):
            continue
        view = getattr(pattern.callback, "view_class", None) or getattr(pattern.callback, "cls", None)
        assert view is not None, f"{route}: only class-based API views are enumerable"
        for method in ("get", "post", "put", "patch", "delete"):
            if hasattr(view, method):
                found.append((method, route, pattern.name or route))
    return found


ENDPOINTS = api_endpoints()
IDS = [f"{method.upper()} {route}" for method, route, _ in ENDPOINTS]
PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")

VALID_BODIES: dict[str, dict[str, Any]] = {
    "api-projects": {"team": "acme", "name": "brand-new"},
    "api-experiments": {"name": "ablation"},
    "api-runs": {"project": "acme/proj"},
    "api-run": {"notes": "changed", "status": "killed"},
    "api-run-log": {
        "batch_id": "b-1",
        "params": {"lr": "0.01"},
        "tags": {"k": "v"},
        "metrics": [{"key": "loss", "step": 0, "value": 0.5, "timestamp": 1764150000000}],
    },
    "api-run-figures": {"name": "cm", "labels": ["cat", "dog"], "matrix": [[3, 1], [0, 4]]},
    "api-run-artifacts": {"kind": "model", "files": [{"path": "model/new.bin", "size": 3, "sha256": "b" * 64}]},
    "api-teams": {"name": "newteam"},
    "api-team-members": {"username": "newcomer", "role": "member"},
    "api-team-member": {"role": "owner"},
    "api-project-access": {"user": "newcomer", "role": "viewer"},
    "api-project-grant": {"role": "maintainer"},
    "api-project-visibility": {"visibility": "internal"},
    "api-project-transfer": {"team": "owner"},
    "api-tokens": {"name": "ci", "scope": "read", "expires_in_days": 30},
    "api-models": {"name": "brand-new-model"},
    "api-model": {"description": "changed"},
    "api-model-versions": {"run": "e" * 32, "artifact": "weights.bin", "aliases": ["staging"]},
    "api-model-version": {"tags": {"stage": "candidate"}},
    "api-model-alias": {"version": 1, "reason": "sample"},
    # reviews: request #1 asks to move fraud@production to v1 (see _review_samples)
    "api-review-requests": {"model": "fraud", "version": 1, "alias": "canary", "title": "Canary v1"},
    "api-review-request": {"title": "Renamed"},
    "api-review-reviews": {"verdict": "comment", "body": "Looks fine"},
    "api-review-dismiss": {"reason": "addressed"},
    "api-review-comments": {"body": "A comment"},
    "api-review-comment": {"body": "Edited"},
    "api-review-merge": {"bypass": True, "reason": "sample"},
    "api-review-settings": {"required_approvals": 2},
    "api-project-review-settings": {"required_approvals": 2},
    "api-notifications": {"all": True},
    "api-notification-preferences": {"email": ["mention"]},
    # webhooks: a public address literal (no DNS needed); the sample webhook is "f"*32
    "api-webhooks": {"url": "https://93.184.215.14/hook", "events": ["alias.moved"]},
    "api-webhook": {"name": "renamed"},
    "api-tried": {"config": {"lr": 0.01}},
    "api-tried-settings": {"exclude": ["seed"], "key_metric": "acc"},
    # imports (issue 19): the sample run is marked imported from mlflow "victim" (victim_run)
    "api-import-runs": {"source": "mlflow", "source_id": "sample-run", "run_id": "1" * 32},
    "api-import-runs-lookup": {"source": "mlflow", "source_ids": ["victim"]},
    "api-import-run-complete": {},
    "api-import-models": {
        "source": "mlflow",
        "source_id": "Imported",
        "name": "imported",
        "versions": [{"source_id": "Imported/1", "version": 1, "run": "e" * 32, "artifact_path": "weights.bin"}],
    },
}
# Endpoints only project admins may read (webhooks: targets and delivery logs): a viewer
# gets 403 there even for GET.
ADMIN_READ_ENDPOINTS = {"api-webhooks", "api-webhook", "api-webhook-deliveries"}
# POSTs that only read (a question in a body): viewers may send them.
READ_POSTS = {"api-tried", "api-import-runs-lookup"}
# Endpoints over the caller's own objects (their tokens): another user's object is not
# theirs to know, so even a viewer of the project gets 404 there, never 403.
OWN_OBJECT_ENDPOINTS = {"api-token"}


@pytest.fixture
def victim_run(owner_client: APIClient, run: Run) -> Run:
    """acme/proj's run with a param, a tag, a metric under a slashed key and a figure."""
    body = {"params": {"seed": "1"}, "tags": {"a": "b"}, "metrics": [{"key": "system/cpu", "step": 0, "value": 3}]}
    assert post_json(owner_client, log_path(run), body).status_code == 200
    Figure.objects.create(run=run, kind=Figure.Kind.CONFUSION_MATRIX, name="cm0", data={"labels": [], "matrix": []})
    blob = Blob.objects.create(project=run.project, sha256="a" * 64, size=3, status=Blob.Status.VERIFIED)
    Artifact.objects.create(
        id="a" * 32, project=run.project, run=run, blob=blob, path="model.bin", sha256="a" * 64, size=3, status="ready"
    )
    Run.objects.filter(pk=run.pk).update(source="mlflow", source_id="victim")
    # accounts: a user outside everything, a user grant on the project, a token of the owner
    UserFactory.create(username="newcomer")
    ProjectGrant.objects.create(
        project=run.project, user=UserFactory.create(username="grantee"), role=ProjectRole.VIEWER
    )
    ApiToken.objects.create(
        id="c" * 32, user=User.objects.get(username="owner"), name="sample", prefix="asy_sample", digest="0" * 64
    )
    # registry: model acme/proj/fraud with v1 (alias staging) from a source run "eee…"
    _registry_samples(run)
    return run


def _registry_samples(run: Run) -> None:
    from registry import services as registry_services

    source = Run.objects.create(
        id="e" * 32,
        project=run.project,
        experiment=run.experiment,
        author=run.author,
        name="source",
        start_time=run.start_time,
    )
    for path, digit in (("model.pkl", "d"), ("weights.bin", "f")):
        blob = Blob.objects.create(project=run.project, sha256=digit * 64, size=3, status=Blob.Status.VERIFIED)
        Artifact.objects.create(
            project=run.project, run=source, blob=blob, path=path, sha256=digit * 64, size=3, status="ready"
        )
    assert run.author is not None
    fraud = registry_services.model_create(user=run.author, project=run.project, name="fraud")
    registry_services.version_register(
        user=run.author, repository=fraud, run=source, artifact="model.pkl", aliases=["staging"]
    )
    _review_samples(run, fraud)
    _webhook_samples(run)


def _webhook_samples(run: Run) -> None:
    """Webhook "f"*32 of acme/proj with one delivery "9"*32."""
    from automations.models import Delivery, Webhook

    webhook = Webhook.objects.create(
        id="f" * 32, project=run.project, name="sample", url="https://93.184.215.14/hook", secret="x" * 20,
        events=["alias.moved"],
    )  # fmt: skip
    Delivery.objects.create(id="9" * 32, webhook=webhook, event="alias.moved", payload={"event": "alias.moved"})


def _review_samples(run: Run, fraud: Any) -> None:
    """Review request #1 (fraud@production → v1) by the owner, with a request for changes
    by ``member`` (id "b"*32), a comment by the owner (id "d"*32), a notification and
    fraud's own review settings (so a refused DELETE of them shows in the snapshot)."""
    from reviews.models import Comment, Notification, Review, ReviewCounter, ReviewRequest, ReviewSettings

    ReviewSettings.objects.create(repository=fraud, required_checks=["artifact-integrity"])

    version = fraud.versions.get(number=1)
    owner = User.objects.get(username="owner")
    ReviewCounter.objects.create(project=run.project, last_number=1)
    request = ReviewRequest.objects.create(
        project=run.project,
        number=1,
        repository=fraud,
        alias="production",
        candidate=version,
        title="Ship v1",
        author=owner,
    )
    Review.objects.create(
        id="b" * 32,
        request=request,
        author=User.objects.get(username="member"),
        verdict="request_changes",
        body="no",
        version=version,
        version_hash=version.content_hash,
    )
    Comment.objects.create(id="d" * 32, request=request, author=owner, body="hello", version=version)
    Notification.objects.create(user=owner, kind="mention", request=request, summary="sample")


def sample_kwargs(run: Run) -> dict[str, str]:
    return {
        "team": run.project.team.name,
        "project": run.project.name,
        "run_id": run.id,
        "key": "system/cpu",
        "artifact_id": "a" * 32,
        "username": "member",
        "kind": "user",
        "name": "grantee",
        "token_id": "c" * 32,
        "model": "fraud",
        "version": "1",
        "alias": "staging",
        "number": "1",
        "review_id": "b" * 32,
        "comment_id": "d" * 32,
        "webhook_id": "f" * 32,
        "delivery_id": "9" * 32,
    }


def build_url(route: str, kwargs: dict[str, str]) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group("name")
        assert name in kwargs, f"no sample value for path parameter {name!r}: add one to sample_kwargs()"
        return kwargs[name]

    return "/" + PARAM.sub(fill, route)


def has_params(route: str) -> bool:
    return bool(PARAM.search(route))


WITH_PARAMS = [e for e in ENDPOINTS if has_params(e[1])]
WITH_PARAMS_IDS = [f"{method.upper()} {route}" for method, route, _ in WITH_PARAMS]


def send(client: APIClient, method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    if method in UNSAFE:
        return getattr(client, method)(url, data=orjson.dumps(body or {}), content_type="application/json")
    return client.get(url)


def snapshot() -> dict[str, int]:
    models = (User, Team, Membership, ProjectGrant, Project, Experiment, Run, Param, Tag, MetricChunk)
    counts = {model.__name__: model.objects.count() for model in models}
    counts.update(
        {
            "MetricSummary": MetricSummary.objects.count(),
            "LogBatch": LogBatch.objects.count(),
            "Figure": Figure.objects.count(),
            "ApiToken.revoked": ApiToken.objects.filter(revoked_at__isnull=False).count(),
            "Artifact": Artifact.objects.count(),
            "Artifact.changed": Artifact.objects.exclude(status="ready").count(),
            "Blob": Blob.objects.count(),
        }
    )
    from registry.models import Alias, AliasMove, ModelRepository, ModelVersion

    counts.update({m.__name__: m.objects.count() for m in (ModelRepository, ModelVersion, Alias, AliasMove)})
    counts["ModelVersion.edited"] = ModelVersion.objects.exclude(tags={}).count()
    from reviews.models import (
        Check,
        Comment,
        Notification,
        ProjectReviewSettings,
        Review,
        ReviewRequest,
        ReviewSettings,
        TimelineEvent,
    )

    counts.update({m.__name__: m.objects.count() for m in (ReviewRequest, Review, Comment, Check, ReviewSettings)})
    counts["ProjectReviewSettings"] = ProjectReviewSettings.objects.count()
    counts.update({m.__name__: m.objects.count() for m in (Notification, TimelineEvent)})
    counts["ReviewRequest.changed"] = ReviewRequest.objects.exclude(state="open").exclude(title="Ship v1").count()
    counts["ReviewRequest.renamed"] = ReviewRequest.objects.exclude(title="Ship v1").count()
    counts["Review.dismissed"] = Review.objects.filter(dismissed_at__isnull=False).count()
    counts["Comment.changed"] = Comment.objects.exclude(body="hello").count()
    counts["Notification.read"] = Notification.objects.filter(read_at__isnull=False).count()
    from automations.models import Delivery, Webhook

    counts.update({"Webhook": Webhook.objects.count(), "Delivery": Delivery.objects.count()})
    counts["Webhook.changed"] = Webhook.objects.exclude(name="sample").count()
    return counts


def run_state(run: Run) -> tuple[Any, ...]:
    fresh = Run.objects.get(pk=run.pk)
    return (fresh.name, fresh.status, fresh.end_time, fresh.notes, fresh.config, fresh.info, fresh.updated_at)


def test_the_enumeration_finds_the_known_endpoints() -> None:
    routes = {route for _, route, _ in ENDPOINTS}

    assert "api/v1/runs/<str:run_id>/log/" in routes
    assert "api/v1/runs/<str:run_id>/metrics/<path:key>/" in routes
    assert "api/v1/projects/<str:team>/<str:project>/" in routes
    assert len(ENDPOINTS) >= 12


@pytest.mark.parametrize(("method", "route", "name"), ENDPOINTS, ids=IDS)
def test_every_endpoint_refuses_an_anonymous_caller(victim_run: Run, method: str, route: str, name: str) -> None:
    before, state = snapshot(), run_state(victim_run)

    response = send(APIClient(), method, build_url(route, sample_kwargs(victim_run)), VALID_BODIES.get(name))

    assert_error(response, 401, code="not_authenticated")
    assert snapshot() == before
    assert run_state(victim_run) == state


@pytest.mark.parametrize(("method", "route", "name"), ENDPOINTS, ids=IDS)
def test_every_endpoint_works_for_the_owner_with_the_sample_values(
    owner_client: APIClient, victim_run: Run, method: str, route: str, name: str
) -> None:
    # Proves the samples are real, so the outsider's 404 below comes from the policy.
    url = build_url(route, sample_kwargs(victim_run))
    if not has_params(route) and method == "get" and name in {"api-runs", "api-audit"}:
        url += "?project=acme/proj"
    url += SAMPLE_QUERIES.get(name, lambda run: "")(victim_run)

    response = send(owner_client, method, url, VALID_BODIES.get(name))

    assert 200 <= response.status_code < 300, (response.status_code, response.content[:300])


def _outsider_runs_list(client: APIClient, run: Run) -> None:
    assert_error(client.get("/api/v1/runs/", {"project": run.project.path}), 404, code="not_found")


def _outsider_creates_run(client: APIClient, run: Run) -> None:
    assert_error(post_json(client, "/api/v1/runs/", {"project": run.project.path}), 404, code="not_found")


def _outsider_creates_project(client: APIClient, run: Run) -> None:
    body = {"team": run.project.team.name, "name": "sneaky"}
    assert_error(post_json(client, "/api/v1/projects/", body), 404, code="not_found")


def _outsider_lists_projects(client: APIClient, run: Run) -> None:
    paths = [p["path"] for p in client.get("/api/v1/projects/").json()["results"]]
    assert run.project.path not in paths


def _outsider_asks_who_they_are(client: APIClient, run: Run) -> None:
    body = client.get("/api/v1/me/").json()
    assert body["username"] == "outsider"
    assert run.project.team.name not in body["teams"]


# How an outsider is refused on endpoints that take no object in their path.
def _outsider_lists_teams(client: APIClient, run: Run) -> None:
    names = [t["name"] for t in client.get("/api/v1/teams/").json()]
    assert names == ["outsider"]


def _outsider_takes_a_team_name(client: APIClient, run: Run) -> None:
    assert_error(post_json(client, "/api/v1/teams/", {"name": run.project.team.name}), 409, field="name")


def _outsider_lists_tokens(client: APIClient, run: Run) -> None:
    assert "c" * 32 not in [t["id"] for t in client.get("/api/v1/tokens/").json()]


def _outsider_creates_a_token_for_someone_else(client: APIClient, run: Run) -> None:
    assert_error(post_json(client, "/api/v1/tokens/", {"name": "x", "user": "owner"}), 400, field="user")


def _outsider_reads_the_audit_log(client: APIClient, run: Run) -> None:
    assert_error(client.get("/api/v1/audit/"), 403, code="permission_denied")
    assert_error(client.get("/api/v1/audit/", {"project": run.project.path}), 404, code="not_found")


# Query strings for GET endpoints that take their objects as query parameters (issue 6).
SAMPLE_QUERIES: dict[str, Callable[[Run], str]] = {
    "api-compare": lambda run: f"?runs={run.id}&keys=system/cpu",
    "api-export-histories": lambda run: f"?runs={run.id}",
    "api-search": lambda run: "?q=first",
}


def _outsider_compares(client: APIClient, run: Run) -> None:
    assert_error(client.get("/api/v1/compare/", {"runs": run.id}), 404, code="not_found")
    missing = client.get("/api/v1/compare/", {"runs": "f" * 32})
    assert missing.json() == client.get("/api/v1/compare/", {"runs": run.id}).json()


def _outsider_exports(client: APIClient, run: Run) -> None:
    assert_error(client.get("/api/v1/export/histories/", {"runs": run.id}), 404, code="not_found")
    assert_error(
        client.get("/api/v1/export/histories/", {"project": run.project.path, "filter": ""}), 404, code="not_found"
    )


def _outsider_searches(client: APIClient, run: Run) -> None:
    found = client.get("/api/v1/search/", {"q": "first"}).json()
    assert found == {"projects": [], "experiments": [], "runs": [], "models": []}
    found = client.get("/api/v1/search/", {"q": run.project.name}).json()
    assert found["projects"] == []
    assert found["runs"] == []


def _outsider_lists_notifications(client: APIClient, run: Run) -> None:
    assert client.get("/api/v1/notifications/").json() == {"unread": 0, "count": 0, "results": []}


def _outsider_marks_someone_elses_notification(client: APIClient, run: Run) -> None:
    from reviews.models import Notification

    theirs = Notification.objects.get(user__username="owner")
    assert post_json(client, "/api/v1/notifications/", {"ids": [theirs.id]}).json()["marked"] == 0
    assert post_json(client, "/api/v1/notifications/", {"all": True}).json()["marked"] == 0


def _outsider_reads_preferences(client: APIClient, run: Run) -> None:
    assert "mention" in client.get("/api/v1/notifications/preferences/").json()["email"]


def _outsider_sets_own_preferences_only(client: APIClient, run: Run) -> None:
    from reviews import selectors as review_selectors

    body = orjson.dumps({"email": []})
    assert client.put("/api/v1/notifications/preferences/", data=body, content_type="application/json").json() == {
        "email": []
    }
    assert "mention" in review_selectors.email_kinds(User.objects.get(username="owner"))


OUTSIDER_CHECKS: dict[tuple[str, str], Callable[[APIClient, Run], None]] = {
    ("get", "api/v1/notifications/"): _outsider_lists_notifications,
    ("post", "api/v1/notifications/"): _outsider_marks_someone_elses_notification,
    ("get", "api/v1/notifications/preferences/"): _outsider_reads_preferences,
    ("put", "api/v1/notifications/preferences/"): _outsider_sets_own_preferences_only,
    ("get", "api/v1/compare/"): _outsider_compares,
    ("get", "api/v1/export/histories/"): _outsider_exports,
    ("get", "api/v1/search/"): _outsider_searches,
    ("get", "api/v1/runs/"): _outsider_runs_list,
    ("post", "api/v1/runs/"): _outsider_creates_run,
    ("get", "api/v1/projects/"): _outsider_lists_projects,
    ("post", "api/v1/projects/"): _outsider_creates_project,
    ("get", "api/v1/me/"): _outsider_asks_who_they_are,
    ("get", "api/v1/teams/"): _outsider_lists_teams,
    ("post", "api/v1/teams/"): _outsider_takes_a_team_name,
    ("get", "api/v1/tokens/"): _outsider_lists_tokens,
    ("post", "api/v1/tokens/"): _outsider_creates_a_token_for_someone_else,
    ("get", "api/v1/audit/"): _outsider_reads_the_audit_log,
}


@pytest.mark.parametrize(("method", "route", "name"), ENDPOINTS, ids=IDS)
def test_every_endpoint_refuses_an_outsider_with_not_found(
    outsider_client: APIClient, victim_run: Run, method: str, route: str, name: str
) -> None:
    before, state = snapshot(), run_state(victim_run)

    if has_params(route):
        response = send(outsider_client, method, build_url(route, sample_kwargs(victim_run)), VALID_BODIES.get(name))
        assert_error(response, 404, code="not_found")
    else:
        check = OUTSIDER_CHECKS.get((method, route))
        assert check is not None, f"{method.upper()} /{route}: add how an outsider is refused to OUTSIDER_CHECKS"
        check(outsider_client, victim_run)

    assert snapshot() == before
    assert run_state(victim_run) == state


@pytest.mark.parametrize(("method", "route", "name"), WITH_PARAMS, ids=WITH_PARAMS_IDS)
def test_an_outsider_sees_the_same_answer_as_for_a_missing_object(
    outsider_client: APIClient, client_for: ClientFor, victim_run: Run, method: str, route: str, name: str
) -> None:
    missing = {"team": "acme", "project": "nosuch", "run_id": "f" * 32, "key": "system/cpu", "artifact_id": "f" * 32}
    missing.update({"username": "nosuchuser", "kind": "user", "name": "nosuchuser", "token_id": "f" * 32})
    missing.update({"model": "fraud", "version": "1", "alias": "staging"})
    missing.update({"number": "1", "review_id": "b" * 32, "comment_id": "d" * 32})
    missing.update({"webhook_id": "f" * 32, "delivery_id": "9" * 32})
    if "run_id" not in route:
        missing["team"], missing["project"] = "nosuchteam", "nosuch"

    hidden = send(outsider_client, method, build_url(route, sample_kwargs(victim_run)), VALID_BODIES.get(name))
    absent = send(outsider_client, method, build_url(route, missing), VALID_BODIES.get(name))

    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == absent.json()


def test_the_openapi_schema_lists_every_api_endpoint(anon_client: APIClient) -> None:
    response = anon_client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = orjson.loads(response.content)

    documented = {
        (method, path)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v1/")
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    routed = {(method, "/" + PARAM.sub(lambda m: "{" + m.group("name") + "}", route)) for method, route, _ in ENDPOINTS}

    assert documented == routed


@pytest.mark.parametrize(("method", "route", "name"), WITH_PARAMS, ids=WITH_PARAMS_IDS)
def test_a_viewer_may_read_every_object_endpoint_but_write_through_none(
    viewer_client: APIClient, victim_run: Run, method: str, route: str, name: str
) -> None:
    before, state = snapshot(), run_state(victim_run)

    response = send(viewer_client, method, build_url(route, sample_kwargs(victim_run)), VALID_BODIES.get(name))

    if name in OWN_OBJECT_ENDPOINTS:
        assert_error(response, 404, code="not_found")
    elif (method in UNSAFE and name not in READ_POSTS) or name in ADMIN_READ_ENDPOINTS:
        assert_error(response, 403, code="permission_denied")
    else:
        assert response.status_code == 200
    assert snapshot() == before
    assert run_state(victim_run) == state
