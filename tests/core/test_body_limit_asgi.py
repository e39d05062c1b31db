"""The body limit under ASGI, as a server runs Assay (config.asgi.application: the log fast
path in front of Django's handler): a body declared over ``ASSAY_MAX_BODY_BYTES`` is
refused with 413 before it is read, and a body without Content-Length (chunked) is read
within the limit instead of being taken for empty (issue 17, bugs 8 and 9)."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson
import pytest
from django.test import override_settings

from accounts.models import User
from accounts.services import token_create
from experiments.models import MetricSummary, Run

pytestmark = pytest.mark.django_db(transaction=True)


def _serve(
    path: str, pieces: list[bytes], headers: list[tuple[bytes, bytes]], query: bytes = b""
) -> tuple[dict[str, Any], int]:
    """Send ``pieces`` as the body messages; the answer, and how many pieces were asked for."""
    from config.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }

    async def go() -> tuple[dict[str, Any], int]:
        asked = 0
        done = asyncio.Event()
        answer: dict[str, Any] = {"body": b""}

        async def receive() -> dict[str, Any]:
            nonlocal asked
            if asked < len(pieces):
                asked += 1
                return {"type": "http.request", "body": pieces[asked - 1], "more_body": asked < len(pieces)}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            else:
                answer["body"] += message.get("body", b"")
                if not message.get("more_body"):
                    done.set()

        await asyncio.wait_for(application(scope, receive, send), timeout=20)
        return answer, asked

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(go())).result()


@pytest.fixture
def bearer(owner: User) -> tuple[bytes, bytes]:
    return (b"authorization", b"Bearer " + token_create(user=owner, name="asgi").raw.encode())


@pytest.mark.parametrize("path", ["/api/v1/runs/", "/api/v1/runs/{run}/log/", "/api/v1/teams/"])
def test_a_body_declared_over_the_limit_is_refused_unread(run: Run, bearer: tuple[bytes, bytes], path: str) -> None:
    pieces = [b"x" * 1000] * 5  # 5,000 bytes would follow; none is asked for

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=4000):
        answer, asked = _serve(path.format(run=run.id), pieces, [bearer, (b"content-length", b"5000")])

    assert answer["status"] == 413, answer
    assert orjson.loads(answer["body"])["error"]["code"] == "too_large"
    assert asked == 0


def test_a_chunked_body_is_read(project: Any, bearer: tuple[bytes, bytes]) -> None:
    body = orjson.dumps({"project": "acme/proj", "name": "chunked", "config": {"lr": 0.1}})
    pieces = [body[:10], body[10:30], body[30:]]

    answer, _ = _serve("/api/v1/runs/", pieces, [bearer])

    assert answer["status"] == 201, answer
    assert Run.objects.get(name="chunked").config == {"lr": 0.1}


def test_a_chunked_log_call_is_read(run: Run, bearer: tuple[bytes, bytes]) -> None:
    body = orjson.dumps({"batch_id": "c1", "metrics": [{"key": "loss", "step": 1, "value": 0.5}]})

    answer, _ = _serve(f"/api/v1/runs/{run.id}/log/", [body[:7], body[7:]], [bearer])

    assert answer["status"] == 200, answer
    assert MetricSummary.objects.get(run=run, key="loss").count == 1


def test_a_chunked_body_past_the_limit_is_refused_without_reading_the_rest(
    project: Any, bearer: tuple[bytes, bytes]
) -> None:
    pieces = [b"x" * 1000] * 50

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=4000):
        answer, asked = _serve("/api/v1/runs/", pieces, [bearer])

    assert answer["status"] == 413, answer
    assert orjson.loads(answer["body"])["error"]["code"] == "too_large"
    assert asked == 5  # the piece that passed the limit, and none after it
    assert not Run.objects.exists()


def test_nul_in_a_log_call_url_is_refused_by_the_guard(run: Run, bearer: tuple[bytes, bytes]) -> None:
    """The log fast path leaves such URLs to Django, whose guard answers them."""
    body = orjson.dumps({"batch_id": "n1", "metrics": [{"key": "loss", "step": 1, "value": 0.5}]})
    length = (b"content-length", b"%d" % len(body))

    in_path, _ = _serve(f"/api/v1/runs/{run.id[:-1]}\x00/log/", [body], [bearer, length])
    in_query, _ = _serve(f"/api/v1/runs/{run.id}/log/", [body], [bearer, length], query=b"x=%00")

    assert in_path["status"] == 404, in_path
    assert orjson.loads(in_path["body"])["error"]["code"] == "not_found"
    assert in_query["status"] == 400, in_query
    assert orjson.loads(in_query["body"])["error"] == {
        "code": "nul_character",
        "message": "A query parameter may not contain NUL (%00).",
        "field": "x",
    }
    assert not MetricSummary.objects.exists()


def test_the_local_store_upload_url_reads_bodies_past_the_limit() -> None:
    """Its token names the exact size (up to ASSAY_MAX_ARTIFACT_BYTES): core.http.body_limit_exempt."""
    from config.middleware import _bounded

    pieces = [b"x" * 1000] * 5
    scope = {"type": "http", "path": "/-/store/", "root_path": "", "headers": [(b"content-length", b"5000")]}

    async def go() -> list[bytes]:
        sent = iter(range(len(pieces)))

        async def receive() -> dict[str, Any]:
            index = next(sent)
            return {"type": "http.request", "body": pieces[index], "more_body": index < len(pieces) - 1}

        bounded = _bounded(scope, receive)
        return [(await bounded())["body"] for _ in pieces]

    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000), ThreadPoolExecutor(max_workers=1) as pool:
        received = pool.submit(lambda: asyncio.run(go())).result()

    assert received == pieces
    assert "assay.body_too_large" not in scope
