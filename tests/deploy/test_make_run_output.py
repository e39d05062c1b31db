"""Issue 16, bug 17: `make run`'s output is the useful lines only. The server is started with
the recipe's own command (``make -n run``) on the embedded profile; a run logs metrics and
uploads a joblib model through the SDK; neither start-up nor the upload and its scan write
a warning or an error."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_embedded_smoke import REPO, embedded_env, free_port, manage

pytestmark = pytest.mark.slow

NOISE = re.compile(r"WARNING|ERROR|Warning:|Traceback|lifespan|No directory at", re.IGNORECASE)

SDK_RUN = """
import sys
import joblib
import assay

run = assay.init(project="smoke/proj", name="quiet")
run.log({"loss": 0.5})
joblib.dump({"weights": list(range(100)), "name": "m"}, sys.argv[1])
run.log_model(sys.argv[1])
run.finish()
"""


def test_make_run_prints_no_warning_or_error(tmp_path: Path) -> None:
    var_dir = tmp_path / "var"
    env = embedded_env(var_dir)
    manage(env, "migrate", "--noinput", "-v", "0")
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
    port = free_port()
    recipe = subprocess.run(
        ["make", "-n", "-o", ".venv/.runtime", "-o", "frontend", "-o", "migrate", "run", f"PORT={port}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    command = recipe.split("\n", 1)[1]  # the banner's echo is the first line
    log_path = tmp_path / "make-run.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            ["bash", "-c", f"exec env {command.replace(chr(92) + chr(10), ' ')}"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while True:
                assert server.poll() is None, log_path.read_text()
                try:
                    if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "make run's server did not answer within 30 s"
                time.sleep(0.2)

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
            artifacts = httpx.get(
                f"{base}/api/v1/runs/{_run_id(sdk.stderr)}/artifacts/",
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).json()
            assert [a["status"] for a in artifacts] == ["ready"], artifacts
        finally:
            server.terminate()
            server.wait(timeout=20)

    output = log_path.read_text()
    assert "Uvicorn running on" in output  # the useful line stays
    noisy = [line for line in output.splitlines() if NOISE.search(line)]
    assert noisy == [], output


def _run_id(stderr: str) -> str:
    found = re.search(r"/runs/([0-9a-f]{32})/", stderr)
    assert found, stderr
    return found.group(1)
