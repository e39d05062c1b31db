"""The embedded profile, started as ``make run`` starts it: no DATABASE_URL, no REDIS_URL,
SQLite and local artifacts under ASSAY_VAR_DIR, one uvicorn process. A user and a token
are made with manage.py; a run is created, logged to and read back over real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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


@pytest.fixture
def embedded_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], Path]]:
    var_dir = tmp_path / "var"
    env = embedded_env(var_dir)
    manage(env, "migrate", "--noinput")
    port = free_port()
    log = (tmp_path / "uvicorn.log").open("w")
    process = subprocess.Popen(
        [UVICORN, "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (tmp_path / "uvicorn.log").read_text()
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the embedded server did not answer /healthz within 30 s"
            time.sleep(0.2)
        yield base, env, var_dir
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def test_embedded_profile_serves_the_api_end_to_end(embedded_server: tuple[str, dict[str, str], Path]) -> None:
    base, env, var_dir = embedded_server

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
    manage(
        env,
        "createsuperuser",
        "--noinput",
        extra_env={
            "DJANGO_SUPERUSER_USERNAME": "smoke",
            "DJANGO_SUPERUSER_EMAIL": "smoke@example.com",
            "DJANGO_SUPERUSER_PASSWORD": "smoke-test-password-1",
        },
    )
    token = manage(env, "create_token", "smoke").strip().splitlines()[-1]
    assert token.startswith("asy_")

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
