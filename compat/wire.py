"""The MLflow wire format: how a request's message is read and how answers and errors are
written, as the unmodified ``mlflow`` client (3.x, ``mlflow/utils/rest_utils.py``) expects.

- **Requests.** GET carries the message as query parameters (repeated names for lists,
  every value a string: ``max_results=10``, ``run_ids=a&run_ids=b``); other methods a
  JSON object. :func:`message` gives both as one dict; the typed readers (:func:`string`,
  :func:`integer`, …) accept a number sent as a string, as MLflow's server does for GET.
- **Answers** are protobuf's JSON mapping: int64 as numbers (the client accepts both),
  NaN and ±Infinity as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``
  (:func:`double`), empty fields left out.
- **Errors** are ``{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "…"}`` with the
  HTTP status MLflow gives that code (``mlflow.exceptions.ERROR_CODE_TO_HTTP_STATUS``).
  Domain errors (``core.errors``) become MLflow errors in one place,
  :func:`from_domain_error`; the client turns anything else (an HTML page, a 404 without
  JSON) into a generic error that breaks ``set_experiment`` and ``register_model``.
- **Endpoints** are plain Django views built by :func:`route` from handlers marked
  :func:`read` or :func:`write`: the wrapper authenticates (``compat.auth``), loads the
  project of the URL through the accounts policy, parses the message, calls the handler
  and writes its dict, or the error. A read token may call read handlers only, also
  those the client sends as POST (searches).
"""

from __future__ import annotations

import base64
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from accounts.access import access_project, require, token_allows
from accounts.models import ApiToken, Project, User
from compat import auth
from core import jsonsafe
from core.errors import Conflict, DomainError, Forbidden, Gone, Invalid, NotFound, TooLarge

logger = logging.getLogger(__name__)

# MLflow's error codes and the HTTP status it answers them with (mlflow/exceptions.py).
STATUS: dict[str, int] = {
    "INTERNAL_ERROR": 500,
    "INVALID_STATE": 500,
    "NOT_IMPLEMENTED": 501,
    "TEMPORARILY_UNAVAILABLE": 503,
    "REQUEST_LIMIT_EXCEEDED": 429,
    "RESOURCE_EXHAUSTED": 429,
    "ABORTED": 409,
    "RESOURCE_CONFLICT": 409,
    "ALREADY_EXISTS": 409,
    "NOT_FOUND": 404,
    "ENDPOINT_NOT_FOUND": 404,
    "RESOURCE_DOES_NOT_EXIST": 404,
    "PERMISSION_DENIED": 403,
    "UNAUTHENTICATED": 401,
    "BAD_REQUEST": 400,
    "RESOURCE_ALREADY_EXISTS": 400,
    "INVALID_PARAMETER_VALUE": 400,
}

# Domain errors -> MLflow error codes. TooLarge is a limit of the request (MLflow answers
# INVALID_PARAMETER_VALUE for its own limits; RESOURCE_EXHAUSTED would make the client retry).
_CODES: dict[type[DomainError], str] = {
    DomainError: "INVALID_PARAMETER_VALUE",
    Invalid: "INVALID_PARAMETER_VALUE",
    NotFound: "RESOURCE_DOES_NOT_EXIST",
    Forbidden: "PERMISSION_DENIED",
    Conflict: "INVALID_PARAMETER_VALUE",
    Gone: "RESOURCE_DOES_NOT_EXIST",
    TooLarge: "INVALID_PARAMETER_VALUE",
}


class MlflowError(Exception):
    """An error in MLflow's terms, raised by handlers when no domain error fits."""

    def __init__(self, message: str, code: str = "INVALID_PARAMETER_VALUE") -> None:
        assert code in STATUS, code
        self.message, self.code = message, code
        super().__init__(message)


def from_domain_error(exc: DomainError) -> MlflowError:
    """The one mapping of ``core.errors`` to MLflow's codes. A conflict whose code says
    that a name is taken (``model_exists``, ``experiment_exists``) is MLflow's
    RESOURCE_ALREADY_EXISTS, which ``set_experiment`` and ``register_model`` look for."""
    code = _CODES.get(type(exc), "INVALID_PARAMETER_VALUE")
    if isinstance(exc, Conflict) and exc.code.endswith("_exists"):
        code = "RESOURCE_ALREADY_EXISTS"
    message = exc.message
    if exc.field and exc.field not in message and isinstance(exc, Invalid | TooLarge | Conflict):
        message = f"{message} (field: {exc.field})"
    return MlflowError(message, code)


