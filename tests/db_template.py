"""One migrated, empty PostgreSQL database that test databases are copied from.

Migrating a database from zero takes ten seconds or more here (and a few more for each
``manage.py`` start); the suite needs many such databases: pytest-django's test database in
every xdist worker, the SDK tests' servers, the end-to-end stacks. ``CREATE DATABASE …
TEMPLATE`` copies a migrated one in a fraction of a second.

The template is named after a digest of everything that decides its schema (every migration
file and the locked requirements, which pin Django and the third-party apps), so a changed
migration builds a new one, and an unchanged tree reuses the one an earlier run left. It is
built by ``manage.py migrate`` itself, under a PostgreSQL advisory lock, so that concurrent
workers and runs build it once; it is renamed into place only when complete, and no one may
connect to it (a connection would block the copies).

Django-free in this process (psycopg and a ``manage.py`` subprocess): the SDK's tests use it too.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import psycopg

REPO = Path(__file__).resolve().parents[1]
PYTHON = str(REPO / ".venv" / "bin" / "python") if (REPO / ".venv" / "bin" / "python").exists() else sys.executable
PREFIX = "assay_template_"
# pg_advisory_lock key (any constant shared by every builder): "assay-tm" as a 64-bit integer.
LOCK_KEY = int.from_bytes(b"assay-tm", "big") & 0x7FFF_FFFF_FFFF_FFFF


def schema_digest() -> str:
    """A digest of the migrations and locked requirements: the template's schema follows from them."""
    digest = hashlib.sha256()
    files = [*sorted(REPO.glob("*/migrations/*.py")), REPO / "requirements.lock"]
    for path in files:
        digest.update(str(path.relative_to(REPO)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def admin_url(database_url: str) -> str:
    """The URL of the server's ``postgres`` database, for CREATE/DROP DATABASE."""
    return urlparse(database_url)._replace(scheme="postgresql", path="/postgres").geturl()


def migrated_template(database_url: str) -> str:
    """The name of the migrated template on ``database_url``'s server, built first if missing."""
    name = PREFIX + schema_digest()
    with psycopg.connect(admin_url(database_url), autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (LOCK_KEY,))
        try:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
                _build(conn, database_url, name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (LOCK_KEY,))
    return name


def _build(conn: psycopg.Connection[tuple[object, ...]], database_url: str, name: str) -> None:
    building = name + "_building"
    conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')  # a build that died half-way
    conn.execute(f'CREATE DATABASE "{building}"')
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DJANGO_", "PYTEST_"))}
    with tempfile.TemporaryDirectory(prefix="assay-template-") as var:
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings",
                "DATABASE_URL": urlparse(database_url)._replace(path=f"/{building}").geturl(),
                "ASSAY_VAR_DIR": var,
                "ASSAY_SECRET_KEY": "template-build-key-" + "x" * 40,
            }
        )
        done = subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        raise RuntimeError(f"manage.py migrate of the template failed:\n{done.stderr[-3000:]}")
    conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')


def create_from_template(database_url: str, dbname: str) -> None:
    """CREATE DATABASE ``dbname`` as a copy of the migrated template."""
    template = migrated_template(database_url)
    with psycopg.connect(admin_url(database_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{dbname}" TEMPLATE "{template}"')
