"""WebSocket routes: the one live endpoint, ``/ws/`` (live/consumers.py)."""

from __future__ import annotations

from typing import Any

from live.routing import websocket_urlpatterns as live_urlpatterns

websocket_urlpatterns: list[Any] = [*live_urlpatterns]
