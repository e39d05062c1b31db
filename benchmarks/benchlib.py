"""Shared plumbing for the benchmarks: a throw-away PostgreSQL database, a user and token,
the production-profile server as a subprocess, CPU accounting from /proc, and statistics.

Nothing here imports Django: the server runs in its own processes, exactly as deployed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CLK_TCK = os.sysconf("SC_CLK_TCK")
USERNAME = "bench"


# --- database, user, token ------------------------------------------------------------------


def dbname(default: str) -> str:
    """The benchmark's database: ``default``, or ``BENCH_DB`` when set (so that two people
    measuring on one PostgreSQL do not drop each other's database)."""
    return os.environ.get("BENCH_DB", default)


def server_env(dbname: str, *, redis_db: int = 14, extra: dict[str, str] | None = None) -> dict[str, str]:
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    redis_db = int(os.environ.get("BENCH_REDIS_DB", redis_db))
    env = dict(os.environ)
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"{base}/{dbname}".replace("postgresql://", "postgres://", 1),
            "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
            "ASSAY_SECRET_KEY": "bench-" + "x" * 50,
            # Not 60: under ASGI each request runs in its own thread-sensitive context, so a
            # "persistent" connection is never reused; with CONN_MAX_AGE > 0 every request
            # leaves its connection open until garbage collection, and PostgreSQL runs out of
            # connection slots ("sorry, too many clients already"). See README.md.
            "ASSAY_DB_CONN_MAX_AGE": os.environ.get("BENCH_CONN_MAX_AGE", "0"),
            "ASSAY_LOG_LEVEL": "WARNING",
            "ASSAY_VAR_DIR": f"/tmp/assay-bench-var-{dbname}",
            "ASSAY_ARTIFACTS": f"/tmp/assay-bench-var-{dbname}/artifacts",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if extra:
        env.update(extra)
    return env


def recreate_database(dbname: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{dbname}"')


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return done.stdout


def prepare(dbname: str, env: dict[str, str]) -> str:
    """Fresh database, migrated, with a superuser; returns an API token for it."""
    recreate_database(dbname)
    manage(env, "migrate", "--noinput", "-v", "0")
    # Pages link the hashed names of collected files (config/settings.py, STORAGES); collected
    # again only when a source changed.
    manage(env, "collectstatic_if_changed", "-v", "0")
    user_env = dict(
        env,
        DJANGO_SUPERUSER_USERNAME=USERNAME,
        DJANGO_SUPERUSER_EMAIL="bench@example.com",
        DJANGO_SUPERUSER_PASSWORD="bench-password-123",
    )
    manage(user_env, "createsuperuser", "--noinput")
    return manage(env, "create_token", USERNAME, "--name", "bench").strip().splitlines()[-1]


# --- the server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of one process, in seconds (0 if it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_of(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            out += [int(p) for p in (task / "children").read_text().split()]
    return out


def descendants(pid: int) -> list[int]:
    todo, seen = [pid], []
    while todo:
        p = todo.pop()
        seen.append(p)
        todo += children_of(p)
    return seen


def postgres_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
    return pids


@dataclass
class CpuSnapshot:
    server: dict[int, float]
    postgres: dict[int, float]


@dataclass
class CpuUse:
    server: float
    postgres: float


@dataclass
class Server:
    """A running web server: ``kind`` is "gunicorn" (deploy/gunicorn.conf.py) or "uvicorn"
    (``uvicorn --workers N``)."""

    kind: str
    env: dict[str, str]
    workers: int = 2
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        if self.kind == "gunicorn":
            return [str(VENV_BIN / "gunicorn"), "--config", "deploy/gunicorn.conf.py", "config.asgi:application"]
        if self.kind == "uvicorn":
            return [
                str(VENV_BIN / "uvicorn"),
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--workers",
                str(self.workers),
                "--no-access-log",
                "--log-level",
                "warning",
            ]
        raise ValueError(self.kind)

    def start(self) -> Server:
        env = dict(self.env, ASSAY_BIND=f"127.0.0.1:{self.port}", ASSAY_WEB_WORKERS=str(self.workers))
        self.proc = subprocess.Popen(self.command(), cwd=ROOT, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.kind} did not answer /healthz within 60 s")
        # Every worker must have booted before CPU accounting starts.
        deadline = time.monotonic() + 30
        while len(descendants(self.proc.pid)) < 1 + self.workers and time.monotonic() < deadline:
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def pids(self) -> list[int]:
        assert self.proc is not None
        return descendants(self.proc.pid)

    def cpu_snapshot(self) -> CpuSnapshot:
        return CpuSnapshot(
            server={p: proc_cpu_seconds(p) for p in self.pids()},
            postgres={p: proc_cpu_seconds(p) for p in postgres_pids()},
        )

    def cpu_since(self, before: CpuSnapshot) -> CpuUse:
        after = self.cpu_snapshot()

        def delta(a: dict[int, float], b: dict[int, float]) -> float:
            return sum(v - b.get(p, 0.0) for p, v in a.items())

        return CpuUse(server=delta(after.server, before.server), postgres=delta(after.postgres, before.postgres))


# --- API helpers ------------------------------------------------------------------------------


def api_client(base_url: str, token: str, timeout: float = 120) -> httpx.Client:
    headers = {"Content-Type": "application/json"}
    if token:  # MLflow's server takes no token
        headers["Authorization"] = f"Bearer {token}"
    return httpx.Client(base_url=base_url, headers=headers, timeout=timeout)


def create_run(client: httpx.Client, project: str, name: str) -> str:
    answer = client.post("/api/v1/runs/", json={"project": project, "name": name})
    answer.raise_for_status()
    return str(answer.json()["id"])


# --- statistics and output --------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples_s]
    return {
        "n": len(ms),
        "p50": statistics.median(ms),
        "p95": percentile(ms, 95),
        "p99": percentile(ms, 99),
        "max": max(ms),
    }


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(cells[0], widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells[1:]:
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


@contextlib.contextmanager
def timed() -> Iterator[list[float]]:
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)
