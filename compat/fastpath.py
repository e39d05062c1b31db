"""MLflow's two log calls (``runs/log-batch``, ``runs/log-metric``), served by the SDK log
call's fast path (:class:`experiments.hotpath.LogFastPath`) instead of Django's request
machinery.

Through Django such a call paid for the middleware chain, a thread hop, and, above all, a
new event loop and Redis connection to push its live event (``async_to_sync`` from a worker
thread): about two thirds of a 1,000-point ``log_batch`` in-process (68 of 101 ms profiled).
Here the live sends leave from the server's event loop after the answer, as for the SDK.

The answer is the same view's: the URL is resolved as Django resolves it and its view
(``compat.wire.route``: authentication, the token's scope, the project through the policy,
the handler, MLflow's errors) is called with the request and its body. Only plain requests
come here (``Authorization: Bearer``, a JSON body within the upload limit, an allowed host;
the rest of ``LogFastPath._eligible``); anything else goes through Django unchanged.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.handlers.asgi import ASGIRequest
from django.urls import Resolver404, resolve

from compat.wire import error_response
from experiments.hotpath import LogFastPath

# The mount of compat.urls (config/urls.py) and the two log calls of compat.urls.
MLFLOW_LOG_PATH = re.compile(r"/mlflow/[^/\x00]+/[^/\x00]+/(?:api|ajax-api)/2\.0/mlflow/runs/(?:log-batch|log-metric)")


class MlflowLogFastPath(LogFastPath):
    path_pattern = MLFLOW_LOG_PATH
    answer_headers: dict[str, str] = {}

    def route_of(self, request: ASGIRequest) -> str:
        try:
            return str(resolve(request.path).route)
        except Resolver404:
            return "mlflow"

    def _answer(self, request: ASGIRequest, raw: bytes) -> tuple[int, bytes, dict[str, str]]:
        try:
            match = resolve(request.path)
        except Resolver404:
            match = None
        if match is None or not getattr(match.func, "mlflow_handlers", None):
            # Not one of compat's views (cannot happen for the pattern above): a 404 in MLflow's form.
            response: Any = error_response("ENDPOINT_NOT_FOUND", f"{request.path} is not served.")
        else:
            request._body = raw  # what HttpRequest.body would read from the stream
            response = match.func(request, *match.args, **match.kwargs)
        extra = {k: v for k, v in response.items() if k.lower() not in ("content-type", "content-length")}
        return response.status_code, bytes(response.content), extra
