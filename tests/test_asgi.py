"""The ASGI entry point (config/asgi.py, config/middleware.py): requests go through the
whole middleware chain and the view in one thread hop, with the same effects as Django's
own handler (headers of every middleware, the API's error shape, writes committed)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from channels.testing import HttpCommunicator
from django.core.handlers.asgi import ASGIHandler

from accounts.models import User
from accounts.services import token_create
from config.middleware import SyncChainASGIHandler
from experiments.models import MetricSummary, Run

pytestmark = pytest.mark.django_db(transaction=True)


def _in_a_fresh_thread(make: Callable[[], Coroutine[Any, Any, dict[str, Any]]]) -> dict[str, Any]:
    """Serve on a new event loop in a new thread, as a server does: an earlier test (a
    browser or a socket test) may have left a running loop in this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


def _request(method: str, path: str, body: bytes = b"", token: str | None = None) -> dict[str, Any]:
    from config.asgi import application

    headers = [(b"host", b"testserver"), (b"content-type", b"application/json")]
    headers.append((b"content-length", str(len(body)).encode()))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))

    async def go() -> dict[str, Any]:
        communicator = HttpCommunicator(application, method, path, body=body, headers=headers)
        answer: dict[str, Any] = await communicator.get_response(timeout=20)
        # Let the application finish after answering, as a server does (Django returns the
        # request's database connection to the pool then); asyncio.run would cancel it.
        await communicator.wait(timeout=20)
        return answer

    response = _in_a_fresh_thread(go)
    response["headers"] = {k.decode().lower(): v.decode() for k, v in response["headers"]}
    return response


def test_the_http_application_is_the_one_hop_handler() -> None:
    from config.asgi import django_asgi_app

    assert isinstance(django_asgi_app, SyncChainASGIHandler)


def test_every_middleware_still_runs() -> None:
    response = _request("GET", "/healthz")

    assert response["status"] == 200
    headers = response["headers"]
    assert len(headers["x-request-id"]) == 32  # RequestIdMiddleware
    assert headers["x-content-type-options"] == "nosniff"  # SecurityMiddleware
    assert headers["x-frame-options"] == "DENY"  # XFrameOptionsMiddleware
    assert "content-security-policy" in headers  # CSPMiddleware


def test_a_log_call_through_asgi_is_stored_and_errors_keep_their_shape(run: Run, owner: User) -> None:
    token = token_create(user=owner, name="asgi").raw
    path = f"/api/v1/runs/{run.id}/log/"
    body = orjson.dumps({"batch_id": "asgi-1", "metrics": [{"key": "loss", "step": 3, "value": 0.25}]})

    ok = _request("POST", path, body, token)
    again = _request("POST", path, body, token)
    refused = _request("POST", path, body, "asy_not-a-token")
    missing = _request("POST", "/api/v1/runs/" + "0" * 32 + "/log/", body, token)

    assert ok["status"] == 200, ok["body"]
    assert orjson.loads(ok["body"]) == {"batch_id": "asgi-1", "duplicate": False, "points": 1}
    assert orjson.loads(again["body"])["duplicate"] is True
    assert MetricSummary.objects.get(run=run, key="loss").count == 1
    assert refused["status"] == 401
    assert orjson.loads(refused["body"])["error"]["message"] == "The token is not valid."
    assert missing["status"] == 404
    assert orjson.loads(missing["body"])["error"]["code"] == "not_found"


def _hops_back_to_the_loop(handler: Any, monkeypatch: pytest.MonkeyPatch) -> int:
    """How many times serving GET /healthz with ``handler`` calls async_to_sync (a sync
    part handing work back to the event loop, then waiting for it)."""
    import asgiref.sync

    calls: list[object] = []
    original = asgiref.sync.AsyncToSync.__call__

    def counting(self: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(asgiref.sync.AsyncToSync, "__call__", counting)
    communicator = HttpCommunicator(handler, "GET", "/healthz", headers=[(b"host", b"testserver")])
    response = _in_a_fresh_thread(lambda: communicator.get_response(timeout=20))
    monkeypatch.undo()
    assert response["status"] == 200
    return len(calls)


def test_the_chain_and_the_view_run_in_one_hop(monkeypatch: pytest.MonkeyPatch) -> None:
    # Django's own handler hops from its sync middleware back to the loop and out again
    # for the view; this one runs chain and view in one sync_to_async call.
    assert _hops_back_to_the_loop(ASGIHandler(), monkeypatch) >= 1
    assert _hops_back_to_the_loop(SyncChainASGIHandler(), monkeypatch) == 0
