"""The MLflow API's edges over HTTP: the paths the client asks before it authenticates,
authentication, the JSON error format for unknown and out-of-scope endpoints, and what a
bad request gets."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from compat.urls import tracking_urls
from experiments.models import Experiment, MetricSummary, Param, Run, Tag
from tests.compat.conftest import MlflowServer

# django_db: the test database must exist (the module fixture commits its people there).
# One xdist worker runs the whole module: one server, and the tests in file order.
pytestmark = [pytest.mark.slow, pytest.mark.django_db, pytest.mark.xdist_group("mlflow-wire")]


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
        # MLflow's own words (its REST tests match them): the value as JSON, then "supplied"
        (
            "runs/log-metric",
            {"run_id": 31, "key": "a", "value": 1, "timestamp": 1},
            "Invalid value 31 for parameter 'run_id' supplied",
        ),
        (
            "runs/log-metric",
            {"key": "a", "value": 1, "timestamp": 1, "step": "foo"},
            "Invalid value \"foo\" for parameter 'step' supplied",
        ),
        ("runs/log-metric", {"key": "a", "value": 1.0}, "Missing value for required parameter 'timestamp'"),
        ("runs/log-batch", {"metrics": "foo"}, "Invalid value \"foo\" for parameter 'metrics' supplied"),
        ("runs/log-batch", {"params": "foo"}, "Invalid value \"foo\" for parameter 'params' supplied"),
        (
            "runs/log-batch",
            {"metrics": [{"key": "mae", "value": 2.5}]},
            "Missing value for required parameter 'metrics[0].timestamp'",
        ),
        ("runs/set-tag", {"key": "t", "value": 41}, "Invalid value 41 for parameter 'value' supplied"),
        ("runs/log-parameter", {"key": "p", "value": 41}, "Invalid value 41 for parameter 'value' supplied"),
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


# --- every tracking endpoint against every kind of caller -----------------------------------------


def _tracking_endpoints() -> list[tuple[str, str, bool]]:
    """(method, path, writes) for every method of every tracking path in compat/urls.py."""
    found = []
    for pattern in tracking_urls:
        for method, handler in pattern.callback.mlflow_handlers.items():  # type: ignore[attr-defined]
            found.append((method, str(pattern.pattern), bool(handler.mlflow_write)))
    return found


ENDPOINTS = _tracking_endpoints()


def _sample_body(run_id: str, experiment_id: str) -> dict[str, Any]:
    """One message that every tracking endpoint accepts as far as its permission check."""
    return {
        "run_id": run_id,
        "run_ids": [run_id],
        "experiment_id": experiment_id,
        "experiment_ids": [experiment_id],
        "experiment_name": "matrix",
        "name": "matrix-new",
        "new_name": "matrix-renamed",
        "key": "k",
        "value": "1",
        "metric_key": "k",
        "timestamp": 1,
        "step": 0,
        "model_json": "{}",
    }


@pytest.fixture(scope="module")
def experiment_id(mlflow_server: MlflowServer) -> str:
    with mlflow_server.http() as http:
        created = http.post("api/2.0/mlflow/experiments/create", json={"name": "matrix"})
    assert created.status_code == 200, created.text
    return str(created.json()["experiment_id"])


def test_the_walk_finds_the_tracking_endpoints() -> None:
    assert ("POST", "api/2.0/mlflow/runs/log-batch", True) in ENDPOINTS
    assert ("GET", "api/2.0/mlflow/metrics/get-history", False) in ENDPOINTS
    assert ("POST", "api/2.0/mlflow/runs/search", False) in ENDPOINTS
    assert len(ENDPOINTS) >= 25


@pytest.mark.parametrize(("method", "path", "writes"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_every_tracking_endpoint_applies_the_policy_to_every_kind_of_caller(
    mlflow_server: MlflowServer, run_id: str, experiment_id: str, method: str, path: str, writes: bool
) -> None:
    body = _sample_body(run_id, experiment_id)
    answers: dict[str, tuple[int, str]] = {}
    for who in (None, "outsider", "viewer", "owner_read"):
        with mlflow_server.http(who) as http:
            response = http.get(path, params=body) if method == "GET" else http.request(method, path, json=body)
        answers[str(who)] = (response.status_code, response.json().get("error_code", "") if response.content else "")

    assert answers["None"] == (401, "UNAUTHENTICATED")
    assert answers["outsider"] == (404, "RESOURCE_DOES_NOT_EXIST")
    if writes:
        assert answers["viewer"] == (403, "PERMISSION_DENIED")
        assert answers["owner_read"] == (403, "PERMISSION_DENIED")
    else:
        assert answers["viewer"][0] == 200, answers
        assert answers["owner_read"][0] == 200, answers
    # and nothing was written by any of them
    assert not Experiment.objects.filter(name__in=["matrix-new", "matrix-renamed"]).exists()
    assert not Param.objects.filter(run_id=run_id, key="k").exists()


def test_a_tag_that_is_not_there_and_a_deleted_run_are_refused_in_mlflows_words(mlflow_server: MlflowServer) -> None:
    with mlflow_server.http() as http:
        created = http.post("api/2.0/mlflow/runs/create", json={"experiment_id": "0", "run_name": "doomed"})
        run = created.json()["run"]["info"]["run_id"]
        no_tag = http.post("api/2.0/mlflow/runs/delete-tag", json={"run_id": run, "key": "fakeTag"})
        assert http.post("api/2.0/mlflow/runs/delete", json={"run_id": run}).status_code == 200
        on_deleted = http.post("api/2.0/mlflow/runs/set-tag", json={"run_id": run, "key": "t", "value": "v"})
        batch_on_deleted = http.post(
            "api/2.0/mlflow/runs/log-batch", json={"run_id": run, "params": [{"key": "p", "value": "1"}]}
        )
        read_deleted = http.get("api/2.0/mlflow/runs/get", params={"run_id": run})

    assert no_tag.status_code == 404
    assert no_tag.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": f"No tag with name: fakeTag in run with id {run}",
    }
    for refused in (on_deleted, batch_on_deleted):
        assert refused.status_code == 400, refused.text
        assert refused.json()["message"] == f"The run {run} must be in the 'active' state. Current state is deleted."
    assert not Tag.objects.filter(run_id=run, key="t").exists()
    assert not Param.objects.filter(run_id=run).exists()
    assert read_deleted.json()["run"]["info"]["lifecycle_stage"] == "deleted"  # reading still works


def test_experiment_create_checks_artifact_location_is_a_string(mlflow_server: MlflowServer) -> None:
    response = _post(mlflow_server, "experiments/create", {"name": "typed-location", "artifact_location": 9.0})

    assert response.status_code == 400
    assert "Invalid value 9.0 for parameter 'artifact_location' supplied" in response.json()["message"]
    assert not Experiment.objects.filter(name="typed-location").exists()


def test_the_api_answers_under_ajax_api_too(mlflow_server: MlflowServer, run_id: str) -> None:
    """MLflow's server serves its REST API under ``/ajax-api/2.0/`` as well (its web UI's
    prefix); scripts written against it use that prefix."""
    with mlflow_server.http() as http:
        ajax = http.get("ajax-api/2.0/mlflow/runs/get", params={"run_id": run_id})
        api = http.get("api/2.0/mlflow/runs/get", params={"run_id": run_id})
        unknown = http.get("ajax-api/2.0/mlflow/runs/no-such-thing")

    assert ajax.status_code == 200
    assert ajax.json() == api.json()
    assert unknown.status_code == 404
    assert unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"metric_key": "k"}, "Missing value for required parameter 'run_ids'."),
        ({"run_ids": [f"id_{i}" for i in range(101)], "metric_key": "k"}, "must specify at most 100 run_ids"),
        ({"run_ids": ["x"], "metric_key": "k", "start_step": 1}, "If either start step or end step are specified"),
        (
            {"run_ids": ["x"], "metric_key": "k", "start_step": 2, "end_step": 1},
            "end_step must be greater than start_step",
        ),
    ],
)
def test_bulk_interval_refusals_in_mlflows_words(
    mlflow_server: MlflowServer, params: dict[str, Any], words: str
) -> None:
    with mlflow_server.http() as http:
        response = http.get("api/2.0/mlflow/metrics/get-history-bulk-interval", params=params)

    assert response.status_code == 400
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert words in response.json()["message"]


@pytest.mark.parametrize(
    ("path", "params", "status", "code"),
    [
        ("/mlflow/", {}, 404, "ENDPOINT_NOT_FOUND"),  # no team, no project: no route at all
        ("/mlflow/acme/", {}, 404, "ENDPOINT_NOT_FOUND"),
        ("/mlflow/acme/proj/api/2.0/mlflow/runs/get", {"run_id": "a\x00b"}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "/mlflow/acme/proj/api/2.0/mlflow/metrics/get-history-bulk-interval",
            {"run_ids": [f"r{i}" for i in range(1001)], "metric_key": "k"},
            400,
            "BAD_REQUEST",
        ),
    ],
)
def test_refusals_before_any_view_are_mlflows_json(
    mlflow_server: MlflowServer, path: str, params: dict[str, Any], status: int, code: str
) -> None:
    """Django refuses these before a view runs (no route; NUL in a parameter; more query
    fields than DATA_UPLOAD_MAX_NUMBER_FIELDS): under /mlflow/ the answer is still MLflow's
    JSON, which its client parses (an HTML page would be its "unexpected response")."""
    headers = {"Authorization": f"Bearer {mlflow_server.tokens['owner']}"}
    response = httpx.get(mlflow_server.url + path, params=params, headers=headers, timeout=30)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error_code"] == code
    assert response.json()["message"]


def test_the_rest_api_keeps_its_own_refusals(mlflow_server: MlflowServer) -> None:
    api = httpx.get(mlflow_server.url + "/api/v1/no-such-endpoint/", timeout=30)

    assert api.status_code == 404
    assert api.headers["content-type"] == "application/json"
    assert "error_code" not in api.json()  # Assay's error shape, not MLflow's


def test_tag_values_take_mlflows_8000_characters(mlflow_server: MlflowServer, run_id: str) -> None:
    longest = _post(mlflow_server, "runs/set-tag", {"run_id": run_id, "key": "long", "value": "x" * 8000})
    too_long = _post(mlflow_server, "runs/set-tag", {"run_id": run_id, "key": "longer", "value": "x" * 8001})

    assert longest.status_code == 200, longest.text
    assert Tag.objects.get(run_id=run_id, key="long").value == "x" * 8000
    assert too_long.status_code == 400
    assert too_long.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "8000" in too_long.json()["message"]
    assert not Tag.objects.filter(run_id=run_id, key="longer").exists()
