"""Every write of the registry: one function per use case, validated before anything is written.

There is deliberately no function that changes a version's ingredients: a version is
created whole by :func:`version_register` and afterwards only its description and tags
change (:func:`version_update`). Aliases move only through :func:`alias_move`, the one
place that records the move and enforces protection.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError
from django.utils import timezone

from accounts import access, names
from accounts.audit import audit_record
from accounts.models import Project
from artifacts import paths
from artifacts.models import Artifact
from core import domain_events
from core.errors import Conflict, DomainError, Invalid, NotFound
from core.validation import refuse_unknown_fields
from experiments import metrics as metric_rules
from experiments.models import MetricSummary, Param, Run
from registry import hashing, refs, selectors
from registry.models import Alias, AliasMove, ModelRepository, ModelVersion

if TYPE_CHECKING:
    from accounts.models import User

DEFAULT_PROTECTED = ("production",)
MAX_DESCRIPTION = 20_000
MAX_TAGS = 100
MAX_TAG_VALUE = 5_000
MAX_ALIASES_PER_REGISTER = 20
MAX_PROTECTED = 50
MAX_PARENTS = 16
MAX_DATASETS = 100
MAX_REASON = 2_000
MAX_URI = 2_048
DIGEST = re.compile(r"^(?:[a-z0-9]{2,16}:)?[0-9a-f]{16,128}$")
ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


# --- validation helpers -----------------------------------------------------------------------


def check_model_name(name: Any) -> str:
    if not isinstance(name, str):
        raise Invalid(f"name must be a string: {names.NAME_RULE}.", field="name")
    canonical = names.canonical(name)
    problem = names.name_problem(canonical, team=False)
    if problem:
        raise Invalid(problem, field="name")
    return canonical


def check_description(value: Any, field: str = "description") -> str:
    if not isinstance(value, str):
        raise Invalid(f"{field} must be a string (markdown).", field=field)
    if len(value) > MAX_DESCRIPTION:
        raise Invalid(f"{field} is longer than {MAX_DESCRIPTION} characters.", field=field)
    if "\x00" in value:
        raise Invalid(f"{field} contains a NUL character.", field=field)
    return value


def check_tags(value: Any, field: str = "tags") -> dict[str, str]:
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be an object of key: value strings.", field=field)
    if len(value) > MAX_TAGS:
        raise Invalid(f"At most {MAX_TAGS} tags.", field=field)
    out: dict[str, str] = {}
    for key, raw in value.items():
        try:
            metric_rules.check_key(key, f"{field}.{key}")
        except metric_rules.PointError as exc:
            raise Invalid(str(exc).replace("metric key", "tag key"), field=exc.field) from None
        if not isinstance(raw, str) or len(raw) > MAX_TAG_VALUE or "\x00" in raw:
            raise Invalid(
                f"{field}.{key} must be a string of at most {MAX_TAG_VALUE} characters.", field=f"{field}.{key}"
            )
        if not raw.strip():
            raise Invalid(f"{field}.{key} may not be empty.", field=f"{field}.{key}")
        out[key] = raw
    return out


def check_alias_name(name: Any, field: str = "alias") -> str:
    if not isinstance(name, str):
        raise Invalid("An alias name must be a string.", field=field)
    canonical = name.strip().lower()
    problem = refs.alias_name_problem(canonical)
    if problem:
        raise Invalid(problem, code="invalid_alias", field=field)
    return canonical


def check_protected(value: Any) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_PROTECTED:
        raise Invalid(
            f"protected_aliases must be a list of at most {MAX_PROTECTED} alias names.", field="protected_aliases"
        )
    out: list[str] = []
    for index, name in enumerate(value):
        alias = check_alias_name(name, field=f"protected_aliases.{index}")
        if alias not in out:
            out.append(alias)
    return sorted(out)


def check_reason(value: Any, field: str = "reason") -> str:
    """The reason of an alias move, a merge or a dismissal: optional text, trimmed."""
    if value is None:
        return ""
    if not isinstance(value, str) or len(value) > MAX_REASON or "\x00" in value:
        raise Invalid(f"{field} must be a string of at most {MAX_REASON} characters.", field=field)
    return value.strip()


def _opt_int(item: dict[str, Any], key: str, field: str) -> int | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**63 - 1:
        raise Invalid(f"{key} must be an integer ≥ 0.", field=f"{field}.{key}")
    return value


def _opt_str(item: dict[str, Any], key: str, field: str, limit: int) -> str | None:
    value = item.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > limit or any(ord(c) < 32 for c in value):
        raise Invalid(f"{key} must be a string of 1-{limit} printable characters.", field=f"{field}.{key}")
    return value


def check_dataset(item: Any, field: str) -> dict[str, Any]:
    """A dataset fingerprint: ``{name, uri, path, digest, size, rows}``; only ``name`` is
    required. ``digest`` is ``sha256:<hex>`` (a bare 64-hex digest is read as sha256)."""
    if not isinstance(item, dict):
        raise Invalid("A dataset is an object {name, uri, path, digest, size, rows}.", field=field)
    refuse_unknown_fields(item, {"name", "uri", "path", "digest", "size", "rows"}, at=field)
    name = _opt_str(item, "name", field, 128)
    if name is None:
        raise Invalid("A dataset needs a name.", field=f"{field}.name")
    digest = _opt_str(item, "digest", field, 150)
    if digest is not None:
        digest = digest.lower()
        if re.fullmatch(r"[0-9a-f]{64}", digest):
            digest = f"sha256:{digest}"
        if not DIGEST.match(digest):
            raise Invalid("digest must be <algorithm>:<hex>, e.g. sha256:<64 hex characters>.", field=f"{field}.digest")
    return {
        "name": name,
        "uri": _opt_str(item, "uri", field, MAX_URI),
        "path": _opt_str(item, "path", field, 1024),
        "digest": digest,
        "size": _opt_int(item, "size", field),
        "rows": _opt_int(item, "rows", field),
    }


def run_datasets(run: Run) -> dict[str, dict[str, Any]]:
    """The fingerprints a run logged (``info.datasets``, keyed by name), validated; entries
    that are not valid fingerprints are skipped (the run's info is free-form)."""
    raw = (run.info or {}).get("datasets") if isinstance(run.info, dict) else None
    out: dict[str, dict[str, Any]] = {}
    if isinstance(raw, dict):
        for name, item in raw.items():
            if isinstance(item, dict):
                try:
                    out[str(name)] = check_dataset(
                        {"name": name, **{k: v for k, v in item.items() if k != "name"}}, "info.datasets"
                    )
                except DomainError:
                    continue
    return out


# --- snapshots of a run ---------------------------------------------------------------------------


def _relative(path: Any, root: Any) -> Any:
    if isinstance(path, str) and isinstance(root, str) and root and os.path.isabs(path):
        try:
            rel = os.path.relpath(path, root)
        except ValueError:
            return path
        return path if rel.startswith("..") else rel
    return path


def code_snapshot(info: dict[str, Any]) -> dict[str, Any]:
    """The run's ``info.code`` (the SDK's shape: command, entry_point, cwd, git{…}) as the
    version records it; paths under the repository root become relative to it."""
    git = info.get("git") if isinstance(info.get("git"), dict) else {}
    assert isinstance(git, dict)

    def pick(key: str) -> Any:
        return git.get(key, info.get(key))

    diff = pick("diff")
    diff = diff if isinstance(diff, str) else ""
    root = pick("root")
    command = info.get("command")
    return {
        "remote": pick("remote"),
        "commit": pick("commit"),
        "branch": pick("branch"),
        "dirty": bool(pick("dirty")),
        "diff": diff,
        "diff_sha256": hashlib.sha256(diff.encode("utf-8")).hexdigest() if diff else None,
        "diff_truncated": bool(pick("diff_truncated")),
        "entry_point": _relative(info.get("entry_point"), root),
        "cwd": _relative(info.get("cwd"), root),
        "command": [str(part) for part in command] if isinstance(command, list) else command,
    }


def environment_snapshot(info: dict[str, Any]) -> dict[str, Any]:
    gpus = info.get("gpus")
    accelerator = info.get("accelerator")
    if accelerator is None and isinstance(gpus, list) and gpus:
        accelerator = ", ".join(str(g.get("name", "gpu")) if isinstance(g, dict) else str(g) for g in gpus)
    packages = info.get("packages")
    return {
        "python": info.get("python"),
        "os": info.get("os"),
        "accelerator": accelerator,
        "packages": {str(k): str(v) for k, v in packages.items()} if isinstance(packages, dict) else {},
    }


def metrics_snapshot(run: Run) -> dict[str, Any]:
    """Last value of every summary metric, system/* samples left out."""
    return {
        key: hashing.finite(last) if last is not None else None
        for key, last in MetricSummary.objects.filter(run=run).order_by("key").values_list("key", "last")
        if not key.startswith("system/")
    }


# --- repositories -----------------------------------------------------------------------------------


@transaction.atomic
def model_create(
    *,
    user: User,
    project: Project,
    name: Any,
    description: Any = "",
    tags: Any = None,
    protected_aliases: Any = None,
) -> ModelRepository:
    """Create a model repository. ``production`` is protected unless ``protected_aliases``
    says otherwise (which needs the ``model.protect`` right)."""
    canonical = check_model_name(name)
    text = check_description(description if description is not None else "")
    tag_values = check_tags(tags if tags is not None else {})
    if protected_aliases is None:
        protected = list(DEFAULT_PROTECTED)
    else:
        protected = check_protected(protected_aliases)
        if protected != list(DEFAULT_PROTECTED):
            access.require(user, "model.protect", project)
    if ModelRepository.objects.filter(project=project, name=canonical).exists():
        raise Conflict(f"Model {canonical} exists in {project.path}.", code="model_exists", field="name")
    try:
        with transaction.atomic():
            repository = ModelRepository.objects.create(
                project=project,
                name=canonical,
                description=text,
                tags=tag_values,
                protected_aliases=protected,
                created_by=user,
            )
    except IntegrityError:
        raise Conflict(f"Model {canonical} exists in {project.path}.", code="model_exists", field="name") from None
    audit_record(actor=user, action="model.create", target=repository, project=project)
    return repository


@transaction.atomic
def model_update(
    *,
    user: User,
    repository: ModelRepository,
    description: Any = None,
    tags: Any = None,
    protected_aliases: Any = None,
) -> ModelRepository:
    """Edit a repository's description, tags or protected aliases (the latter needs
    ``model.protect``: by default the project's admins)."""
    repository = ModelRepository.objects.select_for_update().select_related("project__team").get(pk=repository.pk)
    changes: dict[str, Any] = {}
    if description is not None:
        changes["description"] = check_description(description)
    if tags is not None:
        changes["tags"] = check_tags(tags)
    if protected_aliases is not None:
        protected = check_protected(protected_aliases)
        if protected != sorted(repository.protected_aliases):
            access.require(user, "model.protect", repository.project)
        changes["protected_aliases"] = protected
    before = {key: getattr(repository, key) for key in changes}
    for key, value in changes.items():
        setattr(repository, key, value)
    if changes:
        repository.save(update_fields=[*changes, "updated_at"])
        audit_record(
            actor=user,
            action="model.update",
            target=repository,
            project=repository.project,
            data={"before": before, "after": changes},
        )
    return repository


# --- versions ----------------------------------------------------------------------------------------


def find_artifact(run: Run, ref: Any) -> Artifact:
    """An artifact of ``run`` by id or path. # SECURITY: only the run's own artifacts; an
    id of another run's artifact is "not found"."""
    if not isinstance(ref, str) or not ref:
        raise Invalid("artifact must be the path or the id of an artifact of the run.", field="artifact")
    qs = Artifact.objects.filter(run=run).select_related("blob")
    artifact = qs.filter(pk=ref).first() if ID_PATTERN.match(ref) else None
    if artifact is None:
        try:
            path = paths.normalize_path(ref)
        except paths.PathError as exc:
            raise Invalid(f"Refused artifact path: {exc}", code="invalid_path", field="artifact") from None
        artifact = qs.filter(path=path).first()
    if artifact is None:
        raise NotFound(f"Run {run.id} has no artifact {ref!r}.", code="not_found", field="artifact")
    if artifact.status not in selectors.REGISTRABLE:
        state = (
            "has not been uploaded yet" if artifact.status == Artifact.Status.PENDING else f"failed ({artifact.reason})"
        )
        raise Conflict(
            f"Artifact {artifact.path!r} {state}; register a model on an uploaded artifact.",
            code="artifact_not_ready",
            field="artifact",
        )
    return artifact


def _pick_datasets(run: Run, value: Any) -> list[dict[str, Any]]:
    logged = run_datasets(run)
    if value is None:
        return [logged[name] for name in sorted(logged)]
    if not isinstance(value, list) or len(value) > MAX_DATASETS:
        raise Invalid(
            f"datasets must be a list (at most {MAX_DATASETS}) of dataset names the run logged or fingerprints.",
            field="datasets",
        )
    chosen: dict[str, dict[str, Any]] = {}
    for index, item in enumerate(value):
        field = f"datasets.{index}"
        if isinstance(item, str):
            if item not in logged:
                raise NotFound(f"The run logged no dataset named {item!r}.", code="not_found", field=field)
            record = logged[item]
        else:
            record = check_dataset(item, field)
        if record["name"] in chosen:
            raise Invalid(f"The dataset {record['name']!r} appears twice.", field=field)
        chosen[record["name"]] = record
    return [chosen[name] for name in sorted(chosen)]


def _resolve_parents(repository: ModelRepository, value: Any) -> list[ModelVersion]:
    """Parents by ``vN``/number/alias/hash (this model) or ``model@ref`` / ``team/project/model@ref``
    (another model of the same project). # SECURITY: a version of another project is refused
    with the same 404 as a missing one, so it reveals nothing."""
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_PARENTS:
        raise Invalid(f"parents must be a list of at most {MAX_PARENTS} version references.", field="parents")
    project = repository.project
    found: list[ModelVersion] = []
    for index, item in enumerate(value):
        field = f"parents.{index}"
        if isinstance(item, int) and not isinstance(item, bool):
            item = f"v{item}"
        if not isinstance(item, str) or not item or len(item) > 300:
            raise Invalid("A parent is vN, an alias, a content hash or model@ref.", field=field)
        try:
            if "@" in item or "/" in item:
                ref = refs.parse_model_ref(item, default_project=project.path)
                target_repo = None
                if ref.project_path == project.path.lower():
                    target_repo = selectors.model_of(project, ref.model)
                if target_repo is None:
                    raise NotFound(f"No model version {item!r} in {project.path}.", code="not_found", field=field)
                version = selectors.resolve_version(target_repo, ref.ref, field=field)
            else:
                version = selectors.resolve_version(repository, refs.parse_version_ref(item), field=field)
        except refs.RefError as exc:
            raise Invalid(str(exc), field=field) from None
        if version.project_id != project.id:  # defence in depth: resolve_version stays in project
            raise NotFound(f"No model version {item!r} in {project.path}.", code="not_found", field=field)
        if version not in found:
            found.append(version)
    return found


def _check_alias_targets(repository: ModelRepository, aliases: Any) -> list[str]:
    if aliases is None:
        return []
    if not isinstance(aliases, list) or len(aliases) > MAX_ALIASES_PER_REGISTER:
        raise Invalid(f"aliases must be a list of at most {MAX_ALIASES_PER_REGISTER} alias names.", field="aliases")
    out: list[str] = []
    for index, name in enumerate(aliases):
        alias = check_alias_name(name, field=f"aliases.{index}")
        _refuse_protected(repository, alias, merge=None, field=f"aliases.{index}")
        if alias not in out:
            out.append(alias)
    return out


def _refuse_protected(
    repository: ModelRepository, alias: str, *, merge: ReviewMerge | ImportAlias | None, field: str = "alias"
) -> None:
    if alias in repository.protected_aliases and merge is None:
        raise Conflict(
            f"The alias {alias!r} of model {repository.name} is protected: a protected alias is never moved "
            "directly, by anyone, through any interface; it moves only when a review request to move it is "
            "merged. Open a review request instead.",
            code="protected_alias",
            field=field,
        )


@transaction.atomic
def version_register(
    *,
    user: User,
    repository: ModelRepository,
    run: Run,
    artifact: Any,
    datasets: Any = None,
    parents: Any = None,
    description: Any = "",
    tags: Any = None,
    aliases: Any = None,
    reason: Any = None,
    imported: ImportedVersion | None = None,
) -> ModelVersion:
    """Register the next version of ``repository`` from ``run``: snapshot the run's code,
    config, params, datasets, environment and summary metrics, the artifact's sha256 and
    the parents; compute the content hash; optionally point ``aliases`` at it. Everything is
    validated before the first write; registering the same ingredients again is 409
    ``version_exists``. ``imported`` (registry/imports.py only): the version's number, time,
    author and identity in the system it is imported from."""
    if run.project_id != repository.project_id:
        # SECURITY: a run of another project is "not found", whatever the caller may see.
        raise NotFound("No such run in this project.", code="not_found", field="run")
    # Lock the repository: numbers are assigned one at a time.
    repository = ModelRepository.objects.select_for_update().select_related("project__team").get(pk=repository.pk)
    found_artifact = find_artifact(run, artifact)
    chosen_datasets = _pick_datasets(run, datasets)
    parent_versions = _resolve_parents(repository, parents)
    text = check_description(description if description is not None else "")
    tag_values = check_tags(tags if tags is not None else {})
    alias_names = _check_alias_targets(repository, aliases)
    move_reason = check_reason(reason)

    info: dict[str, Any] = run.info if isinstance(run.info, dict) else {}
    code_info = info.get("code")
    environment_info = info.get("environment")
    code = code_snapshot(code_info if isinstance(code_info, dict) else {})
    environment = environment_snapshot(environment_info if isinstance(environment_info, dict) else {})
    params = dict(Param.objects.filter(run=run).values_list("key", "value"))
    metrics = metrics_snapshot(run)
    parent_hashes = sorted(p.content_hash for p in parent_versions)
    document = hashing.ingredients(
        binary_sha256=found_artifact.sha256,
        binary_size=found_artifact.size,
        code=code,
        config=run.config if isinstance(run.config, dict) else {},
        params=params,
        datasets=chosen_datasets,
        environment=environment,
        run_id=run.id,
        metrics=metrics,
        parent_hashes=parent_hashes,
    )
    digest = hashing.content_hash(document)
    existing = ModelVersion.objects.filter(repository=repository, content_hash=digest).first()
    if existing is not None:
        raise Conflict(
            f"These ingredients are already version v{existing.number} of {repository.name} "
            f"(content hash {digest[:12]}).",
            code="version_exists",
            field="artifact",
            extra={"version": existing.number},
        )
    number = (ModelVersion.objects.filter(repository=repository).aggregate(top=Max("number"))["top"] or 0) + 1
    if imported is not None and not ModelVersion.objects.filter(repository=repository, number=imported.number).exists():
        number = imported.number  # the source's number when free (MLflow's numbers have gaps)
    version = ModelVersion.objects.create(
        repository=repository,
        project_id=repository.project_id,
        number=number,
        content_hash=digest,
        artifact=found_artifact,
        blob_id=found_artifact.blob_id,
        binary_sha256=found_artifact.sha256,
        binary_size=found_artifact.size,
        binary_path=found_artifact.path,
        source_run=run,
        source_run_ref=run.id,
        source_run_name=run.name,
        source_experiment=run.experiment.name,
        code=code,
        config=document["config"],
        params=params,
        datasets=chosen_datasets,
        environment=environment,
        metrics=metrics,
        parent_hashes=parent_hashes,
        author=user,
        # An imported version keeps its source's author name, also when the source had none.
        author_label=imported.author if imported is not None else user.username,
        created_at=imported.created_at if imported is not None and imported.created_at else timezone.now(),
        description=text,
        tags=tag_values,
        source=imported.source if imported is not None else "",
        source_id=imported.source_id if imported is not None else "",
    )
    if parent_versions:
        version.parents.set(parent_versions)
    audit_record(
        actor=user,
        action="model.version.register",
        target=version,
        target_label=f"{repository.name} v{number}",
        project=repository.project,
        data={"content_hash": digest, "run": run.id},
    )
    domain_events.emit(
        domain_events.DomainEvent(
            type="version.created",
            project_id=repository.project_id,
            repository_id=repository.id,
            actor=user.username,
            data={"version": version.id},
        )
    )
    for alias in alias_names:
        alias_move(alias=alias, version=version, user=user, reason=move_reason or f"registered v{number}")
    return version


@transaction.atomic
def version_register_by_name(
    *,
    user: User,
    run: Run,
    model: Any,
    artifact: Any,
    aliases: Any = None,
    description: Any = "",
) -> ModelVersion:
    """Register a version from ``run`` into the model named ``model`` of the run's project,
    creating the model when there is none by that name (the run page's form). One
    transaction: a refused registration leaves no new, empty model behind. The caller has
    checked ``model.register`` on the run."""
    name = check_model_name(model)
    repository = selectors.model_of(run.project, name) or model_create(user=user, project=run.project, name=name)
    return version_register(
        user=user, repository=repository, run=run, artifact=artifact, aliases=aliases, description=description
    )


@transaction.atomic
def version_update(
    *,
    user: User,
    version: ModelVersion,
    description: Any = None,
    tags: Any = None,
) -> ModelVersion:
    """Edit the metadata of a version (description, tags); every edit is audited. No other
    field of a version can change."""
    version = ModelVersion.objects.select_for_update().select_related("repository__project__team").get(pk=version.pk)
    changes: dict[str, Any] = {}
    if description is not None:
        changes["description"] = check_description(description)
    if tags is not None:
        changes["tags"] = check_tags(tags)
    before = {key: getattr(version, key) for key in changes}
    for key, value in changes.items():
        setattr(version, key, value)
    if changes:
        version.save(update_fields=list(changes))
        audit_record(
            actor=user,
            action="model.version.update",
            target=version,
            target_label=f"{version.repository.name} v{version.number}",
            project=version.repository.project,
            data={"before": before, "after": changes},
        )
    return version


# --- aliases -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportedVersion:
    """What an import keeps of a version (registry/imports.py passes it to version_register)."""

    source: str
    source_id: str
    number: int
    created_at: datetime | None = None
    author: str = ""


@dataclass(frozen=True)
class ImportAlias:
    """Proof that an alias move is part of an import: an alias the imported model had in its
    source system. Like :class:`ReviewMerge` it lets :func:`alias_move` move a protected
    alias, and only one module builds it: ``registry.imports.model_import``, after it checked
    that the importer is a project admin (``alias.import_protected``) for a protected alias.
    ``tests/registry/test_imports.py`` reads every application module and fails if another
    one constructs an ImportAlias. The move is logged with ``imported=True``."""

    source: str
    alias: str
    version_id: str


@dataclass(frozen=True)
class ReviewMerge:
    """Proof that an alias move is the merge of a review request: the only thing that lets
    :func:`alias_move` move a protected alias.

    It replaces a free-text ``via_review`` string, which any caller could have typed. How it
    is kept honest (simply; Python has no private constructors):

    - It is a type, not a value: nothing read from a request body, a form or a URL becomes
      one, and :func:`alias_move` refuses anything else with a TypeError.
    - It names the alias and the version the merge moves, so one cannot be reused to move
      another alias, or to another version (ValueError).
    - One module of the application builds it: the reviews merge service
      (``reviews.services``, ``review_request_merge``), after ``reviews.policy.may_merge``
      allowed the merge, inside the transaction that marks the request merged.
      ``tests/registry/test_services.py::test_only_the_review_merge_service_grants_a_review_merge``
      reads every application module and fails if another one constructs a ReviewMerge.
      Tests and seeding scripts build one to stand for a merged review.

    The registry sits below reviews and cannot look the review request up itself; it logs
    ``review_request_id`` with the move (``AliasMove.review_request_id`` and the audit event).
    """

    review_request_id: str
    number: int
    alias: str
    version_id: str


def _check_merge(merge: object, *, alias: str, version: ModelVersion) -> None:
    if isinstance(merge, ImportAlias):
        if merge.alias != alias or merge.version_id != version.id:
            raise ValueError(f"The import sets {merge.alias!r} to version {merge.version_id}, not {alias!r}.")
        return
    if not isinstance(merge, ReviewMerge):
        # SECURITY: a string (the review id of old) is not proof of a merge.
        raise TypeError(f"merge must be a ReviewMerge, not {type(merge).__name__}.")
    if merge.alias != alias or merge.version_id != version.id:
        raise ValueError(
            f"The merge of review request #{merge.number} moves {merge.alias!r} to version {merge.version_id}, "
            f"not {alias!r} to version {version.id}."
        )


def _version_to_move_to(repository: ModelRepository, value: Any) -> ModelVersion:
    """The version a user moves an alias to: ``n``, ``vN`` or a content-hash prefix (read by
    :func:`registry.refs.parse_version_arg`), never another alias."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"v{value}"
    if not isinstance(value, str) or not value:
        raise Invalid("version must be a version number, vN or a content-hash prefix.", field="version")
    try:
        ref = refs.parse_version_arg(value)
    except refs.RefError as exc:
        raise Invalid(str(exc), field="version") from None
    if ref.kind == "alias":
        raise Invalid("version must name a version (n, vN or a hash prefix), not another alias.", field="version")
    return selectors.resolve_version(repository, ref, field="version")


@transaction.atomic
def alias_move_direct(
    *, user: User, repository: ModelRepository, alias: Any, version: Any, reason: Any = None
) -> Alias:
    """A user moves (or creates) an alias by hand, from the API or the model page: the one
    rule both call. Checked in this order (the API's error bodies depend on it): the
    ``alias.move`` right, the alias name, the version (``n``, ``vN`` or a hash prefix, not an
    alias), the reason, and protection (a protected alias is 409 ``protected_alias``: it
    moves only by merging a review request). Returns the alias as it now stands."""
    access.require(user, "alias.move", repository.project)
    name = check_alias_name(alias, field="alias")
    target = _version_to_move_to(repository, version)
    alias_move(alias=name, version=target, user=user, reason=reason)
    moved = selectors.alias_of(repository, name)
    assert moved is not None  # just moved, in this transaction
    return moved


@transaction.atomic
def alias_move(
    *,
    alias: str,
    version: ModelVersion,
    user: User,
    reason: Any = "",
    merge: ReviewMerge | ImportAlias | None = None,
) -> AliasMove | None:
    """Point ``alias`` of the version's repository at ``version`` (creating the alias when
    new) and log the move: the one place that moves an alias. A protected alias moves only
    with ``merge``, the :class:`ReviewMerge` of the review request being merged (the reviews
    merge service passes it); without one, a protected alias is 409 ``protected_alias``. The
    caller has checked the right (``alias.move``, ``model.register`` or the merge right):
    a user's direct move goes through :func:`alias_move_direct`. Moving an alias to where it
    already points records nothing and returns None."""
    name = check_alias_name(alias)
    if merge is not None:
        _check_merge(merge, alias=name, version=version)
    text = check_reason(reason)
    repository = (
        ModelRepository.objects.select_for_update().select_related("project__team").get(pk=version.repository_id)
    )
    _refuse_protected(repository, name, merge=merge)
    current = Alias.objects.select_for_update().filter(repository=repository, name=name).first()
    if current is not None and current.version_id == version.id:
        return None
    previous = current.version if current is not None else None
    if current is None:
        Alias.objects.create(repository=repository, name=name, version=version)
    else:
        current.version = version
        current.save(update_fields=["version", "updated_at"])
    review_request_id = merge.review_request_id if isinstance(merge, ReviewMerge) else None
    move = AliasMove.objects.create(
        repository=repository,
        alias=name,
        from_version=previous,
        to_version=version,
        actor=user,
        actor_label=user.username,
        reason=text,
        review_request_id=review_request_id,
        imported=isinstance(merge, ImportAlias),
    )
    audit_record(
        actor=user,
        action="model.alias.move",
        target=repository,
        project=repository.project,
        data={
            "alias": name,
            "from": previous.number if previous is not None else None,
            "to": version.number,
            "reason": text,
            "review_request": review_request_id,
            "imported": isinstance(merge, ImportAlias),
        },
    )
    domain_events.emit(
        domain_events.DomainEvent(
            type="alias.moved",
            project_id=repository.project_id,
            repository_id=repository.id,
            actor=user.username,
            data={"move": move.id, "review_request": review_request_id},
        )
    )
    return move


# --- renaming and deleting (the MLflow-compatible API's lifecycle calls) ---------------------------------


@transaction.atomic
def model_rename(*, user: User, repository: ModelRepository, new_name: Any) -> ModelRepository:
    """Give a repository another name (``model.update``). Versions, aliases, their log and
    review requests follow it (they hold the repository, not its name); references written
    with the old name (``team/project/old@production``) stop resolving, as on GitHub without
    its redirects."""
    access.require(user, "model.update", repository.project)
    try:
        canonical = check_model_name(new_name)
    except Invalid as exc:
        raise Invalid(exc.message, field="new_name") from None
    repository = ModelRepository.objects.select_for_update().select_related("project__team").get(pk=repository.pk)
    if canonical == repository.name:
        return repository
    if ModelRepository.objects.filter(project_id=repository.project_id, name=canonical).exists():
        raise Conflict(f"Model {canonical} exists in {repository.project.path}.", code="model_exists", field="new_name")
    before = repository.name
    repository.name = canonical
    try:
        with transaction.atomic():
            repository.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        raise Conflict(
            f"Model {canonical} exists in {repository.project.path}.", code="model_exists", field="new_name"
        ) from None
    audit_record(
        actor=user,
        action="model.rename",
        target=repository,
        project=repository.project,
        data={"before": before, "after": canonical},
    )
    return repository


def _history_refusal(what: str) -> Conflict:
    return Conflict(
        f"{what} is part of the registry's history (an alias points or pointed at it, or a review request "
        "names it); Assay keeps that history, so it cannot be deleted.",
        code="version_in_history",
    )


@transaction.atomic
def version_delete(*, user: User, version: ModelVersion) -> None:
    """Delete a version nothing refers to (``model.delete``): no alias points at it, no alias
    move and no review request names it. Its binary's blob stays in the store while another
    artifact or version holds it; audited."""
    version = ModelVersion.objects.select_for_update().select_related("repository__project__team").get(pk=version.pk)
    access.require(user, "model.delete", version.repository.project)
    label = f"{version.repository.name} v{version.number}"
    if version.aliases.exists():
        names_held = ", ".join(sorted(version.aliases.values_list("name", flat=True)))
        raise Conflict(f"{label} is held by the alias(es) {names_held}; move them first.", code="version_aliased")
    try:
        with transaction.atomic():
            version.parents.clear()
            ModelVersion.parents.through.objects.filter(to_modelversion=version).delete()
            version.delete()
    except ProtectedError:
        raise _history_refusal(label) from None
    audit_record(
        actor=user,
        action="model.version.delete",
        target=None,
        target_label=label,
        project=version.repository.project,
        data={"content_hash": version.content_hash},
    )


@transaction.atomic
def model_delete(*, user: User, repository: ModelRepository) -> None:
    """Delete a repository and its versions (``model.delete``), unless it holds a protected
    alias (a protected alias says the model serves; it does not vanish by a direct call) or
    its history (alias moves, review requests) names any of its versions."""
    repository = ModelRepository.objects.select_for_update().select_related("project__team").get(pk=repository.pk)
    access.require(user, "model.delete", repository.project)
    held = sorted(
        Alias.objects.filter(repository=repository, name__in=repository.protected_aliases).values_list(
            "name", flat=True
        )
    )
    if held:
        raise Conflict(
            f"Model {repository.name} holds the protected alias(es) {', '.join(held)}; a protected alias moves "
            "only by merging a review request, and the model cannot be deleted while it holds one.",
            code="protected_alias",
        )
    label = repository.name
    try:
        with transaction.atomic():
            Alias.objects.filter(repository=repository).delete()
            ModelVersion.parents.through.objects.filter(from_modelversion__repository=repository).delete()
            ModelVersion.parents.through.objects.filter(to_modelversion__repository=repository).delete()
            repository.delete()
    except ProtectedError:
        raise _history_refusal(f"Model {label}") from None
    audit_record(
        actor=user, action="model.delete", target=None, target_label=label, project=repository.project, data={}
    )


@transaction.atomic
def alias_delete(*, user: User, repository: ModelRepository, alias: Any) -> None:
    """Remove an alias (``alias.move``). A protected alias is refused exactly as a direct move
    is (409 ``protected_alias``): it changes only by merging a review request. The removal
    is audited (the alias log records moves to a version; a removal has none)."""
    access.require(user, "alias.move", repository.project)
    name = check_alias_name(alias)
    repository = ModelRepository.objects.select_for_update().select_related("project__team").get(pk=repository.pk)
    _refuse_protected(repository, name, merge=None)
    current = (
        Alias.objects.select_for_update().filter(repository=repository, name=name).select_related("version").first()
    )
    if current is None:
        raise NotFound(f"Model {repository.name} has no alias {name}.", code="not_found", field="alias")
    number = current.version.number
    current.delete()
    audit_record(
        actor=user,
        action="model.alias.delete",
        target=repository,
        project=repository.project,
        data={"alias": name, "from": number},
    )
