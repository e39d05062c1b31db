"""One subscriber per process and topic on the channel layer, fanning out to the local sockets.

With channels_redis, a message to a group of N sockets of one process is N messages in
Redis, each popped by the process's single receive loop in about three round trips: a
comment to a review watched by 1,000 browsers took a second to reach the last of them.
The hub joins each topic's group once, with one channel of its own, and hands each message
to every local consumer subscribed to the topic (their ``inbox``, drained in order). The
"access changed" broadcast (``ACCESS_GROUP``) is received once and handed to every socket.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol

from channels.layers import get_channel_layer

from live.publish import ACCESS_GROUP, group_name

logger = logging.getLogger(__name__)

# channels_redis forgets group members after a day (group_expiry); the hub renews before.
RENEW_SECONDS = 3600.0


class Member(Protocol):
    inbox: asyncio.Queue[dict[str, Any]]


class Hub:
    def __init__(self, layer: Any, loop: asyncio.AbstractEventLoop) -> None:
        self.layer, self.loop = layer, loop
        self.channel: str | None = None
        self.topics: dict[str, set[Member]] = {}
        self.members: set[Member] = set()
        self.lock = asyncio.Lock()
        self.tasks: list[asyncio.Task[None]] = []

    async def _start(self) -> None:
        if self.channel is None:
            # The layer's default prefix: channels_redis pops every process-local channel of a
            # process from one shared queue, named by that prefix (another prefix is never read).
            self.channel = await self.layer.new_channel()
            await self.layer.group_add(ACCESS_GROUP, self.channel)
            self.tasks = [asyncio.create_task(self._receive()), asyncio.create_task(self._renew())]

    async def join(self, member: Member) -> None:
        async with self.lock:
            await self._start()
            self.members.add(member)

    async def leave(self, member: Member) -> None:
        self.members.discard(member)
        for topic in [t for t, local in self.topics.items() if member in local]:
            await self.discard(topic, member)

    async def add(self, topic: str, member: Member) -> None:
        async with self.lock:
            await self._start()
            local = self.topics.setdefault(topic, set())
            if not local:
                await self.layer.group_add(group_name(topic), self.channel)
            local.add(member)

    async def discard(self, topic: str, member: Member) -> None:
        async with self.lock:
            local = self.topics.get(topic)
            if local is None:
                return
            local.discard(member)
            if not local:
                del self.topics[topic]
                await self.layer.group_discard(group_name(topic), self.channel)

    async def _receive(self) -> None:
        assert self.channel is not None
        while True:
            try:
                message = await self.layer.receive(self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:  # a Redis hiccup must not stop every socket's deliveries
                logger.exception("live hub: receive failed")
                await asyncio.sleep(0.5)
                continue
            if message.get("type") == "live.access":
                targets: set[Member] | list[Member] = list(self.members)
            else:
                targets = list(self.topics.get(message.get("topic", ""), ()))
            for member in targets:
                member.inbox.put_nowait(message)

    async def _renew(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            async with self.lock:
                await self.layer.group_add(ACCESS_GROUP, self.channel)
                for topic in list(self.topics):
                    await self.layer.group_add(group_name(topic), self.channel)


_hub: Hub | None = None


def hub() -> Hub:
    """The hub of this process's event loop and channel layer (tests change both)."""
    global _hub
    layer, loop = get_channel_layer(), asyncio.get_running_loop()
    if _hub is None or _hub.layer is not layer or _hub.loop is not loop:
        _hub = Hub(layer, loop)
    return _hub
