"""MLflow's model registry laid over Assay's: registered models are the project's model
repositories, model versions and aliases are Assay's, through the registry's own services
(validation, rights, immutability, the alias log, the audit log, protection).

Each function takes the caller, the project and the request's message (a dict: the JSON
body, or a GET's query parameters) and answers the response message; domain errors are
mapped to MLflow's error format in one place (compat/wire.py). Differences a client may
notice are listed in docs/mlflow.md: names are lower-cased, a protected alias refuses
direct moves, stages do not exist, a version is registered from files the run uploaded.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.urls import reverse

from artifacts.models import Artifact
from compat import search_filter, wire
from compat.artifacts import ArtifactLocation, files_uri, parse_artifact_uri
from compat.artifacts import relative as _relative_path
from compat.models import LoggedModel, VersionSource
from compat.wire import Call
from core.errors import Conflict, Forbidden, Invalid, NotFound
from experiments.models import Run
from registry import selectors as registry_selectors
from registry import services
from registry.models import Alias, ModelRepository, ModelVersion

if TYPE_CHECKING:
    from accounts.models import Project

STAGES = {"none": "None", "staging": "Staging", "production": "Production", "archived": "Archived"}
NO_STAGE = "None"
MAX_MODELS_RESULTS = 1_000
MAX_VERSIONS_RESULTS = 10_000


# --- message fields ---------------------------------------------------------------------------------


def text(message: dict[str, Any], key: str, *, required: bool = True, limit: int = 2_048) -> str:
    value = message.get(key)
    if value is None or value == "":
        if required:
            raise Invalid(f"Missing value for required parameter '{key}'.", field=key)
        return ""
    if not isinstance(value, str) or len(value) > limit or "\x00" in value:
        raise Invalid(f"Parameter '{key}' must be a string of at most {limit} characters.", field=key)
    return value


def version_number(message: dict[str, Any], key: str = "version") -> int:
    raw = message.get(key)
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    value = text(message, key, limit=20)
    if not value.isdigit() or int(value) < 1 or int(value) > 2_000_000_000:
        raise Invalid(f"Parameter '{key}' must be a version number (1, 2, …), not {raw!r}.", field=key)
    return int(value)


def tag_list(message: dict[str, Any], key: str = "tags") -> dict[str, str]:
    raw = message.get(key)
    if raw in (None, []):
        return {}
    if not isinstance(raw, list):
        raise Invalid(f"Parameter '{key}' must be a list of {{key, value}} objects.", field=key)
    out: dict[str, str] = {}
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            raise Invalid(f"{key}.{index} must be an object {{key, value}}.", field=f"{key}.{index}")
        value = item.get("value", "")
        if not isinstance(value, str):
            raise Invalid(f"{key}.{index}.value must be a string.", field=f"{key}.{index}.value")
        out[item["key"]] = value
    return out


def page(items: list[Any], message: dict[str, Any], *, default: int, limit: int) -> tuple[list[Any], str]:
    raw = message.get("max_results")
    if raw in (None, ""):
        size = default
    else:
        try:
            size = int(raw)
        except (TypeError, ValueError):
            raise Invalid("max_results must be an integer.", field="max_results") from None
        if not 1 <= size <= limit:
            raise Invalid(f"max_results must be between 1 and {limit}, got {size}.", field="max_results")
    try:
        start = search_filter.read_page_token(message.get("page_token"))
    except search_filter.FilterError as exc:
        raise Invalid(str(exc), field="page_token") from None
    chunk = items[start : start + size]
    token = search_filter.page_token(start + size) if start + size < len(items) else ""
    return chunk, token


# --- presenters -------------------------------------------------------------------------------------


def millis(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def _tags_out(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in sorted(tags.items())]


def _recorded_source(version: ModelVersion) -> VersionSource | None:
    """The version's MLflow source (loaded with the version by ``select_related`` in lists)."""
    try:
        return version.mlflow_source
    except VersionSource.DoesNotExist:
        return None


