"""The run page's Artifacts section in a real browser: tree with sizes, status text,
findings (an unsafe pickle flagged), previews (image thumbnail, table, text shown as
text), and a download that arrives as an attachment."""

from __future__ import annotations

import io
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from artifacts import processing, services, storage
from artifacts.models import Artifact
from config.celery import app as celery_app
from experiments.models import Run
from tests.browser.conftest import PASSWORD, LogIn, PageEvents
from tests.browser.demo_data import demo_project

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

UNSAFE_PICKLE = (
    b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94."
)
XSS_TEXT = b"<script>alert('xss')</script>\nsecond line\n"


@pytest.fixture
def local_store(tmp_path: Path, settings: Any) -> Iterator[None]:
    settings.ASSAY_ARTIFACTS = str(tmp_path / "artifacts")
    storage.artifact_store.cache_clear()
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous
    storage.artifact_store.cache_clear()


def add_artifact(run: Run, path: str, data: bytes, kind: str = "file") -> Artifact:
    """The upload protocol through the services, bytes written as the store's PUT would."""
    import hashlib

    files, checked_kind = services.check_manifest(
        [{"path": path, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}], kind
    )
    [(artifact, upload)] = services.artifact_declare(run=run, files=files, kind=checked_kind)
    if upload is not None:
        storage.artifact_store().put_bytes(storage.staging_key(artifact.blob_id), data, content_type="")
    services.artifact_complete(artifact=artifact)
    processing.artifact_process(artifact_id=artifact.id)
    artifact.refresh_from_db()
    return artifact


def png() -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (640, 360), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    for x in range(0, 640, 8):
        draw.line(
            [(x, 300 - int(200 * (1 - x / 640) ** 2)), (x + 8, 300 - int(200 * (1 - (x + 8) / 640) ** 2))],
            fill=(31, 119, 180),
            width=3,
        )
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def safetensors() -> bytes:
    header = json.dumps(
        {
            "conv1.weight": {"dtype": "F32", "shape": [32, 1, 3, 3], "data_offsets": [0, 1152]},
            "fc.weight": {"dtype": "F32", "shape": [10, 128], "data_offsets": [1152, 6272]},
        }
    ).encode()
    return struct.pack("<Q", len(header)) + header + b"\x00" * 6272


def test_the_run_page_shows_artifacts_with_status_findings_previews_and_downloads(
    page: Page, live_server: LiveServer, log_in: LogIn, events: PageEvents, local_store: None
) -> None:
    # given: a run with a model, an unsafe pickle, a plot, a table and a text log
    ana = User.objects.create_user(username="ana", password=PASSWORD)
    run = demo_project(ana, runs=2)
    add_artifact(run, "model/weights.safetensors", safetensors(), "model")
    add_artifact(run, "model/legacy.pkl", UNSAFE_PICKLE, "model")
    add_artifact(run, "plots/loss.png", png())
    add_artifact(run, "data/predictions.csv", b"id,label,score\n1,cat,0.91\n2,dog,0.87\n3,cat,0.55\n", "dataset")
    add_artifact(run, "logs/train.log", XSS_TEXT)

    # when
    log_in("ana")
    page.goto(f"{live_server.url}/{run.project.path}/runs/{run.id}/")

    # then: the tree, sizes and status as text
    section = page.get_by_test_id("artifacts")
    rows = section.get_by_test_id("artifact-row")
    expect(rows).to_have_count(5)
    expect(section.locator("tr.artifact-folder")).to_have_count(4)
    expect(section.locator(".artifact-status")).to_have_text(["ready"] * 5)
    # the unsafe pickle carries a warning badge with words, and the summary counts it
    legacy = section.locator("tr[data-path='model/legacy.pkl']")
    expect(legacy.get_by_test_id("unsafe-badge")).to_have_text("⚠ unsafe pickle")
    expect(section.get_by_test_id("unsafe-summary")).to_contain_text("1 unsafe pickle")
    expect(section.locator("tr[data-path='model/weights.safetensors'] .badge.unsafe")).to_have_count(0)
    # findings and previews open on demand
    weights = section.locator("tr[data-path='model/weights.safetensors']")
    weights.locator("summary").click()
    expect(weights).to_contain_text("conv1.weight: F32 [32, 1, 3, 3]")
    legacy.locator("summary").click()
    expect(legacy).to_contain_text("os.system")
    plot = section.locator("tr[data-path='plots/loss.png']")
    plot.locator("summary").click()
    thumbnail = plot.locator("img.artifact-thumb")
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.decode().then(() => img.naturalWidth)") == 320
    table = section.locator("tr[data-path='data/predictions.csv']")
    table.locator("summary").click()
    expect(table.get_by_test_id("artifact-preview").locator("tbody tr")).to_have_count(3)
    log = section.locator("tr[data-path='logs/train.log']")
    log.locator("summary").click()
    expect(log.get_by_test_id("artifact-preview")).to_contain_text("<script>alert('xss')</script>")
    if os.environ.get("ASSAY_SCREENSHOTS"):  # refresh docs/ only when asked, as test_docs_screenshots does
        page.screenshot(
            path=str(Path(__file__).resolve().parents[2] / "docs" / "screenshot-artifacts.png"), full_page=True
        )

    # and a download arrives as an attachment with the file's name and bytes
    with page.expect_download() as download_info:
        weights.get_by_test_id("artifact-download").click()
    download = download_info.value
    assert download.suggested_filename == "weights.safetensors"
    assert Path(download.path()).read_bytes() == safetensors()
    assert events.dialogs == []
    assert events.errors == []


def test_an_outsider_cannot_download_or_see_a_thumbnail(
    page: Page, live_server: LiveServer, log_in: LogIn, local_store: None
) -> None:
    ana = User.objects.create_user(username="ana", password=PASSWORD)
    User.objects.create_user(username="eve", password=PASSWORD)
    run = demo_project(ana, runs=2)
    artifact = add_artifact(run, "plots/loss.png", png())

    log_in("eve")
    base = f"{live_server.url}/{run.project.path}/runs/{run.id}/artifacts/{artifact.id}"

    assert page.goto(f"{base}/download/").status == 404  # type: ignore[union-attr]
    assert page.goto(f"{base}/thumbnail.png").status == 404  # type: ignore[union-attr]
