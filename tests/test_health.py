"""/healthz answers when the process does; /readyz when its dependencies do too."""

from __future__ import annotations

import pytest
from django.test import Client
from django.test.utils import override_settings

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_authentication() -> None:
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok"}


def test_readyz_checks_database_redis_and_artifacts() -> None:
    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": {"status": "ok"}, "redis": {"status": "ok"}, "artifacts": {"status": "ok"}},
    }


def test_readyz_is_unavailable_when_redis_is_unreachable() -> None:
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["redis"]["status"] == "error"
    assert body["checks"]["database"] == {"status": "ok"}
    # only the exception's class name, never a URL or a message
    assert "127.0.0.1" not in response.content.decode()
    assert body["checks"]["redis"]["error"].isidentifier()


def test_readyz_reports_redis_not_configured_without_a_url() -> None:
    with override_settings(REDIS_URL=""):
        response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"]["redis"] == {"status": "not configured"}
