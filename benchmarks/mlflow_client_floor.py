"""The MLflow client's own floor: the same ``MlflowClient`` script as ``mlflow_compat.py``
(mlflow 3.17.2 in ``.venv-mlflow``, a separate process) against a server that answers every
call at once with a body encoded beforehand. No server can be seen faster than this through
that client on this machine, so it bounds the ratios issue 18 asks for (``log_batch`` ≥ 10×
MLflow's points/s, ``get_metric_history`` ≥ 5× faster).

The stub is a stdlib ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive) in this process; its
answers are what Assay answers (``get-history`` pages of 25,000 points with a next-page
token), built and encoded before the client starts.

    .venv/bin/python benchmarks/mlflow_client_floor.py [--reps 50] [--history-points 100000]
        [--mlflow-points-per-s N] [--mlflow-history-s S]

Given MLflow's own figures (from ``mlflow_compat.py`` in the same minutes), it prints the
highest ratio any server could reach through the client.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import mlflow_compat

PAGE = 25_000  # Assay's (and MLflow's) get-history page


def history_pages(key: str, points: int) -> list[bytes]:
    pages = []
    for start in range(0, points, PAGE):
        stop = min(start + PAGE, points)
        body: dict[str, Any] = {
            "metrics": [
                {"key": key, "value": float(i), "timestamp": 1764150000000 + i, "step": i} for i in range(start, stop)
            ]
        }
        if stop < points:
            body["next_page_token"] = str(stop)
        pages.append(json.dumps(body, separators=(",", ":")).encode())
    return pages


class Stub:
    def __init__(self, histories: dict[str, int]) -> None:
        run_id = uuid.uuid4().hex
        run = {
            "run": {
                "info": {
                    "run_id": run_id,
                    "run_uuid": run_id,
                    "experiment_id": "1",
                    "run_name": "stub",
                    "user_id": "bench",
                    "status": "RUNNING",
                    "start_time": 1764150000000,
                    "artifact_uri": "mlflow-artifacts:/1/" + run_id + "/artifacts",
                    "lifecycle_stage": "active",
                },
                "data": {},
                "inputs": {},
            }
        }
        self.answers = {
            "experiments/create": json.dumps({"experiment_id": "1"}).encode(),
            "runs/create": json.dumps(run).encode(),
        }
        self.pages = {key: history_pages(key, points) for key, points in histories.items()}
        self.unknown: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in one write, and nothing waits for a delayed ACK.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _answer(self, body: bytes, status: int = 200) -> None:
                head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                self.wfile.write(head.encode() + body)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = urlsplit(self.path).path.split("/api/2.0/mlflow/", 1)[-1]
                self._answer(owner.answers.get(path, b"{}"))

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                if not parts.path.endswith("metrics/get-history"):
                    owner.unknown.append(self.path)
                    self._answer(b'{"error_code":"ENDPOINT_NOT_FOUND","message":"stub"}', 404)
                    return
                query = parse_qs(parts.query)
                pages = owner.pages.get(query["metric_key"][0], [b'{"metrics":[]}'])
                index = int(query.get("page_token", ["0"])[0]) // PAGE
                self._answer(pages[index])

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reps", type=int, default=50, help="log_batch calls of 1,000 points")
    parser.add_argument("--history-points", type=int, default=100_000)
    parser.add_argument("--mlflow-points-per-s", type=float, help="MLflow's log_batch points/s, same minutes")
    parser.add_argument("--mlflow-history-s", type=float, help="MLflow's 100,000-point history read, seconds")
    args = parser.parse_args()

    stub = Stub({"h": args.history_points, "loss": args.reps * 1000})
    cfg = {"reps": args.reps, "history_points": args.history_points, "singles": 200}
    samples = mlflow_compat.run_client(stub.url, None, cfg)
    floor = mlflow_compat.summarise(samples)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("| through MlflowClient, against a server answering at once | floor |")
    print("|---|---|")
    print(f"| log_batch 1,000 points: points/s (the most any server can show) | {floor['batch_points_per_s']:,.0f} |")
    print(f"| log_batch 1,000 points: p50 / p95 ms | {floor['batch_p50_ms']:.1f} / {floor['batch_p95_ms']:.1f} |")
    print(
        f"| get_metric_history {args.history_points:,} points: median / min s (the least any server can show) "
        f"| {floor['history_median_s']:.2f} / {floor['history_min_s']:.2f} |"
    )
    print(f"| log_metric: p50 / p95 ms | {floor['single_p50_ms']:.2f} / {floor['single_p95_ms']:.2f} |")
    if args.mlflow_points_per_s:
        print(f"log_batch: at most {floor['batch_points_per_s'] / args.mlflow_points_per_s:.1f}× MLflow's points/s")
    if args.mlflow_history_s:
        print(
            f"get_metric_history: at most {args.mlflow_history_s / floor['history_median_s']:.1f}× faster than MLflow"
        )
    if stub.unknown:
        print(f"(the client also asked for: {sorted(set(stub.unknown))})")


if __name__ == "__main__":
    main()
