"""A smoke of the yardstick runner (``make mlflow-yardstick``, scripts/mlflow_yardstick/):
MLflow's own REST tests are not in this repository, so a checkout-shaped directory holds two
small test modules written the way MLflow's are (a server fixture of their own, raw
``requests`` posts, a test of the server's handlers, a GraphQL test). The runner must put
Assay's server in place of that fixture, add the token to raw requests, deselect with the
reason, and count a failing test as failed."""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from scripts.mlflow_yardstick.run import COPIED

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

REST_TESTS = """
import pytest
from mlflow import MlflowClient
from tests.tracking.integration_test_utils import _send_rest_tracking_post_request


@pytest.fixture(params=["file", "sqlalchemy"])
def mlflow_client(request):
    raise AssertionError("MLflow's own server fixture ran: it should have been replaced")


def test_a_fresh_server_has_default_and_logs_a_run(mlflow_client):
    assert {e.name for e in mlflow_client.search_experiments()} == {"Default"}
    experiment = mlflow_client.create_experiment("smoke")
    run = mlflow_client.create_run(experiment).info.run_id
    mlflow_client.log_metric(run, "loss", 0.5, timestamp=1, step=3)
    assert mlflow_client.get_metric_history(run, "loss")[0].step == 3


def test_raw_requests_carry_the_token(mlflow_client):
    answer = _send_rest_tracking_post_request(
        mlflow_client.tracking_uri, "/api/2.0/mlflow/experiments/create", {"name": "raw"}
    )
    assert answer.status_code == 200, answer.text


def test_that_fails(mlflow_client):
    assert mlflow_client.get_experiment_by_name("no such experiment") is not None


def test_graphql_handler(mlflow_client):
    raise AssertionError("deselected: never runs")


def test_reads_the_servers_store(mlflow_client):
    from mlflow.server import handlers

    handlers._get_tracking_store()
    raise AssertionError("deselected: never runs")
"""

REGISTRY_TESTS = """
import pytest


@pytest.fixture
def client():
    raise AssertionError("MLflow's own server fixture ran: it should have been replaced")


def test_registered_model(client):
    client.create_registered_model("smoke", tags={"k": "v"})
    assert client.get_registered_model("smoke").tags == {"k": "v"}
"""

HELPERS = """
import requests


def _send_rest_tracking_post_request(tracking_server_uri, api_path, json_payload, auth=None):
    return requests.post(tracking_server_uri + api_path, json=json_payload, auth=auth)
"""


def test_the_runner_puts_assays_server_in_place_of_mlflows_and_tallies(tmp_path: Path) -> None:
    checkout = tmp_path / "mlflow"
    for relative in COPIED:
        (checkout / relative).parent.mkdir(parents=True, exist_ok=True)
        (checkout / relative).write_text("")
    (checkout / "tests/tracking/test_rest_tracking.py").write_text(textwrap.dedent(REST_TESTS))
    (checkout / "tests/tracking/test_model_registry.py").write_text(textwrap.dedent(REGISTRY_TESTS))
    (checkout / "tests/tracking/integration_test_utils.py").write_text(textwrap.dedent(HELPERS))
    out = tmp_path / "out"

    done = subprocess.run(
        [str(REPO / ".venv/bin/python"), "scripts/mlflow_yardstick/run.py", str(checkout), "-p", "no:warnings"],
        cwd=REPO,
        env={**os.environ, "ASSAY_YARDSTICK_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )

    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]  # one test fails on purpose
    tally = json.loads((out / "tally.json").read_text())
    outcomes = {case["test"].rsplit("::", 1)[1]: case["outcome"] for case in tally["cases"]}
    assert outcomes == {
        "test_a_fresh_server_has_default_and_logs_a_run": "passed",
        "test_raw_requests_carry_the_token": "passed",
        "test_that_fails": "failed",
        "test_registered_model": "passed",
    }
    reasons = {entry["test"].rsplit("::", 1)[1]: entry["reason"] for entry in tally["deselected"]}
    assert set(reasons) == {"test_graphql_handler", "test_reads_the_servers_store"}
    assert reasons["test_graphql_handler"].startswith("GraphQL")
    assert reasons["test_reads_the_servers_store"].startswith("configures or inspects MLflow's server")
    assert tally["counts"] == {"passed": 3, "failed": 1, "error": 0, "skipped": 0, "deselected": 2}
    assert "3 passed of 4 run" in done.stdout
