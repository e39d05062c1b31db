"""Fixtures for the registry: runs that look like the SDK's (code, environment, datasets,
params, metrics), artifacts whose bytes are uploaded, a model ``acme/proj/fraud``, and a
``maintainer`` (a maintainer grant on acme/proj: registers models, moves unprotected aliases)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest

from accounts.models import Project, ProjectRole, User
from artifacts.models import Artifact, Blob
from experiments.models import MetricSummary, Param, Run
from registry import services
from registry.models import ModelRepository
from tests.factories import ProjectGrantFactory, RunFactory, UserFactory

MakeRun = Callable[..., Run]
MakeArtifact = Callable[..., Artifact]


def sdk_info(*, commit: str = "a" * 40, packages: dict[str, str] | None = None, diff: str = "") -> dict[str, Any]:
    return {
        "code": {
            "command": ["/usr/bin/python3", "train.py", "--epochs", "3"],
            "entry_point": "/home/ana/repo/train.py",
            "cwd": "/home/ana/repo",
            "git": {
                "root": "/home/ana/repo",
                "commit": commit,
                "branch": "main",
                "remote": "https://example.com/ana/repo.git",
                "dirty": bool(diff),
                "diff": diff,
                "diff_truncated": False,
            },
        },
        "environment": {
            "python": "3.11.9",
            "os": "Linux-6.1-x86_64",
            "gpus": [],
            "packages": packages if packages is not None else {"numpy": "1.26.4", "scikit-learn": "1.4.0"},
        },
        "datasets": {
            "train": {"uri": "s3://data/train.csv", "digest": "sha256:" + "1" * 64, "rows": 1000, "size": 52_000},
        },
    }


@pytest.fixture
def make_run(project: Project, experiment: Any, owner: User) -> MakeRun:
    def make(
        *,
        params: dict[str, str] | None = None,
        metrics: dict[str, float] | None = None,
        config: dict[str, Any] | None = None,
        info: dict[str, Any] | None = None,
        in_project: Project | None = None,
    ) -> Run:
        target = in_project or project
        extra = {"experiment": experiment} if in_project is None else {}
        run = RunFactory.create(
            project=target,
            author=owner,
            config=config if config is not None else {"epochs": 3, "optimizer": {"lr": 0.01}},
            info=info if info is not None else sdk_info(),
            **extra,
        )
        for key, value in (params if params is not None else {"seed": "1"}).items():
            Param.objects.create(run=run, key=key, value=value)
        for key, last in (metrics if metrics is not None else {"acc": 0.9, "loss": 0.3}).items():
            MetricSummary.objects.create(
                run=run, key=key, last=last, min=last, max=last, last_step=1, last_timestamp=0, count=1
            )
        return run

    return make


@pytest.fixture
def make_artifact() -> MakeArtifact:
    def make(run: Run, path: str = "model.pkl", content: bytes = b"weights-1", status: str = "uploaded") -> Artifact:
        sha = hashlib.sha256(content).hexdigest()
        blob, _ = Blob.objects.get_or_create(
            project=run.project,
            sha256=sha,
            defaults={
                "size": len(content),
                "status": Blob.Status.VERIFIED if status == "ready" else Blob.Status.UPLOADED,
            },
        )
        return Artifact.objects.create(
            project=run.project, run=run, blob=blob, path=path, sha256=sha, size=len(content), status=status
        )

    return make


@pytest.fixture
def maintainer(project: Project) -> User:
    user = UserFactory.create(username="maint")
    ProjectGrantFactory.create(project=project, user=user, role=ProjectRole.MAINTAINER)
    return user


@pytest.fixture
def model(project: Project, owner: User) -> ModelRepository:
    return services.model_create(user=owner, project=project, name="fraud")
