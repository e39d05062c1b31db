"""Model references: ``team/project/model@ref`` or ``model@ref``. Pure.

``ref`` is ``vN`` (a version number), ``latest`` (the highest number; also what a reference
without ``@`` means), an alias (``production``), or a prefix of a version's content hash of
at least 7 lower-case hex characters. Aliases may therefore not be ``latest``, ``vN`` or
hash-like (7 or more hex characters), so every ref has exactly one reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from accounts.names import NAME_PATTERN, NAME_RULE

VERSION_PATTERN = re.compile(r"^v([1-9][0-9]{0,8})$")
RESERVED_VERSION = re.compile(r"^v[0-9]+$")
HASH_PREFIX = re.compile(r"^[0-9a-f]{7,64}$")
MIN_HASH_PREFIX = 7
LATEST = "latest"


class RefError(ValueError):
    pass


RefKind = Literal["number", "latest", "alias", "hash"]


@dataclass(frozen=True)
class VersionRef:
    kind: RefKind
    value: str
    number: int = 0

    def __str__(self) -> str:
        return f"v{self.number}" if self.kind == "number" else self.value


@dataclass(frozen=True)
class ModelRef:
    team: str | None
    project: str | None
    model: str
    ref: VersionRef

    @property
    def project_path(self) -> str | None:
        return f"{self.team}/{self.project}" if self.team and self.project else None

    def __str__(self) -> str:
        prefix = f"{self.team}/{self.project}/" if self.team else ""
        return f"{prefix}{self.model}@{self.ref}"


def alias_name_problem(name: str) -> str | None:
    """Why ``name`` may not be an alias, or None."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        return f"Alias names are {NAME_RULE}."
    if name == LATEST or RESERVED_VERSION.match(name):
        return f"{name!r} is reserved: 'latest' and 'vN' always mean a version, never an alias."
    if HASH_PREFIX.match(name):
        return f"{name!r} looks like a content hash (7 or more hex characters); choose another alias name."
    return None


def parse_version_ref(text: str) -> VersionRef:
    if not isinstance(text, str) or not text:
        raise RefError("A version reference is vN, latest, an alias or a content-hash prefix (≥ 7 hex characters).")
    ref = text.strip().lower()
    if ref == LATEST:
        return VersionRef("latest", ref)
    match = VERSION_PATTERN.match(ref)
    if match:
        return VersionRef("number", ref, int(match.group(1)))
    if RESERVED_VERSION.match(ref):
        raise RefError(f"{text!r} is not a version number: versions are v1, v2, …")
    if HASH_PREFIX.match(ref):
        return VersionRef("hash", ref)
    if alias_name_problem(ref) is None:
        return VersionRef("alias", ref)
    raise RefError(
        f"{text!r} is not a version reference: use vN, latest, an alias or a content-hash prefix "
        f"(≥ {MIN_HASH_PREFIX} hex characters)."
    )


def parse_version_arg(text: str) -> VersionRef:
    """A version as a user types it in a URL, a form or an API field: everything
    :func:`parse_version_ref` reads, and also a bare number (``2`` means ``v2``). A bare
    number of fewer than 7 digits is a version number; 7 or more digits are hex, so they are
    read as a content-hash prefix (write ``vN`` for version numbers that long)."""
    if isinstance(text, str) and text.strip().isdigit() and len(text.strip()) < MIN_HASH_PREFIX:
        return parse_version_ref(f"v{text.strip()}")
    return parse_version_ref(text)


def parse_model_ref(text: str, *, default_project: str | None = None) -> ModelRef:
    """``team/project/model@ref`` or ``model@ref`` (then ``default_project``, "team/project",
    supplies the project); without ``@ref`` the reference means ``latest``."""
    if not isinstance(text, str) or not text.strip():
        raise RefError("A model reference is team/project/model@ref or model@ref.")
    body, at, ref_text = text.strip().partition("@")
    ref = parse_version_ref(ref_text) if at else VersionRef("latest", LATEST)
    parts = body.lower().split("/")
    if len(parts) == 3:
        team, project, model = parts
    elif len(parts) == 1:
        model = parts[0]
        if not default_project:
            raise RefError(f"{text!r} names no project: write team/project/{body}@… or set ASSAY_PROJECT.")
        if default_project.count("/") != 1:
            raise RefError(f"The default project {default_project!r} must be team/project.")
        team, project = default_project.lower().split("/")
    else:
        raise RefError(f"{text!r} is not a model reference: team/project/model@ref or model@ref.")
    for label, value in (("team", team), ("project", project), ("model", model)):
        if not NAME_PATTERN.match(value):
            raise RefError(f"The {label} name {value!r} is not valid: names are {NAME_RULE}.")
    return ModelRef(team, project, model, ref)
