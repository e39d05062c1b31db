"""Importing registered models (``assay import``): a model of MLflow (or another source) with
its versions, descriptions, tags and aliases, once.

Each version is registered from an imported run and the files the importer uploaded into
it (``artifact_path``, a folder or a file among the run's artifacts), as any version is:
its content hash, its snapshot of the run. What the source kept and Assay has no field for is
said in the answer, never dropped silently: a version whose ingredients another version
holds already (MLflow registers the same files twice; Assay identifies a version by its
content) points at that version; a deprecated MLflow stage is kept as the tag
``mlflow.stage``.

Aliases are set as part of the import and logged as imported (``AliasMove.imported``). A
protected alias is set only when the importer is a project admin (``alias.import_protected``);
otherwise it is reported as skipped and a re-run by an admin sets it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from accounts import access
from accounts.models import Project, User
from artifacts import paths
from artifacts.models import Artifact
from core.errors import Conflict, Invalid
from core.validation import refuse_unknown_fields, string
from experiments.models import Run
from experiments.services import MAX_CLOCK_SKEW, check_source
from registry import selectors, services
from registry.models import ModelRepository, ModelVersion

MAX_VERSIONS = 1_000
MAX_ALIASES = 100
STAGE_TAG = "mlflow.stage"
VERSION_FIELDS = {
    "source_id",
    "version",
    "run",
    "artifact_path",
    "description",
    "tags",
    "created_at",
    "author",
    "stage",
}


@dataclass(frozen=True)
class VersionIn:
    source_id: str
    number: int
    run: str
    artifact_path: str
    description: str
    tags: dict[str, str]
    created_at: datetime | None
    author: str


@dataclass
class ModelImport:
    repository: ModelRepository
    created: bool
    versions: list[dict[str, Any]] = field(default_factory=list)
    aliases: list[dict[str, Any]] = field(default_factory=list)


def _version_in(item: Any, index: int) -> VersionIn:
    where = f"versions.{index}"
    if not isinstance(item, dict):
        raise Invalid("A version is an object {source_id, version, run, artifact_path, …}.", field=where)
    refuse_unknown_fields(item, VERSION_FIELDS, at=where)
    number = item.get("version")
    if type(number) is not int or not 1 <= number <= 10**9:
        raise Invalid("version is the source's version number, an integer from 1.", field=f"{where}.version")
    run = item.get("run")
    if not isinstance(run, str) or not services.ID_PATTERN.match(run):
        raise Invalid("run is the id of the imported run the version comes from.", field=f"{where}.run")
    raw_path = item.get("artifact_path", "")
    if not isinstance(raw_path, str):
        raise Invalid("artifact_path must be a string.", field=f"{where}.artifact_path")
    try:
        artifact_path = paths.normalize_path(raw_path) if raw_path.strip("/") else ""
    except paths.PathError as exc:
        raise Invalid(f"Refused artifact path: {exc}", field=f"{where}.artifact_path") from None
    tags = services.check_tags(item.get("tags") or {}, field=f"{where}.tags")
    stage = string(item.get("stage") or "", field=f"{where}.stage", max_length=64, allow_blank=True)
    if stage and stage.lower() != "none":
        tags[STAGE_TAG] = stage
    created_at = _moment(item.get("created_at"), f"{where}.created_at")
    return VersionIn(
        source_id=string(item.get("source_id"), field=f"{where}.source_id", max_length=256),
        number=number,
        run=run,
        artifact_path=artifact_path,
        description=services.check_description(item.get("description") or "", field=f"{where}.description"),
        tags=tags,
        created_at=created_at,
        author=string(item.get("author") or "", field=f"{where}.author", max_length=150, allow_blank=True),
    )


def _moment(value: Any, where: str) -> datetime | None:
    """An ISO 8601 date and time with its offset (or None)."""
    if value is None:
        return None
    moment = parse_datetime(value) if isinstance(value, str) else None
    if moment is None or moment.tzinfo is None:
        raise Invalid("A time is ISO 8601 with its offset, e.g. 2024-05-01T12:00:00Z.", field=where)
    if moment > timezone.now() + MAX_CLOCK_SKEW:
        raise Invalid("This time is in the future.", field=where)
    return moment


def _aliases_in(value: Any) -> dict[str, int]:
    if not isinstance(value, dict) or len(value) > MAX_ALIASES:
        raise Invalid(f"aliases is an object of at most {MAX_ALIASES} alias: version number.", field="aliases")
    out: dict[str, int] = {}
    for alias, number in value.items():
        name = services.check_alias_name(alias, field=f"aliases.{alias}")
        if type(number) is not int or number < 1:
            raise Invalid("An alias names a version number of the source.", field=f"aliases.{alias}")
        out[name] = number
    return out


def _files_of(run: Run, prefix: str) -> list[Artifact]:
    files = Artifact.objects.filter(run=run, status__in=selectors.REGISTRABLE)
    if prefix:
        files = files.filter(Q(path=prefix) | Q(path__startswith=f"{prefix}/"))
    return list(files)


@transaction.atomic
def model_import(
    *,
    user: User,
    project: Project,
    source: Any,
    source_id: Any,
    name: Any,
    description: Any = "",
    tags: Any = None,
    versions: Any = None,
    aliases: Any = None,
    created_at: Any = None,
) -> ModelImport:
    """Import one registered model: create it (or take the project's model of that name), then
    register each version not imported before, then set the aliases. The caller checked
    ``model.import``. Everything is validated before the first write; a version or alias that
    cannot be imported is reported with the reason, not written."""
    source, source_id = check_source(source, source_id)
    canonical = services.check_model_name(name)
    text = services.check_description(description if description is not None else "")
    tag_values = services.check_tags(tags if tags is not None else {})
    versions = [] if versions is None else versions
    if not isinstance(versions, list) or len(versions) > MAX_VERSIONS:
        raise Invalid(f"versions is a list of at most {MAX_VERSIONS} versions.", field="versions")
    wanted = [_version_in(item, i) for i, item in enumerate(versions)]
    alias_targets = _aliases_in(aliases if aliases is not None else {})
    model_created_at = _moment(created_at, "created_at")
    runs = {
        r.pk: r
        for r in Run.objects.select_related("experiment").filter(project=project, pk__in=[v.run for v in wanted])
    }

    repository = selectors.model_of(project, canonical)
    created = repository is None
    if repository is None:
        repository = services.model_create(
            user=user, project=project, name=canonical, description=text, tags=tag_values
        )
        kept = {"created_at": model_created_at} if model_created_at is not None else {}
        ModelRepository.objects.filter(pk=repository.pk).update(source=source, source_id=source_id, **kept)
    result = ModelImport(repository=repository, created=created)

    by_number: dict[int, ModelVersion] = {}
    for item in wanted:
        existing = ModelVersion.objects.filter(repository=repository, source=source, source_id=item.source_id).first()
        if existing is not None:
            by_number[item.number] = existing
            result.versions.append(
                {"version": item.number, "number": existing.number, "id": existing.pk, "result": "already"}
            )
            continue
        run = runs.get(item.run)
        files = _files_of(run, item.artifact_path) if run is not None else []
        if run is None or not files:
            reason = (
                f"run {item.run} is not in this project"
                if run is None
                else f"run {run.pk} holds no uploaded file under {item.artifact_path or '/'!r}"
            )
            result.versions.append({"version": item.number, "result": "skipped", "reason": reason})
            continue
        binary = selectors.model_binary(files, item.artifact_path)
        try:
            with transaction.atomic():
                version = services.version_register(
                    user=user,
                    repository=repository,
                    run=run,
                    artifact=binary.pk,
                    description=item.description,
                    tags=item.tags,
                    imported=services.ImportedVersion(
                        source=source,
                        source_id=item.source_id,
                        number=item.number,
                        created_at=item.created_at,
                        author=item.author,
                    ),
                )
        except Conflict as exc:
            if exc.code != "version_exists":
                raise
            same = (
                ModelVersion.objects.filter(repository=repository, source_run=run, binary_sha256=binary.sha256)
                .order_by("number")
                .first()
            )
            if same is None:
                raise
            by_number[item.number] = same
            result.versions.append(
                {
                    "version": item.number,
                    "number": same.number,
                    "id": same.pk,
                    "result": "same_content",
                    "reason": f"the same run and files as v{same.number}; Assay identifies a version by its content",
                }
            )
            continue
        by_number[item.number] = version
        entry: dict[str, Any] = {
            "version": item.number,
            "number": version.number,
            "id": version.pk,
            "result": "created",
        }
        if version.number != item.number:
            entry["reason"] = f"number {item.number} is taken in {repository.name}; imported as v{version.number}"
        result.versions.append(entry)

    may_protected = access.can(user, "alias.import_protected", project)
    for alias, number in alias_targets.items():
        target = by_number.get(number)
        if target is None:
            result.aliases.append(
                {"alias": alias, "version": number, "result": "skipped", "reason": f"version {number} was not imported"}
            )
            continue
        if alias in repository.protected_aliases and not may_protected:
            result.aliases.append(
                {
                    "alias": alias,
                    "version": number,
                    "result": "skipped",
                    "reason": f"{alias!r} is protected: only a project admin may set it in an import",
                }
            )
            continue
        # SECURITY: the one place that builds an ImportAlias (tests/registry/test_imports.py).
        proof = services.ImportAlias(source=source, alias=alias, version_id=target.pk)
        move = services.alias_move(
            alias=alias, version=target, user=user, reason=f"imported from {source}", merge=proof
        )
        result.aliases.append(
            {"alias": alias, "version": number, "number": target.number, "result": "set" if move else "already"}
        )
    return result
