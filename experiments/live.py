"""The topics of runs and projects on live sockets (registered when the app is ready)."""

from __future__ import annotations

import re
from typing import Any

from accounts.access import access_project
from experiments.access import access_run
from live import topics
from live.access import NAME, Target, register_topic


def _run_target(user: Any, match: re.Match[str]) -> Target:
    run = access_run(user, match[1], action="run.view")
    return Target(topics.run_topic(run.id), run.project_id)


def _project_target(user: Any, match: re.Match[str]) -> Target:
    project = access_project(user, match[1], match[2], action="project.view")
    return Target(topics.project_topic(project.team.name, project.name), project.pk)


def register() -> None:
    register_topic(r"^run:([A-Za-z0-9_-]{1,64})$", _run_target, example="run:<id>", order=10)
    register_topic(rf"^project:({NAME})/({NAME})$", _project_target, example="project:<team>/<project>", order=20)
