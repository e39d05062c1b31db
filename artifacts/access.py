"""access_<entity>() for the artifacts app: load by id for a user and an action.

# SECURITY: a missing object and an object the caller may not see raise the same NotFound.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from artifacts.models import Artifact
from core.errors import NotFound
from experiments.access import access_run

if TYPE_CHECKING:
    from accounts.access import AnyUser


def access_artifact(user: AnyUser | None, run_id: str, artifact_id: str, *, action: str = "artifact.view") -> Artifact:
    """An artifact of a run, by id. # SECURITY: the id must belong to that run (a nested URL
    naming another run's artifact is "not found")."""
    run = access_run(user, run_id, action=action)
    artifact = (
        Artifact.objects.select_related("blob", "run__project__team").filter(pk=artifact_id, run=run).first()
        if isinstance(artifact_id, str) and len(artifact_id) <= 32
        else None
    )
    if artifact is None:
        raise NotFound("Not found.")
    return artifact
