"""What every HTTP request meets before any view, and the answers Django gives by itself.

``RequestGuardMiddleware`` refuses, before the view runs, for the API and the pages alike:

- a URL under ``/api/`` that only a page's route matched: 404;
- a NUL character (``%00``) in the URL path: 404 (no object has such a name), and in a
  query parameter's name or value, or a page form's field: 400 naming the parameter.
  PostgreSQL refuses NUL in text, so a view would fail on it (SQLite would store it);
- a body larger than ``DATA_UPLOAD_MAX_MEMORY_SIZE`` (``ASSAY_MAX_BODY_BYTES``, 32 MiB):
  413, from the declared Content-Length, before anything reads the body (DRF reads the
  stream itself, past Django's own check). A body sent without a Content-Length (chunked)
  is read by the ASGI handler up to the limit only (``config/middleware.py``), which marks
  the request with ``BODY_TOO_LARGE`` when more came. Views that take larger bodies (the
  local store's upload URL) are marked with :func:`body_limit_exempt`.

Under ``/api/`` the refusals, unknown URLs (404) and server errors (500) answer the API's
JSON error shape (``core.api.error_body``); under a prefix an app registered with
:func:`register_error_dialect` (``/mlflow/``: compat), that app's error format; pages get the site's own 404/403/500 pages
(``frontend/templates/404.html`` and so on: the layout with its navigation). The handlers
are installed in ``config/urls.py``. A 403 or 404 is logged as one line, without the
traceback Django attaches to a refused permission (``core.observability.RefusalTracebackFilter``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.views import defaults

from core import jsonsafe
from core.api import error_body

API_PREFIX = "/api/"
# Set in the ASGI scope by config.middleware when a body without Content-Length ran past the limit.
BODY_TOO_LARGE = "assay.body_too_large"

View = TypeVar("View", bound=Callable[..., Any])


def body_limit_exempt(view: View) -> View:
    """Mark a view that reads large bodies itself and enforces its own limit."""
    view.body_limit_exempt = True  # type: ignore[attr-defined]
    return view


def is_body_limit_exempt(view: Callable[..., Any]) -> bool:
    return bool(getattr(view, "body_limit_exempt", False))


def is_api(request: HttpRequest) -> bool:
    return request.path_info.startswith(API_PREFIX)


# Other wire formats mounted under a path of their own (the MLflow API under /mlflow/): the
# refusals and errors Django gives there without a view are written in that format. An app
# registers its writer in its AppConfig.ready() (core imports no app).
ErrorWriter = Callable[[int, str, str], HttpResponse]
_DIALECTS: list[tuple[str, ErrorWriter]] = []


def register_error_dialect(prefix: str, writer: ErrorWriter) -> None:
    """Answer refusals and errors under ``prefix`` with ``writer(status, code, message)``."""
    if all(known != prefix for known, _ in _DIALECTS):
        _DIALECTS.append((prefix, writer))


def _dialect(request: HttpRequest) -> ErrorWriter | None:
    for prefix, writer in _DIALECTS:
        if request.path_info.startswith(prefix):
            return writer
    return None


def refusal(request: HttpRequest, status: int, code: str, message: str, field: str | None = None) -> HttpResponse:
    """The JSON error shape under /api/, a registered dialect's under its prefix, a short
    text answer on pages."""
    dialect = _dialect(request)
    if dialect is not None:
        return dialect(status, code, f"{message} ({field})" if field else message)
    if is_api(request):
        return HttpResponse(
            jsonsafe.dumps(error_body(code, message, field)), status=status, content_type="application/json"
        )
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


def _printable(name: str) -> str:
    return name.replace("\x00", "\\u0000")


class RequestGuardMiddleware:
    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)

    def process_view(
        self, request: HttpRequest, view: Callable[..., Any], args: Any, kwargs: Any
    ) -> HttpResponseBase | None:
        if not is_body_limit_exempt(view):
            too_large = body_too_large(request)
            if too_large:
                return refusal(request, 413, "too_large", too_large)
        if "\x00" in request.path_info:
            raise Http404("No such page.")
        match = request.resolver_match
        if is_api(request) and match is not None and not match.route.startswith(API_PREFIX[1:]):
            # A page's route took an /api/ URL (``<team>/<project>/`` takes /api/x/): no such endpoint.
            raise Http404("No such API endpoint.")
        for name, values in request.GET.lists():
            if "\x00" in name or any("\x00" in value for value in values):
                return refusal(
                    request, 400, "nul_character", "A query parameter may not contain NUL (%00).", _printable(name)
                )
        if not is_api(request) and request.method == "POST" and _is_form(request):
            for name, values in request.POST.lists():
                if "\x00" in name or any("\x00" in value for value in values):
                    return refusal(request, 400, "nul_character", "A form field may not contain NUL.", _printable(name))
        return None


def _is_form(request: HttpRequest) -> bool:
    return request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data")


def body_too_large(request: HttpRequest) -> str:
    """Why the request's body is over the limit, or "" when it is not."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE  # None: no limit, as for Django
    if limit is not None and getattr(request, "scope", {}).get(BODY_TOO_LARGE):
        return f"The request body is larger than {limit} bytes, the limit (ASSAY_MAX_BODY_BYTES)."
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return ""
    if limit is not None and length > limit:
        return f"The request body is {length} bytes; the limit is {limit} bytes (ASSAY_MAX_BODY_BYTES)."
    return ""


# --- the answers Django gives without a view (config/urls.py: handler400 … handler500) ---


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request) or _dialect(request):
        return refusal(request, 400, "bad_request", "The request is malformed.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request) or _dialect(request):
        return refusal(request, 403, "permission_denied", "You do not have permission to perform this action.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request) or _dialect(request):
        return refusal(request, 404, "not_found", "Not found.")
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request) or _dialect(request):
        return refusal(request, 500, "server_error", "A server error occurred.")
    return defaults.server_error(request)
