"""Never lose a point, never count one twice: server restarts, spooling, offline + sync."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from pathlib import Path

from sdk_helpers import assert_exactly

import assay
from assay import cli

KEYS = ["loss", "acc", "lr"]


def _log_steps(run: assay.Run, steps: range, pause: float = 0.0) -> None:
    for step in steps:
        run.log({key: step + i / 10 for i, key in enumerate(KEYS)}, step=step)
        if pause:
            time.sleep(pause)


def _restart_later(server, down_for: float) -> threading.Thread:
    def bring_back() -> None:
        time.sleep(down_for)
        server.start()

    thread = threading.Thread(target=bring_back)
    thread.start()
    return thread


def test_server_killed_mid_run_and_restarted_loses_nothing_and_duplicates_nothing(assay_env, project, running_server):
    # given a run that is logging
    run = assay.init(project=project)
    _log_steps(run, range(0, 2_000))
    run.flush()
    # when the server dies abruptly while points keep coming, and comes back a little later
    running_server.kill()
    back = _restart_later(running_server, 2.0)
    _log_steps(run, range(2_000, 4_000), pause=0.0005)
    back.join()
    _log_steps(run, range(4_000, 5_000))
    run.finish()
    # then every point is there exactly once (retries resent the same batch ids)
    assert_exactly(run.id, KEYS, range(5_000))
    assert assay.Api().run(run.id).status == "finished"
    assert not list(Path(assay_env["ASSAY_DIR"]).glob("spool/*"))


def test_long_outage_spools_to_disk_and_recovers_in_process(assay_env, project, running_server, monkeypatch):
    # given a transport that gives up retrying quickly and spools
    run = assay.init(project=project, retry_timeout=0.3)
    _log_steps(run, range(0, 1_000))
    run.flush()
    running_server.stop()
    _log_steps(run, range(1_000, 3_000))
    run.flush()
    spool_dir = Path(assay_env["ASSAY_DIR"]) / "spool" / run.id
    assert list(spool_dir.glob("*.jsonl")), "batches were spooled while the server was down"
    # when the server is back before the run ends
    running_server.start()
    _log_steps(run, range(3_000, 4_000))
    run.finish()
    # then the spool was sent by the job itself, once
    assert_exactly(run.id, KEYS, range(4_000))
    assert not spool_dir.exists()


def test_server_down_at_the_end_then_assay_sync_completes_the_run(assay_env, project, running_server, capsys):
    run = assay.init(project=project, retry_timeout=0.3)
    _log_steps(run, range(0, 500))
    run.flush()
    running_server.stop()
    _log_steps(run, range(500, 1_500))
    run.finish()
    assert "assay sync" in capsys.readouterr().err
    running_server.start()
    assert assay.Api().run(run.id).status == "running"
    # when
    assert cli.main(["sync"]) == 0
    # then
    assert_exactly(run.id, KEYS, range(1_500))
    assert assay.Api().run(run.id).status == "finished"
    assert cli.main(["sync"]) == 0
    assert "Nothing to sync" in capsys.readouterr().out


def test_offline_run_then_sync_is_complete_and_a_second_sync_adds_nothing(assay_env, project, tmp_path):
    # given an offline run (no server contact at all)
    run = assay.init(project=project, mode="offline", config={"lr": 0.1}, tags={"where": "plane"})
    _log_steps(run, range(3_000))
    run.log_params({"batch_size": 32})
    run.summary["test_acc"] = 0.75
    run.log_confusion_matrix([0, 1, 1], [0, 1, 0], labels=["a", "b"], name="val")
    run.finish()
    assert run.id.startswith("offline-")
    spool_dir = Path(assay_env["ASSAY_DIR"]) / "spool" / run.id
    copy = tmp_path / "spool-copy"
    shutil.copytree(spool_dir, copy)
    # when it is synced
    results = assay.sync()
    # then the run exists, complete and finished
    assert [r.ok for r in results] == [True]
    run_id = results[0].run_id
    assert run_id
    assert results[0].created
    assert results[0].points == 3_000 * 3 + 1
    assert_exactly(run_id, KEYS, range(3_000))
    with assay.Api() as api:
        record = api.run(run_id)
        figures = api.figures(run_id)
    assert record.status == "finished"
    assert record.config == {"lr": 0.1}
    assert record.params == {"batch_size": "32"}
    assert record.tags == {"where": "plane"}
    assert record.summary["test_acc"] == 0.75
    assert figures[0]["data"]["matrix"] == [[1, 0], [1, 1]]
    assert not spool_dir.exists()
    # and a second sync has nothing to do
    assert assay.sync() == []
    # and even re-syncing a copy of the spool (as if the first sync died before deleting
    # its files) adds nothing: batch ids are kept, and so is the created run's id once known
    shutil.copytree(copy, spool_dir)
    meta = (spool_dir / "run.json").read_text()
    assert '"run_id": null' in meta  # the copy predates the creation
    import json

    data = json.loads(meta)
    data["run_id"] = run_id
    (spool_dir / "run.json").write_text(json.dumps(data))
    again = assay.sync()
    assert [(r.created, r.points, r.duplicates) for r in again] == [(False, 0, again[0].batches)]
    assert_exactly(run_id, KEYS, range(3_000))
    assert len(assay.Api().runs(project)) == 1


def test_sync_skips_a_spool_that_a_live_run_still_writes(assay_env, project):
    run = assay.init(project=project, mode="offline")
    run.log({"x": 1})
    run.flush()
    results = assay.sync()
    assert [r.skipped for r in results] == ["in use by a running process"]
    run.finish()
    assert [r.ok for r in assay.sync()] == [True]


def test_artifacts_of_an_offline_run_are_uploaded_by_sync_once(assay_env, project, tmp_path, capsys):
    import hashlib

    # given an offline run that logs a file and a directory, then overwrites the file
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"epoch-1" * 1000)
    folder = tmp_path / "eval"
    (folder / "plots").mkdir(parents=True)
    (folder / "report.txt").write_text("accuracy 0.9\n")
    (folder / "plots" / "roc.csv").write_text("fpr,tpr\n0,0\n1,1\n")
    run = assay.init(project=project, mode="offline")
    _log_steps(run, range(100))
    run.log_model(weights)
    run.log_artifact(folder, name="evaluation", kind="dataset")
    weights.write_bytes(b"epoch-2")  # what was logged is the file as it was at the call
    run.finish()
    spool_dir = Path(assay_env["ASSAY_DIR"]) / "spool" / run.id
    assert len(list((spool_dir / "artifacts").rglob("*.*"))) == 3

    # when it is synced by the command
    assert cli.main(["sync"]) == 0
    shown = capsys.readouterr()
    assert "3 artifact file(s)" in shown.out
    assert re.search(r"assay: syncing offline-\S+: (\d+)/\1 files, 300 points", shown.err), shown.err

    # then the server lists the artifacts with the logged bytes, and the spool is gone
    [record] = assay.Api().runs(project)
    with assay.Api() as api:
        items = {item["path"]: item for item in api.client.list_artifacts(record.id)}
    assert sorted(items) == ["evaluation/plots/roc.csv", "evaluation/report.txt", "model.bin"]
    assert items["model.bin"]["sha256"] == hashlib.sha256(b"epoch-1" * 1000).hexdigest()
    assert items["model.bin"]["kind"] == "model"
    assert items["evaluation/report.txt"]["kind"] == "dataset"
    assert all(item["status"] != "pending" for item in items.values())  # every upload completed
    assert_exactly(record.id, KEYS, range(100))
    assert not spool_dir.exists()
    assert assay.sync() == []


def test_an_interrupted_sync_of_artifacts_resumes_without_duplicates(assay_env, project, tmp_path, running_server):
    data = tmp_path / "data.bin"
    data.write_bytes(b"d" * 5000)
    run = assay.init(project=project, mode="offline")
    run.log_artifact(data)
    run.log({"loss": 1.0}, step=0)
    run.finish()
    spool_dir = Path(assay_env["ASSAY_DIR"]) / "spool" / run.id
    copy = tmp_path / "copy"
    shutil.copytree(spool_dir, copy)
    [first] = assay.sync()
    assert (first.ok, first.artifacts) == (True, 1)
    # the same spool sent again (as if the first sync died before deleting it)
    shutil.copytree(copy, spool_dir)
    meta = json.loads((spool_dir / "run.json").read_text())
    (spool_dir / "run.json").write_text(json.dumps({**meta, "run_id": first.run_id}))
    [again] = assay.sync()
    assert (again.ok, again.artifacts, again.points) == (True, 1, 0)
    with assay.Api() as api:
        assert [i["path"] for i in api.client.list_artifacts(first.run_id)] == ["data.bin"]
    assert len(assay.Api().runs(project)) == 1
