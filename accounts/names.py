"""The shape of user, team and project names: they are URL segments (``/<team>/<project>/``).

Pure helpers with no Django model imports, shared by the models' validators and the services.
"""

from __future__ import annotations

import re
from typing import Any

from core.errors import Invalid

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
NAME_RULE = "1-64 lower-case letters, digits, '-' and '_', starting with a letter or digit"

# First URL segments the site itself uses; a team (or a user, whose personal team carries
# their name) may not take them, or its pages would be shadowed.
RESERVED_TEAM_NAMES = frozenset(
    {
        "-",
        "api",
        "static",
        "login",
        "logout",
        "signup",
        "healthz",
        "readyz",
        "metrics",
        "ws",
        "media",
        "accounts",
        "settings",
        "docs",
        "teams",
        "invitations",
        "notifications",
        "mlflow",
    }
)


def canonical(name: str) -> str:
    """Names are compared and stored lower-cased (``Ana`` and ``ana`` are the same team)."""
    return name.strip().lower()


def name_problem(name: str, *, team: bool) -> str | None:
    """Why ``name`` is not acceptable, or None."""
    if not NAME_PATTERN.match(name):
        return f"Names are {NAME_RULE}."
    if team and name in RESERVED_TEAM_NAMES:
        return f"{name!r} is reserved by the site; choose another name."
    return None


def parse_project_path(path: Any, *, field: str = "project") -> tuple[str, str]:
    """``"team/project"`` → (team, project), lower-cased; both parts are URL slugs."""
    if not isinstance(path, str) or path.count("/") != 1:
        raise Invalid('project must be "team/project".', field=field)
    team, name = (canonical(part) for part in path.split("/"))
    if not NAME_PATTERN.match(team) or not NAME_PATTERN.match(name):
        raise Invalid(f"Team and project names are {NAME_RULE}.", field=field)
    return team, name
