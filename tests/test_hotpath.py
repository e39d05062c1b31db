"""The log call's fast path (experiments/hotpath.py) answers exactly as Django's handler does.

Every request is sent twice: to ``LogFastPath`` in front of an application that fails the
test if reached (so the fast path itself answered), and to Django's handler alone. Status,
body and headers must agree. Requests the fast path must leave to Django are checked to
reach the application behind it with their body unread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from channels.testing import HttpCommunicator

from accounts.models import ApiToken, User
from accounts.services import token_create
from experiments.hotpath import LogFastPath
from experiments.models import MetricChunk, MetricSummary, Param, ProjectKey, Run

pytestmark = pytest.mark.django_db(transaction=True)

# Headers whose values differ from one answer to the next by nature.
VARYING = {"x-request-id"}


async def _django_must_not_answer(scope: Any, receive: Any, send: Any) -> None:
    raise AssertionError(f"the fast path passed {scope['method']} {scope['path']} on to Django")


async def _behind(scope: Any, receive: Any, send: Any) -> None:
    """Stands for Django when the fast path must step aside: echoes the unread body."""
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 299, "headers": []})
    await send({"type": "http.response.body", "body": body})


def _serve(
    app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]], method: str = "POST"
) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        communicator = HttpCommunicator(app, method, path, body=body, headers=headers)
        answer: dict[str, Any] = await communicator.get_response(timeout=20)
        # Let the application finish after answering, as a server does (Django returns the
        # request's database connection to the pool then); asyncio.run would cancel it.
        await communicator.wait(timeout=20)
        return answer

    def in_new_loop() -> dict[str, Any]:
        return asyncio.run(go())

    # A fresh loop in a fresh thread, as a server has (browser tests leave a running loop).
    with ThreadPoolExecutor(max_workers=1) as pool:
        response = pool.submit(in_new_loop).result()
    response["headers"] = {k.decode().lower(): v.decode() for k, v in response["headers"]}
    return response


def _headers(
    token: str | None,
    body: bytes,
    *,
    content_type: str = "application/json",
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> list[tuple[bytes, bytes]]:
    headers = [(b"host", b"testserver"), (b"content-type", content_type.encode())]
    headers.append((b"content-length", str(len(body)).encode()))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return headers + list(extra)


def _both(path: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[dict[str, Any], dict[str, Any]]:
    from config.asgi import django_asgi_app

    fast = _serve(LogFastPath(_django_must_not_answer), path, body, headers)
    django = _serve(django_asgi_app, path, body, headers)
    return fast, django


def _same_answer(fast: dict[str, Any], django: dict[str, Any]) -> None:
    assert fast["status"] == django["status"], (fast, django)
    assert orjson.loads(fast["body"]) == orjson.loads(django["body"])
    assert set(fast["headers"]) == set(django["headers"]), (fast["headers"], django["headers"])
    for name, value in django["headers"].items():
        if name not in VARYING:
            assert fast["headers"][name] == value, name


def _path(run_id: str) -> str:
    return f"/api/v1/runs/{run_id}/log/"


def _body(**fields: Any) -> bytes:
    return orjson.dumps(fields)


POINT = [{"key": "loss", "step": 1, "value": 0.5}]


@pytest.fixture
def owner_token(owner: User) -> str:
    return token_create(user=owner, name="fast").raw


def test_a_log_call_is_served_by_the_fast_path_and_stored_as_by_django(run: Run, owner_token: str) -> None:
    from config.asgi import django_asgi_app

    fast_body = _body(batch_id="fast-1", metrics=[{"key": "loss", "step": 1, "value": 0.5}])
    django_body = _body(batch_id="django-1", metrics=[{"key": "acc", "step": 1, "value": 0.5}])
    fast = _serve(LogFastPath(_django_must_not_answer), _path(run.id), fast_body, _headers(owner_token, fast_body))
    django = _serve(django_asgi_app, _path(run.id), django_body, _headers(owner_token, django_body))

    assert fast["status"] == django["status"] == 200
    assert orjson.loads(fast["body"]) == {"batch_id": "fast-1", "duplicate": False, "points": 1}
    assert set(fast["headers"]) == set(django["headers"])
    for name in set(django["headers"]) - VARYING - {"content-length"}:
        assert fast["headers"][name] == django["headers"][name], name
    summaries = {s.key: (s.last, s.count) for s in MetricSummary.objects.filter(run=run)}
    assert summaries == {"loss": (0.5, 1), "acc": (0.5, 1)}
    assert MetricChunk.objects.filter(run=run).count() == 2
    assert set(ProjectKey.objects.filter(project=run.project, kind="metric").values_list("key", flat=True)) == {
        "loss",
        "acc",
    }

    again = _serve(LogFastPath(_django_must_not_answer), _path(run.id), fast_body, _headers(owner_token, fast_body))
    assert orjson.loads(again["body"]) == {"batch_id": "fast-1", "duplicate": True, "points": 0}
    assert MetricSummary.objects.get(run=run, key="loss").count == 1


def test_params_and_tags_take_the_transaction_and_conflicts_answer_alike(run: Run, owner_token: str) -> None:
    first = _body(params={"lr": "0.1"}, tags={"k": "v"}, metrics=POINT)
    assert (
        _serve(LogFastPath(_django_must_not_answer), _path(run.id), first, _headers(owner_token, first))["status"]
        == 200
    )
    assert Param.objects.get(run=run, key="lr").value == "0.1"

    conflict = _body(params={"lr": "0.2"})
    fast, django = _both(_path(run.id), conflict, _headers(owner_token, conflict))

    _same_answer(fast, django)
    assert fast["status"] == 409


BAD_BODIES: list[tuple[str, bytes]] = [
    ("empty", b""),
    ("not json", b"{nope"),
    ("a list", b"[1, 2]"),
    ("an empty object", b"{}"),
    ("an unknown field", _body(metrics=POINT, extra=1)),
    ("a bad value", _body(metrics=[{"key": "loss", "step": 1, "value": "high"}])),
    ("a bad key", _body(metrics=[{"key": "", "step": 1, "value": 1.0}])),
    ("a negative step", _body(metrics=[{"key": "loss", "step": -1, "value": 1.0}])),
    ("a bad batch id", _body(batch_id="no spaces allowed", metrics=POINT)),
    ("metrics not a list", _body(metrics={"loss": 1})),
    ("an empty series", _body(metrics=POINT, series=[{"key": "acc", "steps": [], "values": []}])),
    # core.jsonsafe's rules, the same on both paths (issue 17):
    ("NUL in a value", b'{"batch_id": "b1", "params": {"lr": "0\\u0000"}}'),
    (
        "an integer beyond 64 bits",
        b'{"batch_id": "b1", "metrics": [{"key": "l", "step": 9223372036854775808, "value": 1}]}',
    ),
    ("a duplicate key", b'{"batch_id": "b1", "metrics": [{"key": "l", "step": 1, "value": 1, "step": 2}]}'),
    # null is not "not given" where the schema says a list (issue 17 bug 10):
    ("null metrics", _body(metrics=None, series=[{"key": "acc", "steps": [1], "values": [0.5]}])),
    ("null series", _body(metrics=POINT, series=None)),
]


@pytest.mark.parametrize(("case", "body"), BAD_BODIES, ids=[c for c, _ in BAD_BODIES])
def test_bad_bodies_get_the_same_error_and_write_nothing(run: Run, owner_token: str, case: str, body: bytes) -> None:
    fast, django = _both(_path(run.id), body, _headers(owner_token, body))

    _same_answer(fast, django)
    assert fast["status"] == 400, case
    assert set(orjson.loads(fast["body"])["error"]) >= {"code", "message", "field"}
    assert not MetricSummary.objects.filter(run=run).exists()


def test_bad_credentials_and_roles_get_the_same_refusal(
    run: Run, owner: User, viewer: User, outsider: User, owner_token: str
) -> None:
    body = _body(metrics=POINT)
    read_only = token_create(user=owner, name="ro", scope=ApiToken.Scope.READ).raw
    cases = {
        "unknown token": (_path(run.id), _headers("asy_not-a-token", body), 401),
        "malformed header": (_path(run.id), _headers("two parts", body), 401),
        "read-only token": (_path(run.id), _headers(read_only, body), 403),
        "viewer": (_path(run.id), _headers(token_create(user=viewer, name="v").raw, body), 403),
        "outsider": (_path(run.id), _headers(token_create(user=outsider, name="o").raw, body), 404),
        "no such run": (_path("0" * 32), _headers(owner_token, body), 404),
        "an id too long": (_path("a" * 40), _headers(owner_token, body), 404),
    }
    for case, (path, headers, status) in cases.items():
        fast, django = _both(path, body, headers)
        _same_answer(fast, django)
        assert fast["status"] == status, case
    assert fast["headers"]["content-type"] == "application/json"
    unknown = _both(_path(run.id), body, _headers("asy_not-a-token", body))[0]
    assert unknown["headers"]["www-authenticate"] == 'Bearer realm="api"'
    assert not MetricSummary.objects.filter(run=run).exists()


def test_the_request_id_is_taken_or_made(run: Run, owner_token: str) -> None:
    body = _body(metrics=POINT)
    given = _serve(
        LogFastPath(_django_must_not_answer),
        _path(run.id),
        body,
        _headers(owner_token, body, extra=[(b"x-request-id", b"job-42.step-7")]),
    )
    made = _serve(
        LogFastPath(_django_must_not_answer),
        _path(run.id),
        body,
        _headers(owner_token, body, extra=[(b"x-request-id", b"not ok!")]),
    )

    assert given["headers"]["x-request-id"] == "job-42.step-7"
    assert len(made["headers"]["x-request-id"]) == 32


def test_the_latency_metric_counts_the_call_under_the_route_django_uses(run: Run, owner_token: str) -> None:
    from core.observability import HTTP_LATENCY

    route = "api/v1/runs/<str:run_id>/log/"

    def count() -> float:
        for metric in HTTP_LATENCY.collect():
            for sample in metric.samples:
                if sample.name.endswith("_count") and sample.labels == {
                    "method": "POST",
                    "route": route,
                    "status": "200",
                }:
                    return sample.value
        return 0.0

    before = count()
    body = _body(metrics=POINT)
    _serve(LogFastPath(_django_must_not_answer), _path(run.id), body, _headers(owner_token, body))

    assert count() == before + 1


PASSED_ON: dict[str, Callable[[str, bytes], tuple[str, str, list[tuple[bytes, bytes]]]]] = {
    "no credentials": lambda t, b: ("POST", "/log", [(b"host", b"testserver"), (b"content-length", b"%d" % len(b))]),
    "a session cookie": lambda t, b: (
        "POST",
        "/log",
        [(b"host", b"testserver"), (b"cookie", b"sessionid=x"), (b"content-length", b"%d" % len(b))],
    ),
    "another scheme": lambda t, b: ("POST", "/log", [*_headers(None, b), (b"authorization", b"Basic eDp5")]),
    "another content type": lambda t, b: ("POST", "/log", _headers(t, b, content_type="text/plain")),
    "no content length": lambda t, b: (
        "POST",
        "/log",
        [(k, v) for k, v in _headers(t, b) if k != b"content-length"],
    ),
    "a body over the limit": lambda t, b: (
        "POST",
        "/log",
        [*[(k, v) for k, v in _headers(t, b) if k != b"content-length"], (b"content-length", b"999999999999")],
    ),
    "a host not allowed": lambda t, b: (
        "POST",
        "/log",
        [(b"host", b"evil.example"), *[(k, v) for k, v in _headers(t, b) if k != b"host"]],
    ),
    "another method": lambda t, b: ("PUT", "/log", _headers(t, b)),
    "another path": lambda t, b: ("POST", "/other", _headers(t, b)),
}


@pytest.mark.parametrize("case", list(PASSED_ON))
def test_other_requests_go_to_django_with_their_body_unread(run: Run, owner_token: str, case: str) -> None:
    body = _body(metrics=POINT)
    method, where, headers = PASSED_ON[case](owner_token, body)
    path = _path(run.id) if where == "/log" else f"/api/v1/runs/{run.id}/"

    answer = _serve(LogFastPath(_behind), path, body, headers, method=method)

    assert answer["status"] == 299
    assert answer["body"] == body
    assert not MetricSummary.objects.filter(run=run).exists()


def test_a_bug_is_a_json_500_without_the_traceback(
    run: Run, owner_token: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from experiments import services

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(services, "run_log", broken)
    body = _body(metrics=POINT)

    answer = _serve(LogFastPath(_django_must_not_answer), _path(run.id), body, _headers(owner_token, body))

    assert answer["status"] == 500
    assert orjson.loads(answer["body"]) == {
        "error": {"code": "server_error", "message": "A server error occurred.", "field": None}
    }
    assert "secret internals" in caplog.text  # logged for the operator, not sent to the client
