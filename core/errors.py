"""Domain errors: what services, policies and access modules raise when a use case cannot
go on. They carry a stable ``code``, the ``field`` at fault (dotted for nested input, or
None) and a human message; they know nothing of HTTP. Each interface maps them to its own
format in one place: the REST API in ``core.api.error_parts``, the pages in
``core.pages``, an MLflow-compatible API in its own module.

    raise Invalid("The name may not be empty.", field="name")
    raise NotFound()                                   # missing, or not visible to the caller
    raise Conflict("The alias moved meanwhile.", code="stale_alias")
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar


class DomainError(Exception):
    """Base of every domain error. ``extra`` adds keys to the error object (e.g. the
    ``position`` of a syntax error in a run filter)."""

    default_code: ClassVar[str] = "invalid"
    default_message: ClassVar[str] = "The request is invalid."

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        field: str | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        self.message = message if message is not None else self.default_message
        self.code = code or self.default_code
        self.field = field
        self.extra = dict(extra or {})
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Invalid(DomainError):
    """The input is wrong: a value, a missing field, a rule of the workflow it breaks."""


class NotFound(DomainError):
    """The object does not exist, or the caller may not see it (one answer for both)."""

    default_code = "not_found"
    default_message = "Not found."


class Forbidden(DomainError):
    """The caller sees the object but may not do this to it."""

    default_code = "permission_denied"
    default_message = "You do not have permission to perform this action."


class Conflict(DomainError):
    """The request contradicts the current state (a name taken, a stale version, a closed request)."""

    default_code = "conflict"
    default_message = "The request conflicts with the current state."


class Gone(DomainError):
    """The object existed and is no longer available (an expired upload, a purged file)."""

    default_code = "gone"
    default_message = "This is no longer available."


class TooLarge(DomainError):
    """The input is beyond a size limit."""

    default_code = "too_large"
    default_message = "The request is too large."
