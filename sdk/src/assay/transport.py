"""Moving logged data to the server without ever making the training loop wait.

The training thread only appends a tuple to a deque (``put_metrics``: a few hundred
nanoseconds). One background thread drains the deque into batches (at most
``max_batch_points`` points, params and tags in batches of their own so a refused param
cannot take metrics down with it), encodes each batch once with a fresh ``batch_id`` and
sends it. Connection errors, timeouts, 429 and 5xx are retried with exponential backoff
and jitter, resending the same bytes, so the server's batch-id check makes every retry
harmless. When the server stays unreachable for ``retry_timeout`` seconds (or the queue
grows too long while waiting), the batch goes to the disk spool and the transport turns
*degraded*: new batches go straight to the spool, and every ``probe_interval`` seconds it
tries to send the spool again; once that works it carries on online. Whatever is still
spooled when the process ends is uploaded by ``assay sync``.

Memory is bounded: past ``max_queue`` entries, ``put_*`` waits for the background thread
(the only case where logging blocks; it means the job produces points faster than they
can even be written to disk).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from assay.client import Client
from assay.errors import (
    AssayError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ValidationError,
    is_retryable,
)
from assay.spool import SpoolDir, log_line, op_line, send_line

MAX_POINTS_PER_BATCH = 100_000  # the server's limit
MAX_PARAMS_PER_BATCH = 1_000
MAX_PARAM_VALUE = 6_000
MAX_TAG_VALUE = 8_000
MAX_KEY_LENGTH = 250
MAX_STEP = 2**53 - 1
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./: ")

_METRICS, _PARAMS, _TAGS, _CALL = 0, 1, 2, 3

try:  # optional, ~6x faster encoding of big batches (`pip install assay-sdk[fast]`)
    import orjson

    def _dumps(body: dict[str, Any]) -> bytes:
        return orjson.dumps(body)

except ImportError:  # pragma: no cover - depends on the environment

    def _dumps(body: dict[str, Any]) -> bytes:
        return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def key_problem(key: object) -> str | None:
    """The server's key rule, checked locally so one bad key cannot sink a whole batch."""
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY_LENGTH:
        return "a key is a string of 1-250 characters"
    if not _KEY_CHARS.issuperset(key):
        return "a key holds only letters, digits, '_', '-', '.', '/', ':' and spaces"
    if key.startswith("/") or ".." in key.split("/"):
        return "a key may not start with '/' or contain a '..' segment"
    return None


def _nonfinite(value: float) -> str:
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


@dataclass
class Request:
    """One request to send: a ``/log/`` batch, or a figure / run update."""

    op: str  # "log", "figure", "update"
    body: dict[str, Any]
    points: int = 0
    _data: bytes | None = None

    @property
    def data(self) -> bytes:
        if self._data is None:
            self._data = _dumps(self.body)
        return self._data

    def line(self) -> bytes:
        return log_line(self.data) if self.op == "log" else op_line(self.op, self.body)


@dataclass
class Stats:
    points_sent: int = 0
    points_spooled: int = 0
    points_dropped: int = 0
    batches_sent: int = 0
    duplicates: int = 0
    spool_files: int = 0
    warnings: list[str] = field(default_factory=list)


class _GiveUp(Exception):
    pass


