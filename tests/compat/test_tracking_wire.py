"""The MLflow API's edges over HTTP: the paths the client asks before it authenticates,
authentication, the JSON error format for unknown and out-of-scope endpoints, and what a
bad request gets."""

from __future__ import annotations

import base64

import pytest

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
    with mlflow_server.http("owner_read") as http:
        search = http.post("api/2.0/mlflow/experiments/search", json={})
        create = http.post("api/2.0/mlflow/experiments/create", json={"name": "read-only"})
    assert search.status_code == 200, search.text
    assert create.status_code == 403
    assert create.json()["error_code"] == "PERMISSION_DENIED"
