"""Live updates under load, on the production profile (PostgreSQL, Redis channel layer).

Self-contained: recreates the database ``assay_bench_live``, migrates it, seeds a project
with a review request (``bench/live/1``) and a running run, starts ONE uvicorn process, then:

1. **fan-out**: opens 1,000 WebSockets (token auth, as the CLI does), each subscribed to
   ``review:bench/live/1``; posts comments through the REST API (another process would do
   the same: the event goes through Redis) and measures, for every socket, the time from
   the POST being sent to the comment's event arriving. Target: p95 < 500 ms.
2. **training curve**: a writer logs 100 points/s to a run (10 batches of 10 points per
   second, as the SDK's batching would) for ``--seconds``; watchers subscribed to
   ``run:<id>`` record how far behind the server each batch reaches them (arrival time −
   the time the POST was sent). Target: every watcher within 1 s.

The clients run in this process (asyncio + the ``websockets`` library); on a 2-core machine
they compete with the server for the CPU, so the figures are pessimistic.

    .venv/bin/python benchmarks/live.py                  # 1,000 sockets, 20 s of logging
    .venv/bin/python benchmarks/live.py --sockets 200 --seconds 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = "assay_bench_live"
TOPIC = "review:bench/live/1"

SEED = """
import hashlib
from accounts.models import User
from accounts.services import personal_team_ensure, project_get_or_create
from experiments import services as xs
from artifacts.models import Artifact, Blob
from registry import services as rs
from reviews import services as reviews

user = User.objects.get(username="bench")
personal_team_ensure(user=user)
project = project_get_or_create(user=user, path="bench/live")
repo = rs.model_create(user=user, project=project, name="fraud")
def version(n):
    run = xs.run_create(user=user, project_path="bench/live", name=f"train-{n}")
    content = f"weights-{n}".encode()
    sha = hashlib.sha256(content).hexdigest()
    blob = Blob.objects.create(project=project, sha256=sha, size=len(content), status=Blob.Status.VERIFIED)
    Artifact.objects.create(project=project, run=run, blob=blob, path="model.pkl", sha256=sha, size=len(content), status="ready")
    return rs.version_register(user=user, repository=repo, run=run, artifact="model.pkl")
