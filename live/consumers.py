"""The one WebSocket endpoint, ``/ws/``: per-topic subscriptions checked against the policy.

Protocol (JSON text frames; docs/api.md has the reference):

client → server  ``{"type": "subscribe", "topic": T, "after": N?}``, ``{"type": "unsubscribe",
                 "topic": T}``, ``{"type": "ping"}``, and, only as the first frame of a socket
                 opened without a session or an ``Authorization`` header,
                 ``{"type": "auth", "token": "asy_…"}``
server → client  ``{"type": "subscribed", "topic": T, "seq": current}``,
                 ``{"type": "event", "topic": T, "seq": N, "event": name, "data": {…}}``,
                 ``{"type": "reset", "topic": T, "seq": current}`` (missed more than the log
                 holds: reload, then continue from ``seq``), ``{"type": "unsubscribed", …}``,
                 ``{"type": "error", "topic": T?, "code": …, "message": …}``, ``{"type": "pong"}``

Read-only: nothing a client sends here writes anything (writes go through the REST API).

# SECURITY: the Origin header is checked before this consumer runs (config/asgi.py);
unauthenticated sockets are closed; every subscription asks ``live.access.access_topic``;
subscriptions are checked again when an "access changed" broadcast names the user or one of
their projects (accounts/live.py) and every ``ASSAY_LIVE_RECHECK_SECONDS`` in any case, and a
lost one ends with an error frame. Frames are capped in size and rate. Tokens are never
logged and never kept: only the token's id is, to check it is still valid.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser as User

from core.errors import Forbidden, NotFound
from core.observability import WEBSOCKETS_OPEN
from live.access import InvalidTopic, Target, access_topic, identity
from live.eventlog import Backlog, event_log
from live.hub import hub

logger = logging.getLogger(__name__)

MAX_FRAME_BYTES = 4096
MAX_SUBSCRIPTIONS = 100
MAX_SEQ = 2**53 - 1
# Token bucket per socket: a steady RATE frames per second, bursts up to BURST.
RATE = 20.0
BURST = 40.0

CLOSE_UNAUTHENTICATED = 4401
CLOSE_POLICY = 1008
CLOSE_TOO_BIG = 1009


def _setting(name: str, default: float) -> float:
    return float(getattr(settings, name, default))


@dataclass
class Subscription:
    client_topic: str  # as the client wrote it: every frame about it echoes this string
    target: Target
    last_seq: int


class _TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.stamp = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def _db(fn: Any) -> Any:
    # Thread-sensitive (one database thread per process): with thread_sensitive=False the
    # executor's threads were seen keeping pooled connections checked out until the pool ran dry.
    return database_sync_to_async(fn, thread_sensitive=True)


def _event_frame(topic: str, seq: int, event: str, data_json: str) -> str:
    # The payload was encoded once by the publisher; each socket only wraps it.
    return f'{{"type":"event","topic":{json.dumps(topic)},"seq":{seq},"event":{json.dumps(event)},"data":{data_json}}}'


class LiveConsumer(AsyncWebsocketConsumer):  # type: ignore[misc]
    user: User | None
    token_id: str | None
    subscriptions: dict[str, Subscription]  # by canonical topic
    by_client_topic: dict[str, str]  # client topic -> canonical topic

    async def connect(self) -> None:
        self.user, self.token_id, self.closing, self.counted = None, None, False, False
        self.subscriptions, self.by_client_topic = {}, {}
        self.bucket = _TokenBucket(RATE, BURST)
        self.tasks: list[asyncio.Task[None]] = []
        self.recheck_pending = False
        # Messages from the hub (live/hub.py), handled in order by one task; events for a topic
        # whose subscription is being set up wait in ``pending`` (see _subscribe).
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pending: dict[str, list[dict[str, Any]]] = {}
        self.send_lock = asyncio.Lock()
        bearer = self._bearer()
        if bearer is not None:
            self.token_id, self.user = await self._authenticate_token(bearer)
            if self.user is None:
                await self.close(code=CLOSE_UNAUTHENTICATED)  # before accept: the handshake is refused (403)
                return
        else:
            session_user_obj = self.scope.get("user")
            if session_user_obj is not None and session_user_obj.is_authenticated and session_user_obj.is_active:
                self.user = session_user_obj
        await self.accept()
        WEBSOCKETS_OPEN.inc()
        self.counted = True
        await hub().join(self)
        self.tasks.append(asyncio.create_task(self._drain()))
        self.tasks.append(asyncio.create_task(self._recheck_loop()))
        if self.user is None:
            self.tasks.append(asyncio.create_task(self._auth_deadline()))

    async def disconnect(self, code: int) -> None:
        for task in getattr(self, "tasks", []):
            task.cancel()
        if getattr(self, "counted", False):
            WEBSOCKETS_OPEN.dec()
            self.counted = False
            self.subscriptions.clear()
            await hub().leave(self)

    # --- frames from the client -------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.closing:
            return
        size = len(bytes_data) if bytes_data is not None else len((text_data or "").encode())
        if size > MAX_FRAME_BYTES:
            await self._error("too_large", f"Frames are at most {MAX_FRAME_BYTES} bytes.")
            await self._close(CLOSE_TOO_BIG)
            return
        if not self.bucket.take():
            await self._error("rate_limited", f"At most {RATE:g} frames per second.")
            await self._close(CLOSE_POLICY)
            return
        if text_data is None:
            await self._error("invalid", "Frames are JSON text.")
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._error("invalid", 'A frame is a JSON object with a "type".')
            return
        kind = frame["type"]
        if self.user is None:
            await self._first_frame_auth(frame)
            return
        if kind == "subscribe":
            await self._subscribe(frame)
        elif kind == "unsubscribe":
            await self._unsubscribe(frame)
        elif kind == "ping":
            await self._send({"type": "pong"})
        elif kind == "auth":
            await self._error("invalid", "This socket is already authenticated.")
        else:
            await self._error("invalid", "type must be subscribe, unsubscribe or ping.")

    async def _first_frame_auth(self, frame: dict[str, Any]) -> None:
        raw = frame.get("token") if frame["type"] == "auth" else None
        if isinstance(raw, str):
            self.token_id, self.user = await self._authenticate_token(raw)
        if self.user is None:
            await self._error("unauthenticated", 'Sign in, or send {"type": "auth", "token": …} first.')
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        await self._send({"type": "authenticated", "user": self.user.get_username()})

    async def _subscribe(self, frame: dict[str, Any]) -> None:
        client_topic = frame.get("topic")
        after = frame.get("after")
        if not isinstance(client_topic, str) or not client_topic or len(client_topic) > 300:
            await self._error("invalid", "topic must be a string of 1-300 characters.")
            return
        if after is not None and (isinstance(after, bool) or not isinstance(after, int) or not 0 <= after <= MAX_SEQ):
            await self._error("invalid", "after must be a sequence number (an integer ≥ 0).", topic=client_topic)
            return
        if client_topic in self.by_client_topic:
            await self._drop(self.by_client_topic[client_topic])
        if len(self.subscriptions) >= MAX_SUBSCRIPTIONS:
            await self._error("invalid", f"At most {MAX_SUBSCRIPTIONS} subscriptions per socket.", topic=client_topic)
            return
        try:
            target: Target = await _db(access_topic)(self.user, client_topic)
        except InvalidTopic as exc:
            await self._error("invalid", str(exc), topic=client_topic)
            return
        except NotFound:
            await self._error("not_found", "Not found.", topic=client_topic)
            return
        except Forbidden as exc:
            await self._error("forbidden", exc.message, topic=client_topic)
            return
        if target.topic in self.subscriptions:
            await self._error("invalid", "Already subscribed to this topic under another name.", topic=client_topic)
            return
        # Listen first, then read the log: an event published in between is both in the log
        # and held in ``pending``, and its sequence number drops the second copy. The lock
        # keeps live events behind the "subscribed" frame and the catch-up.
        self.pending[target.topic] = []
        await hub().add(target.topic, self)
        try:
            backlog: Backlog = await sync_to_async(event_log().backlog, thread_sensitive=False)(target.topic, after)
        except Exception:
            self.pending.pop(target.topic, None)
            await hub().discard(target.topic, self)
            raise
        async with self.send_lock:
            subscription = Subscription(client_topic, target, after if after is not None else backlog.current)
            self.subscriptions[target.topic] = subscription
            self.by_client_topic[client_topic] = target.topic
            await self._send({"type": "subscribed", "topic": client_topic, "seq": backlog.current})
            await self._deliver_backlog(subscription, backlog)
            for message in self.pending.pop(target.topic, []):
                await self._deliver(subscription, message)

    async def _unsubscribe(self, frame: dict[str, Any]) -> None:
        client_topic = frame.get("topic")
        if not isinstance(client_topic, str) or client_topic not in self.by_client_topic:
            await self._error("invalid", "Not subscribed to this topic.", topic=client_topic)
            return
        await self._drop(self.by_client_topic[client_topic])
        await self._send({"type": "unsubscribed", "topic": client_topic})

    async def _drop(self, canonical: str) -> Subscription | None:
        subscription = self.subscriptions.pop(canonical, None)
        if subscription is not None:
            self.by_client_topic.pop(subscription.client_topic, None)
            await hub().discard(canonical, self)
        return subscription

    # --- events from the channel layer -----------------------------------------------------------

    async def _drain(self) -> None:
        while True:
            message = await self.inbox.get()
            if message.get("type") == "live.access":
                await self.live_access(message)
            else:
                await self.live_event(message)

    async def live_event(self, message: dict[str, Any]) -> None:
        if message["topic"] in self.pending:
            self.pending[message["topic"]].append(message)
            return
        async with self.send_lock:
            subscription = self.subscriptions.get(message["topic"])
            if subscription is not None and not self.closing:
                await self._deliver(subscription, message)

    async def _deliver(self, subscription: Subscription, message: dict[str, Any]) -> None:
        seq = int(message["seq"])
        if seq <= subscription.last_seq:
            return  # already sent (from the log at subscribe time, or a gap filled earlier)
        if seq == subscription.last_seq + 1:
            subscription.last_seq = seq
            await self.send(text_data=_event_frame(subscription.client_topic, seq, message["event"], message["data"]))
            return
        # A gap: an event was dropped on the way (a full channel) or overtaken. The log holds
        # everything up to this one (numbers are assigned and logged atomically).
        backlog = await sync_to_async(event_log().backlog, thread_sensitive=False)(
            subscription.target.topic, subscription.last_seq
        )
        await self._deliver_backlog(subscription, backlog)

    async def _deliver_backlog(self, subscription: Subscription, backlog: Backlog) -> None:
        if not backlog.complete:
            subscription.last_seq = backlog.current
            await self._send({"type": "reset", "topic": subscription.client_topic, "seq": backlog.current})
            return
        for entry in backlog.entries:
            if entry.seq > subscription.last_seq:
                await self.send(
                    text_data=_event_frame(subscription.client_topic, entry.seq, entry.event, entry.data_json)
                )
        subscription.last_seq = max(subscription.last_seq, backlog.current)

    async def live_access(self, message: dict[str, Any]) -> None:
        """Someone's access may have changed: re-check if it may concern this socket."""
        if self.user is None or self.closing or self.recheck_pending:
            return
        user_ids, project_ids = message.get("user_ids"), message.get("project_ids")
        concerned = (user_ids is None and project_ids is None) or (
            (user_ids is not None and self.user.pk in user_ids)
            or (
                project_ids is not None and any(s.target.project_id in project_ids for s in self.subscriptions.values())
            )
        )
        if concerned:
            self.recheck_pending = True
            self.tasks.append(asyncio.create_task(self._recheck(jitter=0.2 if user_ids is None else 0.0)))

    # --- re-checks ---------------------------------------------------------------------------------

    async def _recheck_loop(self) -> None:
        interval = _setting("ASSAY_LIVE_RECHECK_SECONDS", 30.0)
        while True:
            # Jitter spreads a thousand sockets' checks instead of firing them together.
            await asyncio.sleep(interval * random.uniform(0.8, 1.2))
            if self.user is not None and not self.closing:
                await self._recheck(jitter=0.0)

    async def _recheck(self, *, jitter: float) -> None:
        if jitter:
            await asyncio.sleep(random.uniform(0, jitter))
        self.recheck_pending = False
        if self.user is None or self.closing:
            return
        user, lost = await _db(self._check_all)()
        if user is None:
            for canonical in list(self.subscriptions):
                await self._drop(canonical)
            await self._error("unauthenticated", "Signed out, deactivated or the token was revoked.")
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        for canonical, code in lost.items():
            dropped = await self._drop(canonical)
            if dropped is not None:
                message = "Not found." if code == "not_found" else "You no longer have access."
                await self._error(code, message, topic=dropped.client_topic)

    def _check_all(self) -> tuple[User | None, dict[str, str]]:
        """(the user, still valid, or None; {canonical topic: error code} for lost subscriptions)."""
        assert self.user is not None
        if self.token_id is not None:
            user = identity().token_user(self.token_id)
        else:
            session = self.scope.get("session")
            user = identity().session_user(getattr(session, "session_key", None), self.user.pk)
        if user is None:
            return None, {}
        lost: dict[str, str] = {}
        for canonical, subscription in list(self.subscriptions.items()):
            try:
                access_topic(user, subscription.client_topic)
            except (NotFound, InvalidTopic):
                lost[canonical] = "not_found"
            except Forbidden:
                lost[canonical] = "forbidden"
        return user, lost

    # --- helpers --------------------------------------------------------------------------------------

    def _bearer(self) -> str | None:
        for name, value in self.scope.get("headers", []):
            if name.lower() == b"authorization":
                parts = value.split()
                if len(parts) == 2 and parts[0].lower() == b"bearer":
                    return str(parts[1].decode("ascii", "replace"))
                return ""  # malformed: refused like a wrong token
        return None

    async def _authenticate_token(self, raw: str) -> tuple[str | None, User | None]:
        found = await _db(identity().authenticate_token)(raw)
        return found if found is not None else (None, None)

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(_setting("ASSAY_LIVE_AUTH_TIMEOUT", 10.0))
        if self.user is None and not self.closing:
            await self._error("unauthenticated", "No credentials were sent in time.")
            await self._close(CLOSE_UNAUTHENTICATED)

    async def _send(self, frame: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps(frame))

    async def _error(self, code: str, message: str, *, topic: Any = None) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if isinstance(topic, str):
            frame["topic"] = topic
        await self._send(frame)

    async def _close(self, code: int) -> None:
        self.closing = True
        await self.close(code=code)
