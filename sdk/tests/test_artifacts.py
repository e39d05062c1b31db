"""Artifacts end to end with real processes: a uvicorn server (local store, the embedded
profile's protocol), a real Celery worker on Redis (not eager), and the SDK uploading.

The server and the worker share a Redis database and a queue of their own, so other
suites' workers never see these tasks. Marked slow and grouped: one xdist worker runs them.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import REPO, VENV_BIN, Server, free_port, fresh_server, point_sdk_at, stop_process

import assay
from assay.artifacts import name_problem
from assay.cli import main as cli_main

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("artifact-worker")]

CELERY = str(VENV_BIN / "celery")
PART = 5 * 1024 * 1024


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    env = {
        "REDIS_URL": os.environ.get("ASSAY_TEST_ARTIFACT_REDIS", "redis://127.0.0.1:6379/12"),
        "ASSAY_CELERY_QUEUE": f"assay-test-{uuid.uuid4().hex[:8]}",
        "ASSAY_CELERY_VISIBILITY_TIMEOUT": "4",
        "ASSAY_SECRET_KEY": "sdk-artifact-test-key-" + "x" * 40,
        "ASSAY_MULTIPART_THRESHOLD": str(6 * 1024 * 1024),
        "ASSAY_UPLOAD_PART_BYTES": str(PART),
    }
    var = tmp_path_factory.mktemp("artifact-var")
    with fresh_server(var, f"assay_sdkart_{uuid.uuid4().hex[:8]}", env) as srv:
        yield srv


class Worker:
    """``celery -A config worker`` on the stack's queue, as a child process."""

    def __init__(self, stack: Server, log_path: Path) -> None:
        self.stack = stack
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, **extra_env: str) -> None:
        env = dict(self.stack.env, **extra_env)
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child
        self.proc = subprocess.Popen(
            [CELERY, "-A", "config", "worker", "-Q", env["ASSAY_CELERY_QUEUE"], "--pool", "solo", "-l", "INFO"],
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while "ready." not in self.log_path.read_text(errors="replace").split("--- start ---")[-1]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start: {self.log_path.read_text()[-2000:]}")
            time.sleep(0.2)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        with open(self.log_path, "a") as log:
            log.write("\n--- start ---\n")

    def stop(self) -> None:
        stop_process(self.proc)
        with open(self.log_path, "a") as log:
            log.write("\n--- start ---\n")


@pytest.fixture(scope="module")
def module_worker(stack: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Worker]:
    """One worker for the module's tests (a start costs ~4 s here), started by ``worker``."""
    w = Worker(stack, tmp_path_factory.mktemp("worker") / "worker.log")
    yield w
    w.stop()


@pytest.fixture
def worker(module_worker: Worker) -> Worker:
    """The module's worker, running (a test that needed the queue to itself stopped it)."""
    if not module_worker.running:
        module_worker.start()
    return module_worker


@pytest.fixture
def no_module_worker(module_worker: Worker) -> None:
    """The stack's queue without the module's worker, for a test that runs a worker of its own."""
    module_worker.stop()


@pytest.fixture
def env_for(stack: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    return point_sdk_at(stack, tmp_path, monkeypatch, ASSAY_CAPTURE_CODE="0")


@pytest.fixture
def project() -> str:
    return f"ana/a{uuid.uuid4().hex[:10]}"


def api(stack: Server) -> httpx.Client:
    return stack.http()


def wait_for(stack: Server, run_id: str, statuses: set[str], timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    with api(stack) as http:
        while True:
            items = http.get(f"/runs/{run_id}/artifacts/").json()
            if items and all(item["status"] in statuses for item in items):
                return items  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise AssertionError(f"artifacts not {statuses} in {timeout} s: {items}")
            time.sleep(0.3)


def db_counters(stack: Server, run_id: str) -> list[tuple[str, int, int]]:
    import psycopg

    url = stack.env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT path, attempts, processed FROM experiments_artifact WHERE run_id = %s ORDER BY path", (run_id,)
        ).fetchall()
    return [(str(r[0]), int(r[1]), int(r[2])) for r in rows]


def unsafe_pickle() -> bytes:
    """A pickle that would call os.system("id") when loaded (never loaded here)."""
    return b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94."


def safetensors_file(path: Path) -> Path:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\x00" * 16)
    return path


# --- the SDK against a real worker ---------------------------------------------------------------


def test_a_model_logged_by_the_sdk_is_processed_by_a_real_worker(
    stack: Server, worker: Worker, env_for: dict[str, str], project: str, tmp_path: Path
) -> None:
    weights = safetensors_file(tmp_path / "model.safetensors")
    (tmp_path / "legacy.pkl").write_bytes(unsafe_pickle())

    with assay.init(project=project) as run:
        run.log_model(weights)
        run.log_artifact(tmp_path / "legacy.pkl", kind="model")

    items = {item["path"]: item for item in wait_for(stack, run.id, {"ready", "failed"})}
    assert items["model.safetensors"]["status"] == "ready"
    assert items["model.safetensors"]["kind"] == "model"
    assert items["model.safetensors"]["findings"]["tensors"] == [{"name": "w", "dtype": "F32", "shape": [2, 2]}]
    assert items["legacy.pkl"]["status"] == "ready"
    assert items["legacy.pkl"]["findings"]["unsafe"] is True
    assert "os.system" in items["legacy.pkl"]["findings"]["unsafe_globals"]


def test_an_upload_the_store_refuses_is_spooled_shown_pending_and_sent_by_sync(
    stack: Server,
    worker: Worker,
    env_for: dict[str, str],
    project: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 16 ("any port"): the server's public URL names a port nobody listens on, so the
    local store's upload URLs are refused. The SDK retries, keeps the file for `assay sync`,
    says so at finish, and the run tells why its artifact is pending; sync uploads it."""
    import assay.artifacts

    monkeypatch.setattr(assay.artifacts, "RETRY_BACKOFF", 0.01)  # the same retries, without the waits
    right_url = stack.env["ASSAY_PUBLIC_URL"]
    stack.stop()
    stack.env["ASSAY_PUBLIC_URL"] = f"http://127.0.0.1:{free_port()}"  # `make run PORT=…` before the fix
    stack.start()
    model = safetensors_file(tmp_path / "model.safetensors")
    try:
        run = assay.init(project=project)
        run.log({"loss": 0.5})
        run.log_model(model)
        run.finish()
    finally:
        stack.stop()
        stack.env["ASSAY_PUBLIC_URL"] = right_url
        stack.start()

    said = capsys.readouterr().err
    assert "model.safetensors was not uploaded" in said
    assert "Connection refused" in said
    assert "1 artifact file(s) (model.safetensors)" in said
    assert "assay sync" in said
    with api(stack) as http:
        detail = http.get(f"/runs/{run.id}/").json()
        assert detail["status"] == "finished"
        assert detail["info"]["uploads"]["pending"] == ["model.safetensors"]
        assert "could not be reached" in detail["info"]["uploads"]["reason"]
        assert [a["status"] for a in http.get(f"/runs/{run.id}/artifacts/").json()] == ["pending"]

    assert cli_main(["sync"]) == 0
    assert "1 artifact file(s)" in capsys.readouterr().out

    items = wait_for(stack, run.id, {"ready", "failed"})
    assert [(i["path"], i["status"]) for i in items] == [("model.safetensors", "ready")]
    assert items[0]["findings"]["tensors"] == [{"name": "w", "dtype": "F32", "shape": [2, 2]}]
    with api(stack) as http:
        uploads = http.get(f"/runs/{run.id}/").json()["info"]["uploads"]
    assert uploads["pending"] == []
    assert uploads["synced_at"]
    assert cli_main(["sync"]) == 0  # nothing left: a second sync sends nothing
    assert "Nothing to sync" in capsys.readouterr().out


def test_a_worker_killed_while_processing_leaves_the_artifact_ready_processed_once(
    stack: Server, no_module_worker: None, env_for: dict[str, str], project: str, tmp_path: Path
) -> None:
    worker = Worker(stack, tmp_path / "worker.log")
    worker.start(ASSAY_TEST_PROCESSING_DELAY="30")
    try:
        (tmp_path / "notes.txt").write_text("slow to process\n")
        with assay.init(project=project) as run:
            run.log_artifact(tmp_path / "notes.txt")
        deadline = time.monotonic() + 60
        while db_counters(stack, run.id)[0][1] < 1:  # processing started
            assert time.monotonic() < deadline, "processing never started"
            time.sleep(0.2)
        assert wait_for(stack, run.id, {"processing"}, timeout=5)

        worker.kill()  # SIGKILL in the middle of the 30 s of processing
        worker.start()  # no delay: the redelivered message finishes the job

        [item] = wait_for(stack, run.id, {"ready", "failed"}, timeout=120)
    finally:
        worker.stop()
    assert item["status"] == "ready"
    assert item["preview"]["lines"] == ["slow to process"]
    assert db_counters(stack, run.id) == [("notes.txt", 2, 1)]  # two attempts, results written once


# --- uploads: multipart, resume, skip, directories, names ---------------------------------------


def test_a_multipart_upload_resumes_with_the_parts_already_stored(
    stack: Server, worker: Worker, env_for: dict[str, str], project: str, tmp_path: Path
) -> None:
    data = os.urandom(3 * PART + 1234)
    (tmp_path / "big.bin").write_bytes(data)
    import hashlib

    with assay.init(project=project) as run:
        # an earlier process declared the file and sent part 2 before it died
        with api(stack) as http:
            body = {"files": [{"path": "big.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}]}
            plan = http.post(f"/runs/{run.id}/artifacts/", json=body).json()["artifacts"][0]["upload"]
        part2 = plan["parts"][1]
        put = httpx.put(
            part2["url"], content=data[PART : 2 * PART], headers={"Content-Type": "application/octet-stream"}
        )
        assert put.status_code == 200

        run.log_artifact(tmp_path / "big.bin")
        assert run.wait_for_artifacts(60)
        stats = run.artifact_stats

    assert (stats.parts_resumed, stats.parts_uploaded) == (1, 3)
    assert stats.bytes_uploaded == len(data) - PART
    [item] = wait_for(stack, run.id, {"ready", "failed"})
    assert item["status"] == "ready"
    out = tmp_path / "out"
    assert cli_main(["artifacts", "download", run.id, "big.bin", "-o", str(out)]) == 0
    assert (out / "big.bin").read_bytes() == data


def test_content_the_server_has_is_skipped_and_a_directory_is_one_manifest(
    stack: Server, worker: Worker, env_for: dict[str, str], project: str, tmp_path: Path
) -> None:
    folder = tmp_path / "checkpoint"
    (folder / "sub").mkdir(parents=True)
    (folder / "config.json").write_text('{"layers": 2}')
    (folder / "sub" / "weights.bin").write_bytes(b"w" * 1000)

    with assay.init(project=project) as first:
        first.log_artifact(folder, kind="model")
    with assay.init(project=project) as second:
        second.log_artifact(folder, name="copy")
        assert second.wait_for_artifacts(60)
        stats = second.artifact_stats

    assert [i["path"] for i in wait_for(stack, first.id, {"ready"})] == [
        "checkpoint/config.json",
        "checkpoint/sub/weights.bin",
    ]
    assert (stats.files_skipped, stats.bytes_uploaded) == (2, 0)
    assert [i["path"] for i in wait_for(stack, second.id, {"ready"})] == ["copy/config.json", "copy/sub/weights.bin"]
    out = tmp_path / "down"
    assert cli_main(["artifacts", "download", first.id, "-o", str(out)]) == 0
    assert (out / "checkpoint" / "sub" / "weights.bin").read_bytes() == b"w" * 1000


@pytest.mark.parametrize(
    "name",
    ["../escape.bin", "/etc/passwd", "a/../../b", "bad\x00name", "new\nline", "a\\b", "C:/x", "x" * 1025, "%2e%2e/x"],
)
def test_a_name_the_server_would_refuse_raises_at_the_call(
    stack: Server, env_for: dict[str, str], project: str, tmp_path: Path, name: str
) -> None:
    (tmp_path / "f.bin").write_bytes(b"x")
    with assay.init(project=project) as run:
        with pytest.raises(ValueError, match="refused"):
            run.log_artifact(tmp_path / "f.bin", name=name)
        assert run.artifact_stats.files_declared == 0
    with api(stack) as http:
        assert http.get(f"/runs/{run.id}/artifacts/").json() == []


def test_the_sdk_rule_agrees_with_the_server_on_names(stack: Server, env_for: dict[str, str], project: str) -> None:
    names = [
        "ok.txt",
        "a/b/c.bin",
        "../x",
        "%252e%252e/x",
        "a//b",
        "a;b",
        "a?b",
        "a#b",
        " a",
        "café.txt",
        "C:x",
        "\u202ex",
    ]
    with assay.init(project=project) as run, api(stack) as http:
        for name in names:
            answer = http.post(
                f"/runs/{run.id}/artifacts/", json={"files": [{"path": name, "size": 1, "sha256": "0" * 64}]}
            )
            server_accepts = answer.status_code == 201
            assert server_accepts == (name_problem(name) is None), (name, answer.text)
