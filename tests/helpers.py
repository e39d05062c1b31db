"""Small helpers shared by the API tests: JSON requests sent as raw bytes (orjson, as the
SDK does) and assertions on the one error shape; and by the page tests: a signed-in browser
client and the messages a page flashed."""

from __future__ import annotations

import subprocess
from typing import Any

import orjson
from django.contrib.messages import get_messages
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from experiments.models import Run

JSON = "application/json"


def _body(body: Any) -> bytes | str:
    if isinstance(body, (bytes, str)):
        return body
    return orjson.dumps(body)


def post_json(client: APIClient, path: str, body: Any) -> Any:
    return client.post(path, data=_body(body), content_type=JSON)


def patch_json(client: APIClient, path: str, body: Any) -> Any:
    return client.patch(path, data=_body(body), content_type=JSON)


def run_path(run: Run | str) -> str:
    run_id = run if isinstance(run, str) else run.id
    return f"/api/v1/runs/{run_id}/"


def log_path(run: Run | str) -> str:
    return run_path(run) + "log/"


def history_path(run: Run | str, key: str) -> str:
    return run_path(run) + f"metrics/{key}/"


def assert_error(response: Any, status: int, *, code: str | None = None, field: Any = ...) -> dict[str, Any]:
    """Assert the status and the ``{"error": {"code", "message", "field"}}`` shape; return the error."""
    assert response.status_code == status, (response.status_code, response.content[:500])
    body = orjson.loads(response.content)
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "field"}, error
    assert isinstance(error["message"], str)
    assert error["message"]
    if code is not None:
        assert error["code"] == code, error
    if field is not ...:
        assert error["field"] == field, error
    return error  # type: ignore[no-any-return]


def rows(
    key: str, steps: range | list[int], value: float = 0.5, timestamp: int = 1764150000000
) -> list[dict[str, Any]]:
    return [{"key": key, "step": s, "value": value, "timestamp": timestamp} for s in steps]


def signed_in(user: User) -> Client:
    """A browser client with ``user``'s session."""
    client = Client()
    client.force_login(user)
    return client


def flashed(response: Any) -> list[str]:
    """The messages (django.contrib.messages) the request of ``response`` added."""
    return [str(m) for m in get_messages(response.wsgi_request)]


def stop_process(process: subprocess.Popen[Any]) -> None:
    """SIGTERM a server started by a test; SIGKILL when it has not exited 10 s later."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
