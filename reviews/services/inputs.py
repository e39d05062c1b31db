"""Checks of what callers send to the review services: each returns the clean value or
raises Invalid naming the field; none writes."""

from __future__ import annotations

import re
from typing import Any

from accounts import access
from accounts.models import Project, Team, User
from core.errors import Invalid
from core.validation import choice
from registry import refs
from registry import selectors as registry_selectors
from registry.models import ModelRepository, ModelVersion
from reviews import selectors
from reviews.models import MAX_BODY, MAX_LABEL, MAX_LABELS, MAX_TITLE, Comment

MAX_REVIEWERS = 20
LABEL = re.compile(r"^[\w .:/+-]{1,50}$")
ANCHOR_KINDS = {k.value for k in Comment.AnchorKind}


def check_text(value: Any, field: str, *, limit: int = MAX_BODY, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string (markdown).", field=field)
    if len(value) > limit:
        raise Invalid(f"{field} is longer than {limit} characters.", field=field)
    if "\x00" in value:
        raise Invalid(f"{field} contains a NUL character.", field=field)
    if required and not value.strip():
        raise Invalid(f"{field} may not be empty.", field=field)
    return value


def check_title(value: Any) -> str:
    title = check_text(value, "title", limit=MAX_TITLE, required=True).strip()
    if any(ord(c) < 32 for c in title):
        raise Invalid("title must be one line of printable characters.", field="title")
    return title


def suggested_title(*, model: str, alias: str, version_number: int) -> str:
    """The title the open form suggests: "Move production to v3 of digits-sgd"."""
    return f"Move {alias} to v{version_number} of {model}"


def check_labels(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_LABELS:
        raise Invalid(f"labels must be a list of at most {MAX_LABELS} strings.", field="labels")
    out: list[str] = []
    for index, label in enumerate(value):
        if not isinstance(label, str) or not LABEL.match(label.strip()):
            raise Invalid(f"A label is 1-{MAX_LABEL} letters, digits, spaces or . : / + - _.", field=f"labels.{index}")
        if label.strip() not in out:
            out.append(label.strip())
    return out


def check_anchor(value: Any, candidate: ModelVersion) -> dict[str, str] | None:
    """``{"kind": param|metric|package|dataset|file, "key": …}``; the key must exist in the
    candidate or in the version it is compared with (the diff's two sides)."""
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != {"kind", "key"}:
        raise Invalid('anchor must be {"kind": "param|metric|package|dataset|file", "key": "…"}.', field="anchor")
    kind = choice(value["kind"], ANCHOR_KINDS, field="anchor.kind")
    key = value["key"]
    if not isinstance(key, str) or not key or len(key) > 500 or any(ord(c) < 32 for c in key):
        raise Invalid("anchor.key must be a name of at most 500 printable characters.", field="anchor.key")
    return {"kind": kind, "key": key}


def resolve_version(repository: ModelRepository, value: Any, field: str = "version") -> ModelVersion:
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"v{value}"
    if not isinstance(value, str) or not value or len(value) > 100:
        raise Invalid("version is vN, a number, latest, an alias or a content-hash prefix.", field=field)
    try:
        ref = refs.parse_version_arg(value)
    except refs.RefError as exc:
        raise Invalid(str(exc), field=field) from None
    return registry_selectors.resolve_version(repository, ref, field=field)


def resolve_reviewers(project: Project, value: Any, author: User) -> tuple[list[User], list[Team]]:
    """``["ana", "@ana", "team:ml"]``: users (who must see the project) or teams. A name is
    a user first, then a team (every user has a personal team of the same name)."""
    if value is None:
        return [], []
    if not isinstance(value, list) or len(value) > MAX_REVIEWERS:
        raise Invalid(f"reviewers must be a list of at most {MAX_REVIEWERS} user or team names.", field="reviewers")
    users: list[User] = []
    teams: list[Team] = []
    for index, raw in enumerate(value):
        field = f"reviewers.{index}"
        if not isinstance(raw, str) or not raw.strip() or len(raw) > 80:
            raise Invalid("A reviewer is a user name or team:<name>.", field=field)
        name = raw.strip().lstrip("@").lower()
        force_team = name.startswith("team:")
        name = name.removeprefix("team:")
        user = None if force_team else User.objects.filter(username=name, is_active=True).first()
        # SECURITY: a user who may not see the project is refused exactly like a missing one.
        if user is not None and access.can(user, "project.view", project):
            if user.pk == author.pk:
                raise Invalid("The author cannot review their own request.", field=field)
            if user not in users:
                users.append(user)
            continue
        team = Team.objects.filter(name=name).first() if (user is None or force_team) else None
        if team is not None and selectors.team_readers(team, project):
            if team not in teams:
                teams.append(team)
            continue
        raise Invalid(f"No user or team {name!r} who may see {project.path}.", code="reviewer_unreachable", field=field)
    return users, teams
