"""Issue 2's acceptance scenario with plain curl (``scripts/curl-demo.sh``) against a real
server (uvicorn, PostgreSQL, Redis): a run, 100,000 points in 10 batches with one sent
twice, exactly 100,000 points read back, and a 500-point downsampled history."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from conftest import REPO, Server

pytestmark = pytest.mark.slow


def test_the_curl_demo_logs_and_reads_back_exactly_100000_points(running_server: Server) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        ["bash", str(REPO / "scripts" / "curl-demo.sh"), "ana/curl-demo"],
        env={**os.environ, "ASSAY_URL": running_server.url, "ASSAY_TOKEN": running_server.token},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    answers = [line for line in lines if line.startswith('{"batch_id"')]
    assert len(answers) == 11
    assert sum('"duplicate":true' in line for line in answers) == 1
    assert "raw points read back: 100000 (total 100000)" in lines
    assert "downsampled: 500 points, method minmax-lttb" in lines
    assert lines[-1] == "run finished"  # issue 16, bug 16: the run does not stay "running"
    run_id = lines[0].split()[-1]
    with running_server.http() as http:
        summary = {s["key"]: s for s in http.get(f"/runs/{run_id}/metrics/").json()}
        assert http.get(f"/runs/{run_id}/").json()["status"] == "finished"
    assert summary["loss"]["count"] == 100_000
    assert summary["loss"]["last_step"] == 99_999
