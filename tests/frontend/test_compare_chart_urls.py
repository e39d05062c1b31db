"""The compare page's data requests (issue 20): points per history shrink as runs × keys grow,
and the first panels' per-key URLs are preloaded in the order the panels appear."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.test import Client

from accounts.models import User
from experiments import services
from experiments.models import Run
from frontend.search_views import chart_points

pytestmark = pytest.mark.django_db

# Panels appear as: keys without a prefix, then prefixes alphabetically, system/ last.
KEYS = ["system/cpu", "val/loss", "lr", "train/loss", "train/acc"]


def test_points_per_history_shrink_with_runs_times_keys() -> None:
    assert chart_points(3, 2) == 500
    assert chart_points(100, 10) == 150
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
    # the API answers the preloaded URL (the same one compare.js asks)
    answer = web.get(hrefs[0])
    assert answer.status_code == 200
    assert list(answer.json()["keys"]) == ["lr"]
