"""`make run` serves on HOST/PORT, and its public URL (run links, invitation links, the
local store's upload URLs) follows them unless ASSAY_PUBLIC_URL says otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Stands in for uvicorn: what the server process would read as its public URL.
PRINT_PUBLIC_URL = (
    f'{sys.executable} -c "import django; django.setup(); from django.conf import settings; print(settings.PUBLIC_URL)"'
)


def public_url_of_make_run(*make_args: str, env: dict[str, str] | None = None) -> str:
    # The recipe as make would run it (-n), prerequisites left alone (-o), then run with the
    # server command swapped for one that prints the public URL the server would use.
    recipe = subprocess.run(
        ["make", "-n", "-o", ".venv/.runtime", "-o", "frontend", "-o", "static", "-o", "migrate", "run", *make_args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    command = recipe.split("\n", 1)[1]  # the first line is the banner's echo
    command = command.split(".venv/bin/uvicorn", 1)[0] + PRINT_PUBLIC_URL
    clean = {k: v for k, v in os.environ.items() if k != "ASSAY_PUBLIC_URL"}
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_the_public_url_follows_port_and_host() -> None:
    assert public_url_of_make_run() == "http://127.0.0.1:8000"
    assert public_url_of_make_run("PORT=8101") == "http://127.0.0.1:8101"
    assert public_url_of_make_run("PORT=8102", "HOST=0.0.0.0") == "http://0.0.0.0:8102"


def test_an_explicit_public_url_wins() -> None:
    assert public_url_of_make_run("PORT=8101", env={"ASSAY_PUBLIC_URL": "https://assay.example.com"}) == (
        "https://assay.example.com"
    )
