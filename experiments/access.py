"""access_<entity>() for the experiments app: load by id or name for a user and an action.

# SECURITY: a missing object and an object the caller may not see raise the same NotFound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rest_framework.exceptions import NotFound

from accounts import access
from experiments.models import Project, Run

if TYPE_CHECKING:
    from accounts.access import AnyUser


def access_project(user: AnyUser | None, team: str, name: str, *, action: str = "project.view") -> Project:
    project = Project.objects.select_related("team").filter(team__name__iexact=team, name__iexact=name).first()
    if project is None:
        raise NotFound("Not found.")
    access.require(user, action, project)
    return project


def access_run(user: AnyUser | None, run_id: str, *, action: str = "run.view") -> Run:
    run = (
        Run.objects.select_related("project__team", "experiment", "author").filter(pk=run_id).first()
        if isinstance(run_id, str) and len(run_id) <= 32
        else None
    )
    if run is None:
        raise NotFound("Not found.")
    access.require(user, action, run.project)
    return run
