"""The production topology end to end, launched as ``make stack`` launches it (deploy/stack.py):
gunicorn with two uvicorn workers, a Celery worker pool and beat, moto's S3 server, on
PostgreSQL and Redis. Every actor is a separate process talking over the network:

1. The SDK (its own process) logs a run with metrics and a model artifact; a worker process
   verifies and inspects the artifact in S3; a WebSocket client sees ``run.created``, the
   ``metrics`` events and ``artifact.processed``. The model is registered from the run, a
   review request to move ``production`` is opened by its author, its checks run on a
   worker, another user approves and merges, and ``production`` points at the version.
2. While the SDK logs a second run, the web processes are killed (SIGKILL) and started
   again: every point the SDK logged arrives exactly once.
3. A worker is killed (SIGKILL) in the middle of processing an artifact: the message is
   delivered again and the artifact is processed once.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import psycopg
import pytest
from django.db import connection

from deploy.stack import Stack, free_port
from tests.db_template import admin_url, create_from_template

# transaction=True: the test database exists (it is the stack's template) and no transaction
# of this process holds it open.
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SETUP = """
from accounts.models import ProjectGrant, ProjectRole, User
from accounts.services import personal_team_ensure, project_create, token_create
alice = User.objects.create_user("alice", "alice@example.com", "alice-password-123")
bob = User.objects.create_user("bob", "bob@example.com", "bob-password-123")
project = project_create(user=alice, team_name=personal_team_ensure(user=alice).name, name="fraud")
ProjectGrant.objects.create(project=project, user=bob, role=ProjectRole.MAINTAINER)
print(token_create(user=alice, name="e2e").raw)
print(token_create(user=bob, name="e2e").raw)
"""

# The SDK side of step 1: a run with 50 steps of two metrics and a safetensors model,
# registered as the next version of model "fraud-detector".
TRAIN = """
import json, struct, sys
from pathlib import Path
import assay
header = json.dumps({"w": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}).encode()
weights = Path(sys.argv[1]) / "model.safetensors"
weights.write_bytes(struct.pack("<Q", len(header)) + header + b"\\0" * 16)
with assay.init(project="alice/fraud", config={"lr": 0.01}) as run:
    for step in range(50):
        run.log({"loss": 1.0 / (1 + step), "acc": step / 50}, step=step)
    run.log_model(weights)
    version = run.register_model("fraud-detector", artifact="model.safetensors")
print(json.dumps({"run": run.id, "version": version.number}))
"""

# Step 2: log one point every 5 ms until the test creates the stop file, then 20 more.
LOG_UNTIL_STOPPED = """
import json, sys, time
from pathlib import Path
import assay
stop = Path(sys.argv[1]) / "stop"
with assay.init(project="alice/fraud", name="through-a-restart") as run:
    print(json.dumps({"run": run.id}), flush=True)
    step, after_stop = 0, 0
    while after_stop < 20:
        run.log({"loss": 1.0 / (1 + step)}, step=step)
        step += 1
        after_stop += stop.exists()
        time.sleep(0.005)
print(json.dumps({"run": run.id, "steps": step}), flush=True)
"""

# Step 3: one small artifact.
ONE_ARTIFACT = """
import json, sys
from pathlib import Path
import assay
notes = Path(sys.argv[1]) / "notes.txt"
notes.write_text("slow to process\\n")
with assay.init(project="alice/fraud", name="worker-killed") as run:
    run.log_artifact(notes)
