"""The foundation issue's "done when": a run, 100,000 points logged in 10 batches (one of
them sent twice), read back exactly through paged history and as a 500-point chart."""

from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from experiments.models import MetricSummary, Run
from tests.helpers import history_path, log_path, patch_json, post_json, run_path

pytestmark = pytest.mark.django_db

BATCHES = 10
PER_BATCH = 10_000
TOTAL = BATCHES * PER_BATCH


def test_a_run_logs_100k_points_in_10_batches_and_reads_them_back(owner_client: APIClient, owner) -> None:
    # given a run in the caller's personal project
    created = post_json(owner_client, "/api/v1/runs/", {"project": "owner/mnist", "config": {"lr": 0.01}})
    assert created.status_code == 201
    run_id = created.json()["id"]

    # when 10 batches of 10,000 points are logged, the fourth one twice
    for batch in range(BATCHES):
        first_step = batch * PER_BATCH
        body = {
            "batch_id": str(uuid.uuid4()),
            "params": {"lr": "0.01"},
            "metrics": [
                {"key": "loss", "step": s, "value": 1.0 / (1 + s), "timestamp": 1764150000000 + s}
                for s in range(first_step, first_step + PER_BATCH)
            ],
        }
        sends = 2 if batch == 3 else 1
        for attempt in range(sends):
            response = post_json(owner_client, log_path(run_id), body)
            assert response.status_code == 200, response.content[:300]
            assert response.json()["duplicate"] is (attempt == 1)
    assert patch_json(owner_client, run_path(run_id), {"status": "finished"}).status_code == 200

    # then exactly 100,000 points come back, in one page ...
    page = owner_client.get(history_path(run_id, "loss"), {"limit": TOTAL}).json()
    assert page["total"] == TOTAL
    assert len(page["points"]) == TOTAL
    assert page["next"] is None
    assert [p["step"] for p in page["points"]] == list(range(TOTAL))
    assert page["points"][-1] == {"step": TOTAL - 1, "value": 1.0 / TOTAL, "timestamp": 1764150000000 + TOTAL - 1}

    # ... and the same through smaller pages followed by their next links
    steps: list[int] = []
    url: str | None = history_path(run_id, "loss") + "?limit=30000"
    while url:
        chunk = owner_client.get(url).json()
        steps.extend(p["step"] for p in chunk["points"])
        url = chunk["next"]
    assert steps == list(range(TOTAL))

    # and a 500-point chart keeps both ends
    chart = owner_client.get(history_path(run_id, "loss"), {"max_points": 500}).json()
    assert chart["downsampled"] is True
    assert len(chart["points"]) <= 500
    assert chart["points"][0]["step"] == 0
    assert chart["points"][-1]["step"] == TOTAL - 1

    summary = MetricSummary.objects.get(run_id=run_id, key="loss")
    assert (summary.count, summary.last_step, summary.max) == (TOTAL, TOTAL - 1, 1.0)
    assert summary.last == pytest.approx(1.0 / TOTAL)
    run = Run.objects.get(pk=run_id)
    assert run.status == "finished"
    assert run.batches.count() == BATCHES
