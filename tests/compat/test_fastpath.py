"""MLflow's log calls served by the log call's fast path (compat/fastpath.py) answer exactly as
Django's handler does. As in tests/test_hotpath.py, each request goes to ``MlflowLogFastPath``
in front of an application that fails the test if reached, and to Django's handler alone;
status, body and headers must agree, and what is stored must be the same."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from accounts.models import ApiToken, User
from accounts.services import token_create
from compat.fastpath import MlflowLogFastPath
from experiments import metric_store
from experiments.models import MetricSummary, Run
from tests.test_hotpath import VARYING, _behind, _django_must_not_answer, _headers, _serve

pytestmark = pytest.mark.django_db(transaction=True)

BASE = "/mlflow/acme/proj/api/2.0/mlflow/"


@pytest.fixture
def owner_token(owner: User) -> str:
    return token_create(user=owner, name="fast").raw


def _both(path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[dict[str, Any], dict[str, Any]]:
    from config.asgi import django_asgi_app

    fast = _serve(MlflowLogFastPath(_django_must_not_answer), path, body, headers)
    django = _serve(django_asgi_app, path, body, headers)
    return fast, django


def _same_answer(fast: dict[str, Any], django: dict[str, Any]) -> None:
    assert fast["status"] == django["status"], (fast, django)
    assert orjson.loads(fast["body"]) == orjson.loads(django["body"])
    assert set(fast["headers"]) == set(django["headers"]), (fast["headers"], django["headers"])
    for name, value in django["headers"].items():
        if name not in VARYING:
            assert fast["headers"][name] == value, name


def _batch(run: Run, key: str, n: int, first_step: int = 0) -> bytes:
    metrics = [{"key": key, "value": 1.0 / (i + 1), "timestamp": 1000 + i, "step": first_step + i} for i in range(n)]
    return orjson.dumps({"run_id": run.pk, "metrics": metrics})


def test_log_batch_and_log_metric_answer_and_store_as_through_django(run: Run, owner_token: str) -> None:
    for path, body in [
        (BASE + "runs/log-batch", _batch(run, "loss", 1000)),
        (BASE + "runs/log-metric", orjson.dumps({"run_id": run.pk, "key": "one", "value": "NaN", "timestamp": 5})),
        (
            BASE + "runs/log-batch",
            orjson.dumps({"run_id": run.pk, "metrics": [], "params": [{"key": "lr", "value": "0.1"}]}),
        ),
    ]:
        fast, django = _both(path, body, _headers(owner_token, body))
        _same_answer(fast, django)
        assert fast["status"] == 200, fast
        assert orjson.loads(fast["body"]) == {}
    # Each point was written twice (once per path), at the same steps: the history has both.
    history = metric_store.history(run, "loss")
    assert len(history) == 2000
    assert MetricSummary.objects.get(run=run, key="loss").count == 2000
    assert MetricSummary.objects.get(run=run, key="one").count == 2
    assert run.params.get(key="lr").value == "0.1"


@pytest.mark.parametrize(
    "case",
    ["no value", "value not a number", "too many metrics", "not JSON", "a list body", "no run id"],
)
def test_bad_bodies_get_the_same_error_and_write_nothing(run: Run, owner_token: str, case: str) -> None:
    bodies = {
        "no value": orjson.dumps({"run_id": run.pk, "key": "a", "timestamp": 1}),
        "value not a number": orjson.dumps(
            {"run_id": run.pk, "metrics": [{"key": "a", "value": "x", "timestamp": 1, "step": 0}]}
        ),
        "too many metrics": _batch(run, "a", 1001),
        "not JSON": b"{nope",
        "a list body": b"[]",
        "no run id": orjson.dumps({"metrics": []}),
    }
    body = bodies[case]
    path = BASE + ("runs/log-metric" if case == "no value" else "runs/log-batch")
    fast, django = _both(path, body, _headers(owner_token, body))
    _same_answer(fast, django)
    assert fast["status"] == 400, (case, fast)
    assert orjson.loads(fast["body"])["error_code"] in ("INVALID_PARAMETER_VALUE", "BAD_REQUEST")
    assert not MetricSummary.objects.filter(run=run).exists()


def test_bad_credentials_and_roles_get_the_same_refusal(
    run: Run, owner: User, viewer: User, outsider: User, owner_token: str
) -> None:
    body = _batch(run, "loss", 3)
    read_only = token_create(user=owner, name="ro", scope=ApiToken.Scope.READ).raw
    cases = {
        "unknown token": (BASE, _headers("asy_not-a-token", body), 401),
        "read-only token": (BASE, _headers(read_only, body), 403),
        "viewer": (BASE, _headers(token_create(user=viewer, name="v").raw, body), 403),
        "outsider": (BASE, _headers(token_create(user=outsider, name="o").raw, body), 404),
        "no such project": ("/mlflow/acme/nope/api/2.0/mlflow/", _headers(owner_token, body), 404),
    }
    for case, (base, headers, status) in cases.items():
        fast, django = _both(base + "runs/log-batch", body, headers)
        _same_answer(fast, django)
        assert fast["status"] == status, (case, fast)
    unknown = _both(BASE + "runs/log-batch", body, _headers("asy_not-a-token", body))[0]
    assert "Bearer" in unknown["headers"]["www-authenticate"]
    assert not MetricSummary.objects.filter(run=run).exists()


@pytest.mark.parametrize("case", ["another call", "basic auth", "a GET", "outside /mlflow/"])
def test_other_requests_go_to_django_with_their_body_unread(run: Run, owner_token: str, case: str) -> None:
    body = _batch(run, "loss", 1)
    method, path, headers = {
        "another call": ("POST", BASE + "runs/log-parameter", _headers(owner_token, body)),
        "basic auth": (
            "POST",
            BASE + "runs/log-batch",
            [*_headers(None, body), (b"authorization", b"Basic eDp5")],
        ),
        "a GET": ("GET", BASE + "runs/log-batch", _headers(owner_token, body)),
        "outside /mlflow/": ("POST", "/api/v1/runs/log-batch", _headers(owner_token, body)),
    }[case]
    answer = _serve(MlflowLogFastPath(_behind), path, body, headers, method=method)
    assert answer["status"] == 299
    assert answer["body"] == body
