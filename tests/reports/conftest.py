from __future__ import annotations

import pytest

from accounts.models import Project


@pytest.fixture(autouse=True)
def _project(project: Project) -> Project:
    """Every reports test works in acme/proj (owner: owner; member: member)."""
    return project
