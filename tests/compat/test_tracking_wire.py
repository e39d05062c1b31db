"""The MLflow API's edges over HTTP: the paths the client asks before it authenticates,
authentication, the JSON error format for unknown and out-of-scope endpoints, and what a
bad request gets."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from experiments.models import Experiment, MetricSummary, Param, Run
from tests.compat.conftest import MlflowServer

# django_db: the test database must exist (the module fixture commits its people there).
pytestmark = [pytest.mark.slow, pytest.mark.django_db]


def test_health_version_and_server_info_answer_without_a_token(mlflow_server: MlflowServer) -> None:
    with mlflow_server.http(None) as http:
        assert http.get("health").text == "OK"
        assert http.get("version").text == "3.17.2"
        info = http.get("api/3.0/mlflow/server-info")
    assert info.status_code == 200
    assert info.json()["workspaces_enabled"] is False


def test_an_unknown_endpoint_answers_mlflows_json_404(mlflow_server: MlflowServer) -> None:
    with mlflow_server.http() as http:
        response = http.post("api/2.0/mlflow/no-such/thing", json={})
        wrong_method = http.get("api/2.0/mlflow/runs/create")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    assert wrong_method.status_code == 404
    assert wrong_method.json()["error_code"] == "ENDPOINT_NOT_FOUND"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "api/2.0/mlflow/traces"),
        ("POST", "api/3.0/mlflow/traces/search"),
        ("POST", "api/2.0/mlflow/datasets/create"),
        ("POST", "api/2.0/mlflow/prompt-optimization/jobs"),
        ("GET", "api/2.0/mlflow/gateway/endpoints/list"),
        ("POST", "api/2.0/mlflow/scorers/register"),
    ],
)
def test_genai_endpoints_answer_a_clear_json_error(mlflow_server: MlflowServer, method: str, path: str) -> None:
    with mlflow_server.http() as http:
        response = http.request(method, path, json={} if method == "POST" else None)
    assert response.status_code == 501
    body = response.json()
    assert body["error_code"] == "NOT_IMPLEMENTED"
    assert "does not implement" in body["message"]


def test_no_or_a_bad_token_is_unauthenticated(mlflow_server: MlflowServer) -> None:
    with mlflow_server.http(None) as http:
        missing = http.get("api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "x"})
        bad = http.get(
            "api/2.0/mlflow/experiments/get-by-name",
            params={"experiment_name": "x"},
            headers={"Authorization": "Bearer assay_nope"},
        )
    for response in (missing, bad):
        assert response.status_code == 401
        assert response.json()["error_code"] == "UNAUTHENTICATED"
    assert "MLFLOW_TRACKING_TOKEN" in missing.json()["message"]


def test_basic_auth_takes_the_token_as_password_and_checks_the_username(mlflow_server: MlflowServer) -> None:
    def basic(user: str, password: str) -> dict[str, str]:
        return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}

    token = mlflow_server.tokens["owner"]
    with mlflow_server.http(None) as http:
        good = http.post("api/2.0/mlflow/experiments/search", json={}, headers=basic("owner", token))
        wrong_user = http.post("api/2.0/mlflow/experiments/search", json={}, headers=basic("viewer", token))
    assert good.status_code == 200, good.text
    assert wrong_user.status_code == 401
    assert wrong_user.json()["error_code"] == "UNAUTHENTICATED"


def test_a_project_the_caller_cannot_see_is_missing(mlflow_server: MlflowServer) -> None:
    with mlflow_server.http("outsider") as http:
        hidden = http.post("api/2.0/mlflow/experiments/search", json={})
    with mlflow_server.http("owner", project="acme/nothing-here") as http:
        missing = http.post("api/2.0/mlflow/experiments/search", json={})
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()
    assert hidden.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_body_that_is_not_json_is_a_bad_request(mlflow_server: MlflowServer) -> None:
    with mlflow_server.http() as http:
        response = http.post(
            "api/2.0/mlflow/experiments/create", content=b"{nope", headers={"Content-Type": "application/json"}
        )
    assert response.status_code == 400
    assert response.json()["error_code"] == "BAD_REQUEST"


def test_a_read_token_may_search_but_not_write(mlflow_server: MlflowServer) -> None:
    # (this test runs before the module's run_id fixture logs to the default experiment)
    assert not Experiment.objects.filter(name__iexact="default").exists()
    with mlflow_server.http("owner_read") as http:
        search = http.post("api/2.0/mlflow/experiments/search", json={})
        create = http.post("api/2.0/mlflow/experiments/create", json={"name": "read-only"})
        default = http.get("api/2.0/mlflow/experiments/get", params={"experiment_id": "0"})
    assert search.status_code == 200, search.text
    # MLflow's default experiment is made on first use, but not by a read-only token
    assert default.status_code == 404
    assert not Experiment.objects.filter(name__iexact="default").exists()
    assert create.status_code == 403
    assert create.json()["error_code"] == "PERMISSION_DENIED"


@pytest.fixture(scope="module")
def run_id(mlflow_server: MlflowServer) -> str:
    with mlflow_server.http() as http:
        created = http.post("api/2.0/mlflow/runs/create", json={"experiment_id": "0", "run_name": "wire"})
    assert created.status_code == 200, created.text
    return str(created.json()["run"]["info"]["run_id"])


def _post(server: MlflowServer, path: str, body: dict[str, Any]) -> httpx.Response:
    with server.http() as http:
        return http.post("api/2.0/mlflow/" + path, json=body)


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("runs/log-metric", {"key": "loss", "value": "high", "timestamp": 1}, "must be a number"),
        ("runs/log-metric", {"key": "bad key!", "value": 1.0, "timestamp": 1}, "metric key"),
        ("runs/log-metric", {"key": "loss", "value": 1.0, "step": -1, "timestamp": 1}, "at least 0"),
        ("runs/log-parameter", {"key": "lr", "value": "x" * 6001}, "longer than 6000"),
        ("runs/set-tag", {"key": "", "value": "x"}, "'key'"),
        ("runs/update", {"status": "DONE"}, "'status'"),
        ("runs/log-batch", {"metrics": [{"key": "m", "value": 1.0, "timestamp": 1, "step": 0}] * 1001}, "1000 metrics"),
        ("runs/log-batch", {"params": [{"key": f"p{i}", "value": "1"} for i in range(101)]}, "100 params"),
        (
            "runs/log-batch",
            {
                "metrics": [
                    {"key": "a", "value": 1.0, "timestamp": 1, "step": 0},
                    {"key": "a", "value": "high", "timestamp": 1, "step": 1},
                ]
            },
            "metrics.1.value",
        ),
        (
            "runs/log-batch",
            {"metrics": [{"key": "a", "value": 1.0, "timestamp": 1, "step": -5}]},
            "metrics.0.step",
        ),
        (
            "runs/log-batch",
            {"params": [{"key": "p", "value": "1"}, {"key": "p", "value": "2"}]},
            "Duplicate parameter key",
        ),
        ("runs/log-inputs", {"datasets": [{"dataset": {"name": "d"}}]}, "'digest'"),
    ],
)
def test_bad_input_is_answered_in_mlflows_error_format_and_writes_nothing(
    mlflow_server: MlflowServer, run_id: str, path: str, body: dict[str, Any], words: str
) -> None:
    response = _post(mlflow_server, path, {"run_id": run_id, **body})

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["error_code"] == "INVALID_PARAMETER_VALUE"
    assert words in error["message"]
    run = Run.objects.get(pk=run_id)
    assert run.status == "running"
    assert not Param.objects.filter(run=run).exists()
    assert not MetricSummary.objects.filter(run=run).exists()


def test_a_missing_run_and_a_missing_run_id_are_told_apart(mlflow_server: MlflowServer) -> None:
    missing = _post(mlflow_server, "runs/log-metric", {"run_id": "f" * 32, "key": "a", "value": 1, "timestamp": 1})
    no_id = _post(mlflow_server, "runs/log-metric", {"key": "a", "value": 1, "timestamp": 1})

    assert missing.status_code == 404
    assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
    assert no_id.status_code == 400
    assert "run_id" in no_id.json()["message"]


def test_get_takes_the_message_as_query_parameters_and_run_uuid_as_run_id(
    mlflow_server: MlflowServer, run_id: str
) -> None:
    # given points with NaN and infinity, sent as protobuf's JSON mapping writes them
    body = {
        "run_uuid": run_id,
        "metrics": [
            {"key": "odd", "value": "NaN", "timestamp": 5, "step": 0},
            {"key": "odd", "value": "Infinity", "timestamp": 6, "step": 1},
            {"key": "odd", "value": 0.5, "timestamp": 7, "step": 2},
        ],
    }
    assert _post(mlflow_server, "runs/log-batch", body).status_code == 200

    # when the history is read page by page with GET query parameters
    with mlflow_server.http() as http:
        first = http.get(
            "api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": "odd", "max_results": "2"}
        ).json()
        second = http.get(
            "api/2.0/mlflow/metrics/get-history",
            params={
                "run_uuid": run_id,
                "metric_key": "odd",
                "max_results": "2",
                "page_token": first["next_page_token"],
            },
        ).json()
        bulk = http.get(
            "api/2.0/mlflow/metrics/get-history-bulk-interval",
            params={"run_ids": [run_id], "metric_key": "odd", "start_step": "1", "end_step": "2", "max_results": "10"},
        ).json()
        bad_token = http.get(
            "api/2.0/mlflow/metrics/get-history", params={"run_id": run_id, "metric_key": "odd", "page_token": "zz"}
        )

    # then the pages hold the points, non-finite values as strings, int64 as numbers
    assert first["metrics"] == [
        {"key": "odd", "value": "NaN", "timestamp": 5, "step": 0},
        {"key": "odd", "value": "Infinity", "timestamp": 6, "step": 1},
    ]
    assert second["metrics"] == [{"key": "odd", "value": 0.5, "timestamp": 7, "step": 2}]
    assert "next_page_token" not in second
    assert [(p["step"], p["run_id"]) for p in bulk["metrics"]] == [(1, run_id), (2, run_id)]
    assert bad_token.status_code == 400
    assert bad_token.json()["error_code"] == "INVALID_PARAMETER_VALUE"
