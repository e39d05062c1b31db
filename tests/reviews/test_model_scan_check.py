"""The artifact-integrity check on model files uploaded and processed for real (the
upload protocol through the API, Celery eager): the example's joblib model passes, a
dangerous global fails, a file the scanner cannot read passes with a warning unless the
review policy blocks it (``block_unscanned``)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from django.test import Client
from rest_framework.test import APIClient
from sklearn.linear_model import SGDClassifier

from accounts.models import User
from experiments.models import Run
from registry import services as registry_services
from registry.models import ModelRepository
from tests.artifacts.conftest import log_file
from tests.helpers import assert_error, patch_json, post_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store_root", "eager")]

BASE = "/api/v1/projects/acme/proj/review-requests/"
SETTINGS = "/api/v1/projects/acme/proj/models/fraud/review-settings/"


@pytest.fixture
def store_root(tmp_path: Path, settings: Any) -> Any:
    from artifacts import storage

    settings.ASSAY_ARTIFACTS = str(tmp_path / "artifacts")
    storage.artifact_store.cache_clear()
    yield tmp_path / "artifacts"
    storage.artifact_store.cache_clear()


class SystemCall:
    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, ("id",))


def example_model_bytes(tmp_path: Path, extra: Any = None) -> bytes:
    """What examples/sklearn_train.py uploads: joblib.dump of {"scaler", "classifier"}."""
    rng = np.random.default_rng(1)
    features = rng.normal(size=(40, 4))
    model = {"classifier": SGDClassifier(random_state=0).fit(features, features[:, 0] > 0), "weights": features}
    if extra is not None:
        model["extra"] = extra
    path = tmp_path / "model.joblib"
    joblib.dump(model, path)
    return path.read_bytes()


CandidateChecks = Callable[[bytes], dict[str, dict[str, Any]]]


@pytest.fixture
def candidate_checks(
    model: ModelRepository,
    owner: User,
    owner_client: APIClient,
    member_client: APIClient,
    make_run: Any,
    django_capture_on_commit_callbacks: Any,
) -> CandidateChecks:
    """Upload ``data`` as a run's model.joblib, register it, open a review into production
    and return its checks by name."""

    def checks(data: bytes) -> dict[str, dict[str, Any]]:
        run: Run = make_run()
        with django_capture_on_commit_callbacks(execute=True):
            log_file(owner_client, run, "model.joblib", data, "model")
        registry_services.version_register(user=owner, repository=model, run=run, artifact="model.joblib")
        with django_capture_on_commit_callbacks(execute=True):
            opened = post_json(
                member_client, BASE, {"model": "fraud", "version": 1, "alias": "production", "title": "Ship v1"}
            )
        assert opened.status_code == 201, opened.content
        return {c["name"]: c for c in member_client.get(f"{BASE}{opened.json()['number']}/checks/").json()}

    return checks


def test_the_example_joblib_model_passes_artifact_integrity(tmp_path: Path, candidate_checks: CandidateChecks) -> None:
    checks = candidate_checks(example_model_bytes(tmp_path))

    integrity = checks["artifact-integrity"]
    assert integrity["status"] == "passed", integrity["summary"]
    assert integrity["details"]["bytes"]["state"] == "intact"
    assert integrity["details"]["contents"] == {"state": "scanned"}
    assert integrity["details"]["warnings"] == []
    assert "contents scanned" in integrity["summary"]


def test_a_joblib_model_with_a_dangerous_global_fails_with_the_finding(
    tmp_path: Path, candidate_checks: CandidateChecks
) -> None:
    checks = candidate_checks(example_model_bytes(tmp_path, extra=SystemCall()))

    integrity = checks["artifact-integrity"]
    assert integrity["status"] == "failed"
    assert any(g.endswith(".system") for g in integrity["details"]["unsafe_globals"])
    assert "unsafe pickle globals found" in integrity["summary"]


def test_an_unscannable_file_passes_with_a_warning_unless_the_policy_blocks_it(
    candidate_checks: CandidateChecks,
    owner_client: APIClient,
    member_client: APIClient,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given: a .joblib the scanner cannot follow (lz4 frame magic; lz4 is not installed)
    data = b"\x04\x22\x4d\x18" + b"\x00" * 64
    checks = candidate_checks(data)

    # then: by default, a warning and a pass
    integrity = checks["artifact-integrity"]
    assert integrity["status"] == "passed"
    assert integrity["details"]["contents"]["state"] == "not_scanned"
    assert integrity["details"]["block_unscanned"] is False
    assert integrity["details"]["warnings"][0].startswith("contents not scanned: ")

    # when: the model's policy blocks unscanned files and the checks run again
    response = patch_json(owner_client, SETTINGS, {"block_unscanned": True})
    assert response.status_code == 200, response.content
    assert response.json()["block_unscanned"] is True
    with django_capture_on_commit_callbacks(execute=True):
        post_json(owner_client, f"{BASE}1/checks/", {})
    integrity = {c["name"]: c for c in member_client.get(f"{BASE}1/checks/").json()}["artifact-integrity"]

    # then
    assert integrity["status"] == "failed"
    assert "the review policy blocks files it could not scan" in integrity["summary"]


def test_block_unscanned_must_be_a_boolean(model: ModelRepository, owner_client: APIClient) -> None:
    assert_error(patch_json(owner_client, SETTINGS, {"block_unscanned": "yes"}), 400, field="block_unscanned")


def test_the_check_page_shows_bytes_and_contents_apart(candidate_checks: CandidateChecks, owner: User) -> None:
    candidate_checks(b"\x04\x22\x4d\x18" + b"\x00" * 64)
    browser = Client()
    browser.force_login(owner)

    page = browser.get("/acme/proj/reviews/1/?tab=checks").content.decode()
    version_page = browser.get("/acme/proj/models/fraud/v1/").content.decode()

    assert 'data-testid="integrity-bytes"' in page
    assert "✓ intact" in page
    assert "⚠ not scanned: " in page
    assert "lz4" in page
    assert "the review policy lets it pass" in page
    assert 'data-state="not_scanned"' in version_page
