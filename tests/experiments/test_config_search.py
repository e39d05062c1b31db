"""A run's config is searchable as ``config.<dotted key>`` (issue 16): flattened rows kept in
step with ``Run.config`` by the run services, one SQL query per search, the same text and
number semantics as params."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Project
from experiments import selectors
from experiments.config_values import config_entries
from experiments.models import ConfigValue, ProjectKey
from experiments.query.parser import Compare, Field, FilterError, parse

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/"

CONFIGS = {
    "adam-hi": {"lr": 0.1, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}, "epochs": 10},
    "adam-lo": {"lr": 0.001, "optimizer": {"name": "adam"}, "epochs": 20},
    "sgd": {"lr": 0.05, "optimizer": {"name": "sgd", "momentum": 0.9}, "use_amp": True},
    "bare": {},
}


@pytest.fixture
def runs(owner_client: APIClient, project: Project) -> dict[str, str]:
    out = {}
    for name, config in CONFIGS.items():
        created = owner_client.post(RUNS, {"project": "acme/proj", "name": name, "config": config}, format="json")
        assert created.status_code == 201, created.content
        out[name] = created.json()["id"]
    return out


def names(client: APIClient, filter_text: str, **params: Any) -> list[str]:
    response = client.get(RUNS, {"project": "acme/proj", "filter": filter_text, **params})
    assert response.status_code == 200, response.content
    return sorted(r["name"] for r in response.json()["results"])


def test_config_entries_flatten_nested_keys_with_dots() -> None:
    entries = config_entries({"lr": 0.01, "optimizer": {"name": "adam", "betas": [0.9, 0.999]}, "amp": True})
    assert entries == {"lr": "0.01", "optimizer.name": "adam", "optimizer.betas": "[0.9, 0.999]", "amp": "true"}


def test_a_later_path_to_the_same_dotted_key_wins() -> None:
    assert config_entries({"a.b": 1, "a": {"b": 2}}) == {"a.b": "2"}
    assert config_entries({"a": {"b": 2}, "a.b": 1}) == {"a.b": "1"}


def test_the_parser_knows_config_fields() -> None:
    assert parse("config.optimizer.lr > 0.01") == Compare(Field("config", "optimizer.lr"), ">", 0.01)
    assert parse('config.optimizer.name = "adam"') == Compare(Field("config", "optimizer.name"), "=", "adam")
    with pytest.raises(FilterError, match="config\\."):
        parse("conf.lr > 1")


def test_numeric_comparison_on_a_config_key(owner_client: APIClient, runs: dict[str, str]) -> None:
    assert names(owner_client, "config.lr > 0.01") == ["adam-hi", "sgd"]
    assert names(owner_client, "config.lr <= 0.05") == ["adam-lo", "sgd"]


def test_nested_config_keys_compare_as_text(owner_client: APIClient, runs: dict[str, str]) -> None:
    assert names(owner_client, 'config.optimizer.name = "adam"') == ["adam-hi", "adam-lo"]
    assert names(owner_client, "config.optimizer.name in ('sgd', 'x') and config.use_amp = 'true'") == ["sgd"]
    assert names(owner_client, "config.optimizer.momentum is null") == ["adam-hi", "adam-lo", "bare"]
    assert names(owner_client, "config.optimizer.name != 'adam'") == ["sgd"]


def test_order_by_a_config_key(owner_client: APIClient, runs: dict[str, str]) -> None:
    response = owner_client.get(RUNS, {"project": "acme/proj", "order_by": "config.lr DESC"})
    assert [r["name"] for r in response.json()["results"]] == ["adam-hi", "sgd", "adam-lo", "bare"]


def test_a_config_search_is_one_sql_query(project: Project, runs: dict[str, str]) -> None:
    qs, _, _ = selectors.runs_search(
        project, filter_text="config.lr > 0.01 and config.optimizer.name = 'adam'", order_by=["config.epochs DESC"]
    )
    with CaptureQueriesContext(connection) as queries:
        found = [r.name for r in qs]
    assert found == ["adam-hi"]
    assert len(queries) == 1


def test_updating_the_config_rewrites_its_rows_and_keys(
    owner_client: APIClient, project: Project, runs: dict[str, str]
) -> None:
    response = owner_client.patch(
        f"{RUNS}{runs['adam-lo']}/", {"config": {"optimizer": {"name": "lion"}, "seed": 7}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert dict(ConfigValue.objects.filter(run_id=runs["adam-lo"]).values_list("key", "value")) == {
        "lr": "0.001",
        "optimizer.name": "lion",
        "epochs": "20",
        "seed": "7",
    }
    assert names(owner_client, "config.optimizer.name = 'lion'") == ["adam-lo"]
    # a nested object replaced by the merge takes its old leaves with it
    owner_client.patch(f"{RUNS}{runs['adam-hi']}/", {"config": {"optimizer": {"name": "sgd"}}}, format="json")
    assert dict(ConfigValue.objects.filter(run_id=runs["adam-hi"]).values_list("key", "value")) == {
        "lr": "0.1",
        "optimizer.name": "sgd",
        "epochs": "10",
    }
    assert names(owner_client, "config.optimizer.betas is not null") == []
    assert set(ProjectKey.objects.filter(project=project, kind="config").values_list("key", flat=True)) >= {
        "lr",
        "optimizer.name",
        "optimizer.betas",
        "seed",
    }


def test_keys_api_lists_config_keys(owner_client: APIClient, runs: dict[str, str]) -> None:
    response = owner_client.get("/api/v1/projects/acme/proj/keys/", {"q": "optim"})
    assert response.status_code == 200, response.content
    assert response.json()["config"] == ["optimizer.betas", "optimizer.momentum", "optimizer.name"]


def test_an_unknown_prefix_still_names_config_in_the_error(owner_client: APIClient, runs: dict[str, str]) -> None:
    response = owner_client.get(RUNS, {"project": "acme/proj", "filter": "cfg.lr > 1"})
    assert response.status_code == 400
    assert "config." in response.json()["error"]["message"]


def test_the_migration_backfills_runs_logged_before_it(project: Project, runs: dict[str, str]) -> None:
    # given: runs whose flattened rows and keys are missing, as before migration 0009
    ConfigValue.objects.all().delete()
    ProjectKey.objects.filter(kind="config").delete()
    migration = importlib.import_module("experiments.migrations.0009_config_values")

    # when
    migration.backfill(apps, None)

    # then
    assert dict(ConfigValue.objects.filter(run_id=runs["sgd"]).values_list("key", "value")) == {
        "lr": "0.05",
        "optimizer.name": "sgd",
        "optimizer.momentum": "0.9",
        "use_amp": "true",
    }
    assert ProjectKey.objects.filter(project=project, kind="config", key="optimizer.momentum").exists()
    assert not ConfigValue.objects.filter(run_id=runs["bare"]).exists()