def version_source(version: ModelVersion) -> tuple[str, str]:
    """(source, download URI) of a version: what the client registered from, and the folder of
    run artifacts that holds its files. A version registered with the Assay SDK has no
    MLflow source: the source is its binary among the run's artifacts, the download URI the
    binary's folder."""
    recorded = _recorded_source(version)
    run = version.source_run
    experiment_id = run.experiment_id if run is not None else ""
    if recorded is not None:
        return recorded.source, files_uri(experiment_id, recorded.run_ref, recorded.files_prefix)
    # A client downloads a folder: the one holding the binary (all of the run's files for a
    # binary at the top).
    source = files_uri(experiment_id, version.source_run_ref, version.binary_path)
    return source, files_uri(experiment_id, version.source_run_ref, posixpath.dirname(version.binary_path))


def version_out(version: ModelVersion) -> dict[str, Any]:
    source, _ = version_source(version)
    found = _recorded_source(version)
    recorded = found.model_id if found is not None else ""
    out: dict[str, Any] = {
        "name": version.repository.name,
        "version": str(version.number),
        "creation_timestamp": millis(version.created_at),
        "last_updated_timestamp": millis(version.created_at),
        "user_id": version.author_label,
        "current_stage": NO_STAGE,
        "description": version.description,
        "source": source,
        "run_id": version.source_run_ref,
        "status": "READY",
        "tags": _tags_out(version.tags),
        "aliases": sorted(a.name for a in version.aliases.all()),
    }
    if recorded:
        out["model_id"] = recorded
    return out


def model_out(repository: ModelRepository) -> dict[str, Any]:
    latest = ModelVersion.objects.filter(repository=repository).select_related("repository").order_by("-number").first()
    aliases = Alias.objects.filter(repository=repository).select_related("version").order_by("name")
    return {
        "name": repository.name,
        "creation_timestamp": millis(repository.created_at),
        "last_updated_timestamp": millis(repository.updated_at),
        "user_id": repository.created_by.username if repository.created_by_id and repository.created_by else "",
        "description": repository.description,
        "latest_versions": [version_out(latest)] if latest is not None else [],
        "tags": _tags_out(repository.tags),
        "aliases": [{"alias": a.name, "version": str(a.version.number)} for a in aliases],
    }


# --- lookups ----------------------------------------------------------------------------------------


def _model(project: Project, message: dict[str, Any], key: str = "name") -> ModelRepository:
    name = text(message, key, limit=256)
    repository = (
        ModelRepository.objects.select_related("project__team", "created_by")
        .filter(project=project, name=name.strip().lower())
        .first()
    )
    if repository is None:
        raise NotFound(f"Registered Model with name={name} not found", field=key)
    return repository


def _version(repository: ModelRepository, number: int) -> ModelVersion:
    version = (
        ModelVersion.objects.select_related("repository__project__team", "source_run", "mlflow_source")
        .filter(repository=repository, number=number)
        .first()
    )
    if version is None:
        raise NotFound(f"Model Version (name={repository.name}, version={number}) not found", field="version")
    return version


def _alias_name(message: dict[str, Any]) -> str:
    return services.check_alias_name(text(message, "alias", limit=256), field="alias")


# --- registered models ------------------------------------------------------------------------------


