"""Project-wide REST plumbing: JSON via orjson, and one error shape for every failure.

Every error answer is ``{"error": {"code": …, "message": …, "field": …}}`` with the
HTTP status that fits; ``field`` names the offending input (dotted for nested values,
e.g. ``metrics.3.value``) or is null. Some errors add keys, e.g. ``position`` (the
0-based character offset) for an invalid run filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from django.core.exceptions import PermissionDenied
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from core import jsonsafe
from core.errors import Conflict, DomainError, Forbidden, Gone, Invalid, NotFound, TooLarge

# The one place a domain error becomes an HTTP status on /api/v1 (core/errors.py).
STATUS: dict[type[DomainError], int] = {
    DomainError: status.HTTP_400_BAD_REQUEST,
    Invalid: status.HTTP_400_BAD_REQUEST,
    NotFound: status.HTTP_404_NOT_FOUND,
    Forbidden: status.HTTP_403_FORBIDDEN,
    Conflict: status.HTTP_409_CONFLICT,
    Gone: status.HTTP_410_GONE,
    TooLarge: status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
}


class StrictCharField(serializers.CharField):
    """A CharField for request bodies that refuses numbers and booleans: DRF's CharField
    turns ``0`` into ``"0"``, so ``{"team": 0}`` named a team "0" (issue 17)."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return super().to_internal_value(data)


@extend_schema_field(OpenApiTypes.OBJECT)
class JSONObjectField(serializers.JSONField):
    """A JSON object (``config``, ``info``, ``tags``…): documented as ``type: object``, not as
    any JSON value, so the schema says that ``null``, a list or a number is refused (the
    services check it with ``core.validation.mapping``)."""


@extend_schema_field({"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}/[a-z0-9][a-z0-9_-]{0,63}$"})
class ProjectPathField(StrictCharField):
    """A project's ``team/project`` path in a body, checked by the services."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=129, **kwargs)


@extend_schema_field({"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"})
class NameField(StrictCharField):
    """A new team, project or model name (accounts.names.NAME_PATTERN), checked by the
    services; the schema carries the pattern."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_length=64, **kwargs)


class StrictSerializer(serializers.Serializer[Any]):
    """The base of every input serializer: a key it does not know is refused naming it (400),
    never ignored. DRF drops unknown keys, so a typo or a role riding along in a body went
    unnoticed (mass assignment), and ``POST /projects/`` with an unknown key answered the
    404 of its team lookup instead (issue 17). The schema says so: every request body
    object has ``additionalProperties: false`` (core/openapi.py)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(map(str, set(data) - set(self.fields)))
            if unknown:
                raise serializers.ValidationError({unknown[0]: ["Unknown field."]})
        return super().to_internal_value(data)


class StrictRegexField(serializers.RegexField):
    """A RegexField that refuses numbers and booleans, as StrictCharField does (``0`` matched
    ``^[A-Za-z0-9_-]{1,64}$`` once DRF made it ``"0"``)."""

    default_error_messages = {"not_a_string": "Must be a string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("not_a_string")
        return str(super().to_internal_value(data))


class FastJSONRenderer(BaseRenderer):
    media_type = "application/json"
    format = "json"
    charset = None

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: Mapping[str, Any] | None = None,
    ) -> bytes:
        if data is None:
            return b""
        return jsonsafe.dumps(data, option=orjson.OPT_NON_STR_KEYS)


class FastJSONParser(BaseParser):
    media_type = "application/json"

    def parse(
        self,
        stream: Any,
        media_type: str | None = None,
        parser_context: Mapping[str, Any] | None = None,
    ) -> Any:
        return parse_json(stream.read() if stream is not None else b"")


def parse_json(raw: bytes) -> Any:
    """A request body as JSON, or ParseError saying what is wrong with it. Every JSON body
    of the API passes here (the DRF parser and the log call's fast path), so the rules of
    ``core.jsonsafe`` (no integer beyond 64 bits, no NUL, no duplicate key: ``Invalid``
    naming the field) hold for every JSON column."""
    if not raw:
        raise exceptions.ParseError("The request body is empty; send a JSON object.")
    try:
        return jsonsafe.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise exceptions.ParseError(f"The request body is not valid JSON: {exc}") from None


def _first_error(detail: Any, path: list[str]) -> tuple[str | None, str, str]:
    """Walk DRF's nested error detail to the first leaf: (field path, message, code)."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            sub = [] if key == "non_field_errors" else [str(key)]
            return _first_error(value, path + sub)
    if isinstance(detail, list):
        for index, value in enumerate(detail):
            if value in ({}, [], None):
                continue
            # A list of messages for one field is not a list of items: keep the path.
            is_leaf_list = all(isinstance(v, exceptions.ErrorDetail) for v in detail)
            return _first_error(value, path if is_leaf_list else [*path, str(index)])
    code = getattr(detail, "code", "invalid") or "invalid"
    return (".".join(path) or None, str(detail), str(code))


def error_body(
    code: str, message: str, field: str | None = None, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message, "field": field}
    # The three keys are always there; extra keys (``position``) only add to them.
    error.update({k: v for k, v in (extra or {}).items() if k not in error})
    return {"error": error}


def error_parts(exc: Exception) -> tuple[int, dict[str, Any], dict[str, str]] | None:
    """Status, body and headers of the answer to an exception, or None for one that is not
    an API error (a bug: Django's 500 handling applies). Used by DRF's exception handler
    below and by the log call's fast path (experiments/hotpath.py)."""
    if isinstance(exc, DomainError):
        body = error_body(exc.code, exc.message, exc.field, exc.extra)
        return STATUS[type(exc)], body, {}
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found.")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    if not isinstance(exc, exceptions.APIException):
        return None

    headers: dict[str, str] = {}
    if getattr(exc, "auth_header", None):
        headers["WWW-Authenticate"] = exc.auth_header  # type: ignore[attr-defined]
    if getattr(exc, "wait", None):
        headers["Retry-After"] = str(int(exc.wait))  # type: ignore[attr-defined]

    if isinstance(exc, exceptions.ValidationError):
        field, message, code = _first_error(exc.detail, [])
        body = error_body(code, message, field)
    else:
        detail = exc.detail
        code = getattr(detail, "code", None) or exc.default_code
        body = error_body(str(code), str(detail))
    return exc.status_code, body, headers


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    parts = error_parts(exc)
    if parts is None:
        return None
    status_code, body, headers = parts
    # Imported here: rest_framework.views reads DEFAULT_RENDERER_CLASSES at import time,
    # which points back into this module, so a module-level import is a cycle.
    from rest_framework.views import set_rollback

    set_rollback()
    return Response(body, status=status_code, headers=headers)
