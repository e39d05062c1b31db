"""Fixtures for review requests: model acme/proj/fraud whose ``production`` alias holds v1,
and a candidate v2; ``member`` (writer) authors requests, ``owner`` (admin) registered the
versions, ``maint`` and ``maint2`` are maintainers who may approve and merge."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import Project, ProjectRole, User
from config.celery import app as celery_app
from registry import services as registry_services
from registry.models import ModelRepository, ModelVersion
from tests.factories import ProjectGrantFactory, UserFactory
from tests.registry.conftest import MakeArtifact, MakeRun, maintainer, make_artifact, make_run, model  # noqa: F401


@pytest.fixture
def eager() -> Iterator[None]:
    """Celery tasks run in-process (and on_commit callbacks run: use with
    django_capture_on_commit_callbacks(execute=True))."""
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def maint2(project: Project) -> User:
    user = UserFactory.create(username="maint2")
    ProjectGrantFactory.create(project=project, user=user, role=ProjectRole.MAINTAINER)
    return user


@pytest.fixture
def register(model: ModelRepository, owner: User, make_run: MakeRun, make_artifact: MakeArtifact) -> Any:  # noqa: F811
    counter = {"n": 0}

    def make(
        *, metrics: dict[str, float] | None = None, user: User | None = None, status: str = "ready"
    ) -> ModelVersion:
        counter["n"] += 1
        run = make_run(metrics=metrics if metrics is not None else {"acc": 0.9, "loss": 0.3})
        make_artifact(run, content=f"weights-{counter['n']}".encode(), status=status)
        return registry_services.version_register(user=user or owner, repository=model, run=run, artifact="model.pkl")

    return make


@pytest.fixture
def v1(register: Any, owner: User) -> ModelVersion:
    version: ModelVersion = register(metrics={"acc": 0.90, "loss": 0.30})
    registry_services.alias_move(
        alias="production",
        version=version,
        user=owner,
        merge=registry_services.ReviewMerge(
            review_request_id="seed", number=0, alias="production", version_id=version.id
        ),
    )
    return version


@pytest.fixture
def v2(register: Any, v1: ModelVersion) -> ModelVersion:
    version: ModelVersion = register(metrics={"acc": 0.92, "loss": 0.28})
    return version
