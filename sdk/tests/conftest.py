"""A real Assay server for the SDK's tests: a fresh PostgreSQL database, migrated, two users
with tokens, and uvicorn on a free port, all from the repository at /work/main.

The tests talk to it over HTTP only (no Django in this process is used; pytest-django's
database fixtures are not touched). Under pytest-xdist every worker gets its own session,
hence its own database and server.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from tests.db_template import create_from_template

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
UVICORN = str(VENV_BIN / "uvicorn")
PG_ADMIN = os.environ.get("ASSAY_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_process(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM ``proc`` if it still runs; SIGKILL when it has not exited 20 s later."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class Server:
    """uvicorn serving config.asgi from the repository; stop() and start() keep the port."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    admin_token: str = ""
    token: str = ""  # "ana": a plain user, member of her personal team "ana" only
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.log_path is not None
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [
                UVICORN,
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"uvicorn exited: {self.log_path.read_text()[-2000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError("uvicorn did not answer /healthz within 60 s")

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        """Stop abruptly, as a crash would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def http(self, token: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.url + "/api/v1", headers={"Authorization": f"Bearer {token or self.token}"}, timeout=60
        )


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {done.stderr[-3000:]}")
    return done.stdout


# Run by fresh_server in one `manage.py shell` (one Django start instead of one per command):
# the commands a deployment runs, createsuperuser and create_token, through call_command.
_PEOPLE = """
import io, os
from django.core.management import call_command
from accounts.models import User

if os.environ.get("DJANGO_SUPERUSER_USERNAME"):
    call_command("createsuperuser", interactive=False, verbosity=0)
User.objects.create_user("ana", "ana@example.com", "ana-password-123")
for username in ("admin", "ana") if os.environ.get("DJANGO_SUPERUSER_USERNAME") else ("ana",):
    out = io.StringIO()
    call_command("create_token", username, stdout=out)
    print(username, out.getvalue().strip().splitlines()[-1])
"""


@contextlib.contextmanager
def fresh_server(var: Path, dbname: str, env: dict[str, str], *, with_admin: bool = False) -> Iterator[Server]:
    """uvicorn on a new database ``dbname``, migrated (a copy of the suite's migrated template,
    tests/db_template.py), with the user "ana" and her token (and the superuser "admin" and
    his, ``with_admin``); ``env`` adds to or overrides the server's environment. The database
    is dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgres://", 1)
    server_env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DJANGO_", "PYTEST_"))}
    server_env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"{base}/{dbname}",
            "ASSAY_VAR_DIR": str(var),
            "ASSAY_ARTIFACTS": str(var / "artifacts"),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
    )
    create_from_template(server_env["DATABASE_URL"], dbname)
    srv = Server(env=server_env, log_path=var / "server.log")
    server_env["ASSAY_PUBLIC_URL"] = srv.url
    try:
        admin = {
            "DJANGO_SUPERUSER_USERNAME": "admin",
            "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
            "DJANGO_SUPERUSER_PASSWORD": "admin-password-123",
        }
        printed = _manage(dict(server_env, **(admin if with_admin else {})), "shell", "-c", _PEOPLE)
        tokens = dict(
            line.split(" ", 1) for line in printed.splitlines() if line.startswith(("admin asy_", "ana asy_"))
        )
        srv.admin_token = tokens.get("admin", "")
        srv.token = tokens["ana"]
        srv.start()
        yield srv
    finally:
        srv.stop()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    env = {
        "REDIS_URL": os.environ.get("ASSAY_TEST_SDK_REDIS", "redis://127.0.0.1:6379/13"),
        "ASSAY_SECRET_KEY": "sdk-test-key-" + "x" * 40,
        "ASSAY_DB_CONN_MAX_AGE": "60",
    }
    var = tmp_path_factory.mktemp("server-var")
    with fresh_server(var, f"assay_sdktest_{worker}_{uuid.uuid4().hex[:8]}", env, with_admin=True) as srv:
        yield srv


@pytest.fixture
def running_server(server: Server) -> Server:
    """The session's server, running (a test that stopped it may have left it down)."""
    if server.proc is None or server.proc.poll() is not None:
        server.start()
    return server


def point_sdk_at(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **extra: str) -> dict[str, str]:
    """ASSAY_* pointing at ``server`` (any other ASSAY_* of this environment removed), with a
    private spool and config directory, no system metrics nor environment capture; ``extra``
    adds variables."""
    for name in list(os.environ):
        if name.startswith("ASSAY_"):
            monkeypatch.delenv(name)
    values = {
        "ASSAY_URL": server.url,
        "ASSAY_TOKEN": server.token,
        "ASSAY_DIR": str(tmp_path / "assay"),
        "ASSAY_CONFIG_DIR": str(tmp_path / "config"),
        "ASSAY_SYSTEM_METRICS": "0",
        "ASSAY_CAPTURE_ENVIRONMENT": "0",
        **extra,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


@pytest.fixture
def assay_env(running_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """ASSAY_* pointing at the test server, with a private spool and config directory."""
    return point_sdk_at(running_server, tmp_path, monkeypatch)


@pytest.fixture(autouse=True)
def _no_leftover_run() -> Iterator[None]:
    yield
    import assay

    run = assay.active_run()
    if run is not None:
        run.finish(timeout=5)


@pytest.fixture
def project() -> str:
    return f"ana/p{uuid.uuid4().hex[:10]}"


def subprocess_env(assay_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DJANGO_"))}
    env.update(assay_env)
    env.update(extra)
    return env
