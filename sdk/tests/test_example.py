"""The README's quick start: examples/sklearn_train.py against the test server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, subprocess_env

import assay


def test_sklearn_example_logs_config_metrics_matrix_and_summary(assay_env, project):
    pytest.importorskip("sklearn")
    script = Path(REPO) / "examples" / "sklearn_train.py"
    done = subprocess.run(
        [sys.executable, str(script), "--project", project, "--epochs", "3"],
        env=subprocess_env(assay_env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    with assay.Api() as api:
        (record,) = api.runs(project)
        figures = api.figures(record.id)
    assert record.status == "finished"
    assert record.config["epochs"] == 3
    assert record.metrics["val/acc"]["count"] == 3
    assert record.summary["test/acc"] > 0.5
    assert figures[0]["name"] == "test"
    assert len(figures[0]["data"]["labels"]) == 10
    with assay.Api() as api:
        (model,) = api.client.list_artifacts(record.id)
    assert (model["path"], model["kind"]) == ("model.joblib", "model")
