"""A script that forgets finish(), or dies of an exception, still ends its run."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import subprocess_env

import assay


def _run_script(assay_env, body: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(body)],
        env=subprocess_env(assay_env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    run_id = next(line.split("=", 1)[1] for line in done.stdout.splitlines() if line.startswith("RUN="))
    return run_id, done


def test_atexit_finishes_a_forgotten_run(assay_env, project):
    run_id, done = _run_script(
        assay_env,
        f"""
        import assay
        run = assay.init(project={project!r})
        print("RUN=" + run.id, flush=True)
        for step in range(300):
            run.log({{"loss": 1 / (step + 1)}})
        """,
    )
    assert done.returncode == 0, done.stderr
    record = assay.Api().run(run_id)
    assert record.status == "finished"
    assert record.metrics["loss"]["count"] == 300


def test_uncaught_exception_marks_the_run_failed(assay_env, project):
    run_id, done = _run_script(
        assay_env,
        f"""
        import assay
        run = assay.init(project={project!r})
        print("RUN=" + run.id, flush=True)
        run.log({{"loss": 1.0}})
        raise RuntimeError("out of patience")
        """,
    )
    assert done.returncode == 1
    assert "out of patience" in done.stderr
    record = assay.Api().run(run_id)
    assert record.status == "failed"
    assert record.info["error"]["type"] == "RuntimeError"
    assert record.info["error"]["message"] == "out of patience"
    assert record.metrics["loss"]["count"] == 1
