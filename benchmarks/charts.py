"""Chart pages in headless Chromium, cold cache (issue 20).

Self-contained like the other scripts (database ``assay_bench_charts``, production-profile
gunicorn with 2 workers). Seeds, then measures in Debian's Chromium (Playwright, the flags of
tests/browser/conftest.py), each repetition in a fresh browser context (empty HTTP cache; the
session cookie comes from a login through the context's request API, which does not fill the
cache):

* run page, one run with 50 metric keys x 100,000 steps (5 sections, 10 keys each): time from
  navigation start to the first chart drawn and to every chart in the first viewport drawn
  (1440 x 900), targets < 1 s and < 2 s;
* compare page, 100 runs x 10 keys x 10,000 steps: time to every panel drawn, in a window tall
  enough to show all 10 panels at once (1400 x 4000) so none is left for later; target < 3 s;
  and to the panels of a 1400 x 900 window;
* per page, the median time each chart's drawing took in the page (the ``assay:draw <key>``
  performance measures of panels.js) and the bytes of history the page fetched;
* the JavaScript and CSS a run page loads: bytes as served, and gzip-compressed (level 6), target
  <= 250 KB compressed.

Seeding: each run's first 10 steps of each key go through the log API (summaries and every
derived row as in production); the rest of each history is one chunk per (run, key) written with
COPY (binary int64/float64 columns, as metric_store writes them), and the summaries updated to
match.

    .venv/bin/python benchmarks/charts.py [--reps 3]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import benchlib

DBNAME = benchlib.dbname("assay_bench_charts")  # BENCH_DB replaces it
PASSWORD = "bench-password-123"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HEAD = 10  # steps logged through the API per (run, key)
RUN_KEYS = [
    f"{section}/{name}_{i}"
    for section in ("train", "val", "eval", "optim", "system")
    for i, name in enumerate(["loss", "acc", "grad", "norm", "lr", "f1", "prec", "rec", "auc", "mse"])
]
COMPARE_KEYS = [
    f"{section}/{name}" for section in ("train", "val") for name in ("loss", "acc", "grad_norm", "lr", "f1")
]

# Records, for every chart container, when it first got data-rendered="true".
RECORDER = """
window.__drawn = {};
new MutationObserver((records) => {
  for (const r of records) {
    const el = r.target;
    if (r.attributeName === 'data-rendered' && el.dataset.rendered === 'true' && el.dataset.key && !(el.dataset.key in window.__drawn)) {
      window.__drawn[el.dataset.key] = performance.now();
    }
  }
}).observe(document, {attributes: true, subtree: true, attributeFilter: ['data-rendered']});
"""


def curve(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = np.arange(n, dtype=np.float64)
    return np.exp(-steps / (n / 5)) + rng.normal(0, 0.02, n) + 0.1


def seed_run(
    api: httpx.Client,
    pg: psycopg.Connection,
    project: str,
    name: str,
    keys: list[str],
    steps: int,
    seed: int,
    config: dict[str, Any] | None = None,
) -> str:
    body: dict[str, Any] = {"project": project, "name": name}
    if config:
        body["config"] = config
    answer = api.post("/api/v1/runs/", json=body)
    answer.raise_for_status()
    run_id = str(answer.json()["id"])
    ts0 = int(time.time() * 1000) - steps * 100
    values = {key: curve(steps, seed * 1000 + k) for k, key in enumerate(keys)}
    series = [
        {
            "key": key,
            "steps": list(range(HEAD)),
            "values": values[key][:HEAD].tolist(),
            "timestamps": [ts0 + s * 100 for s in range(HEAD)],
        }
        for key in keys
    ]
    api.post(
        f"/api/v1/runs/{run_id}/log/", content=orjson.dumps({"batch_id": uuid.uuid4().hex, "series": series})
    ).raise_for_status()
    rest = np.arange(HEAD, steps, dtype=np.int64)
    stamps = ts0 + rest * 100
    with pg.cursor() as cur:
        with cur.copy(
            "COPY experiments_metricchunk (run_id, key, count, min_step, max_step, steps, values, timestamps) FROM STDIN"
        ) as copy:
            for key in keys:
                copy.write_row(
                    (
                        run_id,
                        key,
                        len(rest),
                        int(rest[0]),
                        int(rest[-1]),
                        rest.astype("<i8").tobytes(),
                        values[key][HEAD:].astype("<f8").tobytes(),
                        stamps.astype("<i8").tobytes(),
                    )
                )
        for key in keys:
            v = values[key]
            cur.execute(
                "UPDATE experiments_metricsummary SET last = %s, min = %s, max = %s, last_step = %s,"
                " last_timestamp = %s, count = %s WHERE run_id = %s AND key = %s",
                [float(v[-1]), float(v.min()), float(v.max()), steps - 1, int(stamps[-1]), steps, run_id, key],
            )
    pg.commit()
    return run_id


def log_in(context: Any, base: str) -> None:
    """A session cookie for the context without loading any page (its HTTP cache stays empty)."""
    context.request.get(f"{base}/login/")
    token = next(c["value"] for c in context.cookies() if c["name"] == "csrftoken")
    answer = context.request.post(
        f"{base}/login/",
        form={"login": benchlib.USERNAME, "password": PASSWORD, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        max_redirects=0,
    )
    if answer.status != 302:
        raise RuntimeError(f"login answered {answer.status}")


def measure(
    browser: Any, base: str, path: str, viewport: dict[str, int], selector: str, timeout_s: float = 60
) -> dict[str, Any]:
    context = browser.new_context(viewport=viewport)
    try:
        log_in(context, base)
        page = context.new_page()
        page.add_init_script(RECORDER)
        page.goto(base + path, wait_until="domcontentloaded")
        # The chart containers in the first viewport, once the page's module put them in
        # their sections (the layout is final then).
        page.wait_for_selector("details.chart-section", state="attached")
        visible = page.evaluate(
            """sel => [...document.querySelectorAll(sel)].filter(el => {
                 const r = el.getBoundingClientRect();
                 return r.height > 0 && r.top < innerHeight && r.bottom > 0;
               }).map(el => el.dataset.key)""",
            selector,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            drawn = page.evaluate("window.__drawn")
            if all(k in drawn for k in visible):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{path}: not every visible chart drawn within {timeout_s} s")
        resources = page.evaluate(
            "performance.getEntriesByType('resource').map(e => ({name: e.name, type: e.initiatorType, transfer: e.transferSize, body: e.encodedBodySize, start: e.startTime, end: e.responseEnd}))"
        )
        nav = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")
        # What each panel's drawing took in the page (panels.js measures "assay:draw <key>").
        draws = page.evaluate(
            "performance.getEntriesByType('measure').filter(e => e.name.startsWith('assay:draw ')).map(e => e.duration)"
        )
        times = [drawn[k] for k in visible]
        if not times:
            raise RuntimeError(f"{path}: no chart in the first viewport")
        api = [r for r in resources if "/api/" in r["name"]]
        if len({r["name"] for r in api}) != len(api):
            raise RuntimeError(f"{path}: a history was fetched twice (a preload not used?)")
        return {
            "api_start": min((r["start"] for r in api), default=0) / 1000,
            "api_end": min((r["end"] for r in api), default=0) / 1000,
            "visible": len(visible),
            "first": min(times) / 1000,
            "all": max(times) / 1000,
            "html": nav / 1000,
            "draw_ms": statistics.median(draws) if draws else 0.0,
            "api_bytes": sum(r["body"] for r in api),
            "resources": resources,
        }
    finally:
        context.close()


def weight(base: str, resources: list[dict[str, Any]]) -> list[tuple[str, int, int, int]]:
    """(file, bytes served, bytes transferred as the browser saw them, gzip -6 bytes)."""
    rows = []
    with httpx.Client() as client:
        for r in resources:
            name = r["name"]
            if not name.startswith(base + "/static/") or not (name.endswith(".js") or name.endswith(".css")):
                continue
            body = client.get(name, headers={"Accept-Encoding": "identity"}).content
            rows.append(
                (name.removeprefix(base + "/static/"), len(body), int(r["transfer"]), len(gzip.compress(body, 6)))
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--reuse", action="store_true", help="keep the database seeded by an earlier run")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    env = benchlib.server_env(DBNAME)
    pg_url = benchlib.PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DBNAME}"
    if args.reuse:
        # The pages link the hashed names of the static files as they are now (a rebuilt bundle
        # since the seeding run has new names): collect again when a source changed.
        benchlib.manage(env, "collectstatic_if_changed", "-v", "0")
        token = benchlib.manage(env, "create_token", benchlib.USERNAME, "--name", "bench").strip().splitlines()[-1]
    else:
        print(f"preparing database {DBNAME} ...", flush=True)
        token = benchlib.prepare(DBNAME, env)
    with (
        benchlib.Server("gunicorn", env, workers=args.workers) as server,
        benchlib.api_client(server.url, token) as api,
        psycopg.connect(pg_url) as pg,
    ):
        if args.reuse:
            big = pg.execute("SELECT id FROM experiments_run WHERE name = 'big-50x100k'").fetchone()[0]  # type: ignore[index]
            sweep = [r[0] for r in pg.execute("SELECT id FROM experiments_run WHERE name LIKE 'sweep-%' ORDER BY name")]
        else:
            start = time.perf_counter()
            big = seed_run(api, pg, "bench/charts", "big-50x100k", RUN_KEYS, 100_000, seed=1)
            print(f"  run page data: 50 keys x 100,000 steps in {time.perf_counter() - start:.1f} s", flush=True)
            start = time.perf_counter()
            sweep = [
                seed_run(
                    api,
                    pg,
                    "bench/sweep",
                    f"sweep-{i:03d}",
                    COMPARE_KEYS,
                    10_000,
                    seed=100 + i,
                    config={"optimizer": ("adam", "sgd", "lion", "adamw")[i % 4], "lr": 1e-4 * (i + 1)},
                )
                for i in range(100)
            ]
            print(
                f"  compare data: 100 runs x 10 keys x 10,000 steps in {time.perf_counter() - start:.1f} s", flush=True
            )
        compare_path = "/bench/sweep/compare/?runs=" + ",".join(sweep)

        rows = []
        weights: list[tuple[str, int, int, int]] = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            plan = [
                (
                    "run page 50 keys x 100k steps, 1440x900",
                    f"/bench/charts/runs/{big}/",
                    {"width": 1440, "height": 900},
                    "[data-metric-chart]",
                    "< 1 s",
                    "< 2 s",
                ),
                (
                    "compare 100 runs x 10 keys x 10k, 1400x4000 (all panels in view)",
                    compare_path,
                    {"width": 1400, "height": 4000},
                    "[data-compare-chart]",
                    "",
                    "< 3 s",
                ),
                (
                    "compare 100 runs x 10 keys x 10k, 1400x900",
                    compare_path,
                    {"width": 1400, "height": 900},
                    "[data-compare-chart]",
                    "",
                    "",
                ),
            ]
            for name, path, viewport, selector, first_target, all_target in plan:
                print(f"  {name} ...", flush=True)
                samples = [measure(browser, server.url, path, viewport, selector) for _ in range(args.reps)]
                if not weights and path.startswith("/bench/charts/runs/"):
                    weights = weight(server.url, samples[0]["resources"])
                rows.append(
                    [
                        name,
                        str(samples[0]["visible"]),
                        f"{statistics.median(s['html'] for s in samples):.2f}",
                        f"{statistics.median(s['api_start'] for s in samples):.2f} / {statistics.median(s['api_end'] for s in samples):.2f}",
                        f"{statistics.median(s['first'] for s in samples):.2f} ({min(s['first'] for s in samples):.2f}-{max(s['first'] for s in samples):.2f})",
                        f"{statistics.median(s['all'] for s in samples):.2f} ({min(s['all'] for s in samples):.2f}-{max(s['all'] for s in samples):.2f})",
                        f"{statistics.median(s['draw_ms'] for s in samples):.0f}",
                        f"{statistics.median(s['api_bytes'] for s in samples) / 1e6:.1f}",
                        first_target,
                        all_target,
                    ]
                )
            browser.close()
    print()
    print(
        f"headless Chromium, cold cache, {args.reps} repetitions each: median (min-max), seconds from navigation start"
    )
    benchlib.print_table(
        [
            "page",
            "charts in view",
            "HTML",
            "first data request sent / answered",
            "first chart",
            "all in view",
            "draw per chart ms",
            "API MB",
            "target first",
            "target all",
        ],
        rows,
    )
    print()
    benchlib.print_table(
        ["run page file", "bytes", "transferred", "gzip -6"],
        [[f, f"{b:,}", f"{t:,}", f"{g:,}"] for f, b, t, g in weights]
        + [
            [
                "total",
                f"{sum(w[1] for w in weights):,}",
                f"{sum(w[2] for w in weights):,}",
                f"{sum(w[3] for w in weights):,}",
            ]
        ],
    )


if __name__ == "__main__":
    main()
