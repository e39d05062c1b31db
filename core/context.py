"""What the current request tells code below the interfaces, without passing the request:
the client's address for the audit log. Set by ``core.observability.RequestIdMiddleware``
for every page and API request (and by the log call's fast path); unset (None) in workers,
management commands and tests that call services directly."""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar

client_address_var: ContextVar[str | None] = ContextVar("client_address", default=None)


def client_address() -> str | None:
    """The caller's address as the server saw it, or None outside a request."""
    return client_address_var.get()


def parse_address(raw: str | None) -> str | None:
    """REMOTE_ADDR as a normalised IP address, or None. A proxy in front sets it through its
    own means (e.g. uvicorn's --forwarded-allow-ips); X-Forwarded-For is not trusted here
    because any client can send it."""
    try:
        return str(ipaddress.ip_address(raw or ""))
    except ValueError:
        return None
