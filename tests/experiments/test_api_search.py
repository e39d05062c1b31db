"""GET /api/v1/runs/ with the query language: filter, order_by (repeatable), cursors, and
errors that name the position."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Project
from experiments.models import MetricSummary, Param, Run, Tag
from tests.factories import ExperimentFactory, RunFactory
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/"


@pytest.fixture
def sweep(project: Project) -> dict[str, Run]:
    """Six runs: optimizer adam/sgd/rmsprop × acc, one without acc, one without optimizer."""
    experiment = ExperimentFactory.create(project=project, name="sweep")
    now = timezone.now()
    spec = [
        ("r1", "adam", 0.91, "0.01"),
        ("r2", "sgd", 0.85, "0.1"),
        ("r3", "rmsprop", 0.95, "0.001"),
        ("r4", "adam", 0.70, "1e-3"),
        ("r5", "sgd", None, "0.05"),
        ("r6", None, 0.99, "0.2"),
    ]
    runs = {}
    for index, (name, optimizer, acc, lr) in enumerate(spec):
        run = RunFactory.create(
            project=project, experiment=experiment, name=name, start_time=now - timedelta(minutes=10 - index)
        )
        if optimizer:
            Param.objects.create(run=run, key="optimizer", value=optimizer)
        Param.objects.create(run=run, key="lr", value=lr)
        if acc is not None:
            MetricSummary.objects.create(
                run=run, key="acc", last=acc, min=acc, max=acc, last_step=1, last_timestamp=0, count=1
            )
        Tag.objects.create(run=run, key="team", value="nlp-core" if index % 2 else "vision")
        runs[name] = run
    return runs


def search(client: APIClient, **params: Any) -> list[str]:
    response = client.get(RUNS, {"project": "acme/proj", **params})
    assert response.status_code == 200, response.content
    return [r["name"] for r in response.json()["results"]]


def test_the_done_when_filter_selects_and_orders(owner_client: APIClient, sweep: dict[str, Run]) -> None:
    found = search(
        owner_client,
        filter="metrics.acc > 0.8 and (params.optimizer = 'adam' or params.optimizer = 'sgd')",
        order_by="metrics.acc DESC",
    )
    assert found == ["r1", "r2"]


def test_mlflow_filters_work_unchanged(owner_client: APIClient, sweep: dict[str, Run]) -> None:
    assert search(owner_client, filter="metrics.acc > 0.9 and params.lr = '0.01'") == ["r1"]
    assert search(owner_client, filter="tags.team ILIKE '%NLP%'", order_by="attributes.name") == ["r2", "r4", "r6"]
    assert search(owner_client, filter="attributes.status = 'RUNNING'", order_by="name ASC")[:1] == ["r1"]
    assert search(owner_client, filter="params.`optimizer` IN ('rmsprop')") == ["r3"]


def test_assay_additions_not_null_and_numeric_params(owner_client: APIClient, sweep: dict[str, Run]) -> None:
    assert search(owner_client, filter="params.optimizer IS NULL") == ["r6"]
    assert search(owner_client, filter="metrics.acc is null") == ["r5"]
    assert search(owner_client, filter="not params.optimizer = 'adam'", order_by="name") == ["r2", "r3", "r5", "r6"]
    # numeric: '1e-3' and '0.001' are both 0.001; text comparison would not say so
    assert search(owner_client, filter="params.lr = 0.001", order_by="name") == ["r3", "r4"]
    # ties on the number are broken by the text, descending too
    assert search(owner_client, filter="params.lr < 0.02", order_by="params.lr DESC") == ["r1", "r4", "r3"]


def test_order_by_several_keys_with_nulls_last(owner_client: APIClient, sweep: dict[str, Run]) -> None:
    assert search(owner_client, order_by=["params.optimizer ASC", "metrics.acc DESC"]) == [
        "r1",
        "r4",
        "r3",
        "r2",
        "r5",
        "r6",
    ]
    assert search(owner_client, order_by="metrics.acc ASC")[-1] == "r5"
    assert search(owner_client, order_by="metrics.acc DESC")[-1] == "r5"


def test_params_order_numerically_when_they_are_numbers(owner_client: APIClient, sweep: dict[str, Run]) -> None:
    assert search(owner_client, order_by="params.lr") == ["r3", "r4", "r1", "r5", "r2", "r6"]


@pytest.mark.parametrize(
    "order_by",
    [["metrics.acc DESC"], ["params.optimizer", "metrics.acc DESC"], ["params.lr DESC"], ["attributes.end_time"], []],
)
def test_cursor_pages_visit_every_run_once_in_order(
    owner_client: APIClient, sweep: dict[str, Run], order_by: list[str]
) -> None:
    everything = search(owner_client, order_by=order_by, page_size=100)
    seen: list[str] = []
    answer = owner_client.get(RUNS, {"project": "acme/proj", "order_by": order_by, "page_size": "2"}).json()
    while True:
        seen += [r["name"] for r in answer["results"]]
        if answer["next"] is None:
            break
        answer = owner_client.get(answer["next"]).json()
    assert seen == everything
    assert len(seen) == 6


def test_a_cursor_of_another_query_or_a_forged_one_is_refused(owner_client: APIClient, sweep: dict[str, Run]) -> None:
    first = owner_client.get(RUNS, {"project": "acme/proj", "order_by": "metrics.acc DESC", "page_size": "2"}).json()
    cursor = first["next"].split("cursor=")[1]
    from urllib.parse import unquote

    cursor = unquote(cursor)
    other = owner_client.get(RUNS, {"project": "acme/proj", "order_by": "name", "cursor": cursor})
    assert_error_with_position(other, code="invalid_cursor", field="cursor")
    forged = owner_client.get(RUNS, {"project": "acme/proj", "order_by": "metrics.acc DESC", "cursor": cursor + "x"})
    assert_error_with_position(forged, code="invalid_cursor", field="cursor")


def assert_error_with_position(response: Any, *, code: str, field: str, position: int | None = None) -> dict[str, Any]:
    assert response.status_code == 400, response.content
    error = orjson.loads(response.content)["error"]
    assert set(error) == {"code", "message", "field", "position"}
    assert error["code"] == code
    assert error["field"] == field
    if position is not None:
        assert error["position"] == position
    return error  # type: ignore[no-any-return]


def test_a_syntax_error_answers_400_with_position_and_expectation(
    owner_client: APIClient, sweep: dict[str, Run]
) -> None:
    response = owner_client.get(RUNS, {"project": "acme/proj", "filter": "metrics.acc > 0.8 and (params.x = 'a'"})
    error = assert_error_with_position(response, code="invalid_filter", field="filter", position=37)
    assert "expected" in error["message"]


@pytest.mark.parametrize(
    "order_by",
    ["password", "author__password DESC", "metrics.acc DOWN", "params.", "pk"],
)
def test_unknown_orderings_are_refused(owner_client: APIClient, sweep: dict[str, Run], order_by: str) -> None:
    response = owner_client.get(RUNS, {"project": "acme/proj", "order_by": order_by})
    assert_error_with_position(response, code="invalid_order_by", field="order_by")


@pytest.mark.parametrize(
    "text",
    [
        "attributes.author__password = 'x'",
        "params.x = 'a' ; DROP TABLE experiments_run",
        "params.x = 'a'' or 1=1 --'",
        "attributes.id = 'x' or attributes.pk__gt = ''",
    ],
)
def test_injection_attempts_are_refused_or_harmless(owner_client: APIClient, sweep: dict[str, Run], text: str) -> None:
    response = owner_client.get(RUNS, {"project": "acme/proj", "filter": text})
    if response.status_code == 200:
        assert response.json()["results"] == []
    else:
        assert_error_with_position(response, code="invalid_filter", field="filter")
    assert Run.objects.count() >= 6


def test_a_filter_never_reaches_another_projects_runs(
    owner_client: APIClient, sweep: dict[str, Run], project: Project
) -> None:
    foreign = RunFactory.create(name="foreign")
    Param.objects.create(run=foreign, key="optimizer", value="adam")

    found = search(owner_client, filter="params.optimizer = 'adam' or attributes.name = 'foreign'")

    assert sorted(found) == ["r1", "r4"]


def test_old_page_parameter_still_pages(owner_client: APIClient, sweep: dict[str, Run]) -> None:
    first = owner_client.get(RUNS, {"project": "acme/proj", "sort": "name", "page_size": "4", "page": "1"}).json()
    second = owner_client.get(first["next"]).json()
    assert [r["name"] for r in first["results"] + second["results"]] == ["r1", "r2", "r3", "r4", "r5", "r6"]
    assert second["next"] is None


def test_order_by_and_sort_together_are_refused(owner_client: APIClient, sweep: dict[str, Run]) -> None:
    response = owner_client.get(RUNS, {"project": "acme/proj", "sort": "name", "order_by": "name"})
    assert_error(response, 400, field="sort")
