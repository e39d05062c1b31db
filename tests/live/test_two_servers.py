"""Two ASGI server processes on the Redis channel layer: an event caused through one reaches
a client connected to the other (with the ``websockets`` client library, as the CLI uses)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest
import websockets
from django.conf import settings
from django.db import connection

from accounts.models import User
from accounts.services import token_create
from experiments.models import Run
from tests.e2e.test_embedded_smoke import UVICORN, free_port
from tests.helpers import stop_process
from tests.live.conftest import in_own_loop

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


class Servers:
    """Two uvicorn processes of the production profile on one database and one Redis;
    either can be stopped and started again on its port."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.ports = [free_port(), free_port()]
        self.processes: list[subprocess.Popen[bytes] | None] = [None, None]

    @property
    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{port}" for port in self.ports]

    def start(self, n: int) -> None:
        log = self.logs / f"server{n}.log"
        process = subprocess.Popen(
            [
                UVICORN,
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.ports[n]),
                "--no-access-log",
            ],
            cwd=REPO,
            env=self.env,
            stdout=log.open("a"),
            stderr=subprocess.STDOUT,
        )
        self.processes[n] = process
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text()
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(self.urls[n] + "/healthz", timeout=1).status_code == 200:
                    return
            assert time.monotonic() < deadline, "a server did not start within 60 s"
            time.sleep(0.2)

    def stop(self, n: int) -> None:
        process, self.processes[n] = self.processes[n], None
        if process is None:
            return
        stop_process(process)


