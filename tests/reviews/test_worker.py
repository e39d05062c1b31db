"""Review checks run by a real Celery worker process (``celery -A config worker``) on the
test database and Redis: a request's checks are queued when it is opened, nothing runs them
until a worker is there, and the worker takes each to passed or failed."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from registry.models import ModelRepository, ModelVersion
from reviews.models import ReviewSettings
from tests.celery_worker import celery_worker
from tests.helpers import post_json

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/api/v1/projects/acme/proj/review-requests/"


def checks_of(client: APIClient, number: int) -> dict[str, dict[str, Any]]:
    response = client.get(f"{BASE}{number}/checks/")
    assert response.status_code == 200, response.content
    return {c["name"]: c for c in response.json()}


def wait_until_finished(client: APIClient, number: int, timeout: float = 45.0) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        checks = checks_of(client, number)
        if all(c["status"] not in ("queued", "running") for c in checks.values()):
            return checks
        if time.monotonic() > deadline:
            raise AssertionError(f"checks still pending after {timeout}s: {checks}")
        time.sleep(0.25)


def test_a_worker_process_takes_queued_checks_to_passed_and_failed(
    member_client: APIClient,
    maintainer: User,
    model: ModelRepository,
    v2: ModelVersion,
    tmp_path: Path,
    settings: Any,
) -> None:
    # given: a gate that v2 meets and one it cannot (acc 0.92 vs production's 0.90)
    ReviewSettings.objects.update_or_create(
        repository=model,
        defaults={
            "gates": [
                {"name": "acc-not-worse", "expression": "candidate.metrics.acc >= current.metrics.acc - 0.005"},
                {"name": "acc-jump", "expression": "candidate.metrics.acc >= current.metrics.acc + 0.5"},
            ]
        },
    )
    with celery_worker(tmp_path) as worker:
        # the worker consumes its own queue; stop it from taking tasks until we have looked
        worker.process.send_signal(signal.SIGSTOP)
        try:
            opened = post_json(
                member_client, BASE, {"model": "fraud", "version": 2, "alias": "production", "title": "Ship v2"}
            )
            assert opened.status_code == 201, opened.content
            queued = checks_of(member_client, 1)
            assert {name: c["status"] for name, c in queued.items()} == dict.fromkeys(
                ["artifact-integrity", "lineage", "gate:acc-not-worse", "gate:acc-jump"], "queued"
            )
        finally:
            worker.process.send_signal(signal.SIGCONT)

        # when: the worker runs them
        done = wait_until_finished(member_client, 1)

    # then: each ends as the check's logic says, compared with what production holds (v1)
    assert done["artifact-integrity"]["status"] == "passed"
    assert done["gate:acc-not-worse"]["status"] == "passed"
    assert done["gate:acc-jump"]["status"] == "failed"
    assert "does not hold" in done["gate:acc-jump"]["summary"]
    assert done["lineage"]["status"] in ("passed", "failed")
    assert done["lineage"]["summary"]
    log = worker.output()
    assert "reviews.tasks.check_run_task" in log
    assert "succeeded" in log
