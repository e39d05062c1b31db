"""Deployment checks under production-like settings, and secrets that never reach the logs."""

from __future__ import annotations

import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from tests.factories import PASSWORD
from tests.helpers import post_json

ROOT = Path(__file__).resolve().parents[2]


def test_check_deploy_is_clean_under_production_settings(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/assay"),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/15"),
        "ASSAY_SECRET_KEY": secrets.token_urlsafe(64),
        "ASSAY_SECURE_COOKIES": "1",
        "ASSAY_SSL_REDIRECT": "1",
        "ASSAY_HSTS_SECONDS": "31536000",
        "ASSAY_ALLOWED_HOSTS": "assay.example.com",
        "ASSAY_CSRF_TRUSTED_ORIGINS": "https://assay.example.com",
        "ASSAY_VAR_DIR": str(tmp_path / "var"),
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    # drf-spectacular's schema-naming notes are not deployment problems; every Django
    # security check must pass.
    assert "(security." not in output, output
    assert "ERRORS" not in output, output
    # and the production settings really are production settings
    assert "DEBUG" not in output


@pytest.mark.django_db
def test_passwords_and_tokens_never_reach_the_logs(caplog: pytest.LogCaptureFixture, owner: User, run) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-" + secrets.token_hex(8)
    browser = Client()

    browser.post("/login/", {"login": "owner", "password": wrong})
    browser.post("/login/", {"login": "owner", "password": PASSWORD})
    created = browser.post("/settings/tokens/", {"name": "laptop", "scope": "write", "expires_in_days": "30"})
    api = APIClient()
    api.force_authenticate(owner)
    raw = post_json(api, "/api/v1/tokens/", {"name": "ci"}).json()["token"]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + raw)
    client.get(f"/api/v1/runs/{run.id}/")
    client.get("/api/v1/runs/" + "x" * 40 + "/")  # a 404 is logged as a warning
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer asy_" + "y" * 43)
    bad.get("/api/v1/me/")

    assert created.status_code == 200
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for secret in (PASSWORD, wrong, raw, "asy_" + "y" * 43):
        assert secret not in logged
    page_token = created.content.decode().split('data-testid="new-token-value">')[1].split("<")[0]
    assert page_token.startswith("asy_")
    assert page_token not in logged