@pytest.fixture
def servers(live_isolated: str, tmp_path: Path) -> Iterator[Servers]:
    env = {
        **os.environ,
        # the test database, where this test's committed users, tokens and run are
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{connection.settings_dict['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "ASSAY_CHANNELS_PREFIX": f"test-ch:{live_isolated}",
        "ASSAY_LIVE_PREFIX": f"test-live:{live_isolated}",
        "ASSAY_SECRET_KEY": "two-servers-test-secret-key-0123456789-abcdefghijklmnop",
        "ASSAY_VAR_DIR": str(tmp_path),
        "ASSAY_DB_POOL_MIN": "1",
        "ASSAY_DB_POOL_MAX": "4",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    pair = Servers(env, tmp_path)
    try:
        pair.start(0)
        pair.start(1)
        yield pair
    finally:
        pair.stop(0)
        pair.stop(1)


@pytest.fixture
def two_servers(servers: Servers) -> list[str]:
    return servers.urls


def test_an_event_caused_through_one_server_reaches_a_client_of_the_other(
    two_servers: list[str], owner: User, viewer: User, run: Run
) -> None:
    writer_token = token_create(user=owner, name="writer").raw
    watcher_token = token_create(user=viewer, name="watcher").raw
    server_a, server_b = two_servers

    async def scenario() -> list[dict[str, object]]:
        url = server_a.replace("http://", "ws://") + "/ws/"
        async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {watcher_token}"}) as sock:
            await sock.send(json.dumps({"type": "subscribe", "topic": f"run:{run.id}"}))
            assert json.loads(await sock.recv())["type"] == "subscribed"
            # the write goes through server B
            async with httpx.AsyncClient(headers={"Authorization": f"Bearer {writer_token}"}) as http:
                for step in range(3):
                    response = await http.post(
                        f"{server_b}/api/v1/runs/{run.id}/log/",
                        json={"batch_id": uuid.uuid4().hex, "metrics": [{"key": "loss", "step": step, "value": 0.5}]},
                    )
                    assert response.status_code == 200, response.text
                response = await http.patch(f"{server_b}/api/v1/runs/{run.id}/", json={"status": "finished"})
                assert response.status_code == 200, response.text
            return [json.loads(await asyncio.wait_for(sock.recv(), timeout=5)) for _ in range(4)]

    received: list[dict[str, object]] = []

    @in_own_loop
    async def follow() -> None:
        received.extend(await scenario())

    follow()
    assert [(e["type"], e["seq"], e["event"]) for e in received] == [
        ("event", 1, "metrics"),
        ("event", 2, "metrics"),
        ("event", 3, "metrics"),
        ("event", 4, "run.updated"),
    ]
    assert [e["data"]["points"]["loss"]["steps"] for e in received[:3]] == [[0], [1], [2]]  # type: ignore[index]
    assert received[3]["data"]["status"] == "finished"  # type: ignore[index]


def _watch(run: Run, token: str, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "assay"), "runs", "watch", run.id, "--url", url],
        env={**os.environ, "ASSAY_TOKEN": token, "HOME": "/nonexistent"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _next_line(watcher: subprocess.Popen[str], stream: IO[str] | None, timeout: float = 30) -> str:
    """The watcher's next line on ``stream`` (it flushes whole lines), or a failure with
    what it printed if none comes within ``timeout`` s."""
    assert stream is not None
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        watcher.kill()
        out, err = watcher.communicate()
        raise AssertionError(f"no line from the watcher within {timeout} s: {out}{err}")
    return stream.readline().rstrip("\n")


def _log(http: httpx.Client, run: Run, step: int) -> None:
    response = http.post(f"/api/v1/runs/{run.id}/log/", json={"metrics": [{"key": "acc", "step": step, "value": 0.5}]})
    assert response.status_code == 200, response.text


def test_cli_watch_prints_metrics_as_they_arrive_until_the_run_ends(
    two_servers: list[str], owner: User, run: Run
) -> None:
    token = token_create(user=owner, name="cli").raw
    server_a, server_b = two_servers
    watcher = _watch(run, token, server_a)
    try:
        # Events before it subscribed are not its business: wait until it says it has (a bare
        # sleep raced the CLI's start-up, which takes over a second on a busy machine).
        assert _next_line(watcher, watcher.stderr) == f"watching run:{run.id} (Ctrl-C to stop)"
        with httpx.Client(base_url=server_b, headers={"Authorization": f"Bearer {token}"}) as http:
            for step in range(3):
                _log(http, run, step)
            http.patch(f"/api/v1/runs/{run.id}/", json={"status": "finished"})
        out, err = watcher.communicate(timeout=20)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert out.splitlines() == [
        "step      0  acc=0.5",
        "step      1  acc=0.5",
        "step      2  acc=0.5",
        "status: finished",
    ]


def test_cli_watch_survives_its_server_restarting_and_prints_what_it_missed_once(
    servers: Servers, owner: User, run: Run
) -> None:
    token = token_create(user=owner, name="cli").raw
    server_a, server_b = servers.urls
    watcher = _watch(run, token, server_a)
    try:
        assert _next_line(watcher, watcher.stderr) == f"watching run:{run.id} (Ctrl-C to stop)"
        with httpx.Client(base_url=server_b, headers={"Authorization": f"Bearer {token}"}) as http:
            _log(http, run, 0)
            assert _next_line(watcher, watcher.stdout) == "step      0  acc=0.5"
            servers.stop(0)  # the watcher's server goes away; it retries with backoff
            _log(http, run, 1)  # logged while it cannot hear
            _log(http, run, 2)
            servers.start(0)  # same port: it reconnects and asks for what came after event 1
            assert _next_line(watcher, watcher.stderr, timeout=60) == "reconnected; resuming after event 1"
            http.patch(f"/api/v1/runs/{run.id}/", json={"status": "finished"})
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()
    assert watcher.returncode == 0, err
    assert out.splitlines() == [
        "step      1  acc=0.5",
        "step      2  acc=0.5",
        "status: finished",
    ]


def test_cli_watch_of_a_run_that_has_already_ended_says_so_and_exits(
    two_servers: list[str], owner: User, run: Run
) -> None:
    token = token_create(user=owner, name="cli").raw
    with httpx.Client(base_url=two_servers[1], headers={"Authorization": f"Bearer {token}"}) as http:
        _log(http, run, 0)
        assert http.patch(f"/api/v1/runs/{run.id}/", json={"status": "failed"}).status_code == 200
    watcher = _watch(run, token, two_servers[0])
    try:
        out, err = watcher.communicate(timeout=30)
    finally:
        watcher.kill()

    assert watcher.returncode == 0, err
    assert out.splitlines() == ["status: failed"]
    assert err.splitlines() == [f"run:{run.id} has already ended"]
