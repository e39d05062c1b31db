"""The SDK promises Python ≥ 3.9 (``requires-python``): a real 3.9 interpreter installs it
with pip and logs a run — config from a dataclass and an argparse.Namespace, metrics,
params, tags, summary, a confusion matrix, an artifact, code and environment capture, an
offline run synced by the ``assay`` command — against the live test server.

The 3.9 virtualenv is cached outside the checkout (``$XDG_CACHE_HOME/assay-tests/py39``,
default ``~/.cache``; linters never walk it) and rebuilt only when ``sdk/pyproject.toml``
changes; the run itself imports the SDK's sources (PYTHONPATH), so an edit is checked
without reinstalling. ``ASSAY_TEST_PY39`` names another interpreter.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest
from conftest import REPO, subprocess_env

import assay

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("py39")]

SDK = REPO / "sdk"
VENV = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assay-tests" / "py39"
CANDIDATES = [os.environ.get("ASSAY_TEST_PY39", ""), "/root/.pyenv/versions/3.9.18/bin/python", "python3.9"]


def _python39() -> str:
    for candidate in CANDIDATES:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    pytest.skip("no Python 3.9 interpreter here (set ASSAY_TEST_PY39)")
    raise AssertionError  # pragma: no cover


def _venv() -> Path:
    """A 3.9 virtualenv where ``pip install ./sdk[system]`` ran (cached by pyproject hash)."""
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / "py39.lock", "wb") as lock:  # one builder at a time
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        return _build_venv()


def _build_venv() -> Path:
    stamp = hashlib.sha256((SDK / "pyproject.toml").read_bytes()).hexdigest()[:16]
    python = VENV / "bin" / "python"
    marker = VENV / f".installed-{stamp}"
    if marker.exists() and python.exists():
        return VENV
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([_python39(), "-m", "venv", str(VENV)], check=True, timeout=120)
    with tempfile.TemporaryDirectory(prefix="assay-sdk-copy-") as folder:
        # Built from a copy, so pip leaves no build/ or egg-info in the checkout.
        copy = Path(folder) / "sdk"
        shutil.copytree(SDK, copy, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__"))
        done = subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", f"{copy}[system]"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    assert done.returncode == 0, f"pip install ./sdk failed on Python 3.9:\n{done.stderr[-3000:]}"
    marker.touch()
    return VENV


SCRIPT = """
import argparse, dataclasses, json, sys, time
assert sys.version_info[:2] == (3, 9), sys.version
import assay, assay.cli, assay.watch, assay.registry, assay.reviews, assay.api  # every module imports

@dataclasses.dataclass
class Config:
    lr: float = 0.01
    layers: int = 2

with assay.init(project=PROJECT, experiment="py39", config=Config(), tags={"python": "3.9"}) as run:
    run.update_config(argparse.Namespace(batch_size=32))
    run.log_params({"optimizer": {"name": "sgd"}})
    for step in range(500):
        run.log({"loss": 1.0 / (step + 1), "acc": step / 500})
    time.sleep(0.5)  # room for two system/* samples
    run.summary["test_acc"] = 0.93
    run.log_confusion_matrix([0, 1, 1, 0], [0, 1, 0, 0], labels=["cat", "dog"], name="test")
    run.log_artifact(ARTIFACT)
online = run.id

offline = assay.init(project=PROJECT, experiment="py39", mode="offline")
for step in range(100):
    offline.log({"loss": float(step)})
offline.finish()

with assay.Api() as api:
    record = api.run(online)
    history = api.history(online, "loss")
print("RESULT=" + json.dumps({"id": online, "status": record.status, "points": len(history),
                              "python": record.info.get("environment", {}).get("python")}))
"""


def test_the_sdk_installs_and_logs_a_run_on_python_3_9(assay_env, project, tmp_path: Path):
    venv = _venv()
    artifact = tmp_path / "weights.bin"
    artifact.write_bytes(b"\x00\x01" * 1000)
    env = subprocess_env(
        assay_env,
        PYTHONPATH=str(SDK / "src"),
        ASSAY_CAPTURE_ENVIRONMENT="1",
        ASSAY_SYSTEM_METRICS="0.2",
        ASSAY_SILENT="1",
    )
    script = f"PROJECT = {project!r}\nARTIFACT = {str(artifact)!r}\n" + textwrap.dedent(SCRIPT)
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-X", "dev", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT="))
    import json

    result = json.loads(line.split("=", 1)[1])
    assert result["status"] == "finished"
    assert result["points"] == 500
    assert str(result["python"]).startswith("3.9")

    # the `assay` command of the 3.9 install uploads the offline run
    sync = subprocess.run(
        [str(venv / "bin" / "assay"), "sync"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert sync.returncode == 0, sync.stderr[-3000:]

    with assay.Api() as api:
        runs = {r.id: r for r in api.runs(project)}
        record = api.run(result["id"])
        figures = api.figures(result["id"])
        offline = next(r for r in runs.values() if r.id != result["id"])
        assert len(api.history(offline.id, "loss")) == 100
        artifacts = api.client.list_artifacts(result["id"])
    assert len(runs) == 2
    assert offline.status == "finished"
    assert record.config == {"lr": 0.01, "layers": 2, "batch_size": 32}
    assert record.params == {"optimizer.name": "sgd"}
    assert record.tags == {"python": "3.9"}
    assert record.summary["test_acc"] == 0.93
    assert any(key.startswith("system/") for key in record.metrics)
    assert figures[0]["data"]["matrix"] == [[2, 0], [1, 1]]
    assert [(a["path"], a["size"]) for a in artifacts] == [("weights.bin", 2000)]
