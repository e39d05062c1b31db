"""The "has this been tried?" lookup (issue 22) in a project with many runs.

Builds its own database (``assay_bench_tried``): one project with ``--runs`` runs (target
1,000,000), each with a realistic nested config drawn from ~29,000 combinations (so a
configuration has many identical runs, as a busy sweep project would) plus a random seed
(excluded by default), its fingerprint computed as the services compute it, and one
``acc`` summary. Written with PostgreSQL COPY. Then:

* **server-side**: ``experiments.tried.tried_lookup`` timed inside a Django process on the
  same database (``manage.py shell``): the query work the view does, without HTTP;
* **HTTP**: ``POST /api/v1/projects/bench/tried/tried/`` on a kept-alive connection against
  gunicorn + uvicorn workers (deploy/gunicorn.conf.py);

each for an existing configuration (identical runs: the fingerprint index) and for a new
one (no identical run: the bounded near scan of the newest 1,000 runs). Target: p95 < 20 ms
server-side. The database is dropped at the end unless ``--keep``.

    .venv/bin/python benchmarks/tried.py [--runs 1000000] [--reps 200] [--keep]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib, seeding
from experiments.fingerprint import effective, fingerprint_of

DBNAME = benchlib.dbname("assay_bench_tried")
PROJECT = "bench/tried"
TARGET_MS = 20.0
CHOICES: dict[str, list[Any]] = {
    "lr": [1e-1, 3e-2, 1e-2, 3e-3, 1e-3, 1e-4],
    "batch_size": [16, 32, 64, 128],
    "optimizer.name": ["adam", "sgd", "adamw", "rmsprop"],
    "optimizer.momentum": [0.0, 0.9, 0.99],
    "epochs": [5, 10, 20, 40, 80],
    "dropout": [0.0, 0.1, 0.2, 0.3, 0.5],
    "model.layers": [2, 4, 8, 16],
}


def random_config(rng: random.Random) -> dict[str, Any]:
    config: dict[str, Any] = {"seed": rng.randint(0, 10**6), "data": {"path": f"/data/{rng.randint(0, 9)}"}}
    for dotted, values in CHOICES.items():
        node = config
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = rng.choice(values)
    return config


def build(dsn: str, runs: int) -> float:
    rng = random.Random(22)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=False) as conn:
        bench = seeding.bench_project(conn)
        t0 = datetime(2025, 1, 1, tzinfo=UTC)
        run_ids = [uuid.uuid4().hex for _ in range(runs)]

        def run_rows() -> Any:
            for index, run_id in enumerate(run_ids):
                config = random_config(rng)
                start = t0 + timedelta(seconds=index * 20)
                entries = effective(config, {})
                yield seeding.run_row(
                    bench,
                    run_id,
                    name=f"run-{index:07d}",
                    status="finished",
                    start=start,
                    end=start + timedelta(minutes=10),
                    config=json.dumps(config),
                    config_fingerprint=fingerprint_of(entries),
                    config_canonical=json.dumps(entries),
                )

        seeding.copy_rows(conn, "experiments_run", seeding.RUN_COLUMNS, run_rows())
        seeding.copy_rows(
            conn,
            "experiments_metricsummary",
            ["run_id", "key", "last", "min", "max", "last_step", "last_timestamp", "count"],
            ((run_id, "acc", v, v, v, 99, 1764150000000, 100) for run_id in run_ids for v in [rng.random()]),
        )
        conn.commit()
        conn.execute("ANALYZE experiments_run")
        conn.execute("ANALYZE experiments_metricsummary")
        conn.commit()
    return time.perf_counter() - started


IN_PROCESS = """
import json, random, statistics, time
from accounts.models import Project
from experiments.tried import tried_lookup
from experiments.models import Run
project = Project.objects.get(team__name="bench", name="tried")
rng = random.Random(5)
EXISTING = list(Run.objects.filter(project=project).order_by("-start_time").values_list("config", flat=True)[:5000])
def config(new):
    c = dict(rng.choice(EXISTING))
    if new:
        c["lr"] = 0.777
    return c
out = {{}}
for kind, new in (("identical", False), ("new", True)):
    tried_lookup(project=project, config=config(new))
    samples = []
    for _ in range({reps}):
        c = config(new)
        start = time.perf_counter()
        answer = tried_lookup(project=project, config=c)
        samples.append((time.perf_counter() - start) * 1000)
        assert bool(answer["identical"]) != new, answer["identical_count"]
    samples.sort()
    out[kind] = [statistics.median(samples), samples[int(0.95 * (len(samples) - 1))], samples[-1]]
print("RESULT " + json.dumps(out))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    env = benchlib.server_env(DBNAME, redis_db=14)
    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    try:
        token = benchlib.prepare(DBNAME, env)
        with benchlib.Server("gunicorn", env, workers=2) as server:
            api = benchlib.api_client(server.url, token)
            benchlib.create_run(api, PROJECT, "seed")
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM experiments_run")
            seconds = build(dsn, args.runs)
            print(f"built {args.runs:,} runs in {seconds:.0f} s")

            done = benchlib.manage(env, "shell", "-c", IN_PROCESS.format(reps=args.reps))
            in_process = json.loads(done.split("RESULT ", 1)[1])

            rng = random.Random(9)
            with psycopg.connect(dsn) as conn:
                existing = [
                    r[0] for r in conn.execute("SELECT config FROM experiments_run ORDER BY start_time LIMIT 5000")
                ]
            http: dict[str, dict[str, float]] = {}
            for kind, new in (("identical", False), ("new", True)):
                samples = []
                for rep in range(args.reps + 1):
                    config = dict(rng.choice(existing))
                    if new:
                        config["lr"] = 0.777
                    start = time.perf_counter()
                    answer = api.post(f"/api/v1/projects/{PROJECT}/tried/", json={"config": config})
                    if rep:  # the first is a warm-up
                        samples.append(time.perf_counter() - start)
                    answer.raise_for_status()
                    if bool(answer.json()["identical"]) == new:
                        raise RuntimeError(f"unexpected answer for a {kind} configuration")
                http[kind] = benchlib.summary_ms(samples)
    finally:
        if not args.keep:
            benchlib.recreate_database(DBNAME)
    rows = []
    for kind in ("identical", "new"):
        p50, p95, worst = in_process[kind]
        rows.append([f"{kind}, server-side (in process)", f"{p50:.2f}", f"{p95:.2f}", f"{worst:.2f}",
                     "yes" if p95 < TARGET_MS else "NO"])  # fmt: skip
        h = http[kind]
        rows.append([f"{kind}, HTTP round trip", f"{h['p50']:.2f}", f"{h['p95']:.2f}", f"{h['max']:.2f}",
                     "yes" if h["p95"] < TARGET_MS else "NO"])  # fmt: skip
    print(f"\n{args.runs:,} runs, {args.reps} lookups each")
    benchlib.print_table(["lookup", "p50 ms", "p95 ms", "max ms", f"p95 < {TARGET_MS:.0f} ms"], rows)


if __name__ == "__main__":
    main()
