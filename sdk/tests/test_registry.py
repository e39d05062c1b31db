"""The model registry from the SDK, against a real server: a training script (in a git
repository whose "remote" is a local bare repository, so no network) registers two
versions, staging goes on the first, the CLI diffs them, a protected alias is refused,
and `assay reproduce` writes a script that rebuilds v1 and whose verify step passes."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Server, _manage, subprocess_env

import assay
from assay import cli, digests
from assay.errors import ConflictError
from assay.registry import dataset_fingerprint, path_digest, verify_script

TRAIN_PY_COMMITTED = """\
import argparse, hashlib, json, os
import assay

parser = argparse.ArgumentParser()
parser.add_argument("--seed", type=int, required=True)
parser.add_argument("--alias", action="append", default=[])
args = parser.parse_args()
SCALE = 2
data = open("data.csv", "rb").read()
weights = hashlib.sha256(data + f"{args.seed}:{SCALE}".encode()).hexdigest().encode()
with open("model.bin", "wb") as handle:
    handle.write(weights)
run = assay.init(project=os.environ["TRAIN_PROJECT"], config={"seed": args.seed, "scale": SCALE})
run.log_dataset("train", path="data.csv", rows=3)
run.log({"acc": 0.8 + args.seed / 100})
if run.mode == "online":
    run.log_model("model.bin")
    version = run.register_model("fraud", artifact="model.bin", aliases=args.alias or None)
    print("VERSION " + json.dumps({"number": version.number, "content_hash": version.content_hash, "url": version.url}))