@wire.write
def model_create(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    call.require("model.create")
    name = text(message, "name", limit=256)
    try:
        repository = services.model_create(
            user=user,
            project=project,
            name=name,
            description=text(message, "description", required=False, limit=services.MAX_DESCRIPTION),
            tags=tag_list(message),
        )
    except Conflict as exc:
        if exc.code == "model_exists":
            raise Conflict(
                f"Registered Model (name={name}) already exists.", code="model_exists", field="name"
            ) from None
        raise
    return {"registered_model": model_out(repository)}


@wire.read
def model_get(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    return {"registered_model": model_out(_model(project, message))}


@wire.write
def model_update(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    repository = _model(project, message)
    call.require("model.update")
    description = message.get("description")
    repository = services.model_update(user=user, repository=repository, description=description or "")
    return {"registered_model": model_out(repository)}


@wire.write
def model_rename(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    repository = _model(project, message)
    new_name = text(message, "new_name", limit=256)
    repository = services.model_rename(user=user, repository=repository, new_name=new_name)
    return {"registered_model": model_out(repository)}


@wire.write
def model_delete(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    services.model_delete(user=user, repository=_model(project, message))
    return {}


@wire.write
@transaction.atomic
def model_tag_set(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    repository = _model(project, message)
    call.require("model.update")
    key = text(message, "key", limit=250)
    value = message.get("value", "")
    services.model_update(user=user, repository=repository, tags={**repository.tags, key: value})
    return {}


@wire.write
@transaction.atomic
def model_tag_delete(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    repository = _model(project, message)
    call.require("model.update")
    key = text(message, "key", limit=250)
    if key not in repository.tags:
        raise NotFound(f"No tag with name: {key} in registered model {repository.name}.", field="key")
    services.model_update(user=user, repository=repository, tags={k: v for k, v in repository.tags.items() if k != key})
    return {}


def _model_record(repository: ModelRepository, key: str) -> Any:
    return {
        "name": repository.name,
        "creation_timestamp": millis(repository.created_at),
        "last_updated_timestamp": millis(repository.updated_at),
    }.get(key)


@wire.read
def model_search(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    try:
        clauses = search_filter.names_lowered(search_filter.parse(message.get("filter"), attributes={"name"}))
        order = search_filter.order_keys(
            message.get("order_by"),
            allowed={"name", "creation_timestamp", "last_updated_timestamp"},
            default=[("name", True)],
        )
        found = [
            m
            for m in ModelRepository.objects.select_related("project__team", "created_by").filter(project=project)
            if all(
                search_filter.matches(c, m.tags.get(c.key) if c.kind == "tag" else _model_record(m, c.key))
                for c in clauses
            )
        ]
    except search_filter.FilterError as exc:
        raise Invalid(str(exc), field="filter") from None
    found = search_filter.sort(found, order, _model_record, tie=lambda m: m.name)
    chunk, token = page(found, message, default=100, limit=MAX_MODELS_RESULTS)
    out: dict[str, Any] = {"registered_models": [model_out(m) for m in chunk]}
    if token:
        out["next_page_token"] = token
    return out


@wire.read
def latest_versions(call: Call) -> dict[str, Any]:
    """Assay has no stages: every version is in stage "None", so the latest version answers
    for "None" (or no stage asked), and no version is in Staging, Production or Archived."""
    project, message = call.project, call.msg
    repository = _model(project, message)
    stages = message.get("stages") or []
    if isinstance(stages, str):
        stages = [stages]
    if not isinstance(stages, list):
        raise Invalid("stages must be a list of stage names.", field="stages")
    wanted = set()
    for index, stage in enumerate(stages):
        if not isinstance(stage, str) or stage.lower() not in STAGES:
            raise Invalid(
                f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES.values())}.",
                field=f"stages.{index}",
            )
        wanted.add(STAGES[stage.lower()])
    if wanted and NO_STAGE not in wanted:
        return {"model_versions": []}
    latest = (
        ModelVersion.objects.select_related("repository__project__team", "source_run")
        .filter(repository=repository)
        .order_by("-number")
        .first()
    )
    return {"model_versions": [version_out(latest)] if latest is not None else []}


# --- model versions ---------------------------------------------------------------------------------


def _source_files(project: Project, message: dict[str, Any]) -> tuple[Run, str, LoggedModel | None, str]:
    """(run, folder among its artifacts, logged model, source as sent) of CreateModelVersion."""
    source = text(message, "source")
    model_id = text(message, "model_id", required=False, limit=64)
    run_id = text(message, "run_id", required=False, limit=64)
    logged: LoggedModel | None = None
    if not model_id and source.startswith("models:/"):
        rest = source.removeprefix("models:/")
        if rest and "/" not in rest and "@" not in rest:
            model_id = rest
    if model_id:
        logged = LoggedModel.objects.select_related("run").filter(project=project, pk=model_id, deleted=False).first()
        if logged is None:
            raise NotFound(f"Logged model with ID '{model_id}' not found.", field="model_id")
        if logged.run is None:
            raise Invalid(
                f"Logged model {model_id} has no source run, so Assay holds no files for it; log the model "
                "inside a run (mlflow.start_run()) to register it.",
                field="model_id",
            )
        run, prefix = logged.run, logged.files_prefix
    elif source.startswith("runs:/"):
        run_ref, _, prefix = source.removeprefix("runs:/").partition("/")
        found = Run.objects.select_related("project", "experiment").filter(project=project, pk=run_ref).first()
        if found is None:
            raise NotFound(f"Run '{run_ref}' not found.", field="source")
        run, prefix = found, _relative_source(prefix.strip("/"))
    else:
        location: ArtifactLocation = parse_artifact_uri(project, source, field="source")
        if location.run is None:
            raise Invalid(
                f"Logged model {location.logged_model.id if location.logged_model else ''} has no source run; "
                "Assay holds no files for it.",
                field="source",
            )
        run, prefix, logged = location.run, location.path, location.logged_model
    if run_id and run_id != run.id:
        raise Invalid(f"run_id {run_id} is not the run the source {source} belongs to ({run.id}).", field="run_id")
    return run, prefix, logged, source


def _relative_source(path: str) -> str:
    return _relative_path(path, "source")


@wire.write
def version_create(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    repository = _model(project, message)
    call.require("model.register")
    run, prefix, logged, source = _source_files(project, message)
    in_folder = Artifact.objects.filter(run=run).exclude(status=Artifact.Status.FAILED)
    files = list(in_folder.filter(Q(path=prefix) | Q(path__startswith=f"{prefix}/")) if prefix else in_folder)
    if not files:
        raise NotFound(
            f"Run {run.id} has no files under {prefix or '/'!r}: upload the model before registering it.",
            field="source",
        )
    binary = registry_selectors.model_binary(files, prefix)
    with transaction.atomic():
        try:
            version = services.version_register(
                user=user,
                repository=repository,
                run=run,
                artifact=binary.id,
                description=text(message, "description", required=False, limit=services.MAX_DESCRIPTION),
                tags=tag_list(message),
            )
        except Conflict as exc:
            if exc.code == "version_exists":
                raise Conflict(
                    f"{exc.message} Assay identifies a version by its content; these files and this run are "
                    "registered already.",
                    code="version_exists",
                    field="source",
                ) from None
            raise
        VersionSource.objects.create(
            version=version,
            source=source,
            logged_model=logged,
            model_id=logged.id if logged is not None else "",
            run_ref=run.id,
            files_prefix=prefix if len(files) > 1 or files[0].path != prefix else posixpath.dirname(prefix),
        )
    return {"model_version": version_out(version)}


@wire.read
def version_get(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    return {"model_version": version_out(_version(_model(project, message), version_number(message)))}


@wire.write
def version_update(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    version = _version(_model(project, message), version_number(message))
    call.require("model.update")
    description = message.get("description")
    version = services.version_update(user=user, version=version, description=description or "")
    return {"model_version": version_out(version)}


@wire.write
def version_delete(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    services.version_delete(user=user, version=_version(_model(project, message), version_number(message)))
    return {}


@wire.write
@transaction.atomic
def version_tag_set(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    version = _version(_model(project, message), version_number(message))
    call.require("model.update")
    key = text(message, "key", limit=250)
    services.version_update(user=user, version=version, tags={**version.tags, key: message.get("value", "")})
    return {}


@wire.write
@transaction.atomic
def version_tag_delete(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    version = _version(_model(project, message), version_number(message))
    call.require("model.update")
    key = text(message, "key", limit=250)
    if key not in version.tags:
        raise NotFound(f"No tag with name: {key} in model version {version.number}.", field="key")
    services.version_update(user=user, version=version, tags={k: v for k, v in version.tags.items() if k != key})
    return {}


@wire.read
def version_download_uri(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    version = _version(_model(project, message), version_number(message))
    _, uri = version_source(version)
    return {"artifact_uri": uri}


@wire.write
def stage_transition(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    _version(_model(project, message), version_number(message))
    raise Invalid(
        "Assay has no model stages (MLflow deprecated them in 2.9): every version's stage is 'None'. Use "
        "aliases instead: client.set_registered_model_alias(name, 'staging', version); a protected alias "
        "such as 'production' moves by merging a review request.",
        code="stages_unsupported",
        field="stage",
    )


def _version_record(version: ModelVersion, key: str) -> Any:
    if key == "name":
        return version.repository.name
    if key == "version_number":
        return version.number
    if key == "run_id":
        return version.source_run_ref
    if key == "source_path":
        return version_source(version)[0]
    if key in {"creation_timestamp", "last_updated_timestamp"}:
        return millis(version.created_at)
    return None


@wire.read
def version_search(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    try:
        clauses = search_filter.names_lowered(
            search_filter.parse(message.get("filter"), attributes={"name", "version_number", "run_id", "source_path"})
        )
        order = search_filter.order_keys(
            message.get("order_by"),
            allowed={"name", "version_number", "creation_timestamp", "last_updated_timestamp"},
            default=[("last_updated_timestamp", False), ("name", True), ("version_number", False)],
        )
        versions = (
            ModelVersion.objects.filter(project=project)
            .select_related("repository__project__team", "source_run", "mlflow_source")
            .prefetch_related("aliases")
        )
        for clause in clauses:  # narrow in SQL where it is plain equality
            if clause.kind == "attribute" and clause.key == "name" and clause.op == "=":
                versions = versions.filter(repository__name=str(clause.value).lower())
            elif clause.kind == "attribute" and clause.key == "run_id" and clause.op == "=":
                versions = versions.filter(source_run_ref=str(clause.value))
        found = [
            v
            for v in versions.order_by("repository__name", "-number")[:MAX_VERSIONS_RESULTS]
            if all(
                search_filter.matches(c, v.tags.get(c.key) if c.kind == "tag" else _version_record(v, c.key))
                for c in clauses
            )
        ]
    except search_filter.FilterError as exc:
        raise Invalid(str(exc), field="filter") from None
    found = search_filter.sort(found, order, _version_record, tie=lambda v: (v.repository.name, -v.number))
    chunk, token = page(found, message, default=MAX_VERSIONS_RESULTS, limit=MAX_VERSIONS_RESULTS * 20)
    out: dict[str, Any] = {"model_versions": [version_out(v) for v in chunk]}
    if token:
        out["next_page_token"] = token
    return out


# --- aliases ------------------------------------------------------------------------------------------


def _protected_refusal(repository: ModelRepository, alias: str, number: int | None, exc: Conflict) -> Forbidden:
    """The registry's refusal of a direct move of a protected alias, as MLflow's
    PERMISSION_DENIED, with how to ask for the move instead."""
    project = repository.project
    page_url = reverse("review-new", kwargs={"team": project.team.name, "project": project.name})
    query = f"?model={repository.name}&alias={alias}" + (f"&version={number}" if number else "")
    api_url = reverse("api-review-requests", kwargs={"team": project.team.name, "project": project.name})
    return Forbidden(
        f"{exc.message} To ask for this move, open a review request: {settings.PUBLIC_URL}{page_url}{query} "
        f"(or POST {settings.PUBLIC_URL}{api_url} with "
        f'{{"model": "{repository.name}", "alias": "{alias}"'
        + (f', "version": {number}' if number else "")
        + "}); it moves the alias when it is merged.",
        code="protected_alias",
        field="alias",
    )


@wire.write
def alias_set(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    repository = _model(project, message)
    number = version_number(message)
    alias = text(message, "alias", limit=256)
    try:
        services.alias_move_direct(
            user=user, repository=repository, alias=alias, version=number, reason="set with the MLflow client"
        )
    except Conflict as exc:
        if exc.code == "protected_alias":
            raise _protected_refusal(repository, alias.strip().lower(), number, exc) from None
        raise
    return {}


@wire.write
def alias_delete(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    repository = _model(project, message)
    alias = text(message, "alias", limit=256)
    try:
        services.alias_delete(user=user, repository=repository, alias=alias)
    except Conflict as exc:
        if exc.code == "protected_alias":
            raise _protected_refusal(repository, alias.strip().lower(), None, exc) from None
        raise
    return {}


@wire.read
def alias_get(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    repository = _model(project, message)
    alias = _alias_name(message)
    found = Alias.objects.filter(repository=repository, name=alias).select_related("version").first()
    if found is None:
        raise NotFound(f"Registered model alias {alias} not found.", field="alias")
    return {"model_version": version_out(_version(repository, found.version.number))}
