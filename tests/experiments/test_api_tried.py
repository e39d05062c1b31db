"""POST /api/v1/projects/{team}/{project}/tried/ (issue 22): identical runs by fingerprint,
else the nearest ones; the fingerprint kept in step by the run services; the project's
settings (admins only, validated, re-fingerprinting the project)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from django.apps import apps
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from accounts.models import Project
from config.celery import app as celery_app
from experiments.fingerprint import fingerprint
from experiments.models import Run

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/runs/"
TRIED = "/api/v1/projects/acme/proj/tried/"
SETTINGS = "/api/v1/projects/acme/proj/tried/settings/"
BASE = {"lr": 0.01, "optimizer": {"name": "adam"}, "epochs": 10, "seed": 1}


def create(client: APIClient, name: str, config: dict[str, Any]) -> str:
    response = client.post(RUNS, {"project": "acme/proj", "name": name, "config": config}, format="json")
    assert response.status_code == 201, response.content
    return str(response.json()["id"])


def log(client: APIClient, run_id: str, **body: Any) -> None:
    response = client.post(f"{RUNS}{run_id}/log/", body, format="json")
    assert response.status_code == 200, response.content


def tried(client: APIClient, config: Any, **extra: Any) -> Any:
    return client.post(TRIED, {"config": config, **extra}, format="json")


def test_identical_runs_are_found_whatever_the_spelling(owner_client: APIClient, project: Project) -> None:
    # given a finished run with a metric
    run_id = create(owner_client, "first", BASE)
    log(owner_client, run_id, metrics=[{"key": "acc", "step": 0, "value": 0.9, "timestamp": 1764150000000}])
    owner_client.patch(f"{RUNS}{run_id}/", {"status": "finished"}, format="json")
    # when the same configuration is asked in another spelling, another seed
    response = tried(owner_client, {"optimizer.name": "adam", "epochs": "10", "lr": "1e-2", "seed": 7})
    # then
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["identical_count"] == 1
    [hit] = body["identical"]
    assert (hit["id"], hit["author"], hit["status"]) == (run_id, "owner", "finished")
    assert hit["metric"] == {"key": "acc", "value": 0.9}
    assert hit["url"].endswith(f"/acme/proj/runs/{run_id}/")
    assert body["near"] == []
    assert tried(owner_client, BASE, exclude_run=run_id).json()["identical"] == []


def test_near_runs_name_the_keys_that_differ(owner_client: APIClient, project: Project) -> None:
    one = create(owner_client, "one-off", {**BASE, "lr": 0.1})
    create(owner_client, "two-off", {**BASE, "lr": 0.1, "epochs": 20})
    create(owner_client, "far", {"lr": 1, "epochs": 1, "optimizer": {"name": "sgd"}})

    body = tried(owner_client, BASE).json()

    assert body["identical"] == []
    assert [r["name"] for r in body["near"]] == ["one-off", "two-off"]
    assert body["near"][0]["id"] == one
    assert body["near"][0]["differences"] == [{"key": "lr", "value": 0.1, "yours": 0.01}]
    assert [d["key"] for d in body["near"][1]["differences"]] == ["epochs", "lr"]


def test_the_fingerprint_follows_config_and_params(owner_client: APIClient, project: Project) -> None:
    run_id = create(owner_client, "r", {"lr": 0.1})
    assert Run.objects.get(pk=run_id).config_fingerprint == fingerprint({"lr": 0.1})
    log(owner_client, run_id, params={"batch_size": "32"})
    assert Run.objects.get(pk=run_id).config_fingerprint == fingerprint({"lr": 0.1, "batch_size": 32})
    owner_client.patch(f"{RUNS}{run_id}/", {"config": {"lr": 0.2}}, format="json")
    assert Run.objects.get(pk=run_id).config_fingerprint == fingerprint({"lr": 0.2, "batch_size": 32})
    assert tried(owner_client, {"lr": "0.2", "batch_size": 32}).json()["identical_count"] == 1


def test_the_identical_lookup_is_a_fixed_number_of_queries(owner_client: APIClient, project: Project) -> None:
    for i in range(3):
        create(owner_client, f"r{i}", BASE)
    with CaptureQueriesContext(connection) as queries:
        body = tried(owner_client, BASE).json()
    assert body["identical_count"] == 3
    plans = [q["sql"] for q in queries.captured_queries if "config_fingerprint" in q["sql"]]
    assert plans, "the lookup filters by fingerprint"
    assert len(queries.captured_queries) <= 8


def test_viewers_may_ask_outsiders_see_404_anonymous_401(
    viewer_client: APIClient, outsider_client: APIClient, project: Project
) -> None:
    assert tried(viewer_client, BASE).status_code == 200
    assert tried(outsider_client, BASE).status_code == 404
    assert APIClient().post(TRIED, {"config": BASE}, format="json").status_code in (401, 403)
    assert outsider_client.post("/api/v1/projects/acme/nosuch/tried/", {"config": {}}, format="json").status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "config"),
        ({"config": None}, "config"),
        ({"config": [1]}, "config"),
        ({"config": "lr=1"}, "config"),
        ({"config": {}, "extra": 1}, "extra"),
        ({"config": {}, "exclude_run": "../x"}, "exclude_run"),
        ({"config": {"x": "a" * 300_000}}, "config"),
    ],
)
def test_bad_input_names_its_field(owner_client: APIClient, project: Project, body: Any, field: str) -> None:
    response = owner_client.post(TRIED, body, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json())


def test_admins_change_the_exclusions_and_runs_are_refingerprinted(
    owner_client: APIClient,
    member_client: APIClient,
    project: Project,
    django_capture_on_commit_callbacks: Any,
) -> None:
    a = create(owner_client, "a", {**BASE, "seed": 1})
    create(owner_client, "b", {**BASE, "seed": 2})
    assert tried(owner_client, BASE).json()["identical_count"] == 2
    # a writer may read the settings but not change them
    assert member_client.get(SETTINGS).json()["exclude"][0] == "seed"
    assert member_client.put(SETTINGS, {"exclude": []}, format="json").status_code == 403

    # the runs are re-fingerprinted by a worker task after commit: run here, in-process
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = owner_client.put(SETTINGS, {"exclude": [], "key_metric": "acc"}, format="json")
    finally:
        celery_app.conf.task_always_eager = previous

    assert response.status_code == 200, response.content
    assert response.json() == {"exclude": [], "key_metric": "acc"}
    body = tried(owner_client, {**BASE, "seed": 1}).json()
    assert [r["id"] for r in body["identical"]] == [a]
    assert body["key_metric"] == "acc"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"exclude": "seed"}, "exclude"),
        ({"exclude": ["a b"]}, "exclude"),
        ({"key_metric": 3}, "key_metric"),
        ({"exclude": None}, "exclude"),
        ({"other": 1}, "other"),
    ],
)
def test_bad_settings_are_refused(owner_client: APIClient, project: Project, body: Any, field: str) -> None:
    response = owner_client.put(SETTINGS, body, format="json")
    assert response.status_code == 400, response.content
    assert field in str(response.json())
    assert owner_client.get(SETTINGS).json()["exclude"][0] == "seed"


def test_the_migration_backfills_fingerprints(owner_client: APIClient, project: Project) -> None:
    run_id = create(owner_client, "old", BASE)
    Run.objects.filter(pk=run_id).update(config_fingerprint="", config_canonical={})
    migration = importlib.import_module("experiments.migrations.0011_config_fingerprint")
    migration.backfill(apps, None)
    assert Run.objects.get(pk=run_id).config_fingerprint == fingerprint(BASE)
    assert Run.objects.get(pk=run_id).config_canonical == {"epochs": 10, "lr": 0.01, "optimizer.name": "adam"}
