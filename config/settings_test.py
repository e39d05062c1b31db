"""Settings for the test suite: the production components (PostgreSQL, Redis), never a
developer's environment. Each variable may still be overridden from outside."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/assay")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("ASSAY_VAR_DIR", tempfile.mkdtemp(prefix="assay-test-var-"))
# One collection of the static files for every test process and run (frontend/static_files.py
# collects again only when a source changed); subprocess servers inherit it.
os.environ.setdefault(
    "ASSAY_STATIC_ROOT", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "var", "test-static")
)
os.environ.setdefault("ASSAY_SECRET_KEY", "test-secret-key-not-for-production-use-0123456789")

from config.settings import *  # noqa: F403

# Hashing with the fast MD5 hasher keeps user fixtures cheap; production keeps PBKDF2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The browser tests sign in often from 127.0.0.1; the production limits are tested with
# override_settings (tests/accounts/test_allauth.py).
ACCOUNT_RATE_LIMITS = {**ACCOUNT_RATE_LIMITS, "login": "600/m/ip", "login_failed": "100/m/ip,50/300s/key"}  # noqa: F405
