"""A run's config is first-class on the pages (issue 16): run page, runs-table columns,
group-by, the query bar, CSV export, compare's "params that differ", parallel coordinates
and the compare API; always labelled as config, apart from params."""

from __future__ import annotations

import csv
import io
from typing import Any

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from experiments import services
from experiments.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(owner: User, team: Any) -> list[Run]:
    """Three runs in acme/cfg with nested config; one also logs a param ``lr``."""
    spec = [("adam", 0.1, 0.91), ("adam", 0.001, 0.85), ("sgd", 0.05, 0.95)]
    out = []
    for index, (optimizer, lr, acc) in enumerate(spec):
        run = services.run_create(
            user=owner,
            project_path="acme/cfg",
            name=f"cfg-{index}",
            config={"lr": lr, "optimizer": {"name": optimizer, "betas": [0.9, 0.999]}, "seed": 1},
        )
        services.run_log(
            run=run,
            batch_id=None,
            params={"lr": "9"} if index == 0 else {},
            metric_rows=[{"key": "acc", "step": s, "value": acc, "timestamp": 1764150000000 + s} for s in range(2)],
        )
        out.append(run)
    return out


@pytest.fixture
def web(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _html(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def _row(html: str, marker: str) -> str:
    start = html.index(marker)
    return html[start : html.index("</tr>", start)]


def test_run_page_lists_config_flattened_and_labelled_apart_from_params(web: Client, runs: list[Run]) -> None:
    html = _html(web.get(f"/acme/cfg/runs/{runs[0].id}/"))
    config_table = html[
        html.index('data-testid="config-table"') : html.index("</table>", html.index('data-testid="config-table"'))
    ]
    assert "Config" in config_table
    assert 'title="config.optimizer.name"' in config_table
    assert ">adam<" in config_table
    assert "[0.9, 0.999]" in config_table
    params_table = html[
        html.index('data-testid="params-table"') : html.index("</table>", html.index('data-testid="params-table"'))
    ]
    assert 'title="params.lr"' in params_table
    assert ">9<" in params_table


def test_runs_table_shows_config_columns_by_default_and_on_request(web: Client, runs: list[Run]) -> None:
    html = _html(web.get("/acme/cfg/"))
    assert 'data-column="config.optimizer.name"' in html
    assert 'value="config.optimizer.name"' in html  # the column picker offers it
    html = _html(web.get("/acme/cfg/", {"columns": "config.lr,params.lr"}))
    assert 'data-column="config.lr"' in html
    assert 'data-column="params.lr"' in html
    assert "Unknown column" not in html


def test_runs_table_sorts_and_filters_by_config(web: Client, runs: list[Run]) -> None:
    html = _html(
        web.get(
            "/acme/cfg/", {"filter": "config.optimizer.name = 'adam'", "sort": "-config.lr", "columns": "config.lr"}
        )
    )
    assert html.count('data-run-id="') == 2
    assert html.index(f'data-run-id="{runs[0].id}"') < html.index(f'data-run-id="{runs[1].id}"')


def test_group_by_a_config_key(web: Client, runs: list[Run]) -> None:
    html = _html(web.get("/acme/cfg/", {"group_by": "config.optimizer.name", "columns": "metrics.acc"}))
    assert 'value="config.optimizer.name" selected' in html
    adam = _row(html, 'data-group="adam"')
    assert ">2<" in adam
    assert "0.88" in adam  # mean of 0.91 and 0.85
    assert "config.optimizer.name+%3D+%27adam%27" in adam or "config.optimizer.name%20%3D%20%27adam%27" in adam


def test_csv_export_has_config_columns(web: Client, runs: list[Run]) -> None:
    response = web.get("/acme/cfg/export.csv", {"columns": "config.optimizer.name,config.lr,params.lr"})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert rows[0][-3:] == ["config.optimizer.name", "config.lr", "params.lr"]
    by_name = {row[1]: row[-3:] for row in rows[1:]}
    assert by_name["cfg-0"] == ["adam", "0.1", "9"]
    assert by_name["cfg-2"] == ["sgd", "0.05", ""]


def test_compare_lists_config_keys_that_differ_labelled_as_config(web: Client, runs: list[Run]) -> None:
    html = _html(web.get("/acme/cfg/compare/", {"runs": ",".join(r.id for r in runs)}))
    diff = html[
        html.index('data-testid="params-diff"') : html.index("</table>", html.index('data-testid="params-diff"'))
    ]
    assert 'data-param="config.lr"' in diff
    assert 'data-param="config.optimizer.name"' in diff
    assert 'data-param="params.lr"' in diff  # same key, other namespace: its own row
    assert 'data-param="config.seed"' not in diff  # the same everywhere
    assert "config" in _row(diff, 'data-param="config.lr"')
    assert '"source": "config", "key": "lr"' in html  # parallel coordinates get the config axes


def test_compare_api_answers_each_runs_flattened_config(owner_client: APIClient, runs: list[Run]) -> None:
    response = owner_client.get("/api/v1/compare/", {"runs": ",".join(r.id for r in runs)})
    assert response.status_code == 200, response.content
    first = response.json()["runs"][0]
    assert first["config"]["optimizer.name"] == "adam"
    assert first["config"]["lr"] == "0.1"
    assert first["params"] == {"lr": "9"}
