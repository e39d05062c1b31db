"""Issue 16 ("any port"): a run whose SDK kept artifacts for `assay sync` says so on its page,
next to the artifact that is still pending, instead of a silent "uploading"."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from artifacts.models import Artifact, Blob
from experiments import services
from experiments.models import Run

pytestmark = pytest.mark.django_db

UPLOADS = {
    "pending": ["model.joblib"],
    "reason": "upload failed after 3 attempts: the object store could not be reached (http://127.0.0.1:8000)",
    "spool": "/home/ana/.assay/spool/abc",
    "host": "gpu-box-1",
}


def _pending_artifact(run: Run) -> None:
    blob = Blob.objects.create(project=run.project, sha256="a" * 64, size=10)
    Artifact.objects.create(project=run.project, run=run, blob=blob, path="model.joblib", sha256="a" * 64, size=10)


def test_the_run_page_says_which_artifacts_wait_for_sync_and_where(owner: User, run: Run) -> None:
    _pending_artifact(run)
    services.run_update(run=run, status="finished", info={"uploads": UPLOADS})
    client = Client()
    client.force_login(owner)

    page = client.get(f"/{run.project.path}/runs/{run.id}/").content.decode()

    assert 'data-testid="uploads-pending"' in page
    assert "1 artifact file not uploaded yet" in page
    assert "gpu-box-1" in page
    assert "/home/ana/.assay/spool/abc" in page
    assert "assay sync" in page
    assert "waiting for assay sync" in page


def test_once_synced_the_notice_goes(owner: User, run: Run) -> None:
    _pending_artifact(run)
    services.run_update(run=run, status="finished", info={"uploads": UPLOADS})
    services.run_update(run=run, info={"uploads": {"pending": [], "synced_at": "2026-12-06T05:00:00Z"}})
    client = Client()
    client.force_login(owner)

    page = client.get(f"/{run.project.path}/runs/{run.id}/").content.decode()

    assert 'data-testid="uploads-pending"' not in page
    assert "waiting for assay sync" not in page


def test_an_uploads_section_that_is_not_an_object_is_refused(run: Run) -> None:
    from core.errors import Invalid

    with pytest.raises(Invalid) as refused:
        services.run_update(run=run, info={"uploads": ["model.joblib"]})
    assert refused.value.field == "info.uploads"
