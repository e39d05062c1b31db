"""Fixtures of the live tests: each test gets its own channel-layer and event-log prefixes on
the test Redis (so tests, and xdist workers, never hear each other's events), tokens made
before the test's event loop runs, and ``ws()`` to open a socket on the real ASGI app."""

from __future__ import annotations

import asyncio
import functools
import threading
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.models import User
from accounts.services import token_create

ORIGIN = "http://127.0.0.1:8000"


def _close(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what the test left running (an application instance of a refused handshake,
    say) and close the loop, waiting at most 5 s: unlike asyncio.run, never forever on a
    task that is slow to unwind after the test has already passed or failed."""
    leftovers = asyncio.all_tasks(loop)
    for task in leftovers:
        task.cancel()
    if leftovers:
        loop.run_until_complete(asyncio.wait(leftovers, timeout=5))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


def in_own_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test in a fresh event loop in its own thread.

    The browser tests' session-wide Playwright keeps an event loop running in the main
    thread; an async test run by pytest-asyncio after them, in the same process, fails with
    "Cannot run the event loop while another loop is running"."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        failure: list[BaseException] = []

        def target() -> None:
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(test(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - re-raised in the test's thread
                failure.append(exc)
            finally:
                _close(loop)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if failure:
            raise failure[0]

    return run


Ws = Callable[..., Awaitable[tuple[WebsocketCommunicator, bool, Any]]]


@pytest.fixture(autouse=True)
def live_isolated(settings: Any) -> str:
    tag = uuid.uuid4().hex[:12]
    settings.ASSAY_LIVE_PREFIX = f"test-live:{tag}"
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [{"address": settings.REDIS_URL, "socket_timeout": 30}],
                "prefix": f"test-ch:{tag}",
                "capacity": 1000,
            },
        }
    }
    return tag


@pytest.fixture
def token_of(db: None) -> Callable[[User], str]:
    def make(user: User) -> str:
        return token_create(user=user, name="live").raw

    return make


@pytest.fixture
def session_cookie(db: None) -> Callable[[User], str]:
    def make(user: User) -> str:
        client = Client()
        client.force_login(user)
        return f"sessionid={client.cookies['sessionid'].value}"

    return make


@pytest.fixture
def ws() -> Ws:
    from config.asgi import application

    async def connect(
        *,
        token: str | None = None,
        cookie: str | None = None,
        origin: str | None = ORIGIN,
        authorization: str | None = None,
    ) -> tuple[WebsocketCommunicator, bool, Any]:
        headers = []
        if origin is not None:
            headers.append((b"origin", origin.encode()))
        if token is not None:
            headers.append((b"authorization", f"Bearer {token}".encode()))
        if authorization is not None:
            headers.append((b"authorization", authorization.encode()))
        if cookie is not None:
            headers.append((b"cookie", cookie.encode()))
        communicator = WebsocketCommunicator(application, "/ws/", headers=headers)
        connected, code = await communicator.connect(timeout=5)
        return communicator, connected, code

    return connect
