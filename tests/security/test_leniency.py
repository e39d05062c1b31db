"""Issue 17 bug 10: leniencies that should be refusals. A number where a string is expected
(DRF's CharField made ``{"team": 0}`` a team named "0"), ``0``/``false``/``""``/``[]`` where
an object is expected (stored as ``{}``), ``null`` where the schema does not say nullable,
and lenient query parameters each answer 400 naming the field, and write nothing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import Project, Team
from experiments.models import Run
from tests.helpers import assert_error
from tests.security.test_endpoints import (  # noqa: F401 (fixture)
    ENDPOINTS,
    build_url,
    sample_kwargs,
    send,
    snapshot,
    victim_run,
)

pytestmark = pytest.mark.django_db

ROUTES = {name: (method, route) for method, route, name in ENDPOINTS}


def _url(name: str, run: Run) -> str:
    return build_url(ROUTES[name][1], sample_kwargs(run))


NUMBER_FOR_STRING = [
    ("post", "api-teams", {"name": "newteam", "display_name": 0}, "display_name"),
    ("post", "api-tokens", {"name": 0, "scope": "read"}, "name"),
    ("post", "api-experiments", {"name": 0}, "name"),
    ("post", "api-runs", {"project": "acme/proj", "name": 0}, "name"),
    ("post", "api-runs", {"project": "acme/proj", "notes": 0}, "notes"),
    ("patch", "api-run", {"name": 0}, "name"),
    ("patch", "api-run", {"notes": 1.5}, "notes"),
    ("patch", "api-run", {"name": True}, "name"),
    ("post", "api-project-transfer", {"team": 0}, "team"),
]
NOT_OBJECTS: list[Any] = [0, False, "", []]
NOT_AN_OBJECT = [
    ("post", "api-runs", {"project": "acme/proj", field: bad}, field)
    for field in ("config", "tags", "info")
    for bad in NOT_OBJECTS
]
NULL_NOT_ALLOWED = [
    ("post", "api-models", {"name": "brand-new-model", "protected_aliases": None}, "protected_aliases"),
    ("patch", "api-model", {"protected_aliases": None}, "protected_aliases"),
    ("patch", "api-review-settings", {"required_checks": None}, "required_checks"),
    ("patch", "api-project-review-settings", {"required_checks": None}, "required_checks"),
    ("post", "api-review-comments", {"body": "x", "parent": None}, "parent"),
    ("post", "api-review-comments", {"body": "x", "anchor": None}, "anchor"),
    ("patch", "api-review-comment", {"resolved": None}, "resolved"),
    ("patch", "api-review-request", {"version": None}, "version"),
    (
        "post",
        "api-review-requests",
        {"model": "fraud", "version": None, "alias": "canary", "title": "Canary"},
        "version",
    ),
    ("post", "api-run-log", {"batch_id": "b-1", "metrics": None, "params": {"lr": "1"}}, "metrics"),
    ("post", "api-run-log", {"batch_id": "b-1", "series": None, "params": {"lr": "1"}}, "series"),
]
EMPTY_STRINGS = [
    ("post", "api-notifications", {"ids": [""]}, "ids"),
    ("patch", "api-model-version", {"tags": {"stage": ""}}, "tags.stage"),
    ("patch", "api-model", {"tags": {"stage": ""}}, "tags.stage"),
]
CASES = NUMBER_FOR_STRING + NOT_AN_OBJECT + NULL_NOT_ALLOWED + EMPTY_STRINGS


@pytest.mark.parametrize(
    ("method", "name", "body", "field"), CASES, ids=[f"{m.upper()} {n} {b}" for m, n, b, _ in CASES]
)
def test_a_lenient_body_is_refused_naming_the_field_and_writes_nothing(
    owner_client: APIClient,
    victim_run: Run,  # noqa: F811 (the imported fixture)
    method: str,
    name: str,
    body: dict[str, Any],
    field: str,
) -> None:
    before = snapshot()

    response = send(owner_client, method, _url(name, victim_run), body)

    assert_error(response, 400, field=field)
    assert snapshot() == before


def test_a_transfer_to_team_zero_moves_nothing(owner_client: APIClient, victim_run: Run) -> None:  # noqa: F811
    Team.objects.create(name="0")

    response = send(owner_client, "post", _url("api-project-transfer", victim_run), {"team": 0})

    assert_error(response, 400, field="team")
    assert Project.objects.get(pk=victim_run.project_id).team.name == "acme"


@pytest.mark.parametrize("value", ["null", "yes", "", "2"])
def test_unread_takes_only_true_false_1_0(owner_client: APIClient, value: str) -> None:
    assert_error(owner_client.get(f"/api/v1/notifications/?unread={value}"), 400, field="unread")


@pytest.mark.parametrize("value", ["true", "false", "1", "0", "TRUE"])
def test_unread_still_takes_its_documented_values(owner_client: APIClient, value: str) -> None:
    assert owner_client.get(f"/api/v1/notifications/?unread={value}").status_code == 200


def test_the_page_is_checked_before_the_early_return_for_an_unknown_author(
    owner_client: APIClient,
    victim_run: Run,  # noqa: F811
) -> None:
    url = _url("api-review-requests", victim_run)

    assert owner_client.get(f"{url}?author=nobody").json() == {"count": 0, "results": []}
    assert_error(owner_client.get(f"{url}?author=nobody&limit=-5"), 400, field="limit")


def test_valid_strings_objects_and_omitted_fields_still_work(owner_client: APIClient, victim_run: Run) -> None:  # noqa: F811
    created = send(
        owner_client,
        "post",
        _url("api-runs", victim_run),
        {"project": "acme/proj", "name": None, "notes": "", "config": {}, "tags": {}, "info": {}},
    )
    assert created.status_code == 201, created.content
    assert created.json()["name"]  # no name still gets a generated one
    omitted = send(owner_client, "post", _url("api-runs", victim_run), {"project": "acme/proj"})
    assert omitted.status_code == 201, omitted.content
    assert omitted.json()["config"] == {}
