"""Gunicorn settings for Assay's production profile: N uvicorn workers behind one master.

Why gunicorn + ``uvicorn_worker.UvicornWorker`` rather than ``uvicorn --workers N``: the
design warns that uvicorn's own multi-process mode has been seen leaving ``TCP_NODELAY``
unset, adding ~40 ms (Nagle + delayed ACK) to small responses on kept-alive connections.
With uvicorn 0.54 here ``benchmarks/latency_probe.py`` shows no such stall in either
server (see benchmarks/README.md); gunicorn stays for worker supervision (restarts,
timeouts, graceful reloads), and the probe stays to catch a regression on upgrade.

Environment:

* ``ASSAY_WEB_WORKERS`` — worker processes (default 2: one per core on a 2-core box).
* ``ASSAY_BIND`` — address to listen on (default ``127.0.0.1:8000``); several may be
  given separated by commas, e.g. ``0.0.0.0:8000,unix:/run/assay.sock``.
* ``ASSAY_WEB_TIMEOUT`` — seconds a worker may stay silent before it is restarted
  (default 60; a 100,000-point batch takes well under a second).
* ``ASSAY_ACCESS_LOG`` — set to ``1`` (or a path) for an access log on stdout (or that
  file); off by default, it costs CPU on the ingestion path.
"""

from __future__ import annotations

import os

bind = [b.strip() for b in os.environ.get("ASSAY_BIND", "127.0.0.1:8000").split(",") if b.strip()]
workers = int(os.environ.get("ASSAY_WEB_WORKERS", "2"))
worker_class = "uvicorn_worker.UvicornWorker"

# A worker that stops answering the master's heartbeat for this long is replaced.
timeout = int(os.environ.get("ASSAY_WEB_TIMEOUT", "60"))
graceful_timeout = 30
# Kept-alive connections from SDK clients that log in a loop.
keepalive = 75
backlog = 2048

# No access log by default; errors go to stderr.
_access = os.environ.get("ASSAY_ACCESS_LOG", "")
accesslog = ("-" if _access in {"1", "true", "yes"} else _access) or None
errorlog = "-"
loglevel = os.environ.get("ASSAY_LOG_LEVEL", "info").lower()

# Application code is imported in each worker (not preloaded in the master), so that
# database connections and thread pools are never shared across a fork.
preload_app = False
# Gunicorn 24+'s control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl):
# two servers on one host (make stack beside a benchmark, the e2e test) would take it from
# each other. Nothing here uses it; signals (HUP, TERM, TTIN/TTOU) still work.
control_socket_disable = True
# Behind a TLS-terminating proxy, trust X-Forwarded-* from it only.
forwarded_allow_ips = os.environ.get("ASSAY_FORWARDED_ALLOW_IPS", "127.0.0.1")


def child_exit(server: object, worker: object) -> None:
    """Drop a dead worker's live gauges from the shared Prometheus folder."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined,no-untyped-call]
