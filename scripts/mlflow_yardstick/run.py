"""MLflow's own REST tests against Assay: the yardstick of issue 18 (``make mlflow-yardstick``).

    .venv/bin/python scripts/mlflow_yardstick/run.py /path/to/mlflow-checkout [pytest args…]

MLflow's ``tests/tracking/test_rest_tracking.py`` and ``tests/tracking/test_model_registry.py``
start MLflow's own server in their client fixtures. This runner keeps the tests as they are
and replaces only that: it

1. makes a fresh database ``<DATABASE_URL's name>_yardstick`` on the same PostgreSQL,
   migrates it and creates a user, a team and an API token there;
2. starts Assay (uvicorn, ASGI) on that database and Redis;
3. copies the two test files and the helpers they import from the checkout into a
   temporary directory (nothing of MLflow's is kept in this repository), with
   ``mlflow_conftest.py`` of this directory as the root conftest instead of MLflow's;
4. runs them with pytest in ``.venv-mlflow`` (the pinned ``mlflow`` client): every test
   gets a new Assay project and a client of its endpoint ``/mlflow/<team>/<project>``;
5. prints the tally (passed / failed / deselected with the reason) and writes it as JSON
   (``tally.json``) next to the JUnit report in ``var/mlflow-yardstick/`` (or
   ``$ASSAY_YARDSTICK_OUT``).

The checkout is any clone of https://github.com/mlflow/mlflow, best at the tag of the client
pinned in ``requirements-mlflow.lock``::

    git clone --depth 1 --branch v3.17.2 https://github.com/mlflow/mlflow /tmp/mlflow-src

(PyPI's sdist of mlflow holds no tests.)
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MLFLOW_PYTHON = REPO / ".venv-mlflow" / "bin" / "python"
UVICORN = REPO / ".venv" / "bin" / "uvicorn"

# What the two test files import from MLflow's tests/ (its root conftest is replaced).
COPIED = [
    "tests/__init__.py",
    "tests/helper_functions.py",
    "tests/integration/__init__.py",
    "tests/integration/utils.py",
    "tests/tracking/__init__.py",
    "tests/tracking/conftest.py",
    "tests/tracking/integration_test_utils.py",
    "tests/tracking/test_rest_tracking.py",
    "tests/tracking/test_model_registry.py",
]
TEST_FILES = ["tests/tracking/test_rest_tracking.py", "tests/tracking/test_model_registry.py"]


def _database_url() -> tuple[str, str]:
    """(the yardstick's database URL, the maintenance database URL) from DATABASE_URL."""
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/assay")
    parts = urlsplit(base)
    name = parts.path.lstrip("/") or "assay"
    return (
        urlunsplit(parts._replace(path=f"/{name}_yardstick")),
        urlunsplit(parts._replace(path="/postgres")),
    )


def _fresh_database(url: str, maintenance: str) -> None:
    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(maintenance, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def _seed(url: str) -> dict[str, str]:
    """Migrate the yardstick's database and create its user, team and token (Django, in-process)."""
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.core.management import call_command

    from accounts.models import User
    from accounts.services import team_create, token_create

    call_command("migrate", interactive=False, verbosity=0)
    user = User.objects.create_user(username="yardstick", email="yardstick@example.com")
    team = team_create(name="mlflow-tests", owner=user)
    return {"team": team.name, "token": token_create(user=user, name="mlflow-yardstick").raw, "user": user.username}


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(url: str, var_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "ASSAY_SECRET_KEY": "mlflow-yardstick-secret-key-0123456789-abcdefghijklmnopqrstuv",
        "ASSAY_VAR_DIR": str(var_dir),
        "ASSAY_PUBLIC_URL": base,
        "ASSAY_CHANNELS_PREFIX": "yardstick-ch",
        "ASSAY_LIVE_PREFIX": "yardstick-live",
        "ASSAY_DB_POOL_MAX": "8",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    log = (var_dir / "server.log").open("a")
    process = subprocess.Popen(
        [str(UVICORN), "config.asgi:application", "--host", "127.0.0.1", "--port", str(port), "--no-access-log"],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server stopped: see {var_dir / 'server.log'}")
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{base}/healthz", timeout=1) as answer:
            if answer.status == 200:
                return process, base
        if time.monotonic() > deadline:
            process.kill()
            raise SystemExit("the server did not start within 60 s")
        time.sleep(0.2)


def _assemble(checkout: Path, work: Path) -> None:
    for relative in COPIED:
        source = checkout / relative
        if not source.exists():
            raise SystemExit(f"{source} is missing: is {checkout} a checkout of mlflow/mlflow?")
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    shutil.copyfile(HERE / "mlflow_conftest.py", work / "conftest.py")
    (work / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")


def _tally(junit: Path, deselected: Path) -> dict[str, Any]:
    cases: list[dict[str, str]] = []
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314 (our own pytest wrote it)
        outcome, detail = "passed", ""
        for child in case:
            if child.tag in ("failure", "error", "skipped"):
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                detail = (child.get("message") or "").splitlines()[0][:300] if child.get("message") else ""
        cases.append({"test": f"{case.get('classname')}::{case.get('name')}", "outcome": outcome, "detail": detail})
    dropped = json.loads(deselected.read_text()) if deselected.exists() else []
    counts = {k: sum(1 for c in cases if c["outcome"] == k) for k in ("passed", "failed", "error", "skipped")}
    return {"counts": {**counts, "deselected": len(dropped)}, "cases": cases, "deselected": dropped}


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__)
        return 2
    checkout = Path(argv[0]).resolve()
    extra = argv[1:]
    if not MLFLOW_PYTHON.exists():
        raise SystemExit(f"{MLFLOW_PYTHON} is missing: run `make .venv-mlflow/.installed`")
    out_dir = Path(os.environ.get("ASSAY_YARDSTICK_OUT", REPO / "var" / "mlflow-yardstick"))
    out_dir.mkdir(parents=True, exist_ok=True)
    url, maintenance = _database_url()
    _fresh_database(url, maintenance)
    seed = _seed(url)
    var_dir = Path(tempfile.mkdtemp(prefix="assay-yardstick-"))
    work = Path(tempfile.mkdtemp(prefix="mlflow-tests-"))
    _assemble(checkout, work)
    process, base = _start_server(url, var_dir)
    junit, deselected = out_dir / "junit.xml", out_dir / "deselected.json"
    deselected.unlink(missing_ok=True)
    try:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(work),
            "LANG": "C.UTF-8",
            "ASSAY_YARDSTICK_URL": base,
            "ASSAY_YARDSTICK_TEAM": seed["team"],
            "ASSAY_YARDSTICK_USER": seed["user"],
            "ASSAY_YARDSTICK_DESELECTED": str(deselected),
            "MLFLOW_TRACKING_TOKEN": seed["token"],
            "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "60",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "GIT_PYTHON_REFRESH": "quiet",
        }
        command = [
            str(MLFLOW_PYTHON),
            "-m",
            "pytest",
            *TEST_FILES,
            f"--junitxml={junit}",
            "-q",
            "--timeout=300",
            *extra,
        ]
        started = time.monotonic()
        subprocess.run(command, cwd=work, env=env, check=False)
        seconds = time.monotonic() - started
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
        shutil.rmtree(work, ignore_errors=True)
    tally = _tally(junit, deselected)
    tally["seconds"] = round(seconds)
    tally["run_id"] = uuid.uuid4().hex
    (out_dir / "tally.json").write_text(json.dumps(tally, indent=1))
    counts = tally["counts"]
    ran = counts["passed"] + counts["failed"] + counts["error"]
    print(
        f"\nMLflow yardstick: {counts['passed']} passed of {ran} run ({counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped), {counts['deselected']} deselected; "
        f"{tally['seconds']} s. Details: {out_dir / 'tally.json'}"
    )
    return 0 if counts["failed"] == counts["error"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
