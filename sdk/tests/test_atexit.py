"""A script that forgets finish(), or dies of an exception, still ends its run."""

from __future__ import annotations

import signal
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


LOOP_THEN_WAIT = """
    for step in range(2_000):
        run.log({"loss": 1 / (step + 1), "acc": step / 2_000})
    print("READY", flush=True)
    time.sleep(120)  # still "training" when the scheduler stops the job
"""


def _start_and_terminate(assay_env, head: str) -> tuple[str, subprocess.CompletedProcess[str]]:
    """Run ``head`` and a training loop until it prints READY, then SIGTERM it as a scheduler would."""
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(head) + textwrap.dedent(LOOP_THEN_WAIT)],
        env=subprocess_env(assay_env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = ""
    for line in proc.stdout:
        if line.startswith("RUN="):
            run_id = line.strip().split("=", 1)[1]
        if line.startswith("READY"):
            break
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    return run_id, subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def test_sigterm_sends_what_is_queued_and_marks_the_run_killed(assay_env, project):
    run_id, done = _start_and_terminate(
        assay_env,
        f"""
        import time, assay
        run = assay.init(project={project!r})
        print("RUN=" + run.id, flush=True)
        """,
    )
    # the process still dies of SIGTERM (exit status -15), after recording the end
    assert done.returncode == -signal.SIGTERM, done.stderr
    record = assay.Api().run(run_id)
    assert record.status == "killed"
    assert record.info["error"]["type"] == "SIGTERM"
    assert 'File "<string>"' in record.info["error"]["traceback"]  # where the job was
    assert record.end_time is not None
    assert record.metrics["loss"]["count"] == 2_000
    assert record.metrics["acc"]["count"] == 2_000


def test_sigterm_of_an_offline_run_spools_everything_and_sync_records_it_killed(assay_env, project):
    _, done = _start_and_terminate(
        assay_env,
        f"""
        import time, assay
        run = assay.init(project={project!r}, mode="offline")
        """,
    )
    assert done.returncode == -signal.SIGTERM, done.stderr
    [result] = assay.sync()
    assert result.ok, result.error
    record = assay.Api().run(result.run_id)
    assert record.status == "killed"
    assert record.metrics["loss"]["count"] == 2_000


def test_a_sigterm_handler_of_the_script_is_kept(assay_env, project):
    run_id, done = _start_and_terminate(
        assay_env,
        f"""
        import signal, sys, time, assay
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(3))  # the script's own clean shutdown
        run = assay.init(project={project!r})
        print("RUN=" + run.id, flush=True)
        """,
    )
    assert done.returncode == 3, done.stderr
    record = assay.Api().run(run_id)  # SystemExit → atexit finishes it
    assert record.status == "finished"
    assert record.metrics["loss"]["count"] == 2_000
