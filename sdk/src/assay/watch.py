"""Follow a run live over the server's WebSocket (``/ws/``): ``assay runs watch RUN_ID``.

Needs the ``websockets`` package (``pip install 'assay-sdk[live]'``); the rest of the SDK
does not. The token travels in the ``Authorization`` header, never in the URL (URLs end up
in proxies' logs). On a dropped connection it reconnects with backoff and asks for what it
missed (``after`` = the last sequence number it printed), so no batch is skipped silently.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator
from typing import Any

from assay.client import normalize_url
from assay.errors import AuthenticationError, ConfigurationError, NotFoundError, PermissionDeniedError

TERMINAL = {"finished", "failed", "killed"}


def ws_url(server: str) -> str:
    base = normalize_url(server)
    if base.startswith("https://"):
        return "wss://" + base[len("https://") :] + "/ws/"
    return "ws://" + base[len("http://") :] + "/ws/"


def follow(
    server: str,
    token: str | None,
    topic: str,
    *,
    max_retries: int = 8,
    sleep: Callable[[float], None] = time.sleep,
    on_subscribed: Callable[[int, bool], None] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield the topic's frames (``event`` and ``reset``), reconnecting as needed. Raises
    NotFoundError / PermissionDeniedError for a refused topic, AuthenticationError for a bad token.
    ``on_subscribed(seq, resumed)`` is called each time the server confirms the subscription:
    every event after ``seq`` will be yielded; ``resumed`` is true after a reconnection."""
    try:  # optional (`pip install assay-sdk[live]`), hence imported here
        from websockets.exceptions import ConnectionClosed, InvalidStatus
        from websockets.sync.client import connect
    except ImportError:
        raise ConfigurationError(
            "Following a run live needs the websockets package: pip install 'assay-sdk[live]'."
        ) from None
    if not token:
        raise ConfigurationError("No API token: set ASSAY_TOKEN or run `assay login`.")
    last_seq: int | None = None
    failures = 0
    while True:
        try:
            with connect(
                ws_url(server), additional_headers={"Authorization": f"Bearer {token}"}, open_timeout=10
            ) as sock:
                frame: dict[str, Any] = {"type": "subscribe", "topic": topic}
                if last_seq is not None:
                    frame["after"] = last_seq
                sock.send(json.dumps(frame))
                for raw in sock:
                    message = json.loads(raw)
                    kind = message.get("type")
                    if kind == "subscribed":
                        failures = 0
                        resumed = last_seq is not None
                        if last_seq is None:
                            last_seq = int(message["seq"])
                        if on_subscribed is not None:
                            on_subscribed(last_seq, resumed)
                    elif kind == "error":
                        code = message.get("code")
                        if code == "not_found":
                            raise NotFoundError(
                                f"{topic}: not found (or not visible to you).", status=404, code="not_found"
                            )
                        if code == "forbidden":
                            raise PermissionDeniedError(
                                message.get("message", "forbidden"), status=403, code="forbidden"
                            )
                        if code == "unauthenticated":
                            raise AuthenticationError(
                                message.get("message", "unauthenticated"), status=401, code="unauthenticated"
                            )
                        raise ConfigurationError(f"The server refused the subscription: {message.get('message')}")
                    elif kind in ("event", "reset"):
                        last_seq = int(message["seq"])
                        yield message
        except InvalidStatus as exc:
            if exc.response.status_code in (401, 403):
                raise AuthenticationError("The server refused the token.", status=401, code="unauthenticated") from None
            failures += 1
        except (ConnectionClosed, OSError, TimeoutError):
            failures += 1
        if failures > max_retries:
            raise ConfigurationError(f"Lost the connection to {server} and could not reconnect.")
        sleep(min(30.0, 2.0 ** (failures - 1)) * random.uniform(0.7, 1.3))


def format_event(message: dict[str, Any]) -> list[str]:
    """The lines ``assay runs watch`` prints for one frame."""
    if message["type"] == "reset":
        return ["(missed more events than the server keeps; continuing from now)"]
    event, data = message["event"], message.get("data") or {}
    if event == "metrics":
        # One compact line per step: "step 12  acc=0.9812  loss=0.1235" (4 significant digits).
        by_step: dict[int, dict[str, Any]] = {}
        for key, points in data.get("points", {}).items():
            for step, value in zip(points.get("steps", []), points.get("values", [])):
                by_step.setdefault(int(step), {})[str(key)] = value
        lines = [
            f"step {step:>6}  " + "  ".join(f"{key}={_compact(value)}" for key, value in sorted(values.items()))
            for step, values in sorted(by_step.items())
        ]
        if data.get("downsampled"):
            lines.append("(batch downsampled for display; the server has every point)")
        return lines
    if event == "run.updated":
        return [f"status: {data.get('status')}"]
    if event == "artifact.processed":
        return [f"artifact {data.get('path')}: {data.get('status')}"]
    return [f"{event}"]


def _compact(value: Any) -> str:
    """A metric value in about 4 significant digits (``0.9916``, ``1.235e+05``); integers as they are."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    return f"{value:.4g}"
