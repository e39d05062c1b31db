"""The MLflow API against the real client: one uvicorn process per test module serving the
test database (PostgreSQL) and Redis, and :func:`mlflow_client`, which runs a script with the
real ``mlflow`` package in its own interpreter (``.venv-mlflow``: mlflow's pins clash with
the project's, see the Makefile).

The module's people, project and tokens are committed once (the server reads them from its
own connections) and flushed when the module ends, as a transactional test does:

- ``owner`` owns team ``acme`` and its project ``acme/proj`` (admin there);
- ``viewer`` holds a viewer grant on ``acme/proj``;
- ``outsider`` belongs to nothing of it.

Scripts get ``mlflow``, ``MlflowClient``, ``client`` (a client of the project), ``out`` (a
dict: what the script puts there comes back as JSON) and ``error_of(fn, *args, **kwargs)``
(the ``error_code`` and message of the MlflowException ``fn`` raised, or None).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from accounts.models import ProjectRole
from accounts.services import team_create, token_create
from tests.e2e.test_embedded_smoke import UVICORN, free_port
from tests.factories import ProjectFactory, ProjectGrantFactory, UserFactory
from tests.helpers import stop_process

REPO = Path(__file__).resolve().parents[2]
MLFLOW_PYTHON = REPO / ".venv-mlflow" / "bin" / "python"
RESULT_MARK = "@@mlflow-result@@"

PRELUDE = """
import json, os, sys
import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

out = {}
client = MlflowClient()

def error_of(fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except MlflowException as exc:
        return {"code": exc.error_code, "message": exc.message}
    return None
"""


@dataclass
class MlflowServer:
    """The server of a test module and the tokens of its people."""

    url: str
    tokens: dict[str, str] = field(default_factory=dict)
    var_dir: Path = Path()

    def tracking_uri(self, project: str = "acme/proj") -> str:
        return f"{self.url}/mlflow/{project}"

    def http(self, who: str | None = "owner", project: str = "acme/proj") -> httpx.Client:
        """An HTTP client of the project's MLflow API (for what the mlflow client never sends)."""
        headers = {"Authorization": f"Bearer {self.tokens[who]}"} if who else {}
        return httpx.Client(base_url=self.tracking_uri(project) + "/", headers=headers, timeout=30)


def mlflow_client(
    server: MlflowServer,
    script: str,
    *,
    who: str = "owner",
    project: str = "acme/proj",
    env: dict[str, str] | None = None,
    timeout: float = 180,
) -> dict[str, Any]:
    """Run ``script`` with the real mlflow client as ``who`` against ``project``; return its ``out``."""
    if not MLFLOW_PYTHON.exists():
        pytest.fail(f"{MLFLOW_PYTHON} is missing: run `make .venv-mlflow/.installed`")
    home = server.var_dir / f"home-{uuid.uuid4().hex[:8]}"
    home.mkdir(parents=True)
    run_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "MLFLOW_TRACKING_URI": server.tracking_uri(project),
        "MLFLOW_TRACKING_TOKEN": server.tokens[who],
        # An error must come back at once, not after minutes of retries.
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "DO_NOT_TRACK": "true",
        "GIT_PYTHON_REFRESH": "quiet",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    source = PRELUDE + textwrap.dedent(script) + f"\nprint({RESULT_MARK!r} + json.dumps(out, default=str))\n"
    done = subprocess.run(
        [str(MLFLOW_PYTHON), "-c", source],
        env=run_env,
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"the mlflow script failed ({done.returncode}):\n{done.stderr[-6000:]}")
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            result: dict[str, Any] = json.loads(line[len(RESULT_MARK) :])
            return result
    pytest.fail(f"the mlflow script printed no result:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def _start(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [UVICORN, "config.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=REPO,
        env=env,
        stdout=log.open("a"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, log.read_text()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        assert time.monotonic() < deadline, "the server did not start within 60 s"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def mlflow_server(
    django_db_setup: None,
    django_db_blocker: Any,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[MlflowServer]:
    var_dir = tmp_path_factory.mktemp("mlflow-server")
    tag = uuid.uuid4().hex[:12]
    with django_db_blocker.unblock():
        owner = UserFactory.create(username="owner")
        viewer = UserFactory.create(username="viewer")
        outsider = UserFactory.create(username="outsider")
        team = team_create(name="acme", owner=owner)
        project = ProjectFactory.create(team=team, name="proj", created_by=owner)
        ProjectGrantFactory.create(project=project, user=viewer, role=ProjectRole.VIEWER)
        tokens = {
            "owner": token_create(user=owner, name="mlflow").raw,
            "owner_read": token_create(user=owner, name="mlflow-read", scope="read").raw,
            "viewer": token_create(user=viewer, name="mlflow").raw,
            "outsider": token_create(user=outsider, name="mlflow").raw,
        }
        database = connection.settings_dict["NAME"]
    port = free_port()
    server = MlflowServer(url=f"http://127.0.0.1:{port}", tokens=tokens, var_dir=var_dir)
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{database}",
        "REDIS_URL": settings.REDIS_URL,
        "ASSAY_CHANNELS_PREFIX": f"test-ch:{tag}",
        "ASSAY_LIVE_PREFIX": f"test-live:{tag}",
        "ASSAY_SECRET_KEY": "mlflow-compat-test-secret-key-0123456789-abcdefghijklmnop",
        "ASSAY_VAR_DIR": str(var_dir),
        "ASSAY_PUBLIC_URL": server.url,
        "ASSAY_DB_POOL_MIN": "1",
        "ASSAY_DB_POOL_MAX": "4",
        **getattr(request.module, "SERVER_ENV", {}),  # a module's own settings of its server
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = _start(env, port, var_dir / "server.log")
    try:
        yield server
    finally:
        stop_process(process)
        with django_db_blocker.unblock():
            # What a transactional test does when it ends: the next module starts empty.
            call_command("flush", interactive=False, verbosity=0)
