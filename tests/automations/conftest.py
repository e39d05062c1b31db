"""Webhook tests reuse the review fixtures: model acme/proj/fraud, production at v1, candidate v2;
``owner`` is the team's owner (project admin), ``member`` a writer, ``maint`` a maintainer."""

from __future__ import annotations

from tests.registry.conftest import MakeArtifact, MakeRun, maintainer, make_artifact, make_run, model  # noqa: F401
from tests.reviews.conftest import eager, maint2, register, v1, v2  # noqa: F401

BASE = "/api/v1/projects/acme/proj/webhooks/"
SECRET = "s3cret-s3cret-s3cret"
