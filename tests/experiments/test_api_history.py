"""GET /api/v1/runs/<id>/metrics/<key>/: raw points paged in step order, or downsampled."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from rest_framework.test import APIClient

from experiments.models import Run
from tests.helpers import assert_error, history_path, log_path, post_json

pytestmark = pytest.mark.django_db


def log_series(client: APIClient, run: Run, key: str, n: int, *, start: int = 0) -> None:
    steps = list(range(start, start + n))
    body = {"series": [{"key": key, "steps": steps, "values": [float(s % 97) for s in steps]}]}
    response = post_json(client, log_path(run), body)
    assert response.status_code == 200, response.content


def test_raw_history_pages_with_offset_limit_and_a_next_url(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 25)

    first = owner_client.get(history_path(run, "loss"), {"limit": 10}).json()

    assert first["total"] == 25
    assert first["downsampled"] is False
    assert first["method"] is None
    assert [p["step"] for p in first["points"]] == list(range(10))
    next_url = urlparse(first["next"])
    assert next_url.path == history_path(run, "loss")
    assert parse_qs(next_url.query) == {"offset": ["10"], "limit": ["10"]}

    second = owner_client.get(first["next"]).json()
    third = owner_client.get(second["next"]).json()
    assert [p["step"] for p in second["points"]] == list(range(10, 20))
    assert [p["step"] for p in third["points"]] == list(range(20, 25))
    assert third["next"] is None


def test_the_default_page_returns_everything_short(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 5)

    page = owner_client.get(history_path(run, "loss")).json()

    assert page["key"] == "loss"
    assert page["total"] == 5
    assert page["next"] is None
    assert [p["value"] for p in page["points"]] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_an_offset_past_the_end_is_an_empty_page(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 5)

    page = owner_client.get(history_path(run, "loss"), {"offset": 100}).json()

    assert page["points"] == []
    assert page["total"] == 5
    assert page["next"] is None


def test_points_come_back_in_step_order_across_batches(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 5, start=10)
    log_series(owner_client, run, "loss", 5, start=0)

    steps = [p["step"] for p in owner_client.get(history_path(run, "loss")).json()["points"]]

    assert steps == [*range(5), *range(10, 15)]


def test_max_points_downsamples_keeping_the_ends(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 5_000)

    page = owner_client.get(history_path(run, "loss"), {"max_points": 100}).json()

    assert page["total"] == 5_000
    assert page["downsampled"] is True
    assert page["method"] == "minmax-lttb"
    assert 2 < len(page["points"]) <= 100
    assert page["points"][0]["step"] == 0
    assert page["points"][-1]["step"] == 4_999
    assert page["next"] is None


def test_max_points_of_two_returns_two_points(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 50)

    page = owner_client.get(history_path(run, "loss"), {"max_points": 2}).json()

    assert [p["step"] for p in page["points"]] == [0, 49]


def test_max_points_above_the_total_returns_every_point_undownsampled(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 30)

    page = owner_client.get(history_path(run, "loss"), {"max_points": 500}).json()

    assert len(page["points"]) == 30
    assert page["downsampled"] is False
    assert page["method"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"max_points": 1}, "max_points"),
        ({"max_points": 10_001}, "max_points"),
        ({"max_points": "many"}, "max_points"),
        ({"limit": 0}, "limit"),
        ({"limit": 100_001}, "limit"),
        ({"limit": "1e3"}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": "x"}, "offset"),
        ({"max_points": 10, "offset": 0}, "offset"),
    ],
)
def test_bad_paging_parameters_are_refused(
    owner_client: APIClient, run: Run, params: dict[str, Any], field: str
) -> None:
    log_series(owner_client, run, "loss", 3)

    assert_error(owner_client.get(history_path(run, "loss"), params), 400, field=field)


def test_an_unknown_key_is_not_found(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 3)

    assert_error(owner_client.get(history_path(run, "accuracy")), 404, code="not_found", field="key")


def test_an_invalid_key_is_refused(owner_client: APIClient, run: Run) -> None:
    assert_error(owner_client.get(history_path(run, "a/../b")), 400, field="key")


def test_keys_with_slashes_work(owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "system/cpu", 4)
    log_series(owner_client, run, "system/gpu/0", 2)

    cpu = owner_client.get(history_path(run, "system/cpu")).json()
    gpu = owner_client.get(history_path(run, "system/gpu/0")).json()

    assert (cpu["key"], cpu["total"]) == ("system/cpu", 4)
    assert (gpu["key"], gpu["total"]) == ("system/gpu/0", 2)


def test_history_of_another_run_is_separate(owner_client: APIClient, run: Run) -> None:
    other = post_json(owner_client, "/api/v1/runs/", {"project": "acme/proj"}).json()["id"]
    log_series(owner_client, run, "loss", 3)
    log_series(owner_client, Run.objects.get(pk=other), "loss", 7)

    assert owner_client.get(history_path(run, "loss")).json()["total"] == 3
    assert owner_client.get(history_path(other, "loss")).json()["total"] == 7


def test_a_viewer_may_read_history(viewer_client: APIClient, owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 3)

    assert viewer_client.get(history_path(run, "loss")).json()["total"] == 3


def test_an_outsider_gets_not_found_for_history(outsider_client: APIClient, owner_client: APIClient, run: Run) -> None:
    log_series(owner_client, run, "loss", 3)

    assert_error(outsider_client.get(history_path(run, "loss")), 404, code="not_found")
    assert_error(outsider_client.get(history_path(run, "nothing")), 404, code="not_found")