v1 = version(1)
rs.alias_move(alias="production", version=v1, user=user, merge=rs.ReviewMerge(review_request_id="seed", number=0, alias="production", version_id=v1.id))
v2 = version(2)
rr, _ = reviews.review_request_open(user=user, project=project, model="fraud", version=v2.number, alias="production", title="Ship v2")
watched = xs.run_create(user=user, project_path="bench/live", name="watched")
print("SEEDED", rr.number, watched.id)
"""


def start_server(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    process = subprocess.Popen(
        [
            str(benchlib.VENV_BIN / "uvicorn"),
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--log-level",
            "warning",
            "--ws-ping-interval",
            "60",
        ],
        cwd=benchlib.ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(log.read_text()[-2000:])
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.2)


async def open_sockets(url: str, token: str, topic: str, count: int) -> list[Any]:
    sockets: list[Any] = []
    headers = {"Authorization": f"Bearer {token}"}
    batch = 50  # connect in waves: a thousand simultaneous handshakes only measure the accept queue
    for start in range(0, count, batch):

        async def one() -> Any:
            sock = await websockets.connect(url, additional_headers=headers, open_timeout=60, max_queue=None)
            await sock.send(json.dumps({"type": "subscribe", "topic": topic}))
            answer = json.loads(await asyncio.wait_for(sock.recv(), 60))
            assert answer["type"] == "subscribed", answer
            return sock

        sockets += await asyncio.gather(*(one() for _ in range(min(batch, count - start))))
    return sockets


async def fan_out(base: str, token: str, sockets: list[Any], comments: int) -> list[float]:
    """Latency of each (comment, socket) pair: POST sent → event received."""
    latencies: list[float] = []
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        for n in range(comments):
            marker = uuid.uuid4().hex

            async def wait_for(sock: Any, marker: str = marker) -> float:
                while True:
                    # A substring test, not json.loads: the 1,000 clients share this process and
                    # the machine with the server, and their parsing would be measured as latency.
                    raw = await asyncio.wait_for(sock.recv(), 30)
                    if marker in raw and '"comment.created"' in raw:
                        return time.perf_counter()

            waiters = [asyncio.create_task(wait_for(s)) for s in sockets]
            await asyncio.sleep(0.2)
            sent = time.perf_counter()
            answer = await http.post(
                "/api/v1/projects/bench/live/review-requests/1/comments/", json={"body": f"comment {n} {marker}"}
            )
            answer.raise_for_status()
            arrived = await asyncio.gather(*waiters)
            latencies += [t - sent for t in arrived]
            await asyncio.sleep(0.5)
    return latencies


async def training(base: str, token: str, run_id: str, watchers: list[Any], seconds: float) -> tuple[list[float], int]:
    """A writer logs 10 batches of 10 points per second; returns every (batch, watcher) lag."""
    sent_at: dict[int, float] = {}
    lags: list[float] = []
    batches = int(seconds * 10)
    expected = batches * len(watchers)

    async def watch(sock: Any) -> None:
        seen = 0
        while seen < batches:
            frame = json.loads(await asyncio.wait_for(sock.recv(), 30))
            if frame.get("event") != "metrics":
                continue
            first_step = min(frame["data"]["points"]["loss"]["steps"])
            lags.append(time.perf_counter() - sent_at[first_step // 10])
            seen += 1

    tasks = [asyncio.create_task(watch(s)) for s in watchers]
    async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60) as http:
        start = time.perf_counter()
        for b in range(batches):
            await asyncio.sleep(max(0.0, start + b * 0.1 - time.perf_counter()))
            sent_at[b] = time.perf_counter()
            steps = list(range(b * 10, b * 10 + 10))
            answer = await http.post(
                f"/api/v1/runs/{run_id}/log/",
                json={"batch_id": uuid.uuid4().hex, "series": [{"key": "loss", "steps": steps, "values": [0.5] * 10}]},
            )
            answer.raise_for_status()
    await asyncio.gather(*tasks)
    return lags, expected


def row(name: str, samples: list[float], target_ms: float, stat: str) -> list[Any]:
    s = benchlib.summary_ms(samples)
    measured = s[stat]
    return [
        name,
        s["n"],
        f"{s['p50']:.0f}",
        f"{s['p95']:.0f}",
        f"{s['max']:.0f}",
        f"{stat} < {target_ms:.0f} ms",
        "met" if measured < target_ms else "NOT met",
    ]


async def main_async(args: argparse.Namespace, base: str, token: str, run_id: str) -> None:
    url = base.replace("http://", "ws://") + "/ws/"
    t0 = time.perf_counter()
    sockets = await open_sockets(url, token, TOPIC, args.sockets)
    print(f"{len(sockets)} sockets subscribed to {TOPIC} in {time.perf_counter() - t0:.1f} s")
    latencies = await fan_out(base, token, sockets, args.comments)
    watchers = await open_sockets(url, token, f"run:{run_id}", args.watchers)
    lags, expected = await training(base, token, run_id, watchers, args.seconds)
    assert len(lags) == expected, (len(lags), expected)
    for sock in sockets + watchers:
        await sock.close()
    print()
    benchlib.print_table(
        ["scenario", "deliveries", "p50 ms", "p95 ms", "max ms", "target", "result"],
        [
            row(f"comment → {args.sockets} subscribers of one review", latencies, 500, "p95"),
            row(f"100 points/s → {args.watchers} watchers of the run (lag)", lags, 1000, "max"),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--comments", type=int, default=10)
    parser.add_argument("--watchers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20)
    args = parser.parse_args()

    env = benchlib.server_env(DBNAME, redis_db=13, extra={"ASSAY_LIVE_PREFIX": f"bench-live:{uuid.uuid4().hex[:8]}"})
    token = benchlib.prepare(DBNAME, env)
    seeded = benchlib.manage(env, "shell", "-c", SEED)
    _, number, run_id = seeded.strip().splitlines()[-1].split()
    assert number == "1", seeded
    port = benchlib.free_port()
    log = Path(env["ASSAY_VAR_DIR"]) / "live-bench-server.log"
    server = start_server(env, port, log)
    try:
        asyncio.run(main_async(args, f"http://127.0.0.1:{port}", token, run_id))
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
