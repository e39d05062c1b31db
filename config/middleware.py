"""How requests reach the middleware chain under ASGI."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponseBase
from django.urls import Resolver404, resolve

from core.http import BODY_TOO_LARGE, is_body_limit_exempt

# A streamed body is pulled from its (sync) iterator in pieces of about this size, one
# thread hop per piece; the ASGI handler sends 64 KiB messages, so this matches it.
STREAM_PIECE = 64 * 1024


class SyncChainASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the middleware chain and the view run in one thread hop.

    Django's own handler builds the chain in async mode: every sync middleware hook becomes
    its own ``sync_to_async`` hop, and even a sync-only chain ends in the async
    ``_get_response_async``, which hops back to the event loop and then out again for the
    (sync) view: three hops per request at best. Here the chain is built exactly as under
    WSGI (same middleware, same order, same exception handling) and the whole of it runs in
    one thread-sensitive ``sync_to_async`` call. Our views are sync; an async view still
    works (Django runs it with ``async_to_sync``). WebSockets do not pass through here.
    Measured: see benchmarks/README.md.
    """

    async def handle(self, scope: dict[str, Any], receive: Callable[[], Awaitable[Any]], send: Any) -> None:
        await super().handle(scope, _bounded(scope, receive), send)

    def create_request(self, scope: Mapping[str, Any], body_file: Any) -> tuple[Any, Any]:
        """A body that came without Content-Length (chunked) gets the length it had, so that
        DRF, which reads nothing when there is no length, reads it."""
        request, error_response = super().create_request(scope, body_file)
        if request is not None and "CONTENT_LENGTH" not in request.META:
            size = body_file.seek(0, 2)
            body_file.seek(0)
            if size:
                request.META["CONTENT_LENGTH"] = str(size)
        return request, error_response

    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)
        chain = self._middleware_chain  # type: ignore[has-type]  # set by load_middleware
        self._middleware_chain = sync_to_async(chain, thread_sensitive=True)

    async def send_response(self, response: HttpResponseBase, send: Callable[[Any], Awaitable[None]]) -> None:
        """Streamed responses stay streamed. Django's handler, given a streaming response over
        a sync iterator (a CSV export, a ``FileResponse`` from the local artifact store),
        reads the *whole* iterator into a list before sending its first byte (and warns):
        a 2 GB model download held 2 GB in memory. Here the iterator is pulled in ~64 KiB
        pieces in the request's thread (where its database connection lives) as the body is
        sent. The iterator's own ``close`` stays registered and runs when the response closes."""
        if response.streaming and not response.is_async:  # type: ignore[attr-defined]
            response.streaming_content = _pulled(iter(response.streaming_content))  # type: ignore[attr-defined]
        await super().send_response(response, send)


async def _pulled(parts: Iterator[bytes]) -> AsyncIterator[bytes]:
    take = sync_to_async(_next_piece, thread_sensitive=True)
    while piece := await take(parts):
        yield piece


def _next_piece(parts: Iterator[bytes]) -> bytes:
    """The next parts joined, up to about STREAM_PIECE bytes; b"" once they are exhausted."""
    taken: list[bytes] = []
    size = 0
    for part in parts:
        taken.append(part)
        size += len(part)
        if size >= STREAM_PIECE:
            break
    return b"".join(taken)


def _bounded(scope: dict[str, Any], receive: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
    """``receive``, reading a request body only up to ``DATA_UPLOAD_MAX_MEMORY_SIZE``.

    Django's handler reads the whole body before the middleware runs. A body declared
    larger than the limit is not read at all, and one without a Content-Length (chunked)
    is read until it passes the limit, which marks the scope with ``BODY_TOO_LARGE``; in
    both cases ``core.http.RequestGuardMiddleware`` answers 413. Views that take larger
    bodies themselves (``core.http.body_limit_exempt``) read as before."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    declared = next((value for name, value in scope.get("headers", ()) if name.lower() == b"content-length"), None)
    if limit is None or (declared is not None and declared.isdigit() and int(declared) <= limit):
        return receive  # the common case: the guard checks the declared length
    over = declared is not None and declared.isdigit()  # declared, and beyond the limit
    read = 0
    cut = False
    exempt: bool | None = None  # asked once, only of a body over the limit

    async def bounded() -> Any:
        nonlocal read, cut, exempt
        if cut:  # the rest of the body stays unread; the handler cancels this wait when done
            await asyncio.Event().wait()
        if over and exempt is None:
            exempt = _exempt(scope)
            if not exempt:
                cut = True
                return {"type": "http.request", "body": b"", "more_body": False}
        message = await receive()
        if message["type"] == "http.request" and not exempt:
            read += len(message.get("body", b""))
            if read > limit:
                exempt = _exempt(scope)
                if not exempt:
                    scope[BODY_TOO_LARGE] = True
                    cut = True
                    return {"type": "http.request", "body": b"", "more_body": False}
        return message

    return bounded


def _exempt(scope: dict[str, Any]) -> bool:
    path = scope["path"].removeprefix(scope.get("root_path", "")) or "/"
    try:
        return is_body_limit_exempt(resolve(path).func)
    except Resolver404:
        return False
