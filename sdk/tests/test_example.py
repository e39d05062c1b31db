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


def test_the_example_registers_two_versions_with_staging_on_the_first_and_the_cli_diffs_them(
    assay_env, project, capsys, tmp_path
):
    pytest.importorskip("sklearn")
    from assay import cli
    from assay.registry import get_version

    script = Path(REPO) / "examples" / "sklearn_train.py"
    for extra in (["--alias", "staging"], ["--eta0", "0.02"]):
        done = subprocess.run(
            [sys.executable, str(script), "--project", project, "--epochs", "2", "--register", "digits-sgd", *extra],
            env=subprocess_env(assay_env),
            cwd=tmp_path,  # outside any git checkout: no code to snapshot, nothing else differs
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
    assert "registered digits-sgd v2" in done.stdout

    staging = get_version(f"{project}/digits-sgd@staging")
    assert staging.number == 1
    (dataset,) = staging.raw["datasets"]
    assert (dataset["name"], dataset["rows"]) == ("sklearn-digits", 1797)
    assert dataset["digest"].startswith("sha256:")
    assert cli.main(["models", "diff", f"{project}/digits-sgd@staging", f"{project}/digits-sgd@v2"]) == 0
    out = capsys.readouterr().out
    assert "eta0" in out
    assert "binary" in out
