"""access_<entity>() for the registry: load a model or a version for a user and an action.

# SECURITY: a missing model (or version) and one in a project the caller may not see raise
# the same NotFound; PermissionDenied only when the caller sees the project but the role is
# too low for ``action``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from accounts import access
from accounts.access import access_project
from core.errors import NotFound
from registry import refs, selectors
from registry.models import ModelRepository, ModelVersion

if TYPE_CHECKING:
    from accounts.access import AnyUser


def access_model(
    user: AnyUser | None, team: str, project: str, name: str, *, action: str = "model.view"
) -> ModelRepository:
    proj = access_project(user, team, project, action="project.view")
    repository = selectors.model_of(proj, name)
    if repository is None:
        raise NotFound("Not found.")
    access.require(user, action, proj)
    return repository


def access_version(
    user: AnyUser | None, team: str, project: str, name: str, ref: str, *, action: str = "model.view"
) -> ModelVersion:
    """A version by ``vN``, number, ``latest``, alias or content-hash prefix."""
    repository = access_model(user, team, project, name, action=action)
    try:
        parsed = refs.parse_version_arg(ref)
    except refs.RefError:
        raise NotFound("Not found.") from None
    return selectors.resolve_version(repository, parsed)
