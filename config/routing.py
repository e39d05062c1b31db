"""WebSocket routes. Live topics arrive with the live-updates issue; the list starts empty."""

from __future__ import annotations

from typing import Any

websocket_urlpatterns: list[Any] = []
