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

from accounts.models import ApiToken, Membership, ProjectGrant, Team, User
from experiments.models import Experiment, Figure, LogBatch, MetricChunk, MetricSummary, Param, Project, Run, Tag
from tests.conftest import ClientFor
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
}


@pytest.fixture
def victim_run(owner_client: APIClient, run: Run) -> Run:
    """acme/proj's run with a param, a tag, a metric under a slashed key and a figure."""
    body = {"params": {"seed": "1"}, "tags": {"a": "b"}, "metrics": [{"key": "system/cpu", "step": 0, "value": 3}]}
    assert post_json(owner_client, log_path(run), body).status_code == 200
    Figure.objects.create(run=run, kind=Figure.Kind.CONFUSION_MATRIX, name="cm0", data={"labels": [], "matrix": []})
    return run


def sample_kwargs(run: Run) -> dict[str, str]:
    return {"team": run.project.team.name, "project": run.project.name, "run_id": run.id, "key": "system/cpu"}


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
        }
    )
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
    if not has_params(route) and method == "get" and name == "api-runs":
        url += "?project=acme/proj"

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
OUTSIDER_CHECKS: dict[tuple[str, str], Callable[[APIClient, Run], None]] = {
    ("get", "api/v1/runs/"): _outsider_runs_list,
    ("post", "api/v1/runs/"): _outsider_creates_run,
    ("get", "api/v1/projects/"): _outsider_lists_projects,
    ("post", "api/v1/projects/"): _outsider_creates_project,
    ("get", "api/v1/me/"): _outsider_asks_who_they_are,
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
    missing = {"team": "acme", "project": "nosuch", "run_id": "f" * 32, "key": "system/cpu"}
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

    if method in UNSAFE:
        assert_error(response, 403, code="permission_denied")
    else:
        assert response.status_code == 200
    assert snapshot() == before
    assert run_state(victim_run) == state
