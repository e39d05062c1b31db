"""A settings overlay for *measuring* two server-side changes that are outside the
benchmarks' remit (config/settings.py belongs to the lead); see benchmarks/README.md.

    DJANGO_SETTINGS_MODULE=benchmarks.tuned_settings .venv/bin/python benchmarks/ingest.py --settings tuned

1. Database connection pool (Django ≥ 5.1 + psycopg-pool) instead of CONN_MAX_AGE: under
   ASGI every request runs in its own thread-sensitive context, so a "persistent"
   connection is never reused and each request opens (and leaks until GC) a new one.
2. A sync-only innermost middleware, so that Django runs the whole middleware chain and the
   (sync) view in one thread hop instead of one ``sync_to_async`` hop per middleware hook.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponseBase

from config.settings import *  # noqa: F403
from config.settings import DATABASES, MIDDLEWARE


class SyncChainMiddleware:
    """Does nothing; being sync-only and innermost, it makes Django adapt the chain once."""

    sync_capable = True
    async_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        return self.get_response(request)


if "sync-chain" in __import__("os").environ.get("BENCH_TUNING", "pool,sync-chain"):
    MIDDLEWARE = [*MIDDLEWARE, "benchmarks.tuned_settings.SyncChainMiddleware"]
if "pool" in __import__("os").environ.get("BENCH_TUNING", "pool,sync-chain") and DATABASES["default"][
    "ENGINE"
].endswith("postgresql"):
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 2, "max_size": 16, "timeout": 10}
