"""The ASGI entry point (config/asgi.py, config/middleware.py): requests go through the
whole middleware chain and the view in one thread hop, with the same effects as Django's
own handler (headers of every middleware, the API's error shape, writes committed)."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from asgiref.testing import ApplicationCommunicator
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


# --- streamed bodies stay streamed ---------------------------------------------------------------


def test_a_streamed_body_is_sent_while_its_iterator_is_still_being_read() -> None:
    # Django's own handler reads a sync iterator to the end (into a list) before sending
    # its first byte; ours sends each ~64 KiB piece as soon as it has been read.
    from django.http import StreamingHttpResponse

    read = 0

    def parts() -> Iterator[bytes]:
        nonlocal read
        for _ in range(40):  # 40 × 16 KiB = 640 KiB
            read += 1
            yield b"x" * 16384

    read_when_sent: list[int] = []
    body: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message.get("body"):
            read_when_sent.append(read)
            body.append(message["body"])

    async def serve() -> dict[str, Any]:
        await SyncChainASGIHandler().send_response(StreamingHttpResponse(parts()), send)
        return {}

    _in_a_fresh_thread(serve)

    assert b"".join(body) == b"x" * 16384 * 40
    assert read_when_sent[0] == 4  # the first 64 KiB went out after 4 of the 40 parts
    assert read_when_sent == sorted(read_when_sent)
    assert read_when_sent[-1] == 40


@pytest.mark.filterwarnings("error:StreamingHttpResponse must consume")
def test_a_local_store_download_through_asgi_is_streamed_whole(tmp_path: Path, settings: Any) -> None:
    from artifacts import storage
    from config.asgi import application

    settings.ASSAY_ARTIFACTS = str(tmp_path / "artifacts")
    storage.artifact_store.cache_clear()
    try:
        data = os.urandom(1_000_003)
        store = storage.artifact_store()
        key = storage.object_key("p" * 32, hashlib.sha256(data).hexdigest())
        store.put_bytes(key, data, content_type="application/octet-stream")
        url = urlsplit(
            store.get_url(key, filename="model.bin", media_type="application/octet-stream", inline=False, expires=60)
        )
    finally:
        storage.artifact_store.cache_clear()

    async def go() -> dict[str, Any]:
        communicator = ApplicationCommunicator(
            application,
            {
                "type": "http",
                "http_version": "1.1",
                "method": "GET",
                "path": url.path,
                "raw_path": url.path.encode(),
                "query_string": url.query.encode(),
                "root_path": "",
                "headers": [(b"host", b"testserver")],
                "scheme": "http",
                "server": ("testserver", 80),
                "client": ("127.0.0.1", 5000),
            },
        )
        await communicator.send_input({"type": "http.request", "body": b""})
        start = await communicator.receive_output(20)
        messages = []
        while True:
            message = await communicator.receive_output(20)
            messages.append(message)
            if not message.get("more_body"):
                break
        await communicator.wait(20)
        return {"start": start, "messages": messages}

    served = _in_a_fresh_thread(go)

    assert served["start"]["status"] == 200
    headers = {k.decode().lower(): v.decode() for k, v in served["start"]["headers"]}
    assert headers["content-length"] == str(len(data))
    assert "attachment" in headers["content-disposition"]
    assert b"".join(m.get("body", b"") for m in served["messages"]) == data
    assert len([m for m in served["messages"] if m.get("body")]) >= 15  # 64 KiB pieces, not one buffer
