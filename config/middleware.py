"""How requests reach the middleware chain under ASGI."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponseBase

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