class Transport:
    def __init__(
        self,
        *,
        client: Client | None,
        run_id: str | None,
        spool_factory: Callable[[], SpoolDir],
        offline: bool = False,
        retry_timeout: float = 30.0,
        flush_interval: float = 1.0,
        max_batch_points: int = 50_000,
        max_queue: int = 50_000,
        probe_interval: float = 5.0,
        warn: Callable[[str], None] = lambda message: None,
    ) -> None:
        self._client = client
        self._run_id = run_id
        self._spool_factory = spool_factory
        self._spool: SpoolDir | None = None
        self._offline = offline or client is None or run_id is None
        self._retry_timeout = retry_timeout
        self._flush_interval = flush_interval
        self._max_batch_points = min(max_batch_points, MAX_POINTS_PER_BATCH)
        self._max_queue = max_queue
        self._spill_at = max(max_queue // 4, 1)
        self._probe_interval = probe_interval
        self._warn_callback = warn
        self._warned: set[str] = set()

        self._queue: deque[tuple[Any, ...]] = deque()
        self._wake_at = 2_000
        self._wake = threading.Event()
        self._abort = threading.Event()
        self._idle = threading.Condition()
        self._busy = False
        self._closing = False
        self._degraded = False
        self._next_probe = 0.0
        self._good_keys: set[str] = set()
        self._bad_keys: set[str] = set()
        self.stats = Stats()
        self._thread = threading.Thread(target=self._loop, name="assay-transport", daemon=True)
        self._thread.start()

    # --- the training thread's side (keep these cheap) ---------------------------------------

    def put_metrics(self, step: int, when: float, metrics: dict[str, Any]) -> None:
        queue = self._queue
        queue.append((_METRICS, step, when, metrics))
        if len(queue) >= self._wake_at:
            if not self._wake.is_set():
                self._wake.set()
            if len(queue) >= self._max_queue:
                self._wait_for_room()

    def put_params(self, params: dict[str, str]) -> None:
        self._queue.append((_PARAMS, params))
        self._wake.set()

    def put_tags(self, tags: dict[str, str]) -> None:
        self._queue.append((_TAGS, tags))
        self._wake.set()

    def put_call(self, op: str, body: dict[str, Any]) -> None:
        """A figure or a run update, sent in order with the batches around it."""
        self._queue.append((_CALL, op, body))
        self._wake.set()

    def _wait_for_room(self) -> None:
        self._warn_once("backpressure", "logging faster than Assay can store points; run.log waits briefly.")
        while len(self._queue) >= self._max_queue // 2 and self._thread.is_alive():
            self._wake.set()
            time.sleep(0.001)

    # --- flushing and closing ----------------------------------------------------------------

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def degraded(self) -> bool:
        return self._degraded

    @property
    def spool(self) -> SpoolDir | None:
        return self._spool

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything logged so far was sent (or spooled). True if it was."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._wake.set()
        with self._idle:
            while self._queue or self._busy:
                if not self._thread.is_alive():
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._wake.set()
                self._idle.wait(0.05 if remaining is None else min(remaining, 0.05))
        return True

    def close(self, timeout: float | None = None, progress: Callable[[int, float], None] | None = None) -> None:
        """Drain the queue (sending or spooling everything) and stop the thread.

        ``timeout``: after that many seconds retries stop and the rest goes to the spool.
        ``progress(queued_entries, elapsed)`` is called about twice a second meanwhile.
        """
        self._closing = True
        self._wake.set()
        start = time.monotonic()
        while self._thread.is_alive():
            self._thread.join(0.5)
            elapsed = time.monotonic() - start
            if progress is not None and self._thread.is_alive():
                progress(len(self._queue), elapsed)
            if timeout is not None and elapsed > timeout:
                self._abort.set()
        if self._spool is not None:
            self._spool.unlock()

    # --- the background thread ---------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            closing = self._closing
            try:
                self._pump()
                if closing and self._degraded and not self._abort.is_set():
                    self._try_recover()
            except Exception as exc:  # noqa: BLE001 - the thread must outlive any surprise
                self._warn_once(f"internal:{type(exc).__name__}", f"internal error in the transport: {exc!r}")
            if closing and not self._queue:
                with self._idle:
                    self._idle.notify_all()
                return

    def _pump(self) -> None:
        with self._idle:
            self._busy = True
        try:
            if self._degraded and time.monotonic() >= self._next_probe:
                self._try_recover()
            while self._queue:
                request = self._next_request()
                if request is not None:
                    self._deliver(request)
                if self._degraded and time.monotonic() >= self._next_probe:
                    self._try_recover()
        finally:
            with self._idle:
                self._busy = False
                self._idle.notify_all()

    def _next_request(self) -> Request | None:
        queue = self._queue
        kind = queue[0][0]
        if kind == _CALL:
            _, op, body = queue.popleft()
            return Request(op=op, body=body)
        if kind == _METRICS:
            return self._metrics_batch()
        return self._params_batch()

    def _params_batch(self) -> Request | None:
        queue = self._queue
        params: dict[str, str] = {}
        tags: dict[str, str] = {}
        while queue and queue[0][0] in (_PARAMS, _TAGS):
            if len(params) + len(queue[0][1]) > MAX_PARAMS_PER_BATCH and (params or tags):
                break
            if len(tags) + len(queue[0][1]) > MAX_PARAMS_PER_BATCH and (params or tags):
                break
            kind, items = queue.popleft()
            target, limit = (params, MAX_PARAM_VALUE) if kind == _PARAMS else (tags, MAX_TAG_VALUE)
            for key, value in items.items():
                problem = key_problem(key)
                if problem:
                    self._warn_once(f"key:{key}", f"dropped {key!r}: {problem}.")
                    continue
                if len(value) > limit:
                    self._warn_once(f"long:{key}", f"{key!r} is longer than {limit} characters; truncated.")
                    value = value[:limit]
                target[key] = value
        if not params and not tags:
            return None
        body: dict[str, Any] = {"batch_id": uuid.uuid4().hex}
        if params:
            body["params"] = params
        if tags:
            body["tags"] = tags
        return Request(op="log", body=body)

    def _metrics_batch(self) -> Request | None:
        queue = self._queue
        columns: dict[str, tuple[list[int], list[Any], list[int]]] = {}
        points = 0
        limit = self._max_batch_points
        while queue and points < limit and queue[0][0] == _METRICS:
            _, step, when, metrics = queue.popleft()
            stamp = int(when * 1000)
            for key, value in metrics.items():
                column = columns.get(key)
                if column is None:
                    if key not in self._good_keys and not self._accept_key(key, value):
                        if isinstance(value, Mapping):
                            points += self._add_nested(columns, key, value, step, stamp)
                        continue
                    column = columns[key] = ([], [], [])
                if type(value) is float:
                    if value - value != 0.0:  # NaN or ±Inf: JSON has no literal for them
                        value = _nonfinite(value)
                else:
                    value = self._coerce(key, value)
                    if value is None:
                        continue
                column[0].append(step)
                column[1].append(value)
                column[2].append(stamp)
                points += 1
        if not points:
            return None
        series = [{"key": k, "steps": s, "values": v, "timestamps": t} for k, (s, v, t) in columns.items() if s]
        return Request(op="log", body={"batch_id": uuid.uuid4().hex, "series": series}, points=points)

    def _accept_key(self, key: Any, value: Any) -> bool:
        if isinstance(value, Mapping):
            return False  # nested: flattened into "key/sub" by _add_nested
        problem = key_problem(key)
        if problem:
            self._warn_once(f"key:{key}", f"dropped metric {key!r}: {problem}.")
            return False
        self._good_keys.add(key)
        return True

    def _add_nested(
        self,
        columns: dict[str, tuple[list[int], list[Any], list[int]]],
        prefix: str,
        values: Mapping[Any, Any],
        step: int,
        stamp: int,
    ) -> int:
        added = 0
        for sub, value in values.items():
            key = f"{prefix}/{sub}"
            if isinstance(value, Mapping):
                added += self._add_nested(columns, key, value, step, stamp)
                continue
            if key not in self._good_keys and not self._accept_key(key, value):
                continue
            coerced = self._coerce(key, value)
            if coerced is None:
                continue
            column = columns.setdefault(key, ([], [], []))
            column[0].append(step)
            column[1].append(coerced)
            column[2].append(stamp)
            added += 1
        return added

    def _coerce(self, key: str, value: Any) -> float | int | str | None:
        """Numbers of any kind (int, bool, numpy and torch scalars) → float; others are dropped."""
        if type(value) is float:
            return value if value - value == 0.0 else _nonfinite(value)
        if isinstance(value, (str, bytes)) or value is None:
            self._warn_once(
                f"value:{key}", f"dropped values of {key!r}: metrics are numbers (got {type(value).__name__})."
            )
            return None
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            item = getattr(value, "item", None)
            try:
                number = float(item()) if callable(item) else math.nan
            except (TypeError, ValueError, OverflowError):
                number = math.nan
            if number != number:
                self._warn_once(
                    f"value:{key}", f"dropped values of {key!r}: metrics are numbers (got {type(value).__name__})."
                )
                return None
        return number if number - number == 0.0 else _nonfinite(number)

    # --- delivery -----------------------------------------------------------------------------

    def _deliver(self, request: Request) -> None:
        if self._offline or self._degraded:
            self._to_spool([request])
            return
        try:
            self._send_with_retry(request)
        except _GiveUp as reason:
            self._to_spool([request])
            self._enter_degraded(str(reason))

    def _send(self, request: Request) -> dict[str, Any]:
        assert self._client is not None
        assert self._run_id is not None
        if request.op == "log":
            return self._client.log_batch(self._run_id, request.data)
        return send_line(self._client, self._run_id, {"op": request.op, "body": request.body})

    def _send_with_retry(self, request: Request) -> None:
        deadline = time.monotonic() + self._retry_timeout
        delay = 0.25
        while True:
            try:
                answer = self._send(request)
            except PayloadTooLargeError:
                parts = _split(request)
                if not parts:
                    self._drop(request, "the server says it is too large and it cannot be split")
                    return
                for part in parts:
                    self._send_with_retry(part)
                return
            except (ValidationError, ConflictError) as exc:
                self._drop(request, str(exc))
                return
            except (AuthenticationError, PermissionDeniedError, NotFoundError) as exc:
                raise _GiveUp(str(exc)) from None
            except AssayError as exc:
                if not is_retryable(exc):
                    self._drop(request, str(exc))
                    return
                if self._abort.is_set() or time.monotonic() + delay > deadline:
                    raise _GiveUp(str(exc)) from None
                if len(self._queue) > self._spill_at:
                    raise _GiveUp(f"{exc} (and the queue is long)") from None
                self._warn_once("retrying", f"{exc} Retrying for up to {self._retry_timeout:.0f} s.")
                self._abort.wait(delay * (0.5 + random.random()))
                delay = min(delay * 2, 8.0)
                continue
            self._count(request, answer)
            return

    def _count(self, request: Request, answer: dict[str, Any]) -> None:
        if request.op != "log":
            return
        self.stats.batches_sent += 1
        if answer.get("duplicate"):
            self.stats.duplicates += 1
        points = answer.get("points")
        self.stats.points_sent += points if isinstance(points, int) else 0

    def _drop(self, request: Request, reason: str) -> None:
        self.stats.points_dropped += request.points
        what = f"a batch of {request.points} points" if request.points else f"a {request.op} request"
        self._warn(f"the server refused {what}: {reason}")

    def _enter_degraded(self, reason: str) -> None:
        self._degraded = True
        self._next_probe = time.monotonic() + self._probe_interval
        where = self._spool.path if self._spool else "the spool"
        self._warn(
            f"{reason} Spooling to {where} and retrying every {self._probe_interval:.0f} s; "
            "the job goes on (`assay sync` uploads what is left)."
        )

    def _to_spool(self, requests: list[Request]) -> None:
        if self._spool is None:
            self._spool = self._spool_factory()
            if not self._spool.lock():
                self._warn("the spool directory is locked by another process; writing anyway.")
        self._spool.append([r.line() for r in requests])
        self.stats.spool_files += 1
        self.stats.points_spooled += sum(r.points for r in requests)

    def _try_recover(self) -> None:
        """Send the spool, oldest file first, one attempt per request; stay degraded on failure."""
        self._next_probe = time.monotonic() + self._probe_interval
        if self._spool is None or self._client is None or self._run_id is None:
            self._degraded = False
            return
        sent = 0
        try:
            for path in self._spool.files():
                for item in SpoolDir.read_lines(path):
                    try:
                        answer = send_line(self._client, self._run_id, item)
                    except (ValidationError, ConflictError) as exc:
                        self._warn(f"the server refused a spooled request: {exc}")
                        continue
                    if item["op"] == "log":
                        sent += 1
                        self.stats.batches_sent += 1
                        self.stats.duplicates += 1 if answer.get("duplicate") else 0
                        points = answer.get("points")
                        if isinstance(points, int):
                            self.stats.points_sent += points
                            self.stats.points_spooled -= points
                path.unlink()
        except AssayError:
            return
        self._degraded = False
        self._warn(f"the server is reachable again; sent {sent} spooled batches.")

    # --- messages -----------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        self.stats.warnings.append(message)
        self._warn_callback(message)

    def _warn_once(self, topic: str, message: str) -> None:
        if topic not in self._warned:
            self._warned.add(topic)
            self._warn(message)


def _split(request: Request) -> Optional[list[Request]]:
    """Halve a ``/log/`` batch by points; the halves get derived, stable batch ids."""
    series = request.body.get("series") or []
    if request.op != "log" or request.points < 2 or not series:
        return None
    rows = [(s["key"], i) for s in series for i in range(len(s["steps"]))]
    halves = [rows[: len(rows) // 2], rows[len(rows) // 2 :]]
    by_key = {s["key"]: s for s in series}
    out = []
    for index, half in enumerate(halves, start=1):
        columns: dict[str, dict[str, list[Any]]] = {}
        for key, i in half:
            source = by_key[key]
            column = columns.setdefault(key, {"steps": [], "values": [], "timestamps": []})
            column["steps"].append(source["steps"][i])
            column["values"].append(source["values"][i])
            column["timestamps"].append(source["timestamps"][i])
        body = {
            "batch_id": f"{request.body['batch_id']}-{index}"[-64:],
            "series": [{"key": k, **c} for k, c in columns.items()],
        }
        out.append(Request(op="log", body=body, points=len(half)))
    return out
