"""The compare page's metric-key picker (issue 16): it says how many keys it charts of how
many and why, charts the keys chosen with ``?keys=``, and reports what it cannot chart."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from experiments import services
from experiments.models import Run

pytestmark = pytest.mark.django_db

KEYS = [f"k{index:02d}" for index in range(25)]


@pytest.fixture
def runs(owner: User, team: Any) -> list[Run]:
    out = []
    for index in range(2):
        run = services.run_create(user=owner, project_path="acme/many", name=f"many-{index}")
        services.run_log(
            run=run,
            batch_id=None,
            metric_columns=[{"key": key, "steps": [0, 1, 2], "values": [0.1, 0.2, 0.3 + index]} for key in KEYS],
        )
        out.append(run)
    return out


@pytest.fixture
def web(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _page(web: Client, runs: list[Run], **params: str) -> str:
    response = web.get("/acme/many/compare/", {"runs": ",".join(r.id for r in runs), **params})
    assert response.status_code == 200
    return str(response.content.decode())


def _charted(html: str) -> list[str]:
    config = re.search(r'<script id="compare-config" type="application/json">(.*?)</script>', html, re.S)
    assert config is not None
    return list(json.loads(config.group(1))["keys"])


def test_by_default_it_charts_the_first_20_keys_and_says_so(web: Client, runs: list[Run]) -> None:
    html = _page(web, runs)
    assert _charted(html) == KEYS[:20]
    assert html.count('data-testid="compare-chart"') == 20
    assert "Charting 20 of 25 metric keys: the first 20 alphabetically" in html
    # the picker offers every key, the charted ones ticked
    assert html.count("data-key-option=") == 25
    assert 'value="k24" id=' in html
    assert 'value="k00" id="key-1" checked' in html
    assert 'value="k24" id="key-25">' in html


def test_chosen_keys_are_charted_in_key_order(web: Client, runs: list[Run]) -> None:
    html = _page(web, runs, keys="k24,k03")
    assert _charted(html) == ["k03", "k24"]
    assert "Charting the 2 chosen of 25 metric keys." in html
    assert "api%2Fv1%2Fcompare" not in html  # the data URL is a plain path
    assert "keys=k03%2Ck24" in html  # the chart data asks for exactly those


def test_unknown_keys_are_reported_and_too_many_are_cut(web: Client, runs: list[Run]) -> None:
    html = _page(web, runs, keys=",".join([*KEYS, "nope"]))
    assert "No run here logged &#x27;nope&#x27;: not charted." in html
    assert "Charting the first 20 of the 25 chosen metric keys." in html
    assert len(_charted(html)) == 20


def test_choosing_no_key_charts_none_and_says_what_to_do(web: Client, runs: list[Run]) -> None:
    html = _page(web, runs, keys="")
    assert _charted(html) == []
    assert 'data-testid="no-keys-chosen"' in html
