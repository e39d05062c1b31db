"""``assay webhooks list|test`` against a real server: the project's webhooks, and a test
event queued for one (the answer's delivery id)."""

from __future__ import annotations

import pytest

from assay import cli
from assay.client import Client


def test_the_cli_lists_webhooks_and_queues_a_test_event(
    assay_env: dict[str, str], project: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Client.from_env() as client:
        client.request("POST", "projects/", body={"team": project.split("/")[0], "name": project.split("/")[1]})
        created = client.request(
            "POST",
            f"projects/{project}/webhooks/",
            body={"url": "https://93.184.215.14/hook", "events": ["alias.moved"], "name": "deploy"},
        )
    assert cli.main(["webhooks", "list", "--project", project]) == 0
    out = capsys.readouterr().out
    assert f"{created['id']}\tenabled\tjson\tdeploy\thttps://93.184.215.14/hook\talias.moved" in out

    assert cli.main(["webhooks", "test", created["id"], "--project", project]) == 0
    assert "Test event queued: delivery " in capsys.readouterr().out

    assert cli.main(["webhooks", "test", "no-such-id", "--project", project]) == 1
    assert "No such webhook" in capsys.readouterr().err
    assert cli.main(["webhooks", "list"]) == 1  # no project given, none in the environment
