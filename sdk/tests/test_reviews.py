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