run.finish()
"""


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


@pytest.fixture
def training_repo(tmp_path: Path) -> Path:
    """A working copy with one commit pushed to a bare "remote", and an uncommitted change
    to train.py (SCALE = 3) that only the recorded diff can bring back."""
    remote = tmp_path / "remote.git"
    work = tmp_path / "work"
    remote.mkdir()
    work.mkdir()
    git(remote, "init", "--quiet", "--bare")
    git(work, "init", "--quiet", "-b", "main")
    (work / "train.py").write_text(TRAIN_PY_COMMITTED)
    (work / "data.csv").write_text("x,y\n1,0\n2,1\n3,1\n")
    git(work, "add", ".")
    git(work, "commit", "--quiet", "-m", "first")
    git(work, "remote", "add", "origin", str(remote))
    git(work, "push", "--quiet", "origin", "main")
    (work / "train.py").write_text(TRAIN_PY_COMMITTED.replace("SCALE = 2", "SCALE = 3"))
    return work


def train(work: Path, assay_env: dict[str, str], project: str, seed: int, *aliases: str) -> dict[str, object]:
    args = [sys.executable, "train.py", "--seed", str(seed)]
    for alias in aliases:
        args += ["--alias", alias]
    done = subprocess.run(
        args,
        cwd=work,
        env=subprocess_env(assay_env, TRAIN_PROJECT=project),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("VERSION "))
    return json.loads(line[len("VERSION ") :])  # type: ignore[no-any-return]


def test_directory_digest_is_sha256_over_sorted_path_and_file_digest_lines(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "a.txt").write_bytes(b"A")
    (tmp_path / "b" / "c.txt").write_bytes(b"C")
    lines = "".join(
        f"{rel}\t{hashlib.sha256(data).hexdigest()}\n" for rel, data in [("a.txt", b"A"), ("b/c.txt", b"C")]
    )

    assert path_digest(tmp_path) == ("sha256:" + hashlib.sha256(lines.encode()).hexdigest(), 2)
    assert dataset_fingerprint("d", path=tmp_path / "a.txt")["digest"] == "sha256:" + hashlib.sha256(b"A").hexdigest()


def test_verify_py_is_the_digests_module_and_runs_without_the_sdk(tmp_path: Path) -> None:
    # given a rebuild whose binary and dataset match the manifest, and the verify.py reproduce writes
    rebuild = tmp_path / "src"
    (rebuild / "data").mkdir(parents=True)
    (rebuild / "model.bin").write_bytes(b"weights")
    (rebuild / "data" / "a.csv").write_text("x\n1\n")
    digest = path_digest(rebuild / "data")[0]
    manifest = {
        "code": {"cwd": "."},
        "binary": {"path": "model.bin", "sha256": hashlib.sha256(b"weights").hexdigest()},
        "datasets": [{"name": "train", "path": "data", "digest": digest}],
    }
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "verify.py").write_text(verify_script())

    # when it runs where assay cannot be imported (-I: no PYTHONPATH, -S: no site-packages)
    done = subprocess.run(
        [sys.executable, "-I", "-S", str(tmp_path / "verify.py")], capture_output=True, text=True, cwd=tmp_path
    )

    # then it is the SDK's digest module, and it passes with the digests the SDK computed
    assert verify_script() == Path(digests.__file__).read_text(encoding="utf-8")
    assert done.returncode == 0, done.stderr
    assert f"OK        dataset train {digest}" in done.stdout
    assert "verify: passed" in done.stdout


def test_register_diff_protect_reproduce_and_verify(
    assay_env: dict[str, str],
    running_server: Server,
    project: str,
    training_repo: Path,
    tmp_path: Path,
    capsys,
    monkeypatch,
) -> None:
    # two versions from the training script; staging on the first
    v1 = train(training_repo, assay_env, project, 1, "staging")
    v2 = train(training_repo, assay_env, project, 2)
    assert (v1["number"], v2["number"]) == (1, 2)
    assert str(v1["url"]).endswith(f"/{project}/models/fraud/v1/")
    monkeypatch.setenv("ASSAY_PROJECT", project)

    # the CLI diffs them
    assert cli.main(["models", "diff", "fraud@staging", "fraud@v2"]) == 0
    out = capsys.readouterr().out
    assert "param ~ seed: 1 → 2" in out
    assert "metric acc: 0.81 → 0.82" in out
    assert "binary:" in out
    assert assay.diff("fraud@v1", f"{project}/fraud@latest")["params"]["changed"] == {"seed": {"from": "1", "to": "2"}}

    # a protected alias is refused through the SDK and the CLI; an unprotected one moves
    with pytest.raises(ConflictError) as caught:
        assay.set_alias("fraud@v2", "production")
    assert caught.value.code == "protected_alias"
    assert cli.main(["models", "alias", "fraud@v2", "production"]) == 1
    assert "protected" in capsys.readouterr().err
    assert assay.set_alias("fraud@v2", "staging", reason="better").number == 2

    # reproduce v1 into a directory: the script clones, checks out, applies the diff, runs, verifies
    out_dir = tmp_path / "rebuild"
    assert cli.main(["reproduce", "fraud@v1", "-o", str(out_dir)]) == 0
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["reproducible"] is True
    assert "SCALE = 3" in (out_dir / "code.diff").read_text()
    done = subprocess.run(
        ["sh", str(out_dir / "reproduce.sh")],
        env=subprocess_env(assay_env, PYTHON=sys.executable, TRAIN_PROJECT=project),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    assert "OK        binary model.bin" in done.stdout
    assert "OK        dataset train" in done.stdout
    assert "verify: passed" in done.stdout
    rebuilt = out_dir / "src" / "model.bin"
    assert hashlib.sha256(rebuilt.read_bytes()).hexdigest() == manifest["binary"]["sha256"]

    # verify fails when the produced binary differs
    rebuilt.write_bytes(b"tampered")
    check = subprocess.run(
        [sys.executable, str(out_dir / "verify.py")],
        env=subprocess_env(assay_env),
        capture_output=True,
        text=True,
        cwd=out_dir,
    )
    assert check.returncode == 1
    assert "MISMATCH  binary" in check.stdout

    # pull and model_path, once a worker has verified the bytes (done here in-process)
    artifact_id = _version_artifact(project, "v1")
    _manage(
        running_server.env,
        "shell",
        "-c",
        f"from artifacts.processing import artifact_process; artifact_process(artifact_id={artifact_id!r})",
    )
    pulled = assay.pull("fraud@v1", tmp_path / "pulled")
    assert pulled.name == "model.bin"
    assert hashlib.sha256(pulled.read_bytes()).hexdigest() == manifest["binary"]["sha256"]
    assert json.loads((tmp_path / "pulled" / "manifest.json").read_text())["version"] == 1
    cached = assay.model_path(f"{project}/fraud@v1")
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == manifest["binary"]["sha256"]


def _version_artifact(project: str, ref: str) -> str:
    from assay.client import Client
    from assay.registry import parse_ref

    target = parse_ref(f"{project}/fraud@{ref}")
    with Client.from_env() as client:
        return str(client.get_model_version(target.team_project, target.model, ref)["binary"]["artifact"])
