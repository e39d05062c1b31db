#!/usr/bin/env python3
"""The production topology on one machine, without Docker: what CI's end-to-end tests use.

Starts, against the local PostgreSQL and Redis:

* an S3-protocol server (moto's standalone server; MinIO in real deployments) with a bucket,
* N ASGI web workers under gunicorn (deploy/gunicorn.conf.py),
* M Celery worker processes and one beat scheduler,

after creating the database (if missing) and migrating it. Logs of every process go to one
folder (``var/stack/logs`` by default); Ctrl-C or SIGTERM stops everything, workers last.

    make stack                       # or: .venv/bin/python deploy/stack.py --help
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, timeout: float, *, expect: int = 200) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own loopback URL
                if response.status == expect:
                    return
                last = response.status
        except urllib.error.HTTPError as exc:
            last = exc.code
            if exc.code == expect:
                return
        except OSError as exc:
            last = exc
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer {expect} within {timeout:.0f}s (last: {last})")


def ensure_database(database_url: str) -> None:
    """Create the PostgreSQL database named in the URL when it does not exist."""
    import psycopg

    parsed = urlparse(database_url)
    name = parsed.path.lstrip("/")
    admin_url = parsed._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')  # name comes from our own configuration


@dataclass
class Stack:
    database_url: str = "postgres://postgres@127.0.0.1:5432/assay_stack"
    redis_url: str = "redis://127.0.0.1:6379/5"
    web_port: int = 8000
    s3_port: int = 0
    web_workers: int = 2
    workers: int = 2
    bucket: str = "assay"
    log_dir: Path = ROOT / "var" / "stack" / "logs"
    queue: str = "assay"
    extra_env: dict[str, str] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def s3_url(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
        env.update(
            {
                "DATABASE_URL": self.database_url,
                "REDIS_URL": self.redis_url,
                "ASSAY_ARTIFACTS": f"s3://{self.bucket}",
                "S3_ENDPOINT_URL": self.s3_url,
                "S3_ACCESS_KEY": "assay-stack",
                "S3_SECRET_KEY": "assay-stack-secret",
                "ASSAY_SECRET_KEY": env.get("ASSAY_SECRET_KEY") or "stack-only-" + "x" * 40,
                "ASSAY_BIND": f"127.0.0.1:{self.web_port}",
                "ASSAY_WEB_WORKERS": str(self.web_workers),
                "ASSAY_PUBLIC_URL": self.url,
                "ASSAY_ALLOWED_HOSTS": "127.0.0.1,localhost",
                "ASSAY_CSRF_TRUSTED_ORIGINS": f"{self.url},http://localhost:{self.web_port}",
                "ASSAY_CELERY_QUEUE": self.queue,
                "ASSAY_VAR_DIR": str(self.log_dir.parent),
                "PYTHONUNBUFFERED": "1",
                "ASSAY_LOG_FORMAT": "json",
                # Gunicorn's workers share their Prometheus series through this folder.
                "PROMETHEUS_MULTIPROC_DIR": str(self.log_dir.parent / "prometheus"),
            }
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"{name}.log").open("ab")
        # Own process group: stopping the stack stops gunicorn's and celery's children too.
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env(), **(env or {})},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        self.processes[name] = proc
        return proc

    def log_text(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, name: str, text: str, timeout: float = 60, *, since: int = 0) -> None:
        """Wait until process ``name``'s log holds ``text`` after character ``since``."""
        deadline = time.monotonic() + timeout
        while text not in self.log_text(name)[since:]:
            proc = self.processes.get(name)
            if proc is None or proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name}: no {text!r} in its log:\n{self.log_text(name)[-3000:]}")
            time.sleep(0.2)

    def manage(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=ROOT, env=self.env(), capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def start_s3(self) -> None:
        if not self.s3_port:
            self.s3_port = free_port()
        self._spawn("s3", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)])
        _wait_http(f"{self.s3_url}/moto-api/", 30)
        import boto3

        client = boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id="assay-stack",
            aws_secret_access_key="assay-stack-secret",
            region_name="us-east-1",
        )
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if self.bucket not in existing:
            client.create_bucket(Bucket=self.bucket)

    def start_web(self) -> None:
        self._spawn("web", [str(BIN / "gunicorn"), "--config", "deploy/gunicorn.conf.py", "config.asgi:application"])
        _wait_http(f"{self.url}/readyz", 60)

    def start_workers(self) -> None:
        self.start_worker()
        self.start_beat()

    def start_worker(self, name: str = "worker", *, wait: bool = False, **env: str) -> None:
        """M Celery worker processes (prefork) on the stack's queue; ``env`` overrides the
        environment of this one (the tests slow processing down with it)."""
        since = len(self.log_text(name))
        self._spawn(
            name,
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "worker",
                "--loglevel",
                "info",
                "-Q",
                self.queue,
                "--concurrency",
                str(self.workers),
                "--hostname",
                f"{name}-{self.web_port}@%h",
            ],
            env,
        )
        if wait:
            self.wait_log(name, " ready.", since=since)

    def start_beat(self) -> None:
        self._spawn(
            "beat",
            [
                str(BIN / "celery"),
                "-A",
                "config",
                "beat",
                "--loglevel",
                "info",
                "--schedule",
                str(self.log_dir.parent / "celerybeat-schedule"),
            ],
        )

    def start(self, *, migrate: bool = True) -> Stack:
        metrics_dir = self.log_dir.parent / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        ensure_database(self.database_url)
        if migrate:
            self.manage("migrate", "--noinput", "-v", "0")
        # Pages link the hashed names of collected files (config/settings.py, STORAGES).
        self.manage("collectstatic_if_changed", "-v", "0")
        self.start_s3()
        self.start_workers()
        self.start_web()
        return self

    def stop_process(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        proc = self.processes.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop(self) -> None:
        # The web first (no new work), then the scheduler and workers, the store last.
        for name in [
            "web",
            "beat",
            "worker",
            *[n for n in self.processes if n not in {"web", "beat", "worker", "s3"}],
            "s3",
        ]:
            self.stop_process(name)

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", Stack.database_url))
    parser.add_argument("--redis-url", default=os.environ.get("REDIS_URL", Stack.redis_url))
    parser.add_argument("--port", type=int, default=8000, help="web port (default 8000)")
    parser.add_argument("--s3-port", type=int, default=9000, help="S3 server port (default 9000)")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--log-dir", type=Path, default=Stack.log_dir)
    parser.add_argument("--no-migrate", action="store_true")
    args = parser.parse_args(argv)

    stack = Stack(
        database_url=args.database_url,
        redis_url=args.redis_url,
        web_port=args.port,
        s3_port=args.s3_port,
        web_workers=args.web_workers,
        workers=args.workers,
        log_dir=args.log_dir,
    )
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        print(
            f"starting: database {urlparse(stack.database_url).path.lstrip('/')}, logs in {stack.log_dir}", flush=True
        )
        stack.start(migrate=not args.no_migrate)
        print(
            f"Assay (production topology) on {stack.url}  |  S3 on {stack.s3_url}  |  "
            f"{stack.web_workers} web workers, {stack.workers} Celery workers, beat  |  Ctrl-C stops",
            flush=True,
        )
        while not stopping:
            for name, proc in list(stack.processes.items()):
                if proc.poll() is not None:
                    print(f"{name} exited with {proc.returncode}; see {stack.log_dir / (name + '.log')}", flush=True)
                    stopping = True
            time.sleep(0.5)
    finally:
        print("stopping…", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
