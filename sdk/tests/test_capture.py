"""What a run records about itself, read back from the server: git state (credentials
stripped from the remote, the uncommitted diff capped), command line and entry point,
environment, GPUs and GPU metrics (from an ``nvidia-smi`` on PATH: there is no GPU here, so
a script prints what the real tool prints), system metrics, start/end/duration and peak
memory; and each capture turned off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from conftest import subprocess_env

import assay
from assay.capture import MAX_DIFF_BYTES

NVIDIA_SMI = """#!/bin/sh
case "$*" in
  *utilization.gpu*) echo "37, 1024" ;;
  *) echo "Fake GPU 80GB, 81920, 550.54" ;;
esac
"""


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _repo(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    _git(work, "init", "--quiet", "-b", "main")
    _git(work, "config", "user.email", "ana@example.com")
    _git(work, "config", "user.name", "Ana")
    (work / "data.txt").write_text("v1\n")
    _git(work, "add", "data.txt")
    _git(work, "commit", "--quiet", "-m", "first")
    _git(work, "remote", "add", "origin", "https://ana:ghp_secret123@git.example.com/team/repo.git")
    (work / "data.txt").write_text("".join(f"line {i} of an uncommitted change\n" for i in range(10_000)))
    return work


def _run_script(assay_env: dict[str, str], work: Path, project: str, tmp_path: Path, **extra: str) -> str:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / "nvidia-smi"
    fake.write_text(NVIDIA_SMI)
    fake.chmod(0o755)
    script = work / "train.py"
    script.write_text(
        "import time, assay\n"
        f"run = assay.init(project={project!r})\n"
        "buffer = bytearray(64 * 1024 * 1024)  # peak memory above 64 MiB\n"
        "time.sleep(0.7)\n"
        "run.finish()\n"
        "print('RUN=' + run.id)\n"
    )
    settings = {"ASSAY_CAPTURE_ENVIRONMENT": "1", "ASSAY_SYSTEM_METRICS": "0.2", **extra}
    env = subprocess_env(assay_env, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **settings)
    done = subprocess.run(
        [sys.executable, str(script), "--epochs", "3"], cwd=work, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return next(line[4:] for line in done.stdout.splitlines() if line.startswith("RUN="))


def test_code_environment_gpu_and_system_are_captured(assay_env, project, tmp_path):
    work = _repo(tmp_path)
    run_id = _run_script(assay_env, work, project, tmp_path)
    record = assay.Api().run(run_id)

    code = record.info["code"]
    assert code["entry_point"] == str(work / "train.py")
    assert code["command"][1:] == [str(work / "train.py"), "--epochs", "3"]
    git = code["git"]
    assert git["remote"] == "https://git.example.com/team/repo.git"  # no user, no token
    assert "secret" not in str(record.info)
    assert (git["branch"], git["dirty"], len(git["commit"])) == ("main", True, 40)
    assert git["diff_truncated"] is True
    assert len(git["diff"].encode()) <= MAX_DIFF_BYTES
    assert git["diff"].startswith("diff --git a/data.txt b/data.txt")

    environment = record.info["environment"]
    assert environment["python"] == ".".join(map(str, sys.version_info[:3]))
    assert environment["cpu_count"] == os.cpu_count()
    assert environment["host"]
    assert environment["os"]
    assert "httpx" in environment["packages"]
    assert environment["gpus"] == [{"name": "Fake GPU 80GB", "memory_mb": 81920.0, "driver": "550.54"}]

    system = record.info["system"]
    assert system["peak_memory_mb"] > 64
    assert 0.5 < system["duration_seconds"] < 30
    assert system["start_time"] < system["end_time"]
    assert {"system/cpu_percent", "system/rss_mb", "system/gpu0/utilization_percent"} <= set(record.metrics)
    assert record.metrics["system/gpu0/memory_used_mb"]["last"] == 1024.0


def test_each_capture_can_be_turned_off(assay_env, project, tmp_path):
    work = _repo(tmp_path)
    run_id = _run_script(
        assay_env,
        work,
        project,
        tmp_path,
        ASSAY_CAPTURE_CODE="0",
        ASSAY_CAPTURE_ENVIRONMENT="0",
        ASSAY_SYSTEM_METRICS="0",
    )
    record = assay.Api().run(run_id)

    assert "code" not in record.info
    assert "environment" not in record.info
    assert not [key for key in record.metrics if key.startswith("system/")]
    assert record.info["system"]["peak_memory_mb"] > 0  # start, end and peak are always kept
