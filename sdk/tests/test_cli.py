"""The assay command: login, status, runs list, sync."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

from conftest import subprocess_env

import assay
from assay import cli


def test_login_stores_the_token_with_mode_0600(assay_env, running_server, monkeypatch, capsys):
    monkeypatch.delenv("ASSAY_TOKEN")
    assert cli.main(["login", "--url", running_server.url, "--token", running_server.token]) == 0
    path = Path(assay_env["ASSAY_CONFIG_DIR"]) / "credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": running_server.url, "token": running_server.token}
    assert "as ana" in capsys.readouterr().out
    # and the SDK uses it without ASSAY_URL / ASSAY_TOKEN
    monkeypatch.delenv("ASSAY_URL")
    assert assay.Api().me()["username"] == "ana"


def test_login_refuses_a_bad_token_and_stores_nothing(assay_env, running_server, capsys):
    assert cli.main(["login", "--url", running_server.url, "--token", "wrong"]) == 1
    assert "error" in capsys.readouterr().err
    assert not (Path(assay_env["ASSAY_CONFIG_DIR"]) / "credentials.json").exists()


def test_status_shows_server_user_and_spool(assay_env, project, capsys):
    run = assay.init(project=project, mode="offline")
    run.log({"x": 1.0})
    run.finish()
    assert cli.main(["status"]) == 0
    out = capsys.readouterr().out
    assert "user:    ana" in out
    assert "1 run(s) waiting" in out
    assert run.id in out


def test_status_with_unreachable_server_says_so(assay_env, monkeypatch, capsys):
    monkeypatch.setenv("ASSAY_URL", "http://127.0.0.1:9")
    assert cli.main(["status"]) == 1
    assert "Cannot reach" in capsys.readouterr().out


def test_runs_list(assay_env, project, capsys):
    with assay.init(project=project, name="listed-run") as run:
        run.log({"acc": 0.5})
    assert cli.main(["runs", "list", "--project", project]) == 0
    out = capsys.readouterr().out
    assert "listed-run" in out
    assert run.id in out
    assert "acc=0.5" in out
    assert cli.main(["runs", "list", "--project", project, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == run.id


def test_sync_command_as_a_process(assay_env, project):
    run = assay.init(project=project, mode="offline")
    run.log({"x": 1.0})
    run.finish()
    assay_bin = Path(sys.executable).parent / "assay"
    command = [str(assay_bin)] if assay_bin.exists() else [sys.executable, "-m", "assay.cli"]
    done = subprocess.run(
        [*command, "sync"], env=subprocess_env(assay_env), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "created, 1 batch(es), 1 new point(s)" in done.stdout
    again = subprocess.run(
        [*command, "sync"], env=subprocess_env(assay_env), capture_output=True, text=True, check=False
    )
    assert "Nothing to sync" in again.stdout
    assert os.environ.get("ASSAY_DIR") == assay_env["ASSAY_DIR"]


def test_runs_list_aligns_its_columns_and_shows_the_order_by_key(assay_env, project, capsys):
    # issue 16, bug 13: 32-character ids, and the key the list is ordered by
    for name, acc in (("short", 0.5), ("a-much-longer-run-name", 0.91234567)):
        with assay.init(project=project, name=name) as run:
            run.log({"aaa_first": 1.0, "acc": acc, "b": 2.0, "c": 3.0, "d": 4.0})
    assert cli.main(["runs", "list", "-p", project, "--order-by", "metrics.acc DESC"]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, rows = lines[0], lines[1:]
    assert len(run.id) == 32
    assert header.split() == ["ID", "NAME", "STATUS", "STARTED", "METRICS.ACC"]
    for column in ("NAME", "STATUS", "STARTED", "METRICS.ACC"):  # every row starts its cells under the header's
        start = header.index(column)
        assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows), (column, lines)
    assert rows[0].split()[-1] == "0.9123"
    assert rows[1].split()[-1] == "0.5"
    assert "aaa_first" not in "\n".join(rows)


def test_watch_prints_one_compact_line_per_step():
    from assay.watch import format_event

    lines = format_event(
        {
            "type": "event",
            "event": "metrics",
            "data": {
                "points": {
                    "loss": {"steps": [3, 4], "values": [0.123456789, 0.0999]},
                    "acc": {"steps": [3, 4], "values": [0.9916434540389972, 0.99]},
                }
            },
        }
    )
    assert lines == ["step      3  acc=0.9916  loss=0.1235", "step      4  acc=0.99  loss=0.0999"]


def test_upload_progress_uses_a_unit_that_fits_the_file():
    from assay.artifacts import sizes

    assert sizes(300, 300) == "300/300 bytes"
    assert sizes(1536, 3072) == "1.5/3.0 KiB"
    assert sizes(5 * 2**20, 10 * 2**20) == "5.0/10.0 MiB"
    assert sizes(0, 0) == "0/0 bytes"
