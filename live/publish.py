"""The one way the rest of Assay pushes live events.

Services call :func:`publish_on_commit` inside their transaction; the event leaves only
after the commit, so a rolled-back write is never announced. Topics (see ``live/topics.py``):

* ``run:<run id>`` — metric points, status, artifacts processed
* ``project:<team>/<project>`` — runs started and finished
* ``review:<team>/<project>/<number>`` — comments, reviews, candidate pushes, checks, state
* ``user:<user id>`` — that user's notifications

``data`` has the same shape as the REST output of the object concerned. Every event gets the
next sequence number of its topic and is kept in a bounded log (``live/eventlog.py``), so a
client that reconnects with the last number it saw receives exactly what it missed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from core import jsonsafe
from live.eventlog import event_log

logger = logging.getLogger(__name__)

# Every consumer joins this group: "access may have changed for these users / projects".
ACCESS_GROUP = "live.access"


def group_name(topic: str) -> str:
    """Channel-layer group names allow only ASCII letters, digits, ``-_.`` and < 100 chars."""
    return "topic." + hashlib.sha256(topic.encode()).hexdigest()[:40]


def encode(data: Any) -> str:
    # orjson writes NaN and ±Inf as null; payloads follow the API and send them as strings.
    # Integers beyond 64 bits (a float jsonb gave back as one) are written as the API does.
    return jsonsafe.dumps(data).decode()


def _layer_call(method: Callable[..., Any], *args: Any) -> None:
    """Run a channel-layer coroutine from sync code, even from a thread whose event loop is
    running (async_to_sync refuses that; it only happens in tests, where Django is told to
    allow ORM writes there): then from a short-lived thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(method)(*args)
        return
    failure: list[BaseException] = []

    def call() -> None:
        try:
            async_to_sync(method)(*args)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the calling thread
            failure.append(exc)

    thread = threading.Thread(target=call)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def publish(*, topic: str, event: str, data: dict[str, Any]) -> int | None:
    """Number, log and send one event now (call it after commit; prefer :func:`publish_on_commit`).
    Returns its sequence number, or None when it could not be logged. Inside
    :func:`sends_deferred`, the send is left to the caller of that block."""
    data_json = encode(data)
    try:
        seq = event_log().append(topic, event, data_json)
    except Exception:  # a push that fails must not fail the write that caused it
        logger.exception("live event %s on %s was not logged", event, topic)
        return None
    message = {"type": "live.event", "topic": topic, "seq": seq, "event": event, "data": data_json}
    pending: list[tuple[str, dict[str, Any]]] | None = getattr(_deferred, "pending", None)
    if pending is not None:
        pending.append((group_name(topic), message))
        return seq
    layer = get_channel_layer()
    if layer is None:
        return seq
    try:
        _layer_call(layer.group_send, group_name(topic), message)
    except Exception:  # consumers fill gaps from the log when the next event arrives
        logger.exception("live event %s on %s was not pushed", event, topic)
    return seq


_deferred = threading.local()


@contextmanager
def sends_deferred() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Within this block (in this thread), events are numbered and logged as always, but their
    channel-layer sends are collected in the yielded list instead of made: the caller, an
    ASGI application, makes them from its own event loop with :func:`send_collected` once it
    has answered. From a worker thread a send needs ``async_to_sync`` (a new event loop and
    connection per call); from the server's loop it does not, and it is out of the request's
    latency. Subscribers see the same thing: the number and the log entry exist before the
    answer, so events stay in the order of the answers, and a socket that receives a later
    event first fills the gap from the log (``live/consumers.py``) and drops the late copy."""
    previous = getattr(_deferred, "pending", None)
    pending: list[tuple[str, dict[str, Any]]] = []
    _deferred.pending = pending
    try:
        yield pending
    finally:
        _deferred.pending = previous


async def send_collected(pending: list[tuple[str, dict[str, Any]]]) -> None:
    """Send what :func:`sends_deferred` collected, from the running event loop."""
    layer = get_channel_layer() if pending else None
    if layer is None:
        return
    for group, message in pending:
        try:
            await layer.group_send(group, message)
        except Exception:  # as in publish(): the log has it, consumers fill the gap
            logger.exception("live event %s on %s was not pushed", message["event"], message["topic"])


def publish_on_commit(*, topic: str, event: str, data: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(topic=topic, event=event, data=data), robust=True)


def publish_lazy_on_commit(*, topics: Iterable[str], event: str, build: Callable[[], dict[str, Any] | None]) -> None:
    """After commit, build the payload once (from the committed rows: what a GET would answer
    then) and publish it to each topic; a None payload publishes nothing."""
    names = list(topics)

    def send() -> None:
        data = build()
        if data is not None:
            for topic in names:
                publish(topic=topic, event=event, data=data)

    transaction.on_commit(send, robust=True)


def access_changed(*, user_ids: list[int] | None = None, project_ids: list[str] | None = None) -> None:
    """Tell every open socket to re-check its subscriptions now (for those users or projects;
    None for both: everyone). Called after commit by ``accounts/live.py``."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        _layer_call(
            layer.group_send, ACCESS_GROUP, {"type": "live.access", "user_ids": user_ids, "project_ids": project_ids}
        )
    except Exception:  # the periodic re-check still ends lost subscriptions
        logger.exception("live access change was not broadcast")
