"""Issue 16, bug 16: the README's curl example, replayed request by request through the API,
leaves its run finished (it stayed "running")."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from experiments.models import Run
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"


def _curl_commands() -> list[list[str]]:
    text = README.read_text()
    section = text.split("### An API token, and a first run with curl", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    # A command starts at column 0; its continuation lines are indented.
    groups = re.split(r"\n(?=\S)", block.replace("<run id>", "RUN_ID"))
    return [
        argv for argv in (shlex.split(g.replace("\\\n", " "), comments=True) for g in groups) if argv[:1] == ["curl"]
    ]


def _parse(argv: list[str]) -> tuple[str, str, Any]:
    method, body, url = "GET", None, ""
    i = 1
    while i < len(argv):
        arg = argv[i]
        if arg == "-X":
            method, i = argv[i + 1], i + 2
        elif arg == "-H":
            i += 2
        elif arg == "-d":
            body, i = json.loads(argv[i + 1]), i + 2
            method = "POST" if method == "GET" else method
        elif arg.startswith("-"):
            i += 1
        else:
            url, i = arg, i + 1
    return method, url.split("127.0.0.1:8000", 1)[1], body


def test_the_readme_curl_example_ends_its_run(client_for: Any, db: None) -> None:
    client = client_for(UserFactory.create(username="admin"))  # the README's project is admin/quickstart
    run_id = ""
    commands = _curl_commands()
    assert len(commands) >= 3
    for argv in commands:
        method, path, body = _parse(argv)
        path = path.replace("RUN_ID", run_id)
        response = client.generic(method, path, json.dumps(body) if body is not None else "", "application/json")
        assert response.status_code in (200, 201), (method, path, response.content)
        if not run_id:
            run_id = response.json()["id"]

    assert Run.objects.get(pk=run_id).status == "finished"
