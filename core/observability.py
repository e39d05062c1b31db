"""Request ids in logs and tasks, JSON logs, and Prometheus metrics.

* Every request gets an id (a client's ``X-Request-ID`` when well-formed, else a new one),
  echoed in the response, attached to every log record made while serving it, and carried
  into the Celery tasks it queues (a task header), whose log records carry it too.
* ``/metrics`` exposes Prometheus series. It answers only to the addresses in
  ``ASSAY_METRICS_ALLOWED_IPS`` or to ``Authorization: Bearer $ASSAY_METRICS_TOKEN``, and is
  a 404 to everyone else. With several processes (gunicorn workers), set
  ``PROMETHEUS_MULTIPROC_DIR`` to an empty folder shared by them (deploy/ does).
"""

from __future__ import annotations

import hmac
import logging
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.context import client_address_var, parse_address

request_id_var: ContextVar[str] = ContextVar("request_id", default="-")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# --- metrics ------------------------------------------------------------------------------

HTTP_LATENCY = Histogram(
    "assay_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template.",
    ["method", "route", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
POINTS_INGESTED = Counter("assay_points_ingested_total", "Metric points stored (retried batches not counted).")
TASK_DURATION = Histogram("assay_task_duration_seconds", "Celery task run time.", ["task"])
TASK_FAILURES = Counter("assay_task_failures_total", "Celery tasks that raised.", ["task"])
WEBSOCKETS_OPEN = Gauge("assay_websockets_open", "Open WebSocket connections.", multiprocess_mode="livesum")


class QueueDepthCollector(Collector):
    """Messages waiting in the Celery queue, read from Redis at scrape time."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("assay_celery_queue_depth", "Messages waiting in a Celery queue.", labels=["queue"])
        if settings.REDIS_URL:
            import redis

            try:
                client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
                queue = settings.CELERY_TASK_DEFAULT_QUEUE
                family.add_metric([queue], float(client.llen(queue)))
                client.close()
            except redis.RedisError:
                pass  # an absent series says Redis did not answer; /readyz says why
        yield family


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    return registry


_queue_collector = QueueDepthCollector()


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _may_scrape(request):
        raise Http404
    registry = _registry()
    body = generate_latest(registry)
    # The queue depth is read live, whatever the process model.
    queue_registry = CollectorRegistry()
    queue_registry.register(_queue_collector)
    body += generate_latest(queue_registry)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)


def _may_scrape(request: HttpRequest) -> bool:
    token = settings.ASSAY_METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token.encode()):
        return True
    return request.META.get("REMOTE_ADDR", "") in settings.ASSAY_METRICS_ALLOWED_IPS


# --- request ids and latency ----------------------------------------------------------------


class RequestIdMiddleware:
    """Outermost: gives the request its id and times it by route template (not raw path,
    which would make one series per run id)."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        address_token = client_address_var.set(parse_address(request.META.get("REMOTE_ADDR")))
        started = time.perf_counter()
        try:
            response = self.get_response(request)
        finally:
            client_address_var.reset(address_token)
            request_id_var.reset(token)
        match = getattr(request, "resolver_match", None)
        route = match.route if match is not None and match.route else "unmatched"
        HTTP_LATENCY.labels(request.method or "-", route, str(response.status_code)).observe(
            time.perf_counter() - started
        )
        response["X-Request-ID"] = request_id
        return response


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class RefusalTracebackFilter(logging.Filter):
    """On ``django.request``: a 403 or 404 is an answer, not a failure. Django logs a
    refused permission with the exception's traceback; keep the one line, drop the trace."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", None) in (403, 404):
            record.exc_info = None
            record.exc_text = None
        return True


# --- Celery: carry the id into tasks, time them ------------------------------------------------


def connect_celery_signals() -> None:
    from celery import signals

    started: dict[str, float] = {}

    @signals.before_task_publish.connect(weak=False)
    def _add_request_id(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if headers is not None:
            headers.setdefault("request_id", request_id_var.get())

    @signals.task_prerun.connect(weak=False)
    def _task_start(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
        request_id = getattr(getattr(task, "request", None), "request_id", None) or task_id
        request_id_var.set(str(request_id))
        started[task_id] = time.perf_counter()

    @signals.task_postrun.connect(weak=False)
    def _task_end(task_id: str = "", task: Any = None, **kwargs: Any) -> None:
        begin = started.pop(task_id, None)
        if begin is not None and task is not None:
            TASK_DURATION.labels(task.name).observe(time.perf_counter() - begin)

    @signals.task_failure.connect(weak=False)
    def _task_failed(sender: Any = None, **kwargs: Any) -> None:
        TASK_FAILURES.labels(getattr(sender, "name", "unknown")).inc()
