"""The runs table of a project with 100,000 runs and 5,000 distinct keys (issue 20).

Builds its own database (``assay_bench_table``) with PostgreSQL COPY: one project, 100,000
runs, 2,000 metric keys (4 every run logs, 6 more per run from a tail of 1,996), 2,000 param
keys (3 + 7 from 1,997), 1,000 config keys (2 + 3 from 998) and a tag: 1,000,000 summaries,
1,000,000 params, 500,000 config values, 5,001 keys in the key registry. No metric chunks
(the table reads summaries only). Then, against gunicorn + uvicorn workers
(deploy/gunicorn.conf.py), signed in with a session as a browser is, on a kept-alive
connection, each page ``--reps`` times after a warm-up:

* the first page with the default columns (the keys the newest runs log most) — target < 500 ms;
* the first page with a saved layout (20 columns, 2 pinned, 5 runs pinned to the top);
* sorted by a common metric, by a tail metric, by a param; a filter and a sort; the last page;
* the column search (the keys API, ``q=``) among the 5,000 keys.

And in headless Chromium (``--browser``, on by default when chromium is installed): the page
loaded, a key found by the column search, the column added, the table sorted by it.

    .venv/bin/python benchmarks/runs_table.py [--runs 100000] [--reps 20] [--keep] [--reuse] [--no-browser]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib, seeding
from benchmarks.search import session_client

DBNAME = benchlib.dbname("assay_bench_table")
PROJECT = "bench/table"
TARGET_MS = 500.0
COMMON_METRICS = ["acc", "loss", "val_acc", "val_loss"]
TAIL_METRICS = [f"m{i:04d}" for i in range(2000 - len(COMMON_METRICS))]
COMMON_PARAMS = ["optimizer", "lr", "batch_size"]
TAIL_PARAMS = [f"p{i:04d}" for i in range(2000 - len(COMMON_PARAMS))]
COMMON_CONFIG = ["model.depth", "data.augment"]
TAIL_CONFIG = [f"c{i:04d}" for i in range(1000 - len(COMMON_CONFIG))]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def build(dsn: str, runs: int) -> dict[str, Any]:
    rng = random.Random(20)
    started = time.perf_counter()
    with psycopg.connect(dsn, autocommit=False) as conn:
        bench = seeding.bench_project(conn)
        project_id = bench.project_id
        run_ids = seeding.copy_runs(conn, bench, runs)

        def metric_rows() -> Any:
            for index, run_id in enumerate(run_ids):
                quality = rng.uniform(0.3, 1.0)
                for key in COMMON_METRICS + rng.sample(TAIL_METRICS, 6):
                    last = quality if "acc" in key else 1.5 - quality
                    yield (run_id, key, last, min(last, 0.1), max(last, 1.0), 99, 1767225600000 + index * 30_000, 100)

        seeding.copy_rows(
            conn,
            "experiments_metricsummary",
            ["run_id", "key", "last", "min", "max", "last_step", "last_timestamp", "count"],
            metric_rows(),
        )

        def param_rows() -> Any:
            for run_id in run_ids:
                yield (run_id, "optimizer", rng.choice(["adam", "sgd", "rmsprop", "adagrad"]))
                yield (run_id, "lr", f"{rng.choice([1, 3, 5])}e-{rng.randint(2, 5)}")
                yield (run_id, "batch_size", str(rng.choice([16, 32, 64, 128])))
                for key in rng.sample(TAIL_PARAMS, 7):
                    yield (run_id, key, str(rng.randint(0, 1000)))

        seeding.copy_rows(conn, "experiments_param", ["run_id", "key", "value"], param_rows())

        def config_rows() -> Any:
            for run_id in run_ids:
                yield (run_id, "model.depth", str(rng.choice([18, 34, 50])))
                yield (run_id, "data.augment", rng.choice(["true", "false"]))
                for key in rng.sample(TAIL_CONFIG, 3):
                    yield (run_id, key, str(rng.random()))

        seeding.copy_rows(conn, "experiments_configvalue", ["run_id", "key", "value"], config_rows())
        seeding.copy_rows(
            conn,
            "experiments_tag",
            ["run_id", "key", "value"],
            ((r, "team", rng.choice(["nlp", "cv"])) for r in run_ids),
        )
        for kind, keys in (
            ("metric", COMMON_METRICS + TAIL_METRICS),
            ("param", COMMON_PARAMS + TAIL_PARAMS),
            ("config", COMMON_CONFIG + TAIL_CONFIG),
            ("tag", ["team"]),
        ):
            seeding.copy_rows(
                conn, "experiments_projectkey", ["project_id", "kind", "key"], ((project_id, kind, k) for k in keys)
            )
        conn.commit()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return {"run_ids": run_ids, "seconds": time.perf_counter() - started, "project_id": project_id}


def save_layout(dsn: str, run_ids: list[str]) -> None:
    """The bench user's own table: 20 columns (tail keys among them), 2 pinned, 5 pinned runs."""
    columns = (
        [f"metrics.{k}" for k in COMMON_METRICS + TAIL_METRICS[:6]]
        + [f"params.{k}" for k in COMMON_PARAMS + TAIL_PARAMS[:3]]
        + [f"config.{k}" for k in COMMON_CONFIG + TAIL_CONFIG[:1]]
        + ["tags.team"]
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        project_id, user_id = conn.execute(
            "SELECT p.id, u.id FROM experiments_project p, accounts_user u WHERE u.username = %s", [benchlib.USERNAME]
        ).fetchone()  # type: ignore[misc]
        conn.execute("DELETE FROM experiments_runstablelayout")
        conn.execute(
            "INSERT INTO experiments_runstablelayout (project_id, user_id, columns, pinned_columns, pinned_runs, updated_at) "
            "VALUES (%s, %s, %s, %s, %s, now())",
            [
                project_id,
                user_id,
                json.dumps(columns),
                json.dumps(["metrics.acc", "params.lr"]),
                json.dumps(run_ids[100:105]),
            ],
        )


def timed_get(client: httpx.Client, path: str, params: Any, reps: int, must: str) -> dict[str, float]:
    client.get(path, params=params).raise_for_status()  # warm-up: imports, plans, connections
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        answer = client.get(path, params=params)
        samples.append(time.perf_counter() - start)
        answer.raise_for_status()
        if must not in answer.text:
            raise RuntimeError(f"{path} {params}: {must!r} not in the answer")
    return benchlib.summary_ms(samples)


def in_process(env: dict[str, str], scenarios: list[tuple[str, dict[str, str]]], reps: int) -> list[list[Any]]:
    """The same pages through Django's test client in this process: the server's own time per
    request, without HTTP or gunicorn, split into its CPU time (this thread's, which other
    processes on a loaded machine do not inflate much) and the SQL wall time."""
    import os

    os.environ.update({k: v for k, v in env.items() if k.startswith(("ASSAY_", "DATABASE_URL", "REDIS_URL"))})
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings"
    os.environ["ASSAY_ALLOWED_HOSTS"] = "testserver"
    import django

    django.setup()
    from django.db import connection
    from django.test import Client

    from accounts.models import User

    client = Client()
    client.force_login(User.objects.get(username=benchlib.USERNAME))
    out = []
    for name, params in scenarios:
        client.get(f"/{PROJECT}/", params)  # warm-up
        wall, cpu, sql = [], [], []
        for _ in range(reps):
            connection.force_debug_cursor = True
            connection.queries_log.clear()
            t0, c0 = time.perf_counter(), time.thread_time()
            answer = client.get(f"/{PROJECT}/", params)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
            sql.append(sum(float(q["time"]) for q in connection.queries))
            connection.force_debug_cursor = False
            if answer.status_code != 200:
                raise RuntimeError(f"{name}: {answer.status_code}")
        w, c, q = benchlib.summary_ms(wall), benchlib.summary_ms(cpu), benchlib.summary_ms(sql)
        out.append([name, f"{w['p50']:.0f}", f"{w['p95']:.0f}", f"{c['p50']:.0f}", f"{q['p50']:.0f}"])
        print(out[-1], flush=True)
    return out


def browser_scenario(base_url: str) -> list[tuple[str, float]]:
    """Headless Chromium, cold cache: the page, the column search, the new column, a sort."""
    from playwright.sync_api import expect, sync_playwright

    out: list[tuple[str, float]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{base_url}/login/")
        page.get_by_label("Username").fill(benchlib.USERNAME)
        page.get_by_label("Password").fill("bench-password-123")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base_url}/")

        start = time.perf_counter()
        page.goto(f"{base_url}/{PROJECT}/", wait_until="load")
        out.append(("page loaded (navigation to load event)", time.perf_counter() - start))

        page.get_by_role("button", name="Columns").click()
        search = page.get_by_test_id("column-search")
        start = time.perf_counter()
        search.fill("m1993")
        found = page.get_by_test_id("column-search-results").get_by_label("metrics.m1993")
        found.wait_for()
        out.append(("column search: a key found among 5,000", time.perf_counter() - start))

        found.check()
        start = time.perf_counter()
        page.get_by_test_id("columns-apply").click()
        header = page.locator('th[data-column="metrics.m1993"]')
        header.wait_for()
        out.append(("column added (form saved, page again)", time.perf_counter() - start))

        start = time.perf_counter()
        header.get_by_role("link").click()
        expect(page.locator('th[data-column="metrics.m1993"]')).to_have_attribute("aria-sort", "ascending")
        out.append(("sorted by that tail metric", time.perf_counter() - start))
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="reuse a database kept by --keep")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()

    env = benchlib.server_env(DBNAME, redis_db=14)
    dsn = env["DATABASE_URL"].replace("postgres://", "postgresql://", 1)
    try:
        if args.reuse:
            benchlib.manage(env, "migrate", "--noinput", "-v", "0")
            benchlib.manage(env, "collectstatic_if_changed", "-v", "0")
            with psycopg.connect(dsn) as conn:
                run_ids = [r[0] for r in conn.execute("SELECT id FROM experiments_run ORDER BY start_time").fetchall()]
                conn.execute("DELETE FROM experiments_runstablelayout")
        else:
            token = benchlib.prepare(DBNAME, env)
        with benchlib.Server("gunicorn", env, workers=args.workers) as server:
            if not args.reuse:
                api = benchlib.api_client(server.url, token)
                benchlib.create_run(api, PROJECT, "seed")  # the project, its default experiment
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("DELETE FROM experiments_run")
                    conn.execute("DELETE FROM experiments_projectkey")
                built = build(dsn, args.runs)
                run_ids = built["run_ids"]
                print(f"built {len(run_ids):,} runs in {built['seconds']:.0f} s")
            web = session_client(server.url)
            page = f"/{PROJECT}/"
            rows: list[list[Any]] = []

            def measure(name: str, path: str, params: Any, must: str) -> None:
                s = timed_get(web, path, params, args.reps, must)
                rows.append([name, f"{s['p50']:.0f}", f"{s['p95']:.0f}", f"{s['max']:.0f}"])
                print(rows[-1], flush=True)

            measure("first page, default columns", page, {}, 'data-column="metrics.acc"')
            save_layout(dsn, run_ids)
            measure("first page, saved layout (20 columns, 5 pinned runs)", page, {}, 'data-testid="pinned-run"')
            measure("sorted by a common metric (-metrics.acc)", page, {"sort": "-metrics.acc"}, "run-")
            measure("sorted by a tail metric (metrics.m0003)", page, {"sort": "metrics.m0003"}, "run-")
            measure("sorted by a param (params.lr)", page, {"sort": "params.lr"}, "run-")
            measure(
                "filter + sort",
                page,
                {"filter": "metrics.acc > 0.8 and params.optimizer = 'adam'", "sort": "-metrics.val_acc"},
                "run-",
            )
            measure("last page (offset 99,950)", page, {"page": "2000"}, "run-")
            keys = f"/api/v1/projects/{PROJECT}/keys/"
            measure("column search: keys API q=m199 (25 per kind)", keys, {"q": "m199", "limit": "25"}, "m1993")
            benchlib.print_table(["runs table over HTTP (session, HTML)", "p50 ms", "p95 ms", "max ms"], rows)
            print(f"load average while measuring: {Path('/proc/loadavg').read_text().split()[:3]}")
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("DELETE FROM experiments_runstablelayout")
            inside = in_process(
                env,
                [
                    ("first page, default columns", {}),
                    ("sorted by a common metric", {"sort": "-metrics.acc"}),
                    ("sorted by a tail metric", {"sort": "metrics.m0003"}),
                ],
                args.reps,
            )
            benchlib.print_table(["server side (in process), ms", "wall p50", "wall p95", "CPU p50", "SQL p50"], inside)
            target = float(inside[0][2])
            verdict = "meets" if target < TARGET_MS else "MISSES"
            print(f"first page server-side p95 {target:.0f} ms: {verdict} the < {TARGET_MS:.0f} ms target")

            if not args.no_browser and shutil.which("chromium") and Path(CHROMIUM).exists():
                with psycopg.connect(dsn, autocommit=True) as conn:
                    conn.execute("DELETE FROM experiments_runstablelayout")
                steps = browser_scenario(server.url)
                benchlib.print_table(
                    ["in headless Chromium (cold cache)", "ms"], [[name, f"{s * 1000:.0f}"] for name, s in steps]
                )
    finally:
        if not args.keep:
            with psycopg.connect(benchlib.PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DBNAME}" WITH (FORCE)')


if __name__ == "__main__":
    main()
