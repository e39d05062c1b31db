"""Review requests from the SDK's CLI against a real server:
``assay review open <model>@v2 --into production --reviewer @ana``."""

from __future__ import annotations

from pathlib import Path

import pytest

import assay
from assay import cli, reviews
from assay.errors import UsageError


def _register(project: str, tmp_path: Path, seed: int) -> int:
    weights = tmp_path / f"model-{seed}.bin"
    weights.write_bytes(f"weights {seed}".encode())
    run = assay.init(project=project, config={"seed": seed})
    run.log({"acc": 0.8 + seed / 100})
    run.log_model(str(weights))
    version = run.register_model("fraud", artifact=weights.name)
    run.finish()
    return version.number


def test_the_cli_opens_a_review_request_and_lists_it(
    assay_env: dict[str, str], project: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _register(project, tmp_path, 1)
    number = _register(project, tmp_path, 2)

    code = cli.main(["review", "open", f"{project}/fraud@v{number}", "--into", "production", "-m", "cc @nobody-here"])

    out, err = capsys.readouterr()
    assert code == 0
    assert f"#1 Move fraud@production to v{number}: fraud@production → v{number}" in out
    assert "@nobody-here" in err
    assert cli.main(["review", "list", "--project", project]) == 0
    assert "#1\treview_required\tfraud@production → v2" in capsys.readouterr().out
    listed = reviews.list_requests(project)
    assert [r.number for r in listed] == [1]


def test_opening_without_a_version_is_a_usage_error(assay_env: dict[str, str], project: str) -> None:
    with pytest.raises(UsageError):
        reviews.open_request(f"{project}/fraud", into="production")


def test_the_cli_approves_comments_on_and_merges_a_request(
    assay_env: dict[str, str],
    running_server: object,
    project: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # issue 16, bug 13: `assay review` approve, comment and merge; `review list -p`
    _register(project, tmp_path, 1)
    number = _register(project, tmp_path, 2)
    assert cli.main(["review", "open", f"{project}/fraud@v{number}", "--into", "staging"]) == 0
    capsys.readouterr()
    assert cli.main(["review", "list", "-p", project]) == 0
    assert "#1\t" in capsys.readouterr().out

    # the author may not approve their own request: a clear refusal
    assert cli.main(["review", "approve", "1", "-p", project]) != 0
    assert "author" in capsys.readouterr().err.lower()

    monkeypatch.setenv("ASSAY_TOKEN", running_server.admin_token)  # type: ignore[attr-defined]
    assert cli.main(["review", "comment", f"{project}#1", "-m", "Looks fine, @ana"]) == 0
    assert f"commented on {project}#1" in capsys.readouterr().out
    assert cli.main(["review", "approve", "#1", "-p", project, "-m", "ship it"]) == 0
    assert f"admin approved {project}#1 (v{number})" in capsys.readouterr().out

    monkeypatch.setenv("ASSAY_TOKEN", assay_env["ASSAY_TOKEN"])
    # no worker runs the checks here: refused with the rule, then merged by the admin's bypass
    assert cli.main(["review", "merge", "1", "-p", project]) == 1
    assert "R8" in capsys.readouterr().err
    assert cli.main(["review", "merge", "1", "-p", project, "--bypass", "--reason", "no worker in this test"]) == 0
    assert f"merged #1: fraud@staging → v{number}" in capsys.readouterr().out
    assert reviews.list_requests(project, state="merged")[0].number == 1