print(json.dumps({"run": run.id}))
"""


class LiveClient:
    """A WebSocket client on its own thread: ``subscribe`` sends, ``frames`` collects."""

    def __init__(self, url: str, token: str) -> None:
        self.url, self.token = url, token
        self.frames: list[dict[str, Any]] = []
        self.loop = asyncio.new_event_loop()
        self.socket: Any = None
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LiveClient:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._connect(), self.loop).result(15)
        return self

    async def _connect(self) -> None:
        import websockets

        headers = {"Authorization": f"Bearer {self.token}"}
        self.socket = await websockets.connect(self.url, additional_headers=headers)
        self.loop.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            self.frames.append(json.loads(message))

    def subscribe(self, topic: str, after: int | None = None) -> None:
        frame: dict[str, Any] = {"type": "subscribe", "topic": topic}
        if after is not None:
            frame["after"] = after
        asyncio.run_coroutine_threadsafe(self.socket.send(json.dumps(frame)), self.loop).result(5)

    def events(self, topic: str, name: str) -> list[dict[str, Any]]:
        return [f for f in list(self.frames) if f.get("type") == "event" and f["topic"] == topic and f["event"] == name]

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.socket.close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def eventually(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(0.2)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    # The stack's database is a copy of the suite's migrated template (tests/db_template.py):
    # migrating a new one from zero takes most of a minute here; `migrate` then only confirms
    # it is current.
    base = urlparse(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/assay"))
    name = f"{connection.settings_dict['NAME']}_stack"
    database_url = base._replace(path=f"/{name}").geturl()
    admin = admin_url(database_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    create_from_template(database_url, name)
    the_stack = Stack(
        database_url=database_url,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/5"),
        web_port=free_port(),
        web_workers=2,
        workers=2,
        log_dir=tmp_path / "var" / "logs",
        queue=f"e2e-{os.getpid()}",
        # A message whose worker died unacknowledged is delivered again after 5 s (not an hour).
        extra_env={"ASSAY_CELERY_VISIBILITY_TIMEOUT": "5"},
    )
    try:
        yield the_stack.start()
    finally:
        the_stack.stop()
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def sdk(stack: Stack, token: str, script: str, tmp_path: Path, **popen: Any) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSAY_", "DJANGO_"))}
    env.update(
        {
            "ASSAY_URL": stack.url,
            "ASSAY_TOKEN": token,
            "ASSAY_DIR": str(tmp_path / "sdk"),
            "ASSAY_SYSTEM_METRICS": "0",
            "ASSAY_SILENT": "1",
            "ASSAY_RETRY_TIMEOUT": "120",  # longer than a restart of the web processes
        }
    )
    return subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def finished(process: subprocess.Popen[str], timeout: float = 60) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err[-3000:]
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def artifact_counters(stack: Stack, run_id: str) -> list[tuple[str, str, int, int]]:
    with psycopg.connect(stack.database_url.replace("postgres://", "postgresql://", 1)) as conn:
        rows = conn.execute(
            "SELECT path, status, attempts, processed FROM experiments_artifact WHERE run_id = %s ORDER BY path",
            (run_id,),
        ).fetchall()
    return [(str(r[0]), str(r[1]), int(r[2]), int(r[3])) for r in rows]


def test_the_production_topology_end_to_end_with_faults(stack: Stack, tmp_path: Path) -> None:
    alice_token, bob_token = [w for w in stack.manage("shell", "-c", SETUP).stdout.split() if w.startswith("asy_")]
    alice = httpx.Client(base_url=stack.url + "/api/v1", headers={"Authorization": f"Bearer {alice_token}"}, timeout=30)
    bob = httpx.Client(base_url=stack.url + "/api/v1", headers={"Authorization": f"Bearer {bob_token}"}, timeout=30)
    ws_url = stack.url.replace("http://", "ws://") + "/ws/"

    # --- 1. the SDK logs a run and a model; a worker processes it; a socket sees it all --------
    with LiveClient(ws_url, alice_token) as live:
        live.subscribe("project:alice/fraud")
        eventually(lambda: any(f.get("type") == "subscribed" for f in live.frames), 10, "subscribed")
        trainer = sdk(stack, alice_token, TRAIN, tmp_path)
        created = eventually(lambda: live.events("project:alice/fraud", "run.created"), 30, "run.created")
        run_id = created[0]["data"]["id"]
        live.subscribe(f"run:{run_id}", after=0)  # catch-up from the event log, then live
        trained = finished(trainer)
        assert trained == {"run": run_id, "version": 1}

        [artifact] = eventually(
            lambda: [a for a in alice.get(f"/runs/{run_id}/artifacts/").json() if a["status"] in {"ready", "failed"}],
            60,
            "artifact processed",
        )
        assert artifact["status"] == "ready", artifact
        assert artifact["findings"]["tensors"] == [{"name": "w", "dtype": "F32", "shape": [2, 2]}]
        assert artifact_counters(stack, run_id) == [("model.safetensors", "ready", 1, 1)]
        processed = eventually(lambda: live.events(f"run:{run_id}", "artifact.processed"), 15, "artifact.processed")
        assert processed[-1]["data"]["status"] == "ready"
        assert eventually(lambda: live.events(f"run:{run_id}", "metrics"), 15, "metrics events")
        assert eventually(lambda: live.events("project:alice/fraud", "run.updated"), 15, "run.updated")

        # the author opens a review request; the checks run on a worker; bob approves and merges
        base = "/projects/alice/fraud/review-requests/"
        opened = alice.post(
            base,
            json={
                "model": "fraud-detector",
                "version": 1,
                "alias": "production",
                "title": "Ship v1",
                "reviewers": ["bob"],
            },
        )
        assert opened.status_code == 201, opened.text
        number = opened.json()["number"]

        def finished_checks() -> list[dict[str, Any]] | None:
            # Every check, once none is queued or running (a partial list raced the slower checks).
            found = alice.get(f"{base}{number}/checks/").json()
            return found if found and all(c["status"] not in {"queued", "running"} for c in found) else None

        checks = eventually(finished_checks, 60, "checks finished")
        assert {c["name"]: c["status"] for c in checks}["artifact-integrity"] == "passed", checks
        eventually(
            lambda: all(c["status"] == "passed" for c in alice.get(f"{base}{number}/checks/").json() if c["required"]),
            60,
            "required checks passed",
        )
        approved = bob.post(
            f"{base}{number}/reviews/", json={"verdict": "approve", "version_hash": opened.json()["version_hash"]}
        )
        assert approved.status_code == 201, approved.text
        merged = bob.post(f"{base}{number}/merge/", json={})
        assert merged.status_code == 200, merged.text
        assert merged.json()["state"] == "merged"
    production = alice.get("/projects/alice/fraud/models/fraud-detector/aliases/production/").json()
    assert production["version"]["number"] == 1
    assert [(m["from"], m["to"], m["by"]) for m in production["log"]] == [(None, 1, "bob")]
    assert production["log"][0]["review_request"] is not None

    # --- 2. the web processes are killed and restarted while the SDK logs ------------------------
    logger = sdk(stack, alice_token, LOG_UNTIL_STOPPED, tmp_path)
    assert logger.stdout is not None
    second_run = json.loads(logger.stdout.readline())["run"]

    def logged() -> int:
        summaries = alice.get(f"/runs/{second_run}/metrics/").json()
        return sum(s["count"] for s in summaries if s["key"] == "loss")

    eventually(lambda: logged() >= 100, 30, "points before the kill")
    stack.stop_process("web", signal.SIGKILL)
    time.sleep(1)  # the SDK meets refused connections and retries
    stack.start_web()
    before = logged()
    eventually(lambda: logged() > before + 100, 30, "points after the restart")
    (tmp_path / "stop").touch()
    result = finished(logger, 120)
    steps = result["steps"]
    history = alice.get(f"/runs/{second_run}/metrics/loss/", params={"limit": 100_000}).json()
    assert history["total"] == steps
    assert [p["step"] for p in history["points"]] == list(range(steps))  # none lost, none twice
    assert logged() == steps

    # --- 3. a worker is killed while it processes an artifact ------------------------------------
    stack.stop_process("worker")
    stack.start_worker("slow-worker", wait=True, ASSAY_TEST_PROCESSING_DELAY="30")
    third_run = finished(sdk(stack, alice_token, ONE_ARTIFACT, tmp_path))["run"]
    eventually(lambda: artifact_counters(stack, third_run)[0][1] == "processing", 30, "processing started")
    stack.stop_process("slow-worker", signal.SIGKILL)
    stack.start_worker(wait=True)
    eventually(lambda: artifact_counters(stack, third_run)[0][1] == "ready", 60, "artifact ready after the kill")
    assert artifact_counters(stack, third_run) == [("notes.txt", "ready", 2, 1)]  # two attempts, written once
    [item] = alice.get(f"/runs/{third_run}/artifacts/").json()
    assert item["preview"]["lines"] == ["slow to process"]
