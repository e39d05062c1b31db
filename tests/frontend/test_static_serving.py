"""Static files (issue 20, "Weight"): hashed names, served compressed (brotli or gzip, as the
browser accepts) with a year's Cache-Control, in every profile; `make run` collects them."""

from __future__ import annotations

import gzip
import re
import subprocess
from pathlib import Path

import brotli
import pytest
from django.conf import settings
from django.templatetags.static import static
from django.test import Client, override_settings

from frontend import static_files

ROOT = Path(__file__).resolve().parents[2]
A_YEAR = 365 * 24 * 3600


def body(response: object) -> bytes:
    return b"".join(response.streaming_content)  # type: ignore[attr-defined]


def test_pages_link_hashed_names() -> None:
    url = static("dist/app.js")

    assert re.fullmatch(r"/static/dist/app\.[0-9a-f]{12}\.js", url)


@pytest.mark.parametrize(
    ("accept", "encoding", "decode"), [("br", "br", brotli.decompress), ("gzip", "gzip", gzip.decompress)]
)
def test_a_hashed_file_is_sent_compressed_and_cached_for_a_year(accept: str, encoding: str, decode: object) -> None:
    url = static("dist/app.js")
    original = (Path(settings.STATIC_ROOT) / url.removeprefix("/static/")).read_bytes()

    response = Client().get(url, HTTP_ACCEPT_ENCODING=f"{accept}, identity")

    assert response.status_code == 200
    assert response["Content-Encoding"] == encoding
    assert "Accept-Encoding" in response["Vary"]
    cache = response["Cache-Control"]
    assert "immutable" in cache
    assert "public" in cache
    max_age = int(re.search(r"max-age=(\d+)", cache).group(1))  # type: ignore[union-attr]
    assert max_age >= A_YEAR
    compressed = body(response)
    assert len(compressed) < len(original) / 2
    assert decode(compressed) == original  # type: ignore[operator]


def test_brotli_wins_when_both_are_accepted() -> None:
    response = Client().get(static("dist/app.css"), HTTP_ACCEPT_ENCODING="gzip, deflate, br")

    assert response["Content-Encoding"] == "br"
    assert response["Content-Type"].startswith("text/css")


def test_a_client_without_compression_gets_the_file_as_it_is() -> None:
    url = static("dist/app.js")

    response = Client().get(url)

    assert response.status_code == 200
    assert "Content-Encoding" not in response
    assert body(response) == (Path(settings.STATIC_ROOT) / url.removeprefix("/static/")).read_bytes()


def test_an_unhashed_name_is_not_served_for_a_year() -> None:
    # Only the hashed copies are kept: the plain name is unknown rather than cached stale.
    response = Client().get("/static/dist/app.js", HTTP_ACCEPT_ENCODING="br")

    assert response.status_code == 404


def test_the_collection_is_not_redone_when_nothing_changed() -> None:
    # The session collected already (tests/conftest.py).
    assert static_files.collect_if_changed() is False


def test_a_changed_source_changes_the_fingerprint(tmp_path: Path) -> None:
    source = tmp_path / "extra"
    source.mkdir()
    (source / "x.css").write_text("a{}")
    with override_settings(STATICFILES_DIRS=[str(source)]):
        before = static_files.inputs_fingerprint()
        (source / "x.css").write_text("a{color:red}")
        after = static_files.inputs_fingerprint()

    assert before != after


def test_make_run_collects_before_serving() -> None:
    # `make run`'s prerequisites, as make would run them (-n), the slow ones left alone.
    recipe = subprocess.run(
        ["make", "--no-print-directory", "-n", "-o", ".venv/.runtime", "-o", "frontend", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    lines = recipe.splitlines()
    collect = next(i for i, line in enumerate(lines) if "manage.py collectstatic_if_changed" in line)
    serve = next(i for i, line in enumerate(lines) if "uvicorn config.asgi:application" in line)
    assert collect < serve
