"""Issue 17 bug 4: a list or an object sent where a string (or a number) is expected was a
500 wherever a service tested membership in a set before the type (``verdict`` ``{}``,
``approver_role`` ``{}``, ``required_checks`` ``[{}]``, ``anchor.kind`` ``{}``). Table-driven
over every endpoint that takes a body (tests/security/test_endpoints.py): each value of its
sample body, at any depth, is replaced in turn by an unhashable value; the answer is a
refusal (4xx with the error shape), never a 500, and nothing is written."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from experiments.models import Run
from tests.helpers import assert_error
from tests.security.test_endpoints import (  # noqa: F401 (fixture)
    ENDPOINTS,
    VALID_BODIES,
    build_url,
    sample_kwargs,
    send,
    snapshot,
    victim_run,
)

pytestmark = pytest.mark.django_db

UNHASHABLE: list[Any] = [{}, [], [{}]]
# Fields the samples of test_endpoints.py leave out, each with a value the endpoint takes,
# so that their types are swept too.
MORE_FIELDS: dict[str, dict[str, Any]] = {
    "api-runs": {"name": "r", "experiment": "e", "notes": "n", "tags": {"k": "v"}, "config": {"lr": 0.1}},
    "api-run": {"name": "r", "tags": {"k": "v"}, "end_time": 1764150000000},
    "api-run-log": {"series": [{"key": "acc", "steps": [0], "values": [0.5], "timestamps": [1764150000000]}]},
    "api-tokens": {"expires_in_days": 30},
    "api-model": {"protected_aliases": ["production"], "tags": {"k": "v"}},
    "api-model-versions": {"description": "d", "tags": {"k": "v"}, "parents": ["v1"], "datasets": ["train"]},
    "api-review-requests": {"reviewers": ["member"], "labels": ["x"], "description": "d"},
    "api-review-request": {"state": "closed", "labels": ["x"], "reviewers": ["member"], "version": 1},
    "api-review-reviews": {"version_hash": "0" * 64},
    "api-review-comments": {"anchor": {"kind": "param", "key": "lr"}},
    "api-review-comment": {"resolved": True},
    "api-review-settings": {
        "approver_role": "maintainer",
        "required_checks": ["lineage"],
        "gates": [{"name": "g", "expression": "candidate.metrics.acc >= 0.5"}],
    },
    "api-project-review-settings": {
        "approver_role": "writer",
        "required_checks": ["artifact-integrity"],
        "gates": [{"name": "g", "expression": "candidate.metrics.acc >= 0.5"}],
    },
    "api-notifications": {"ids": ["x" * 32]},
}
CASES = [(m, route, name) for m, route, name in ENDPOINTS if m in {"post", "put", "patch"} and name in VALID_BODIES]


def value_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value inside ``value`` (keys of objects, indexes of lists)."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        yield (*path, key)
        yield from value_paths(item, (*path, key))


def replaced(body: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    if isinstance(body, dict):
        return {**body, head: replaced(body[head], tuple(rest), new)}
    return [replaced(item, tuple(rest), new) if index == head else item for index, item in enumerate(body)]


def refused_field(response: Any, status: int) -> Any:
    """The field a refusal names (its error object may carry more, e.g. a gate's position)."""
    assert response.status_code == status, (response.status_code, response.content[:300])
    error = response.json()["error"]
    assert set(error) >= {"code", "message", "field"}, error
    assert error["message"], error
    return error["field"]


class _Rollback(Exception):
    pass


@pytest.mark.parametrize(("method", "route", "name"), CASES, ids=[f"{m.upper()} {n}" for m, _, n in CASES])
def test_a_list_or_object_where_a_string_is_expected_is_refused_not_a_500(
    owner_client: APIClient,
    victim_run: Run,  # noqa: F811 (the imported fixture)
    method: str,
    route: str,
    name: str,
) -> None:
    owner_client.raise_request_exception = False  # a crash must show as the 500 a client sees
    url = build_url(route, sample_kwargs(victim_run))
    base = {**VALID_BODIES[name], **MORE_FIELDS.get(name, {})}
    problems = []
    for path in value_paths(base):
        for bad in UNHASHABLE:
            before = snapshot()
            try:
                with transaction.atomic():  # each value meets the same world
                    response = send(owner_client, method, url, replaced(base, path, bad))
                    where = ".".join(map(str, path))
                    if response.status_code >= 500:
                        problems.append(f"{where}={bad!r}: {response.status_code}")
                    elif response.status_code >= 400:
                        refused_field(response, response.status_code)
                        if snapshot() != before:
                            problems.append(f"{where}={bad!r}: refused but something was written")
                    raise _Rollback
            except _Rollback:
                pass
    assert not problems, problems


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("reviews/", {"verdict": {}, "body": "x"}, "verdict"),
        ("reviews/", {"verdict": [], "body": "x"}, "verdict"),
        ("comments/", {"body": "x", "anchor": {"kind": {}, "key": "lr"}}, "anchor.kind"),
    ],
)
def test_the_reported_review_inputs_name_their_field(
    owner_client: APIClient,
    victim_run: Run,  # noqa: F811
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = send(owner_client, "post", f"/api/v1/projects/acme/proj/review-requests/1/{path}", body)

    assert_error(response, 400, field=field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"approver_role": {}}, "approver_role"),
        ({"approver_role": ["writer"]}, "approver_role"),
        ({"required_checks": [{}]}, "required_checks.0"),
        ({"required_checks": ["lineage", []]}, "required_checks.1"),
        ({"gates": [{"name": "g", "expression": {}}]}, "gates.0.expression"),
    ],
)
@pytest.mark.parametrize("where", ["models/fraud/review-settings/", "review-settings/"])
def test_review_settings_name_the_field_of_a_wrongly_typed_value(
    owner_client: APIClient,
    victim_run: Run,  # noqa: F811
    where: str,
    body: dict[str, Any],
    field: str,
) -> None:
    response = send(owner_client, "patch", f"/api/v1/projects/acme/proj/{where}", body)

    assert refused_field(response, 400) == field
