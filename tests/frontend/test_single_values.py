"""Metrics logged once are values, not charts (issue 16, bug 7): on the run page a tile with
the number (about 4 significant digits, the full value on hover), on the compare page a row
of values; neither draws a one-point chart."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from experiments import services
from experiments.models import Run

pytestmark = pytest.mark.django_db

TEST_ACC = 0.9916434540389972


@pytest.fixture
def runs(owner: User, team: Any) -> list[Run]:
    out = []
    for index in range(2):
        run = services.run_create(user=owner, project_path="acme/once", name=f"once-{index}")
        services.run_log(
            run=run,
            batch_id=None,
            metric_rows=[{"key": "loss", "step": s, "value": 1 / (s + 1), "timestamp": 1764150000000} for s in range(3)]
            + [{"key": "test/acc", "step": 7, "value": TEST_ACC - index / 10, "timestamp": 1764150000000}],
        )
        out.append(run)
    return out


@pytest.fixture
def web(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _html(response: Any) -> str:
    assert response.status_code == 200
    return str(response.content.decode())


def test_run_page_shows_a_single_point_metric_as_a_value(web: Client, runs: list[Run]) -> None:
    html = _html(web.get(f"/acme/once/runs/{runs[0].id}/"))
    assert html.count('data-testid="metric-chart"') == 1
    assert 'data-metric-chart data-testid="metric-chart" id="chart-0" data-key="loss"' in html
    values = html[
        html.index('data-testid="metric-values"') : html.index("</dl>", html.index('data-testid="metric-values"'))
    ]
    assert 'data-key="test/acc"' in values
    assert f'title="{TEST_ACC!r}" data-value>0.99164<' in values
    assert "step 7" in values
    # the summary table's link still leads to it
    assert 'href="#chart-1">test/acc<' in html
    assert 'id="chart-1" data-metric-value' in html


def test_compare_lists_single_point_metrics_as_values_not_charts(web: Client, runs: list[Run]) -> None:
    html = _html(web.get("/acme/once/compare/", {"runs": ",".join(r.id for r in runs)}))
    assert html.count('data-testid="compare-chart"') == 1
    assert 'data-key="test/acc"' not in html
    row = html[html.index('data-single-key="test/acc"') : html.index("</tr>", html.index('data-single-key="test/acc"'))]
    assert f'title="{TEST_ACC!r}"' in row
    assert "0.99164" in row
    assert "0.89164" in row
    assert "Charting the only metric key." in html
