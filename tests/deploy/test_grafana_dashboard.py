"""deploy/grafana/assay-dashboard.json: valid JSON of a Grafana dashboard whose every query
names a series that Assay's /metrics really serves."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "assay-dashboard.json"
SERIES = re.compile(r"\bassay_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def served_families() -> set[str]:
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    return {family.name for family in text_string_to_metric_families(response.content.decode())}


def family_of(series: str, families: set[str]) -> str | None:
    """The metric family a PromQL series name belongs to (a histogram's _bucket, a counter's _total …)."""
    if series in families:
        return series
    for suffix in SUFFIXES:
        if series.endswith(suffix) and series[: -len(suffix)] in families:
            return series[: -len(suffix)]
    return None


def queries(dashboard: dict[str, Any]) -> list[str]:
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text())

    assert dashboard["title"] == "Assay"
    assert dashboard["uid"] == "assay-overview"
    assert isinstance(dashboard["schemaVersion"], int)
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}"
        assert set(panel["gridPos"]) == {"h", "w", "x", "y"}
    assert [v["name"] for v in dashboard["templating"]["list"]] == ["datasource"]


def test_every_series_the_dashboard_queries_is_served_by_metrics() -> None:
    families = served_families()
    names = {name for expr in queries(json.loads(DASHBOARD.read_text())) for name in SERIES.findall(expr)}

    unknown = sorted(name for name in names if family_of(name, families) is None)
    assert not unknown, f"the dashboard queries series /metrics does not serve: {unknown}"
    # and it shows each of the series the issue lists
    shown = {family_of(name, families) for name in names}
    assert shown >= {
        "assay_http_request_duration_seconds",
        "assay_points_ingested",
        "assay_celery_queue_depth",
        "assay_task_duration_seconds",
        "assay_task_failures",
        "assay_websockets_open",
    }


def test_a_misspelt_series_would_be_caught() -> None:
    families = served_families()

    assert family_of("assay_points_ingested_total", families) == "assay_points_ingested"
    assert family_of("assay_http_request_duration_seconds_bucket", families) == "assay_http_request_duration_seconds"
    assert family_of("assay_points_ingestd_total", families) is None
