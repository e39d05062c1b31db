"""Has this configuration been tried? (issue 22): the warning of assay.init, if_tried="skip",
a slow or dead "tried?" answer never delaying the training loop, and `assay tried`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

import assay
from assay import cli

CONFIG = {"lr": 0.01, "optimizer": {"name": "adam"}, "epochs": 3}


def join_tried_threads(timeout: float = 10.0) -> None:
    for thread in threading.enumerate():
        if thread.name == "assay-tried":
            thread.join(timeout)


def run_count(server, project: str) -> int:  # type: ignore[no-untyped-def]
    with server.http() as http:
        return len(http.get("/runs/", params={"project": project}).json()["results"])


def test_a_duplicate_configuration_warns_and_a_new_one_does_not(assay_env, project, capsys):
    # given a finished run
    with assay.init(project=project, config=CONFIG, name="first") as run:
        run.log({"acc": 0.8})
    join_tried_threads()
    first_err = capsys.readouterr().err
    assert "already ran" not in first_err
    # when the same configuration starts again, spelled differently
    with assay.init(project=project, config={"epochs": "3", "optimizer": {"name": "adam"}, "lr": 1e-2}):
        join_tried_threads()
    # then one line names the earlier run, its author, status and key metric
    lines = [line for line in capsys.readouterr().err.splitlines() if "already ran" in line]
    assert len(lines) == 1, lines
    assert "first by ana" in lines[0]
    assert "finished" in lines[0]
    assert "acc=0.8" in lines[0]
    # and a new configuration gets no such line (the nearest runs instead)
    with assay.init(project=project, config={**CONFIG, "lr": 0.5}):
        join_tried_threads()
    err = capsys.readouterr().err
    assert "already ran" not in err
    [near] = [line for line in err.splitlines() if "nearest runs:" in line]
    assert "first (lr=0.01, acc=0.8)" in near


def test_if_tried_skip_starts_no_run(assay_env, project, running_server, capsys):
    with assay.init(project=project, config=CONFIG, name="done"):
        pass
    before = run_count(running_server, project)

    skipped = assay.init(project=project, config=CONFIG, if_tried="skip")

    assert skipped.skipped is True
    assert skipped.mode == "disabled"
    assert skipped.tried is not None
    assert skipped.tried["identical"][0]["name"] == "done"
    assert "skipped: this configuration already ran: done" in capsys.readouterr().err
    skipped.log({"loss": 1.0})  # a no-op, like a disabled run
    skipped.finish()
    assert run_count(running_server, project) == before
    # a new configuration does start
    with assay.init(project=project, config={**CONFIG, "epochs": 4}, if_tried="skip") as fresh:
        assert fresh.skipped is False
    assert run_count(running_server, project) == before + 1


def test_if_tried_is_validated(assay_env, project):
    with pytest.raises(assay.ConfigurationError, match="if_tried"):
        assay.init(project=project, config=CONFIG, if_tried="maybe")


class _Proxy(BaseHTTPRequestHandler):
    """Forwards to the real server, except that tried/ hangs (slow) or drops (down)."""

    upstream = ""
    behaviour = "slow"
    release = threading.Event()

    def _forward(self) -> None:
        if self.path.endswith("/tried/"):
            if self.behaviour == "down":
                self.close_connection = True
                return
            self.release.wait(30)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
        answer = httpx.request(self.command, self.upstream + self.path, content=body, headers=headers, timeout=30)
        self.send_response(answer.status_code)
        for key, value in answer.headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    do_GET = do_POST = do_PATCH = _forward

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=["slow", "down"])
def flaky_tried(request, assay_env, running_server, monkeypatch) -> Iterator[str]:  # type: ignore[no-untyped-def]
    handler = type("Handler", (_Proxy,), {"upstream": running_server.url, "behaviour": request.param})
    handler.release = threading.Event()
    proxy = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    proxy.daemon_threads = True
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("ASSAY_URL", f"http://127.0.0.1:{proxy.server_address[1]}")
    monkeypatch.setenv("ASSAY_TRIED_TIMEOUT", "1")
    yield request.param
    handler.release.set()
    proxy.shutdown()
    proxy.server_close()


def test_a_slow_or_dead_tried_answer_does_not_delay_the_training_loop(flaky_tried, project, running_server):
    # warn: the question runs beside the loop; init and 200 steps take no longer than they
    # would without it (the proxy holds tried/ for 30 s when slow).
    started = time.monotonic()
    run = assay.init(project=project, config=CONFIG)
    for step in range(200):
        run.log({"loss": 1.0 / (step + 1)})
    loop = time.monotonic() - started
    run.finish()
    assert loop < 0.9, f"init + loop took {loop:.2f} s with tried/ {flaky_tried}"
    # skip: asked first, but bounded by ASSAY_TRIED_TIMEOUT (1 s), then the run starts
    started = time.monotonic()
    run = assay.init(project=project, config=CONFIG, if_tried="skip")
    waited = time.monotonic() - started
    assert run.skipped is False
    assert run.mode == "online"
    run.finish()
    assert waited < 2.5, f"skip waited {waited:.2f} s"


def test_cli_tried_exit_codes_and_formats(assay_env, project, tmp_path: Path, capsys):
    with assay.init(project=project, config=CONFIG, name="base", if_tried="ignore"):
        pass
    capsys.readouterr()
    same = tmp_path / "same.yaml"
    same.write_text("epochs: 3\nlr: 1.0e-2\noptimizer:\n  name: adam\n")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**CONFIG, "lr": 0.2}))
    dump = tmp_path / "args.txt"
    dump.write_text("Namespace(epochs=3, lr=0.01, **{'optimizer.name': 'adam'})\n")

    assert cli.main(["tried", str(same), "-p", project]) == 0
    assert "already ran: base by ana" in capsys.readouterr().out
    assert cli.main(["tried", str(other), "-p", project, "--json"]) == 1
    answer = json.loads(capsys.readouterr().out)
    assert answer["identical"] == []
    assert answer["near"][0]["differences"][0]["key"] == "lr"
    assert cli.main(["tried", str(dump), "-p", project]) == 0
    capsys.readouterr()
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    assert cli.main(["tried", str(bad), "-p", project]) == 2
    assert "must be an object" in capsys.readouterr().err
