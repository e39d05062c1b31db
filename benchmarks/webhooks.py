"""Webhook deliveries under load: events committed at a target rate (1,000/s by default),
each queued for delivery to one webhook whose receiver is on loopback, sent by real Celery
worker processes; reports the rate actually queued and the delivery latency (receiver
arrival minus the commit of the event's transaction).

Self-contained: recreates the database ``assay_bench_webhooks``, migrates it, starts the
receiver (an asyncio HTTP server in a thread of this process, answering 200 at once), the
Celery workers (their own queue on the Redis of REDIS_URL's database 6) and the producers
(spawned processes, each
committing its share of events through ``core.domain_events.emit`` — the path a real
change takes — at an even pace).

    .venv/bin/python benchmarks/webhooks.py [--events 5000] [--rate 1000] [--producers 4]
        [--per-transaction 1] [--workers 2] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, cast

import httptools
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = benchlib.dbname("assay_bench_webhooks")


class Receiver:
    """The webhook receiver: HTTP/1.1 on loopback, kept-alive connections, answering 200 at
    once; it records each delivery id's first arrival and counts duplicates. An asyncio
    server (uvloop, httptools' C parser: what uvicorn runs on) in a thread of this process:
    it costs ~0.05 ms of CPU per request where http.server's ThreadingHTTPServer cost ~0.25,
    and the receiver is not what is measured."""

    ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

    def __init__(self) -> None:
        self.arrivals: dict[str, float] = {}
        self.duplicates = 0
        self.loop = uvloop.new_event_loop()
        self.server = cast(
            asyncio.Server,
            self.loop.run_until_complete(
                self.loop.create_server(lambda: _Connection(self), "127.0.0.1", 0, backlog=1024)
            ),
        )
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/hook"
        threading.Thread(target=self.loop.run_forever, daemon=True).start()

    def arrived(self, delivery: str) -> None:
        if delivery in self.arrivals:
            self.duplicates += 1
        else:
            self.arrivals[delivery] = time.time()

    def shutdown(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)


class _Connection(asyncio.Protocol):
    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.parser = httptools.HttpRequestParser(self)
        self.delivery = ""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"x-assay-delivery":
            self.delivery = value.decode()

    def on_message_complete(self) -> None:
        self.receiver.arrived(self.delivery)
        self.delivery = ""
        assert self.transport is not None
        self.transport.write(Receiver.ANSWER)


def _producer(
    env: dict[str, str],
    run_id: str,
    project_id: str,
    count: int,
    rate: float,
    start_at: float,
    results: Any,
    per_transaction: int = 1,
) -> None:
    """Commit ``count`` run.finished events at ``rate`` per second from ``start_at``; put
    [(delivery id, commit time)] on ``results``. A spawned process (the connection pool of
    a forked one would wait forever for its parent's pool threads)."""
    os.environ.update(env)
    import django

    django.setup()
    from django.db import transaction

    from automations import services
    from core import domain_events

    queued: list[str] = []
    original = services._queue

    def recording(*args: Any, **kwargs: Any) -> Any:
        ids = original(*args, **kwargs)
        queued.extend(ids)
        return ids

    services._queue = recording  # instrumentation: which delivery each commit made
    committed: list[tuple[str, float]] = []
    event = domain_events.DomainEvent(type="run.finished", project_id=project_id, actor=None, data={"run": run_id})
    cpu = 0.0
    for i in range(0, count, per_transaction):
        due = start_at + i / rate
        wait = due - time.time()
        if wait > 0:
            time.sleep(wait)
        clock = time.process_time()
        with transaction.atomic():
            for _ in range(per_transaction):
                domain_events.emit(event)
        now = time.time()
        cpu += time.process_time() - clock
        committed += [(delivery, now) for delivery in queued[-per_transaction:]]
    results.put((committed, cpu))


def _machine_busy_seconds() -> float:
    """CPU time of the whole machine (every CPU, every process) since boot, from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / benchlib.CLK_TCK


_pg_before: dict[int, float] = {}


def _cpu(workers: list[subprocess.Popen[bytes]]) -> dict[str, float]:
    """CPU seconds so far of the worker processes (and their children), of PostgreSQL (its
    processes alive at the end, less what those alive at the start had used then), of this
    process (the receiver's threads, mostly) and of the whole machine."""
    postgres = {p: benchlib.proc_cpu_seconds(p) for p in benchlib.postgres_pids()}
    if not _pg_before:
        _pg_before.update(postgres)
    return {
        "workers": sum(benchlib.proc_cpu_seconds(p) for w in workers for p in benchlib.descendants(w.pid)),
        "postgres": sum(v - _pg_before.get(p, 0.0) for p, v in postgres.items()),
        "self": time.process_time(),
        "machine": _machine_busy_seconds(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=1000.0, help="events committed per second, in all")
    parser.add_argument("--producers", type=int, default=4, help="producer processes sharing the rate")
    parser.add_argument(
        "--per-transaction", type=int, default=1, help="events committed together (changes made in one transaction)"
    )
    parser.add_argument("--workers", type=int, default=2, help="Celery worker processes")
    parser.add_argument("--concurrency", type=int, default=8, help="threads per worker (--pool threads)")
    args = parser.parse_args()

    queue = f"bench-webhooks-{uuid.uuid4().hex[:8]}"
    env = benchlib.server_env(
        DBNAME,
        redis_db=6,
        extra={"ASSAY_WEBHOOK_ALLOW": "127.0.0.1/32", "ASSAY_CELERY_QUEUE": queue, "ASSAY_LOG_LEVEL": "WARNING"},
    )
    print(f"preparing database {DBNAME} ...", flush=True)
    benchlib.prepare(DBNAME, env)
    receiver = Receiver()
    logs = Path(env["ASSAY_VAR_DIR"])
    workers = []
    for n in range(args.workers):
        log = (logs / f"worker-{n}.log").open("wb")
        command = [
            str(benchlib.VENV_BIN / "celery"), "-A", "config", "worker", "-Q", queue, "--pool", "threads",
            "--concurrency", str(args.concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "INFO", "--hostname", f"{queue}-{n}@%h",
        ]  # fmt: skip
        workers.append(subprocess.Popen(command, cwd=benchlib.ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    try:
        deadline = time.time() + 90
        while not all(" ready." in (logs / f"worker-{n}.log").read_text(errors="replace") for n in range(args.workers)):
            if time.time() > deadline:
                raise RuntimeError("the Celery workers did not start")
            time.sleep(0.3)
        os.environ.update(env)
        import django

        django.setup()
        from django.db import connections
        from django.db.models import Count

        from accounts.models import User
        from automations import services
        from automations.models import Delivery
        from experiments.services import run_create

        user = User.objects.get(username=benchlib.USERNAME)
        run = run_create(user=user, project_path="bench/hooks", name="webhook-bench")
        services.webhook_create(user=user, project=run.project, url=receiver.url, events=["run.finished"])
        connections.close_all()

        ctx = mp.get_context("spawn")
        results = ctx.Queue()
        share = args.events // args.producers
        start_at = time.time() + 15.0  # the spawned producers set Django up first
        producers = [
            ctx.Process(
                target=_producer,
                args=(env, run.id, run.project_id, share, args.rate / args.producers, start_at, results),
                kwargs={"per_transaction": args.per_transaction},
            )
            for _ in range(args.producers)
        ]
        for p in producers:
            p.start()
        committed: dict[str, float] = {}
        producer_cpu = 0.0
        while time.time() < start_at:
            time.sleep(0.01)
        cpu_before = _cpu(workers)
        for _ in producers:
            got, used = results.get(timeout=600)
            committed.update(got)
            producer_cpu += used
        for p in producers:
            p.join()
        queued_wall = max(committed.values()) - start_at
        total = share * args.producers
        deadline = time.time() + 300
        while len(receiver.arrivals) < total and time.time() < deadline:
            time.sleep(0.05)
        cpu_after = _cpu(workers)
        latencies = [receiver.arrivals[d] - t for d, t in committed.items() if d in receiver.arrivals]
        states = dict(Delivery.objects.values_list("state").annotate(n=Count("id")))
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            try:
                w.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.kill()
        receiver.shutdown()
    stats = benchlib.summary_ms(latencies)
    benchlib.print_table(
        [
            "events",
            "target /s",
            "queued /s",
            "delivered",
            "duplicates",
            "latency ms p50",
            "p95",
            "p99",
            "max",
            "states",
        ],
        [
            [
                f"{total:,}",
                f"{args.rate:,.0f}",
                f"{total / queued_wall:,.0f}",
                f"{len(latencies):,}",
                str(receiver.duplicates),
                f"{stats['p50']:.0f}",
                f"{stats['p95']:.0f}",
                f"{stats.get('p99', float('nan')):.0f}",
                f"{max(latencies) * 1000:.0f}",
                ", ".join(f"{k} {v}" for k, v in sorted(states.items())),
            ]
        ],
    )
    per_event = {k: (cpu_after[k] - cpu_before[k]) * 1000 / total for k in cpu_before}
    print(
        f"CPU ms per event: producers {producer_cpu * 1000 / total:.2f} (their emit+commit), "
        f"workers {per_event['workers']:.2f}, PostgreSQL {per_event['postgres']:.2f}, "
        f"receiver (this process) {per_event['self']:.2f}; whole machine {per_event['machine']:.2f} "
        f"(all processes, other users' included; {os.cpu_count()} CPUs)"
    )
    print(
        f"{args.producers} producers ({args.per_transaction} event(s) per transaction), "
        f"{args.workers} Celery workers x {args.concurrency} threads; "
        f"target: 1,000 events/s queued, delivery p95 < 1,000 ms after commit"
    )


if __name__ == "__main__":
    main()
