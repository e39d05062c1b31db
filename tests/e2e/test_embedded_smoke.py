"""The embedded profile, started as ``make run`` starts it (the recipe's own command): no
DATABASE_URL, no REDIS_URL, SQLite and local artifacts under ASSAY_VAR_DIR, one uvicorn
process. A user and a token are made with manage.py; a run is created, logged to and read
back over real HTTP; the SDK uploads a joblib model, and `make run`'s output stays clean."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from django.conf import settings

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
UVICORN = str(VENV_BIN / "uvicorn")

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def embedded_env(var_dir: Path) -> dict[str, str]:
    """The caller's environment without anything the test settings put there."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"} and not k.startswith("ASSAY_")
    }
    env["ASSAY_VAR_DIR"] = str(var_dir)
    # The static files the session collected (tests/conftest.py): `make run`'s own `static`
    # step would collect the same files again into var_dir, for ~20 s.
    env["ASSAY_STATIC_ROOT"] = str(settings.STATIC_ROOT)
    return env


def manage(env: dict[str, str], *args: str, extra_env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=REPO,
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def superuser_token(env: dict[str, str], username: str) -> str:
    """A superuser and an API token, made the documented way (manage.py)."""
    manage(
        env,
        "createsuperuser",
        "--noinput",
        extra_env={
            "DJANGO_SUPERUSER_USERNAME": username,
            "DJANGO_SUPERUSER_EMAIL": f"{username}@example.com",
            "DJANGO_SUPERUSER_PASSWORD": f"{username}-test-password-1",
        },
    )
    token = manage(env, "create_token", username).strip().splitlines()[-1]
    assert token.startswith("asy_")
    return token


def make_run_command(port: int) -> str:
    """The server command of `make run PORT=<port>`, as make would run it (``make -n``),
    prerequisites left alone: what a user starts, word for word."""
    # Under `make test` the outer make's MAKEFLAGS/MAKELEVEL would make this one print
    # "Entering directory" first: run it as a user's shell would.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS", "MAKEOVERRIDES"}}
    keep = ["-o", ".venv/.runtime", "-o", "frontend", "-o", "static", "-o", "migrate"]  # prerequisites left alone
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", *keep, "run", f"PORT={port}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    banner, command = recipe.split("\n", 1)
    assert banner.startswith("echo "), recipe  # the banner's echo is the first line
    return "exec env " + command.replace("\\\n", " ").strip()


@dataclass
class EmbeddedServer:
    base: str
    env: dict[str, str]
    var_dir: Path
    log_path: Path


@pytest.fixture(scope="module")
def embedded_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedServer]:
    """One server for the module (a migration of SQLite takes a while), started with
    `make run`'s own command."""
    tmp_path = tmp_path_factory.mktemp("embedded")
    var_dir = tmp_path / "var"
    env = embedded_env(var_dir)
    # the webhook test's receiver is on loopback; its retry comes after half a second
    env |= {"ASSAY_WEBHOOK_ALLOW": "127.0.0.1", "ASSAY_WEBHOOK_RETRY_BASE_MS": "500"}
    manage(env, "migrate", "--noinput", "-v", "0")
    port = free_port()
    log_path = tmp_path / "make-run.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        ["bash", "-c", make_run_command(port)], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, log_path.read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the embedded server did not answer /healthz within 30 s"
            time.sleep(0.2)
        yield EmbeddedServer(base, env, var_dir, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_embedded_profile_serves_the_api_end_to_end(embedded_server: EmbeddedServer) -> None:
    base, env, var_dir = embedded_server.base, embedded_server.env, embedded_server.var_dir

    # the embedded profile: SQLite under the var dir, no Redis
    ready = httpx.get(base + "/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    checks = ready.json()["checks"]
    assert checks["database"] == {"status": "ok"}
    assert checks["redis"] == {"status": "not configured"}
    assert checks["artifacts"] == {"status": "ok"}
    assert (var_dir / "assay.sqlite3").exists()
    assert (var_dir / "secret_key").exists()

    # a user and a token, made the documented way
    token = superuser_token(env, "smoke")

    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10) as client:
        assert client.get("/api/v1/me/").json()["username"] == "smoke"

        created = client.post("/api/v1/runs/", json={"project": "smoke/proj", "name": "smoke-run"})
        assert created.status_code == 201, created.text
        run = created.json()
        assert run["project"] == "smoke/proj"

        batch = {
            "batch_id": str(uuid.uuid4()),
            "params": {"lr": "0.01"},
            "tags": {"k": "v"},
            "metrics": [
                {"key": "loss", "step": s, "value": 1.0 / (s + 1), "timestamp": 1764150000000} for s in range(100)
            ],
        }
        logged = client.post(f"/api/v1/runs/{run['id']}/log/", json=batch)
        assert logged.json() == {"batch_id": batch["batch_id"], "duplicate": False, "points": 100}
        assert client.post(f"/api/v1/runs/{run['id']}/log/", json=batch).json()["duplicate"] is True

        history = client.get(f"/api/v1/runs/{run['id']}/metrics/loss/").json()
        assert history["total"] == 100
        assert [p["step"] for p in history["points"]] == list(range(100))

        detail = client.get(f"/api/v1/runs/{run['id']}/").json()
        assert detail["params"] == {"lr": "0.01"}
        assert detail["tags"] == {"k": "v"}
        assert detail["metrics"]["loss"]["count"] == 100
        assert detail["metrics"]["loss"]["last"] == pytest.approx(0.01)

        assert client.patch(f"/api/v1/runs/{run['id']}/", json={"status": "finished"}).json()["end_time"]

        # config.<dotted key> in the query language works on SQLite too (issue 16)
        for name, config in (("cfg-a", {"lr": 0.1, "optimizer": {"name": "adam"}}), ("cfg-b", {"lr": 0.001})):
            made = client.post("/api/v1/runs/", json={"project": "smoke/proj", "name": name, "config": config})
            assert made.status_code == 201, made.text

        def found(filter_text: str) -> list[str]:
            answer = client.get("/api/v1/runs/", params={"project": "smoke/proj", "filter": filter_text})
            assert answer.status_code == 200, answer.text
            return sorted(r["name"] for r in answer.json()["results"])

        assert found("config.lr > 0.01") == ["cfg-a"]
        assert found('config.optimizer.name = "adam"') == ["cfg-a"]
        assert found("config.lr < 0.01 or config.optimizer.name is not null") == ["cfg-a", "cfg-b"]

    assert httpx.get(base + "/api/v1/projects/", timeout=5).status_code == 401


NOISE = re.compile(r"WARNING|ERROR|Warning:|Traceback|lifespan|No directory at", re.IGNORECASE)

SDK_RUN = """
import sys
import joblib
import assay

run = assay.init(project="quiet/proj", name="quiet")
run.log({"loss": 0.5})
joblib.dump({"weights": list(range(100)), "name": "m"}, sys.argv[1])
run.log_model(sys.argv[1])
run.finish()
"""


def test_make_run_prints_no_warning_or_error(embedded_server: EmbeddedServer, tmp_path: Path) -> None:
    """Issue 16, bug 17: start-up and a joblib upload (processed and scanned in-process) write
    the useful lines only: no "No directory at", no "lifespan unsupported", no kombu warning,
    no scanner error."""
    base, env = embedded_server.base, embedded_server.env
    token = superuser_token(env, "quiet")
    before = embedded_server.log_path.read_text()
    startup = before.split("Uvicorn running on", 1)
    assert len(startup) == 2, before  # the useful line is there

    sdk = subprocess.run(
        [sys.executable, "-c", SDK_RUN, str(tmp_path / "model.joblib")],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("ASSAY_")},
            "ASSAY_URL": base,
            "ASSAY_TOKEN": token,
            "ASSAY_DIR": str(tmp_path / "sdk"),
            "PYTHONPATH": str(REPO / "sdk" / "src"),
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert sdk.returncode == 0, sdk.stderr
    run_id = re.search(r"/runs/([0-9a-f]{32})/", sdk.stderr)
    assert run_id, sdk.stderr
    artifacts = httpx.get(
        f"{base}/api/v1/runs/{run_id.group(1)}/artifacts/", headers={"Authorization": f"Bearer {token}"}, timeout=10
    ).json()
    assert [a["status"] for a in artifacts] == ["ready"], artifacts

    during = embedded_server.log_path.read_text()[len(before) :]
    noisy = [line for line in (startup[0] + during).splitlines() if NOISE.search(line)]
    assert noisy == [], startup[0] + during


def test_a_webhook_retry_waits_on_the_embedded_scheduler(embedded_server: EmbeddedServer) -> None:
    """No broker, no worker: the first attempt is made after the commit in the server, the
    retry (the receiver answered 500) half a second later by the embedded scheduler, not at
    once and not inside the request that caused the event."""
    base, env = embedded_server.base, embedded_server.env
    token = superuser_token(env, "hooks")
    arrivals: list[tuple[str, float]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            arrivals.append((self.headers.get("X-Assay-Delivery", ""), time.monotonic()))
            status = 500 if len(arrivals) == 1 else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            run = client.post("/api/v1/runs/", json={"project": "hooks/proj", "name": "hooked"}).json()
            hook = client.post(
                "/api/v1/projects/hooks/proj/webhooks/",
                json={
                    "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
                    "secret": "s" * 32,
                    "events": ["run.finished"],
                },
            )
            assert hook.status_code == 201, hook.text
            finished = client.patch(f"/api/v1/runs/{run['id']}/", json={"status": "finished"})
            answered = time.monotonic()
            assert finished.status_code == 200, finished.text
            deadline = time.monotonic() + 20
            while len(arrivals) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert len(arrivals) == 2, arrivals
            (first, at_first), (second, at_second) = arrivals
            assert first == second  # the same delivery, tried again
            assert at_second - at_first >= 0.45  # after its backoff, not at once
            assert at_second > answered  # and not inside the request that caused it
            deliveries = client.get(f"/api/v1/projects/hooks/proj/webhooks/{hook.json()['id']}/deliveries/").json()
            delivered = deliveries["results"] if isinstance(deliveries, dict) else deliveries
            assert [(d["state"], len(d["attempts"])) for d in delivered] == [("delivered", 2)]
    finally:
        receiver.shutdown()