def error_response(code: str, message: str, headers: Mapping[str, str] | None = None) -> HttpResponse:
    response = HttpResponse(
        orjson.dumps({"error_code": code, "message": message}), status=STATUS[code], content_type="application/json"
    )
    for name, value in (headers or {}).items():
        response[name] = value
    return response


# Assay's refusal codes (core.http, before any view) in MLflow's terms.
_REFUSAL_CODES = {
    "not_found": "ENDPOINT_NOT_FOUND",
    "permission_denied": "PERMISSION_DENIED",
    "server_error": "INTERNAL_ERROR",
    "bad_request": "BAD_REQUEST",
}


def refusal_response(status: int, code: str, message: str) -> HttpResponse:
    """What Django and core.http answer without a view under ``/mlflow/`` (an unknown path, a
    malformed request, a body over the limit, a server error), in MLflow's error format with
    the status they chose (registered in CompatConfig.ready)."""
    response = error_response(_REFUSAL_CODES.get(code, "INVALID_PARAMETER_VALUE"), message)
    response.status_code = status
    return response


def json_response(body: Mapping[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(jsonsafe.dumps(body), status=status, content_type="application/json")


# --- values as protobuf's JSON mapping writes them -------------------------------------------


def double(value: float | None) -> float | str | None:
    """A double as protobuf's JSON mapping writes it: NaN and ±Infinity as strings."""
    if value is None:
        return None
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def compact(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Protobuf leaves unset fields out: drop None (keep 0, "" and False)."""
    return {k: v for k, v in fields.items() if v is not None}


# --- reading a request's message ----------------------------------------------------------------


def message(request: HttpRequest) -> dict[str, Any]:
    """The request's message: the query parameters of a GET (lists for repeated names),
    else the JSON object of the body (an empty body is an empty message)."""
    if request.method in ("GET", "HEAD"):
        out: dict[str, Any] = {}
        for key in request.GET:
            values = request.GET.getlist(key)
            out[key] = values if len(values) > 1 else values[0]
        return out
    raw = request.body
    if not raw.strip():
        return {}
    try:
        body = jsonsafe.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MlflowError(f"The request body is not valid JSON: {exc}", "BAD_REQUEST") from None
    if not isinstance(body, dict):
        raise MlflowError("The request body must be a JSON object.")
    return body


def shown(value: Any) -> str:
    """A refused value as MLflow's messages show it (``Invalid value <JSON> for parameter …
    supplied``): compact JSON, keys sorted; what JSON cannot hold, as text."""
    try:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def string(msg: Mapping[str, Any], name: str, *, required: bool = False, default: str | None = None) -> str | None:
    value = msg.get(name)
    if value is None or (value == "" and not required):
        if required:
            raise MlflowError(f"Missing value for required parameter '{name}'.")
        return default
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if not isinstance(value, str):
        raise MlflowError(f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be a string.")
    if "\x00" in value:
        raise MlflowError(f"Invalid value for parameter '{name}': it contains a NUL character.")
    if required and not value:
        raise MlflowError(f"Missing value for required parameter '{name}'.")
    return value


def required_string(msg: Mapping[str, Any], name: str) -> str:
    value = string(msg, name, required=True)
    assert value is not None
    return value


def integer(
    msg: Mapping[str, Any],
    name: str,
    *,
    required: bool = False,
    default: int | None = None,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | None:
    value = msg.get(name)
    if value is None or value == "":
        if required:
            raise MlflowError(f"Missing value for required parameter '{name}'.")
        return default
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise MlflowError(
                f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be an integer."
            ) from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise MlflowError(f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be an integer.")
    if not jsonsafe.INT64_MIN <= value <= jsonsafe.INT64_MAX:
        raise MlflowError(
            f"Invalid value {shown(value)} for parameter '{name}' supplied: it is beyond the 64-bit range."
        )
    if minimum is not None and value < minimum:
        raise MlflowError(
            f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be at least {minimum}."
        )
    if maximum is not None and value > maximum:
        raise MlflowError(
            f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be at most {maximum}."
        )
    return value


def number(value: Any, name: str) -> float:
    """A double of a message: a JSON number, or one of protobuf's strings (``"NaN"``,
    ``"Infinity"``, ``"-Infinity"``) or a decimal string (GET)."""
    if isinstance(value, bool) or value is None:
        raise MlflowError(f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be a number.")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise MlflowError(f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be a number.")


def boolean(msg: Mapping[str, Any], name: str, *, default: bool = False) -> bool:
    value = msg.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise MlflowError(f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be true or false.")


def string_list(msg: Mapping[str, Any], name: str) -> list[str]:
    value = msg.get(name)
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise MlflowError(
            f"Invalid value {shown(value)} for parameter '{name}' supplied: it must be a list of strings."
        )
    return value


def run_id(msg: Mapping[str, Any]) -> str:
    """The run of a message: ``run_id``, or the older ``run_uuid`` (both are sent by the client)."""
    value = string(msg, "run_id") or string(msg, "run_uuid")
    if not value:
        raise MlflowError("Missing value for required parameter 'run_id'.")
    return value


def page_token(offset: int) -> str:
    """An opaque page token for ``offset`` (the offset of the next page's first row)."""
    return base64.urlsafe_b64encode(orjson.dumps({"offset": offset})).decode("ascii")


def page_offset(msg: Mapping[str, Any]) -> int:
    token = string(msg, "page_token")
    if not token:
        return 0
    try:
        offset = orjson.loads(base64.urlsafe_b64decode(token.encode("ascii")))["offset"]
    except (ValueError, KeyError, TypeError, UnicodeEncodeError):
        raise MlflowError("Invalid page token: it was not given by this server.") from None
    if type(offset) is not int or offset < 0:
        raise MlflowError("Invalid page token: it was not given by this server.")
    return offset


# --- endpoints ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """What a handler gets: the caller, the project of the URL, the message, the URL's own
    arguments (e.g. a logged model's id)."""

    user: User
    token: ApiToken
    project: Project
    msg: dict[str, Any]
    kwargs: dict[str, Any]
    request: HttpRequest

    def require(self, action: str) -> None:
        """NotFound/Forbidden unless the caller may ``action`` on the project (the accounts
        policy, with the role loaded along with the project for this caller)."""
        require(self.user, action, self.project, annotated=self.project)


Handler = Callable[[Call], Mapping[str, Any] | HttpResponse]
H = TypeVar("H", bound=Handler)


def read(handler: H) -> H:
    """Mark a handler that changes nothing: a read token may call it, whatever the method."""
    handler.mlflow_write = False  # type: ignore[attr-defined]
    return handler


def write(handler: H) -> H:
    """Mark a handler that changes something: it needs a write token."""
    handler.mlflow_write = True  # type: ignore[attr-defined]
    return handler


def _call(handler: Handler, request: HttpRequest, team: str, project_name: str, kwargs: dict[str, Any]) -> HttpResponse:
    try:
        user, token = auth.authenticate(request)
        is_write = getattr(handler, "mlflow_write", True)
        # SECURITY: the token's scope first (a read token never writes), then the project
        # through the one policy: 404 for a missing and an invisible project alike.
        if not token_allows(token.scope, "POST" if is_write else "GET"):
            raise MlflowError("This token is read-only; this call needs a write token.", "PERMISSION_DENIED")
        project = access_project(user, team, project_name)
        call = Call(user=user, token=token, project=project, msg=message(request), kwargs=kwargs, request=request)
        result = handler(call)
    except auth.Unauthenticated as exc:
        return error_response("UNAUTHENTICATED", str(exc), {"WWW-Authenticate": auth.CHALLENGE})
    except MlflowError as exc:
        return error_response(exc.code, exc.message)
    except DomainError as exc:
        mapped = from_domain_error(exc)
        return error_response(mapped.code, mapped.message)
    except SuspiciousOperation as exc:  # too many query fields, a body over Django's limit
        return error_response("BAD_REQUEST", str(exc) or "The request is malformed.")
    except Exception:
        logger.exception("MLflow endpoint %s failed", request.path)
        return error_response("INTERNAL_ERROR", "The server failed on this request; the error is in its log.")
    if isinstance(result, HttpResponse):
        return result
    return json_response(result)


def route(**handlers: Handler) -> Callable[..., HttpResponse]:
    """A view serving one MLflow path: one handler per HTTP method (``GET=…``, ``POST=…``)."""
    by_method = {method.upper(): handler for method, handler in handlers.items()}

    @csrf_exempt
    def view(request: HttpRequest, team: str, project: str, **kwargs: Any) -> HttpResponse:
        handler = by_method.get(request.method or "GET")
        if handler is None:
            return error_response(
                "ENDPOINT_NOT_FOUND", f"{request.method} is not served at {request.path}; use {', '.join(by_method)}."
            )
        return _call(handler, request, team, project, kwargs)

    view.mlflow_handlers = by_method  # type: ignore[attr-defined]  # for tests that walk every endpoint
    return view
