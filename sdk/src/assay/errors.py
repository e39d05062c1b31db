"""The SDK's exceptions: a small hierarchy, each with a one-line message naming what to fix.

# SECURITY: answers from the server are parsed as JSON only and mapped onto these fixed
# types by status code; nothing the server sends is ever unpickled or evaluated.
"""

from __future__ import annotations

import json
from typing import Any


class AssayError(Exception):
    """Base of every error the SDK raises."""


class ConfigurationError(AssayError):
    """Something is missing or malformed locally: URL, token, project, mode."""


class UsageError(AssayError):
    """The SDK was called in the wrong order (e.g. ``assay.log`` before ``assay.init``)."""


class ServerUnreachableError(AssayError):
    """No connection to the server (wrong URL, server down, network trouble, timeout)."""


class ApiError(AssayError):
    """The server answered with an error. ``status`` is the HTTP status, ``code`` and
    ``field`` come from the server's ``{"error": {"code", "message", "field"}}``."""

    def __init__(self, message: str, *, status: int = 0, code: str = "error", field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field


class AuthenticationError(ApiError):
    """401: no token, or the server does not know it."""


class PermissionDeniedError(ApiError):
    """403: you can see the object, but your role is too low."""


class NotFoundError(ApiError):
    """404: the object does not exist, or you may not see it."""


class ProjectNotFoundError(NotFoundError):
    """The project's team does not exist or is not yours."""


class ConflictError(ApiError):
    """409: e.g. a param set again with another value."""


class ValidationError(ApiError):
    """400: the server refused the input; nothing was written."""


class PayloadTooLargeError(ApiError):
    """413: the request body is over the server's limit."""


class RateLimitedError(ApiError):
    """429: slow down; retried automatically by the transport."""


class ServerError(ApiError):
    """5xx: the server failed; retried automatically by the transport."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    429: RateLimitedError,
}

MAX_MESSAGE = 500


def _clean(text: str) -> str:
    """One line, bounded: server text never floods a terminal or smuggles control characters."""
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return text[:MAX_MESSAGE]


def error_from_response(status: int, body: bytes) -> ApiError:
    """Map an HTTP error answer onto a fixed exception type."""
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else ApiError)
    code, field, message = "error", None, ""
    try:
        parsed: Any = json.loads(body) if body else None
    except ValueError:
        parsed = None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict):
        if isinstance(error.get("code"), str):
            code = _clean(error["code"])
        if isinstance(error.get("field"), str):
            field = _clean(error["field"])
        if isinstance(error.get("message"), str):
            message = _clean(error["message"])
    if not message:
        message = f"HTTP {status} without an Assay error body"
    return cls(message, status=status, code=code, field=field)


def is_retryable(exc: BaseException) -> bool:
    """Connection trouble, timeouts, 429 and 5xx are worth retrying; other errors are final."""
    return isinstance(exc, (ServerUnreachableError, RateLimitedError, ServerError))
