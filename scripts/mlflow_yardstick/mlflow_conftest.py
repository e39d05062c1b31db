"""Root conftest of the yardstick run: ``run.py`` copies it as ``conftest.py`` next to MLflow's
tests, in place of MLflow's own root conftest. It runs in ``.venv-mlflow`` with MLflow's
client, not in Assay (hence not named conftest.py here).

- The tests' server fixtures (``mlflow_client`` in test_rest_tracking.py, ``client`` in
  test_model_registry.py) start MLflow's server in-process; here they are replaced by one
  that creates a new Assay project for each test (``POST /api/v1/projects/``) and yields a
  client of its MLflow endpoint. A new MLflow server has the experiment ``Default``; the
  fixture asks for experiment ``0`` once so that Assay's ``Default`` exists too.
- MLflow's test server takes no credentials; Assay's endpoint does. Requests the tests send
  themselves (``requests.post(url + "/api/2.0/…")``) get the yardstick's token added.
- Tests that configure or inspect MLflow's server (its handlers, stores, environment) and
  tests of features the issue puts out of scope are deselected, each with its reason: the
  list is written to ``$ASSAY_YARDSTICK_DESELECTED`` for the tally.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

BASE = os.environ["ASSAY_YARDSTICK_URL"]
TEAM = os.environ["ASSAY_YARDSTICK_TEAM"]
TOKEN = os.environ["MLFLOW_TRACKING_TOKEN"]

# (reason, regular expression): first match wins. Features are told by the test's name, the
# server's internals by the test's source.
DESELECT: list[tuple[str, str]] = [
    ("GraphQL: MLflow's web UI's own endpoint, not the client's REST API", r"graphql"),
    (
        "MLflow web UI's private ajax-api handlers (upload-artifact, search-datasets, promptlab, "
        "get-history-bulk): not part of the REST API the client uses",
        r"upload_artifact_handler|search_dataset_handler|promptlab|get_metric_history_bulk_(?!interval)",
    ),
    (
        "out of scope (issue 18): GenAI tracing, assessments, issues",
        r"trace|span|assessment|_issue|issues",
    ),
    (
        "out of scope (issue 18): evaluation datasets and scorers",
        r"evaluation_dataset|dataset_to_experiments|dataset_from_experiments|add_remove_experiments|"
        r"dataset_experiment_association|idempotent_(add|remove)_experiments|scorer|online_scoring|"
        r"add_multiple_experiments_at_once",
    ),
    (
        "out of scope (issue 18): AI gateway (secrets, endpoints, providers, model definitions)",
        r"gateway|secret|endpoint|provider|model_definition|test_list_models",
    ),
    (
        "configures or inspects MLflow's server (its handlers, stores or server-side settings)",
        r"(?s)(handlers\.|initialize_backend_stores|SqlAlchemyStore|_init_server\(|ServerThread\(|"
        r"mock\.patch\(\s*\"mlflow\.server|mock\.patch\.object\(\s*handlers|db_uri|"
        r"MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX|"
        r"test_suppress_url_printing|test_log_url_includes_workspace)",
    ),
]


def _reason(item: pytest.Item) -> str | None:
    function = getattr(item, "function", None)
    try:
        source = inspect.getsource(function) if function is not None else ""
    except (OSError, TypeError):
        source = ""
    text = f"{item.name}\n{source}"
    for reason, pattern in DESELECT:
        if re.search(pattern, text if pattern.startswith("(?s)") else item.name):
            return reason
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped, record = [], [], []
    for item in items:
        reason = _reason(item)
        if reason is None:
            kept.append(item)
        else:
            dropped.append(item)
            record.append({"test": item.nodeid, "reason": reason})
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    target = os.environ.get("ASSAY_YARDSTICK_DESELECTED")
    if target:
        with open(target, "w") as handle:
            json.dump(record, handle, indent=1)


# --- the server fixture --------------------------------------------------------------------


def _assay_project_client() -> Iterator[Any]:
    from mlflow import MlflowClient  # type: ignore[import-not-found]  # .venv-mlflow only

    name = f"y{uuid.uuid4().hex[:12]}"
    answer = requests.post(
        f"{BASE}/api/v1/projects/",
        json={"team": TEAM, "name": name},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=30,
    )
    answer.raise_for_status()
    url = f"{BASE}/mlflow/{TEAM}/{name}"
    client = MlflowClient(url)
    client.get_experiment("0")  # MLflow's server starts with "Default"; Assay makes it on first use
    yield client


@pytest.fixture(name="mlflow_client")
def assay_mlflow_client() -> Iterator[Any]:
    yield from _assay_project_client()


@pytest.fixture(name="client")
def assay_registry_client() -> Iterator[Any]:
    yield from _assay_project_client()


REPLACED = {
    "test_rest_tracking.py": ("mlflow_client", assay_mlflow_client),
    "test_model_registry.py": ("client", assay_registry_client),
}


class _AssayServerModule(pytest.Module):
    """A test module whose server fixture is Assay's (the module's own definition loses)."""

    def _getobj(self) -> Any:
        module = super()._getobj()  # type: ignore[no-untyped-call]
        name, fixture = REPLACED[self.path.name]
        setattr(module, name, fixture)
        return module


def pytest_pycollect_makemodule(module_path: Any, parent: Any) -> pytest.Module | None:
    if module_path.name in REPLACED:
        return _AssayServerModule.from_parent(parent, path=module_path)
    return None


# --- the token on requests the tests send themselves ----------------------------------------

_request = requests.Session.request


def _with_token(self: requests.Session, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:
    if isinstance(url, str) and url.startswith(BASE):
        headers = dict(kwargs.get("headers") or {})
        if not any(key.lower() == "authorization" for key in headers) and kwargs.get("auth") is None:
            headers["Authorization"] = f"Bearer {TOKEN}"
            kwargs["headers"] = headers
    return _request(self, method, url, *args, **kwargs)


requests.Session.request = _with_token  # type: ignore[method-assign,assignment]
