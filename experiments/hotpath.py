"""The log call, served without Django's request machinery.

``POST /api/v1/runs/{id}/log/`` is what every training job sends, thousands of times per
run; a small batch must cost little (issue 2: a single-point call no slower than MLflow's).
Through Django it paid for an ``ASGIRequest``, a new thread per request (Django's
``ThreadSensitiveContext``), eleven middleware, DRF's dispatch and a new event loop to push
the live event: about two thirds of its CPU. :class:`LogFastPath` sits in front of Django's
ASGI handler and serves that one call itself, in one hop to a pooled worker thread, when
it has its plain form: ``Authorization: Bearer``, a JSON body with a Content-Length within
``DATA_UPLOAD_MAX_MEMORY_SIZE``, an allowed Host, no HTTPS redirect due, no NUL in the URL.
Anything else (a session cookie, a chunked or too large body, a wrong content type, every
other URL) goes to Django unchanged, which answers as before (``core.http``'s guard refuses
a body over the limit with 413 and a NUL in the URL).

The rules are the same functions, not copies: the token
(:func:`accounts.authentication.bearer_token`), its scope (:func:`accounts.access.token_allows`),
the run and the caller's role (:func:`experiments.access.access_run`, inside
:func:`experiments.api.log_call`, which the DRF view calls too), the write
(:func:`experiments.services.run_log`), the error shape (:func:`core.api.error_parts`),
the request id and latency metric (``core.observability``), and the response headers of
the security, frame-options and CSP middleware, which are asked for them on each answer.
``tests/test_hotpath.py`` sends the same requests both ways and compares the answers.

Live events of the call are numbered and logged after the commit and before the answer, as
always; their channel-layer sends leave from the event loop once the answer is on its way
(``live.publish.sends_deferred``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import cached_property
from io import BytesIO
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from csp.middleware import CSPMiddleware
from django.conf import settings
from django.core import signals
from django.core.exceptions import DisallowedHost
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.security import SecurityMiddleware
from django.urls import resolve
from django.utils.log import log_response
from rest_framework.exceptions import AuthenticationFailed, PermissionDenied

from accounts.access import token_allows
from accounts.authentication import AUTHENTICATE_HEADER, bearer_token
from accounts.permissions import TokenScopePermission
from core import jsonsafe
from core.api import error_body, error_parts, parse_json
from core.observability import HTTP_LATENCY, request_id_var
from experiments.api import log_call
from live.publish import send_collected, sends_deferred

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

logger = logging.getLogger(__name__)

# No NUL in the run id: core.http's guard answers such a path (404).
LOG_PATH = re.compile(r"/api/v1/runs/([^/\x00]{1,64})/log/")
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# What DRF adds to the view's answer (one renderer: no Vary).
_DRF_HEADERS = {"Allow": "POST, OPTIONS"}


def _never_called(request: HttpRequest) -> HttpResponse:
    raise AssertionError("only the middleware's process_response is used")


class LogFastPath:
    # The paths this class serves, and what it adds to each answer (what DRF adds to the
    # view's). A subclass serves other paths (compat/fastpath.py: MLflow's log calls).
    path_pattern = LOG_PATH
    answer_headers = _DRF_HEADERS

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The middleware's headers, by whether the request is HTTPS (_middleware_headers).
        self._added_headers: dict[bool, dict[str, str]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = self._eligible(scope)
        if request is None:
            await self.app(scope, receive, send)
            return
        raw = b""
        length = int(request.META["CONTENT_LENGTH"])
        while len(raw) < length:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body", False):
                break
        status, headers, body, pending = await sync_to_async(self._serve, thread_sensitive=False)(request, raw)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        if pending:
            await send_collected(pending)

    def _eligible(self, scope: Scope) -> ASGIRequest | None:
        """A Django request object for a log call this path may serve, else None (Django
        serves it). Reads headers only: the body is still unread when the answer is None."""
        if scope["type"] != "http" or scope["method"] != "POST" or not self.path_pattern.fullmatch(scope["path"]):
            return None
        if b"%00" in scope.get("query_string", b""):  # core.http's guard refuses it
            return None
        if scope.get("root_path"):
            return None
        request = ASGIRequest(scope, BytesIO())
        meta = request.META
        if meta.get("HTTP_AUTHORIZATION", "")[:7].lower() != "bearer ":
            return None
        if meta.get("CONTENT_TYPE", "").split(";")[0].strip().lower() != "application/json":
            return None
        length, limit = meta.get("CONTENT_LENGTH", ""), settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if not length.isdigit() or (limit is not None and int(length) > limit):
            return None
        if settings.SECURE_SSL_REDIRECT and not request.is_secure():
            return None
        try:
            request.get_host()
        except DisallowedHost:
            return None
        return request

    @cached_property
    def _route(self) -> str:
        """The URL pattern's route, as Django's latency metric labels this call."""
        return resolve(f"/api/v1/runs/{'0' * 32}/log/").route

    def route_of(self, request: ASGIRequest) -> str:
        return self._route

    @cached_property
    def _header_middleware(self) -> list[Any]:
        return [SecurityMiddleware(_never_called), XFrameOptionsMiddleware(_never_called), CSPMiddleware(_never_called)]

    def _middleware_headers(self, request: ASGIRequest) -> dict[str, str]:
        """The headers the security, frame-options and CSP middleware add to a JSON answer,
        asked of them once per process for plain and for HTTPS requests (the only thing of
        the request they look at for such an answer: HSTS; there is no nonce in JSON)."""
        secure = request.is_secure()
        headers = self._added_headers.get(secure)
        if headers is None:
            response: HttpResponseBase = HttpResponse(b"{}", content_type="application/json")
            before = set(response.headers)
            for middleware in self._header_middleware:
                response = middleware.process_response(request, response)
            headers = self._added_headers[secure] = {k: v for k, v in response.items() if k not in before}
        return headers

    def _serve(self, request: ASGIRequest, raw: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes, list[Any]]:
        started = time.perf_counter()
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        signals.request_started.send(sender=self.__class__, scope=request.scope)
        try:
            with sends_deferred() as pending:
                status, payload, extra = self._answer(request, raw)
        finally:
            signals.request_finished.send(sender=self.__class__)
            request_id_var.reset(token)
        response = HttpResponse(payload, status=status, content_type="application/json")
        for name, value in (self.answer_headers | extra | self._middleware_headers(request)).items():
            response[name] = value
        response["Content-Length"] = str(len(response.content))  # as CommonMiddleware does
        response["X-Request-ID"] = request_id
        if 400 <= status < 500:  # a 500 was logged with its traceback
            log_response("%s: %s", response.reason_phrase, request.path, response=response, request=request)
        HTTP_LATENCY.labels("POST", self.route_of(request), str(status)).observe(time.perf_counter() - started)
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.items()]
        return status, headers, response.content, pending

    def _answer(self, request: ASGIRequest, raw: bytes) -> tuple[int, bytes, dict[str, str]]:
        run_id = request.path.split("/")[-3]
        try:
            api_token = bearer_token(request.META["HTTP_AUTHORIZATION"].encode("latin-1"))
            if api_token is None:  # not reached: eligible requests carry a bearer header
                raise AuthenticationFailed("The token is not valid.")
            if not token_allows(api_token.scope, "POST"):
                raise PermissionDenied(TokenScopePermission.message)
            # DRF hands the view {} for an empty body; so does this path.
            result = log_call(api_token.user, run_id, parse_json(raw) if raw else {})
            return 200, jsonsafe.dumps(result), {}
        except Exception as exc:
            if getattr(exc, "status_code", None) == 401:
                exc.auth_header = AUTHENTICATE_HEADER  # type: ignore[attr-defined]  # as DRF sets it
            parts = error_parts(exc)
            if parts is None:  # a bug: logged with its traceback, answered without it (in JSON)
                logger.exception("log call failed")
                return 500, orjson.dumps(error_body("server_error", "A server error occurred.")), {}
            status, body, headers = parts
            return status, orjson.dumps(body), headers
