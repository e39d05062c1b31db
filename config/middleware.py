"""How requests reach the middleware chain under ASGI."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


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
