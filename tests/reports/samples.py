"""Shared sample data for the reports tests: a model with a version and a review request."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from artifacts.models import Artifact, Blob
from experiments.models import Run


def model_with_request(run: Run, owner: User) -> Any:
    """Model ``fraud`` of the run's project with v1 (registered from ``run``) and review
    request #1 (fraud@production → v1) by ``owner``."""
    from registry import services as registry_services
    from reviews.models import ReviewCounter, ReviewRequest

    blob = Blob.objects.create(project=run.project, sha256="d" * 64, size=3, status=Blob.Status.VERIFIED)
    Artifact.objects.create(
        project=run.project, run=run, blob=blob, path="model.pkl", sha256="d" * 64, size=3, status="ready"
    )
    fraud = registry_services.model_create(user=owner, project=run.project, name="fraud")
    registry_services.version_register(user=owner, repository=fraud, run=run, artifact="model.pkl")
    version = fraud.versions.get(number=1)
    ReviewCounter.objects.create(project=run.project, last_number=1)
    ReviewRequest.objects.create(
        project=run.project, number=1, repository=fraud, alias="production", candidate=version, title="Ship v1",
        author=owner,
    )  # fmt: skip
    return fraud
