"""The Origin check in front of ``/ws/`` (config/asgi.py).

Browsers send an ``Origin`` header on every WebSocket handshake: it must name one of
``ALLOWED_HOSTS`` (channels' AllowedHostsOriginValidator), so another site cannot open a
socket that rides on a visitor's session cookie.

A handshake without ``Origin`` is not a browser (the CLI, the SDK, scripts). It is let
through without its cookies, so it can only authenticate with an API token.
"""

from __future__ import annotations

from typing import Any

from channels.security.websocket import AllowedHostsOriginValidator


class OriginCheck:
    def __init__(self, application: Any) -> None:
        self.application = application
        self.checked = AllowedHostsOriginValidator(application)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        headers = scope.get("headers", [])
        if any(name.lower() == b"origin" for name, _ in headers):
            return await self.checked(scope, receive, send)
        # SECURITY: no Origin, so no cookie either: a session is only ever used after the origin check.
        scope = {**scope, "headers": [(n, v) for n, v in headers if n.lower() != b"cookie"]}
        return await self.application(scope, receive, send)
