"""The runs table groups runs of the same configuration (issue 22: "the runs table can group
duplicates"), and the query language finds them by ``attributes.fingerprint``."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from experiments import services
from experiments.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(owner: User, team: Any) -> list[Run]:
    """Three runs of one configuration (spelt three ways, seeds differ: excluded), one of another."""
    spec: list[tuple[dict[str, Any], float]] = [
        ({"lr": 0.01, "batch_size": 32, "seed": 1}, 0.80),
        ({"lr": "1e-2", "batch_size": 32, "seed": 2}, 0.90),
        ({"batch_size": 32.0, "lr": 0.01, "seed": 3}, 0.70),
        ({"lr": 0.1, "batch_size": 32, "seed": 4}, 0.50),
    ]
    out = []
    for index, (config, acc) in enumerate(spec):
        run = services.run_create(user=owner, project_path="acme/sweep", name=f"run-{index}", config=config)
        services.run_log(
            run=run, batch_id=None, metric_rows=[{"key": "acc", "step": 0, "value": acc, "timestamp": 1764150000000}]
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


def _row(html: str, label_start: str) -> str:
    start = html.index(label_start)
    return html[html.rindex("<tr", 0, start) : html.index("</tr>", start)]


def test_grouping_by_configuration_puts_duplicates_first(web: Client, runs: list[Run]) -> None:
    # when
    html = _html(web.get("/acme/sweep/", {"group_by": "attributes.fingerprint", "columns": "metrics.acc"}))

    # then: two groups, the three duplicates first, labelled by their configuration
    assert "Runs of the same configuration" in html
    table = html[html.index('data-testid="groups-table"') :]
    groups = re.findall(r'<tr data-group="([0-9a-f]+)"', table)
    assert groups == [runs[0].config_fingerprint, runs[3].config_fingerprint]
    assert runs[0].config_fingerprint != runs[3].config_fingerprint
    duplicates = _row(table, f'data-group="{runs[0].config_fingerprint}"')
    assert "batch_size=32, lr=0.01" in duplicates
    assert ">3<" in duplicates
    assert "0.8" in duplicates  # mean of 0.8, 0.9, 0.7
    assert "seed" not in duplicates  # excluded from the fingerprint by default


def test_a_group_links_to_its_runs_only(web: Client, runs: list[Run]) -> None:
    html = _html(web.get("/acme/sweep/", {"group_by": "attributes.fingerprint"}))
    row = _row(html, f'data-group="{runs[0].config_fingerprint}"')
    href = html_lib.unescape(re.search(r'href="([^"]+)"', row).group(1))  # type: ignore[union-attr]

    listed = _html(web.get("/acme/sweep/" + href if href.startswith("?") else href))

    shown = set(re.findall(r'data-run-id="([0-9a-f]{32})"', listed))
    assert shown == {runs[0].id, runs[1].id, runs[2].id}


def test_the_query_language_finds_a_configuration(web: Client, runs: list[Run]) -> None:
    query = f"attributes.fingerprint = '{runs[3].config_fingerprint}'"
    listed = _html(web.get("/acme/sweep/", {"filter": query}))
    assert set(re.findall(r'data-run-id="([0-9a-f]{32})"', listed)) == {runs[3].id}


def test_the_choice_is_offered_and_a_wrong_attribute_refused(web: Client, runs: list[Run]) -> None:
    html = _html(web.get("/acme/sweep/"))
    assert '<option value="attributes.fingerprint"' in html
    refused = _html(web.get("/acme/sweep/", {"group_by": "attributes.status"}))
    assert "Cannot group by &#x27;attributes.status&#x27;" in refused
