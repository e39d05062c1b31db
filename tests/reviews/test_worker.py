"""Review checks run by a real Celery worker process (``celery -A config worker``) on the
test database and Redis: a request's checks are queued when it is opened, nothing runs them
until a worker is there, and the worker takes each to passed or failed."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connections
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


def test_concurrent_reruns_with_a_worker_never_deadlock(
    client_for: Any,
    member_client: APIClient,
    maintainer: User,
    maint2: User,
    owner: User,
    model: ModelRepository,
    v2: ModelVersion,
    tmp_path: Path,
) -> None:
    """Issue 17 bug 6: the API locked the request then its checks while the worker locked a
    check then inserted rows referencing the request (``FOR KEY SHARE`` on it), so re-runs
    racing a worker ended in "deadlock detected" (500). One lock order (request, then its
    checks) holds for both now."""
    # given: a failing gate too, so the worker also writes a notification per run
    ReviewSettings.objects.update_or_create(
        repository=model,
        defaults={"gates": [{"name": "acc-jump", "expression": "candidate.metrics.acc >= current.metrics.acc + 0.5"}]},
    )
    opened = post_json(member_client, BASE, {"model": "fraud", "version": 2, "alias": "production", "title": "v2"})
    assert opened.status_code == 201, opened.content
    clients = [client_for(user) for user in (maintainer, maint2, owner, maintainer)]
    for client in clients:
        client.raise_request_exception = False  # a deadlock must show as the 500 a user would see
    statuses: list[int] = []

    def rerun_ten_times(client: APIClient) -> None:
        try:
            for _ in range(10):
                statuses.append(client.post(f"{BASE}1/checks/").status_code)
        finally:
            connections.close_all()  # this thread's own connection

    with celery_worker(tmp_path):
        # when: four clients re-run the checks ten times each while the worker runs them
        threads = [threading.Thread(target=rerun_ten_times, args=(client,)) for client in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        done = wait_until_finished(member_client, 1)

    # then: every re-run was accepted and the checks still finish
    server_errors = [s for s in statuses if s >= 500]
    assert not server_errors, f"{len(server_errors)} of {len(statuses)} re-runs answered 5xx"
    assert statuses == [202] * 40
    assert done["gate:acc-jump"]["status"] == "failed"
