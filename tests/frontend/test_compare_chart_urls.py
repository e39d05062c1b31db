"""The compare page's data requests (issue 20): points per history shrink as runs × keys grow,
the first panels' per-key URLs are preloaded in the order the panels appear, and the API answers
a panel's series alone (``only=series``) or the runs' details alone (``only=runs``)."""

from __future__ import annotations

import html as html_lib
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from experiments import services
from experiments.models import Run
from frontend.search_views import chart_points
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

# Panels appear as: keys without a prefix, then prefixes alphabetically, system/ last.
KEYS = ["system/cpu", "val/loss", "lr", "train/loss", "train/acc"]


def test_points_per_history_shrink_with_runs_times_keys() -> None:
    assert chart_points(3, 2) == 500
    assert chart_points(100, 10) == 100
    assert chart_points(50, 10) == 200
    assert chart_points(100, 20) == 100  # never fewer than 100
    assert chart_points(0, 0) == 500


@pytest.fixture
def runs(owner: User, team: Any) -> list[Run]:
    out = []
    for index in range(2):
        run = services.run_create(user=owner, project_path="acme/urls", name=f"r-{index}")
        services.run_log(
            run=run,
            batch_id=None,
            metric_columns=[{"key": key, "steps": [0, 1, 2], "values": [0.1, 0.2, 0.3 + index]} for key in KEYS],
        )
        out.append(run)
    return out


def test_the_first_three_panels_histories_are_preloaded_in_panel_order(owner: User, runs: list[Run]) -> None:
    web = Client()
    web.force_login(owner)
    response = web.get("/acme/urls/compare/", {"runs": ",".join(r.id for r in runs)})
    assert response.status_code == 200
    page = response.content.decode()
    hrefs = [
        html_lib.unescape(h) for h in re.findall(r'<link rel="preload" href="([^"]+)" as="fetch" crossorigin>', page)
    ]
    assert len(hrefs) == 3
    queries = [parse_qs(urlsplit(h).query) for h in hrefs]
    assert [q["keys"] for q in queries] == [["lr"], ["train/acc"], ["train/loss"]]
    for query in queries:
        assert query["runs"] == [",".join(r.id for r in runs)]
        assert query["max_points"] == ["500"]
        assert query["only"] == ["series"]
    # compare.js sets keys in place and appends only=series (URLSearchParams.set): same string
    assert urlsplit(hrefs[0]).query.split("&")[-2:] == ["keys=lr", "only=series"]
    # the API answers the preloaded URL (the same one compare.js asks): the series alone
    answer = web.get(hrefs[0])
    assert answer.status_code == 200
    body = answer.json()
    assert list(body["keys"]) == ["lr"]
    assert "runs" not in body
    assert set(body["series"]) == {r.id for r in runs}


def test_the_page_lists_the_runs_the_charts_draw(owner: User, runs: list[Run]) -> None:
    # given a compare page
    web = Client()
    web.force_login(owner)
    # when it is read
    page = web.get("/acme/urls/compare/", {"runs": ",".join(r.id for r in runs)}).content.decode()
    # then its config names each run with its start time (lines and legend need no request)
    found = re.search(r'<script id="compare-config" type="application/json">(.*?)</script>', page, re.S)
    assert found is not None
    config = json.loads(found[1])
    assert config["runs"] == [{"id": r.id, "name": r.name, "start_time": r.start_time.isoformat()} for r in runs]


def test_only_splits_the_compare_answer_into_its_two_parts(owner_client: APIClient, runs: list[Run]) -> None:
    # given the whole answer for two runs and two keys
    query: dict[str, str] = {"runs": ",".join(r.id for r in runs), "keys": "lr,train/acc", "max_points": "2"}
    whole = owner_client.get("/api/v1/compare/", query).json()
    # when each part is asked for alone
    series = owner_client.get("/api/v1/compare/", {**query, "only": "series"}).json()
    head = owner_client.get("/api/v1/compare/", {**query, "only": "runs"}).json()
    # then the parts are the whole's, and nothing else
    assert series == {"keys": whole["keys"], "method": whole["method"], "series": whole["series"]}
    assert next(iter(whole["series"][runs[0].id].values()))["downsampled"] is True
    assert head["runs"] == whole["runs"]
    assert head["all_keys"] == whole["all_keys"] == sorted(KEYS)
    assert "series" not in head


def test_series_alone_defaults_to_the_runs_first_keys(owner_client: APIClient, runs: list[Run]) -> None:
    answer = owner_client.get("/api/v1/compare/", {"runs": runs[0].id, "only": "series"})
    assert answer.status_code == 200
    assert answer.json()["keys"] == sorted(KEYS)
    assert set(answer.json()["series"][runs[0].id]) == set(KEYS)


def test_an_unknown_part_is_refused(owner_client: APIClient, runs: list[Run]) -> None:
    assert_error(owner_client.get("/api/v1/compare/", {"runs": runs[0].id, "only": "everything"}), 400, field="only")


def test_series_alone_hides_runs_from_an_outsider_as_missing(outsider_client: APIClient, runs: list[Run]) -> None:
    # SECURITY: the light access check (ids only) answers as access_runs does
    theirs = outsider_client.get("/api/v1/compare/", {"runs": runs[0].id, "only": "series"})
    missing = outsider_client.get("/api/v1/compare/", {"runs": "f" * 32, "only": "series"})
    assert_error(theirs, 404, code="not_found")
    assert theirs.json() == missing.json()
    # one visible run with one invisible is refused whole
    mixed = outsider_client.get("/api/v1/compare/", {"runs": f"{runs[0].id},{'f' * 32}", "only": "series"})
    assert_error(mixed, 404, code="not_found")
