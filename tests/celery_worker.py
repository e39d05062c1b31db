"""A real Celery worker process for tests: ``celery -A config worker`` on the test database
and the test Redis, consuming a queue of its own (so parallel tests never take each other's
tasks). Use from a ``django_db(transaction=True)`` test: the worker reads committed rows.

    with celery_worker() as worker:   # tasks queued from here on go to this worker
        ...
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.db import connection

from config.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[1]
CELERY = Path(sys.executable).with_name("celery")


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    queue: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def _database_url() -> str:
    s = connection.settings_dict
    auth = quote(s["USER"] or "", safe="") + (f":{quote(s['PASSWORD'], safe='')}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


@contextmanager
def celery_worker(
    tmp_path: Path, *, ready_timeout: float = 60.0, queue: str | None = None, env: dict[str, str] | None = None
) -> Iterator[Worker]:
    """Start a worker, wait until it consumes, route this process's tasks to it; stop it after.
    ``queue``: a queue named beforehand (a server started earlier sends its tasks there), or
    an earlier worker's (to take over what a killed one left); ``env``: more environment
    (e.g. that server's ASSAY_VAR_DIR, where its files are)."""
    queue = queue or f"test-{uuid.uuid4().hex[:12]}"
    log = tmp_path / f"celery-{queue}-{uuid.uuid4().hex[:6]}.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings_test",
        "DATABASE_URL": _database_url(),
        "REDIS_URL": settings.REDIS_URL,
        "ASSAY_CELERY_QUEUE": queue,
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    command = [
        str(CELERY), "-A", "config", "worker", "-Q", queue, "--pool", "solo", "--concurrency", "1",
        "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
        "--hostname", f"{queue}@%h",
    ]  # fmt: skip
    previous = (celery_app.conf.task_default_queue, celery_app.conf.task_always_eager)
    with log.open("wb") as sink:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)
    worker = Worker(process, queue, log)
    try:
        deadline = time.monotonic() + ready_timeout
        while "ready." not in worker.output():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"The Celery worker did not start:\n{worker.output()[-4000:]}")
            time.sleep(0.2)
        celery_app.conf.task_default_queue = queue
        celery_app.conf.task_always_eager = False
        yield worker
    finally:
        celery_app.conf.task_default_queue, celery_app.conf.task_always_eager = previous
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
