"""The model registry: repositories of immutable model versions, and aliases (movable refs).

A **model version** is like a git commit: a snapshot of its ingredients (binary, code,
config, data, environment, source run and its metrics, parents) copied at registration
and identified by ``content_hash`` (see :mod:`registry.hashing`). Nothing of it changes
afterwards; only ``description`` and ``tags`` are editable metadata (and every edit is
audited). The rule is kept three times over: the services have no update path for
ingredients, :meth:`ModelVersion.save` refuses one, and a database trigger (migration
0002) refuses an UPDATE of an ingredient column whatever the caller.

An **alias** (``production``, ``staging``) is a movable ref, like a branch; every move is
an :class:`AliasMove` row (from, to, who, when, why, via which review request).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models

from accounts.models import Project, new_id
from artifacts.models import Artifact, Blob
from experiments.models import Run

# The columns of a version that are ingredients: never updated once written. (``run`` and
# ``artifact`` are not listed: deleting the run sets them to NULL, and the version keeps its
# copies of what they held.)
INGREDIENT_FIELDS = (
    "repository_id",
    "project_id",
    "number",
    "content_hash",
    "blob_id",
    "binary_sha256",
    "binary_size",
    "binary_path",
    "source_run_ref",
    "source_run_name",
    "source_experiment",
    "code",
    "config",
    "params",
    "datasets",
    "environment",
    "metrics",
    "parent_hashes",
    "author_label",
    "created_at",
)
EDITABLE_FIELDS = frozenset({"description", "tags"})


class ImmutableVersionError(Exception):
    """Raised when code tries to change an ingredient of a registered model version."""


class ModelRepository(models.Model):
    """A registered model: a named line of versions in a project."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=64)  # canonical: accounts.names rule, lower case
    description = models.TextField(blank=True, max_length=20_000)  # markdown, rendered sanitised
    tags = models.JSONField(default=dict, blank=True)  # {key: value}, both strings
    # Aliases that only a merged review request may move (never a direct move).
    protected_aliases = models.JSONField(default=list, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # An imported model (registry/imports.py): the source system and the model's name there.
    source = models.CharField(max_length=16, blank=True, default="")
    source_id = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "name"], name="model_project_name_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.project.path}/{self.name}"


class ModelVersion(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    repository = models.ForeignKey(ModelRepository, on_delete=models.CASCADE, related_name="versions")
    # Denormalised from the repository so that visibility filters need no join.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="model_versions")
    number = models.PositiveIntegerField()
    content_hash = models.CharField(max_length=64)
    # The binary: an artifact of the source run, identified by its sha256. The blob keeps the
    # bytes reachable when the run (and with it the artifact row) is deleted.
    artifact = models.ForeignKey(Artifact, null=True, on_delete=models.SET_NULL, related_name="model_versions")
    blob = models.ForeignKey(Blob, null=True, on_delete=models.PROTECT, related_name="model_versions")
    binary_sha256 = models.CharField(max_length=64)
    binary_size = models.BigIntegerField()
    binary_path = models.CharField(max_length=1024)
    source_run = models.ForeignKey(Run, null=True, on_delete=models.SET_NULL, related_name="model_versions")
    source_run_ref = models.CharField(max_length=32)  # the run id, kept when the run is deleted
    source_run_name = models.CharField(max_length=128, blank=True)
    source_experiment = models.CharField(max_length=128, blank=True)
    # Snapshots copied at registration (see registry.hashing for their exact shape).
    code = models.JSONField(default=dict)
    config = models.JSONField(default=dict)
    params = models.JSONField(default=dict)
    datasets = models.JSONField(default=list)
    environment = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict)
    parents = models.ManyToManyField("self", symmetrical=False, related_name="children", blank=True)
    parent_hashes = models.JSONField(default=list)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    author_label = models.CharField(max_length=150, blank=True)
    created_at = models.DateTimeField()
    # Editable metadata (logged in the audit log).
    description = models.TextField(blank=True, max_length=20_000)
    tags = models.JSONField(default=dict, blank=True)
    # Imported versions (registry/imports.py): the source system and the version's identity
    # there (unique in a repository: a second import adds nothing). ``created_at`` and
    # ``author_label`` are then the source's.
    source = models.CharField(max_length=16, blank=True, default="")
    source_id = models.CharField(max_length=256, blank=True, default="")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["repository", "source", "source_id"],
                condition=~models.Q(source=""),
                name="version_repository_source_unique",
            ),
            models.UniqueConstraint(fields=["repository", "number"], name="version_repository_number_unique"),
            models.UniqueConstraint(fields=["repository", "content_hash"], name="version_repository_hash_unique"),
        ]
        indexes = [models.Index(fields=["project", "content_hash"], name="version_project_hash")]
        ordering = ["repository", "-number"]

    def __str__(self) -> str:
        return f"v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Only ``description`` and ``tags`` may change once a version exists (and only
        through ``registry.services.version_update``, which passes ``update_fields``)."""
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or not set(update_fields) <= EDITABLE_FIELDS:
                raise ImmutableVersionError(
                    f"Model version {self.label} is immutable: only {', '.join(sorted(EDITABLE_FIELDS))} may change."
                )
        super().save(*args, **kwargs)

    @property
    def label(self) -> str:
        return f"v{self.number}"

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]


class Alias(models.Model):
    """A movable ref to one version of a repository (``production``, ``staging``)."""

    repository = models.ForeignKey(ModelRepository, on_delete=models.CASCADE, related_name="aliases")
    name = models.CharField(max_length=64)
    version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="aliases")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["repository", "name"], name="alias_repository_name_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class AliasMove(models.Model):
    """One move of an alias: append-only (no service updates or deletes it)."""

    repository = models.ForeignKey(ModelRepository, on_delete=models.CASCADE, related_name="alias_moves")
    alias = models.CharField(max_length=64)
    from_version = models.ForeignKey(ModelVersion, null=True, on_delete=models.PROTECT, related_name="+")
    to_version = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="+")
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    actor_label = models.CharField(max_length=150, blank=True)
    reason = models.TextField(blank=True, max_length=2_000)
    # The id of the review request whose merge moved the alias (reviews app); None for a
    # direct move. A plain id, not a foreign key: the registry does not depend on reviews.
    review_request_id = models.CharField(max_length=32, null=True, blank=True)  # noqa: DJ001 - NULL: "no review"
    # Set by an import (registry/imports.py): the alias stood there in the source system.
    imported = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["repository", "alias", "-created_at"], name="aliasmove_repo_alias_time")]
        ordering = ["-created_at", "-id"]
