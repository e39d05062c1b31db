"""/healthz: the process answers. /readyz: its dependencies answer too."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse

from artifacts.storage import artifact_store


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
        return type(exc).__name__
    return None


def _check_redis() -> str | None:
    if not settings.REDIS_URL:
        return None
    import redis

    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
        client.ping()
        client.close()
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__
    return None


def _check_artifacts() -> str | None:
    try:
        artifact_store().check()
    except Exception as exc:  # noqa: BLE001
        return type(exc).__name__
    return None


def readyz(request: HttpRequest) -> JsonResponse:
    # SECURITY: only the exception's class name is shown, never its message (it may hold a URL or credentials).
    checks: dict[str, Any] = {}
    for name, check in (("database", _check_database), ("redis", _check_redis), ("artifacts", _check_artifacts)):
        if name == "redis" and not settings.REDIS_URL:
            checks[name] = {"status": "not configured"}
            continue
        problem = check()
        checks[name] = {"status": "ok"} if problem is None else {"status": "error", "error": problem}
    ready = all(c["status"] != "error" for c in checks.values())
    return JsonResponse({"status": "ok" if ready else "error", "checks": checks}, status=200 if ready else 503)
