"""Per-topic sequence numbers and a bounded log of recent events, so that a client that was
offline for a moment catches up exactly (and one that was away too long is told to reload).

Two backends, chosen by the profile:

* Redis (``REDIS_URL`` set; every ASGI process and worker shares it): one Lua script assigns
  the next number (``INCR``) and appends the event to a sorted set scored by that number in
  one atomic step, trims the set to ``ASSAY_LIVE_LOG_SIZE`` entries and refreshes a TTL of
  ``ASSAY_LIVE_LOG_TTL`` seconds. Atomicity matters: when a consumer sees event N it can be
  sure events < N are already readable in the log (a gap is filled from it, never guessed).
* in-process (the embedded profile, whose in-memory channel layer is per process anyway):
  a dict of bounded deques under a lock.

Keys name a hash of the topic, never the topic itself (bounded length, nothing user-written
in Redis key names).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

from django.conf import settings


@dataclass(frozen=True)
class Entry:
    seq: int
    event: str
    data_json: str  # the event's data, already encoded as JSON


@dataclass(frozen=True)
class Backlog:
    """What a client missed after ``after``: ``entries`` in order when ``complete``; when not
    (the log no longer holds the oldest of them, or ``after`` is ahead of the topic), the
    client must reload and continue from ``current``."""

    current: int
    entries: list[Entry]
    complete: bool


class EventLog(Protocol):
    def append(self, topic: str, event: str, data_json: str) -> int: ...

    def backlog(self, topic: str, after: int | None) -> Backlog: ...


def log_size() -> int:
    return int(getattr(settings, "ASSAY_LIVE_LOG_SIZE", 500))


def log_ttl() -> int:
    return int(getattr(settings, "ASSAY_LIVE_LOG_TTL", 24 * 3600))


def _cut(after: int | None, current: int, entries: list[Entry]) -> Backlog:
    if after is None or after == current:
        return Backlog(current=current, entries=[], complete=True)
    if after > current:
        return Backlog(current=current, entries=[], complete=False)
    entries = [e for e in entries if after < e.seq <= current]
    complete = bool(entries) and entries[0].seq == after + 1 and entries[-1].seq == current
    return Backlog(current=current, entries=entries if complete else [], complete=complete)


class MemoryEventLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seq: dict[str, int] = {}
        self._log: dict[str, deque[Entry]] = {}

    def append(self, topic: str, event: str, data_json: str) -> int:
        with self._lock:
            seq = self._seq.get(topic, 0) + 1
            self._seq[topic] = seq
            log = self._log.get(topic)
            if log is None or log.maxlen != log_size():
                log = self._log[topic] = deque(log or (), maxlen=log_size())
            log.append(Entry(seq, event, data_json))
            return seq

    def backlog(self, topic: str, after: int | None) -> Backlog:
        with self._lock:
            return _cut(after, self._seq.get(topic, 0), list(self._log.get(topic, ())))


_APPEND = """
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], seq, seq .. '\\n' .. ARGV[1])
local keep = tonumber(ARGV[2])
local size = redis.call('ZCARD', KEYS[2])
if size > keep then redis.call('ZREMRANGEBYRANK', KEYS[2], 0, size - keep - 1) end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return seq
"""


class RedisEventLog:
    def __init__(self, url: str, prefix: str) -> None:
        import redis

        self._client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self._append = self._client.register_script(_APPEND)
        self._prefix = prefix

    def _keys(self, topic: str) -> tuple[str, str]:
        digest = hashlib.sha256(topic.encode()).hexdigest()[:40]
        # {digest}: both keys of a topic hash to the same Redis Cluster slot (the script needs it).
        return f"{self._prefix}:seq:{{{digest}}}", f"{self._prefix}:log:{{{digest}}}"

    def append(self, topic: str, event: str, data_json: str) -> int:
        seq_key, log_key = self._keys(topic)
        return int(self._append(keys=[seq_key, log_key], args=[event + "\n" + data_json, log_size(), log_ttl()]))

    def backlog(self, topic: str, after: int | None) -> Backlog:
        seq_key, log_key = self._keys(topic)
        pipe = self._client.pipeline(transaction=True)
        pipe.get(seq_key)
        if after is not None:
            pipe.zrangebyscore(log_key, after + 1, "+inf")
        results: list[Any] = pipe.execute()
        current = int(results[0] or 0)
        entries = []
        for raw in results[1] if after is not None else []:
            seq, event, data_json = raw.decode().split("\n", 2)
            entries.append(Entry(int(seq), event, data_json))
        return _cut(after, current, entries)


@lru_cache(maxsize=4)
def _event_log(url: str, prefix: str) -> EventLog:
    return RedisEventLog(url, prefix) if url else MemoryEventLog()


def event_log() -> EventLog:
    """The log of this profile (Redis when ``REDIS_URL`` is set); one per URL and prefix."""
    return _event_log(settings.REDIS_URL, getattr(settings, "ASSAY_LIVE_PREFIX", "assay:live"))


def current_seq(topic: str) -> int | None:
    """The topic's last sequence number, read before a page queries what it shows: the page
    subscribes with ``after`` = this number, so an event committed while it was being rendered
    or loaded still reaches it. At worst one committed between this read and the page's queries
    arrives although the page shows it: comments are matched by id, re-rendered parts are
    idempotent, a timeline line may show twice until the next load. None when the log cannot
    be read (the page then starts where it subscribes)."""
    try:
        return event_log().backlog(topic, None).current
    except Exception:  # a page must render without Redis
        logging.getLogger(__name__).warning("live: the sequence number of a topic could not be read", exc_info=True)
        return None
