"""The events emitted where checks finish (``check.completed``) and artifacts finish
processing (``artifact.processed``), delivered in-process (eager) to a real receiver."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from artifacts import processing
from artifacts.models import Artifact
from automations import payloads
from automations.models import Delivery
from experiments.models import Run
from registry.models import ModelVersion
from reviews.models import Check
from tests.artifacts.conftest import log_file, store_root  # noqa: F401
from tests.automations.conftest import BASE, SECRET
from tests.automations.receiver import receiver
from tests.helpers import post_json

pytestmark = pytest.mark.django_db


def hook(client: APIClient, url: str, events: list[str]) -> None:
    response = post_json(client, BASE, {"url": url, "events": events, "secret": SECRET})
    assert response.status_code == 201, response.content


def test_every_finished_check_is_one_check_completed_delivery(
    owner_client: APIClient, v2: ModelVersion, settings: Any, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    with receiver() as rx:
        hook(owner_client, rx.url, ["check.completed"])
        # when a review request is opened, its checks run (eagerly) and finish
        with django_capture_on_commit_callbacks(execute=True):
            opened = post_json(
                owner_client,
                "/api/v1/projects/acme/proj/review-requests/",
                {"model": "fraud", "version": 2, "alias": "production", "title": "Ship v2"},
            )
        assert opened.status_code == 201, opened.content
        checks = {c.id: c for c in Check.objects.all()}
        assert checks
        assert all(c.status in ("passed", "failed", "error") for c in checks.values())
        # then one delivery per check, naming it, its status and the request
        sent = [json.loads(r.body) for r in rx.requests]
    assert sorted(p["data"]["check"]["id"] for p in sent) == sorted(checks)
    for payload in sent:
        check = checks[payload["data"]["check"]["id"]]
        assert payload["event"] == "check.completed"
        assert payload["data"]["check"]["status"] == check.status
        assert payload["data"]["check"]["version"] == 2
        assert payload["data"]["review_request"]["title"] == "Ship v2"
        assert payload["links"]["review_request"].endswith("/acme/proj/reviews/1/")
        line = payloads.text(payload)
        assert line.startswith(f"Check {check.name} {check.status} on review #1 in acme/proj")
    assert Delivery.objects.filter(state="delivered").count() == len(checks)


def test_an_artifact_ready_or_failed_is_one_artifact_processed_delivery(
    owner_client: APIClient,
    run: Run,
    store_root: Any,  # noqa: F811
    settings: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    with receiver() as rx:
        hook(owner_client, rx.url, ["artifact.processed"])
        # an upload processed to ready
        with django_capture_on_commit_callbacks(execute=True):
            log_file(owner_client, run, "metrics/loss.csv", b"epoch,loss\n0,0.9\n")
        ready = Artifact.objects.get()
        assert ready.status == "ready"
        # an upload processing gave up on
        with django_capture_on_commit_callbacks(execute=True):
            answer = post_json(
                owner_client,
                f"/api/v1/runs/{run.id}/artifacts/",
                {"files": [{"path": "model.bin", "size": 3, "sha256": "b" * 64}]},
            )
        assert answer.status_code == 201, answer.content
        lost = Artifact.objects.get(path="model.bin")
        with django_capture_on_commit_callbacks(execute=True):
            processing.artifact_fail(artifact_id=lost.id, reason="Processing failed: OSError.")
            processing.artifact_fail(artifact_id=lost.id, reason="again")  # failed already: nothing more
        sent = [json.loads(r.body) for r in rx.requests]
    assert [(p["event"], p["data"]["artifact"]["path"], p["data"]["artifact"]["status"]) for p in sent] == [
        ("artifact.processed", "metrics/loss.csv", "ready"),
        ("artifact.processed", "model.bin", "failed"),
    ]
    assert sent[0]["data"]["artifact"]["sha256"] == ready.sha256
    assert sent[0]["data"]["run"] == {"id": run.id, "name": run.name}
    assert sent[1]["data"]["artifact"]["reason"] == "Processing failed: OSError."
    assert payloads.text(sent[1]) == (
        "Artifact model.bin of run first-run in acme/proj is failed: Processing failed: OSError."
    )
