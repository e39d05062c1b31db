"""MLflow 3's logged models (``/api/2.0/mlflow/logged-models``): what a 3.x client creates
before it uploads a model's files (``log_model``) and what ``models:/<model id>`` names.

A logged model is a row of :class:`compat.models.LoggedModel`; its files are artifacts of
its source run under ``models/<model id>/`` (see compat/artifacts.py). Writes need the
``run.log`` right (a writer logs models as they log runs); registering one as a version
of a registered model is the registry's business (``model.register``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction

from compat import search_filter, wire
from compat.artifacts import logged_model_artifact_uri
from compat.models import LoggedModel, VersionSource
from compat.registry import millis, page, tag_list, text
from compat.tracking import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME
from compat.wire import Call
from core.errors import Invalid, NotFound
from experiments.models import Experiment, Run
from experiments.services import experiment_get_or_create

if TYPE_CHECKING:
    from accounts.models import Project

MAX_TAGS = 100
MAX_PARAMS = 100
MAX_KEY = 250
MAX_VALUE = 8_000
MAX_RESULTS = 1_000
STATUSES = {choice.value: choice for choice in LoggedModel.Status}
STATUS_NUMBERS = {1: LoggedModel.Status.PENDING, 2: LoggedModel.Status.READY, 3: LoggedModel.Status.FAILED}


def model_out(model: LoggedModel) -> dict[str, Any]:
    registrations = [
        {"name": name, "version": str(number)}
        for name, number in VersionSource.objects.filter(logged_model=model).values_list(
            "version__repository__name", "version__number"
        )
    ]
    info: dict[str, Any] = {
        "model_id": model.id,
        "experiment_id": str(model.experiment_id),
        "name": model.name,
        "creation_timestamp_ms": millis(model.created_at),
        "last_updated_timestamp_ms": millis(model.updated_at),
        "artifact_uri": logged_model_artifact_uri(str(model.experiment_id), model.id),
        "status": model.status,
        "model_type": model.model_type,
        "status_message": model.status_message,
        "tags": [{"key": k, "value": v} for k, v in sorted(model.tags.items())],
        "registrations": registrations,
    }
    if model.run_id:
        info["source_run_id"] = model.run_id
    return {
        "info": info,
        "data": {"params": [{"key": k, "value": v} for k, v in sorted(model.params.items())], "metrics": []},
    }


def _pairs(message: dict[str, Any], key: str, limit: int) -> dict[str, str]:
    found = tag_list(message, key)
    if len(found) > limit:
        raise Invalid(f"At most {limit} {key} in one request.", field=key)
    for name, value in found.items():
        if not name or len(name) > MAX_KEY or "\x00" in name:
            raise Invalid(f"A {key[:-1]} key is 1-{MAX_KEY} characters.", field=f"{key}.{name[:50]}")
        if len(value) > MAX_VALUE or "\x00" in value:
            raise Invalid(f"The {key[:-1]} {name!r} is longer than {MAX_VALUE} characters.", field=f"{key}.{name}")
    return found


def _model(project: Project, model_id: str, *, allow_deleted: bool = False) -> LoggedModel:
    found = (
        LoggedModel.objects.select_related("run", "experiment").filter(project=project, pk=model_id).first()
        if isinstance(model_id, str) and len(model_id) <= 64
        else None
    )
    if found is None or (found.deleted and not allow_deleted):
        raise NotFound(f"Logged model with ID '{model_id}' not found.", field="model_id")
    return found


@wire.write
def create(call: Call) -> dict[str, Any]:
    user, project, message = call.user, call.project, call.msg
    call.require("run.log")
    experiment_id = text(message, "experiment_id", limit=64)
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        experiment: Experiment | None = experiment_get_or_create(project=project, name=DEFAULT_EXPERIMENT_NAME)
    else:
        experiment = Experiment.objects.filter(project=project, pk=experiment_id).first()
    if experiment is None:
        raise NotFound(f"Could not find experiment with ID {experiment_id}", field="experiment_id")
    run_id = text(message, "source_run_id", required=False, limit=64)
    run = None
    if run_id:
        run = Run.objects.filter(project=project, pk=run_id).first()
        if run is None:
            raise NotFound(f"Run with id={run_id} not found", field="source_run_id")
    name = text(message, "name", required=False, limit=256) or "model"
    model = LoggedModel.objects.create(
        project=project,
        experiment=experiment,
        run=run,
        name=name,
        model_type=text(message, "model_type", required=False, limit=256),
        tags=_pairs(message, "tags", MAX_TAGS),
        params=_pairs(message, "params", MAX_PARAMS),
        creator=user,
    )
    return {"model": model_out(model)}


@wire.read
def get(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    model_id = str(call.kwargs["model_id"])
    allow_deleted = str(message.get("allow_deleted", "")).lower() == "true"
    return {"model": model_out(_model(project, model_id, allow_deleted=allow_deleted))}


@wire.write
@transaction.atomic
def finalize(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    model_id = str(call.kwargs["model_id"])
    call.require("run.log")
    model = _model(project, model_id)
    raw = message.get("status")
    status = STATUS_NUMBERS.get(raw) if isinstance(raw, int) else STATUSES.get(raw) if isinstance(raw, str) else None
    if status is None or status == LoggedModel.Status.PENDING:
        raise Invalid("status must be LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED.", field="status")
    LoggedModel.objects.filter(pk=model.pk).update(status=status)
    model.refresh_from_db()
    return {"model": model_out(model)}


@wire.write
@transaction.atomic
def delete(call: Call) -> dict[str, Any]:
    """Marks the model deleted (MLflow's lifecycle): its files stay with its run, and a
    version registered from it keeps its binary."""
    project = call.project
    model_id = str(call.kwargs["model_id"])
    call.require("run.log")
    model = _model(project, model_id)
    model.deleted = True
    model.save(update_fields=["deleted", "updated_at"])
    return {}


@wire.write
@transaction.atomic
def tags_set(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    model_id = str(call.kwargs["model_id"])
    call.require("run.log")
    model = LoggedModel.objects.select_for_update().filter(pk=_model(project, model_id).pk).get()
    tags = {**model.tags, **_pairs(message, "tags", MAX_TAGS)}
    if len(tags) > 10 * MAX_TAGS:
        raise Invalid(f"A logged model holds at most {10 * MAX_TAGS} tags.", field="tags")
    model.tags = tags
    model.save(update_fields=["tags", "updated_at"])
    return {}


@wire.write
@transaction.atomic
def tag_delete(call: Call) -> dict[str, Any]:
    project = call.project
    model_id = str(call.kwargs["model_id"])
    key = str(call.kwargs["tag_key"])
    call.require("run.log")
    model = LoggedModel.objects.select_for_update().filter(pk=_model(project, model_id).pk).get()
    if key not in model.tags:
        raise NotFound(f"No tag with key {key!r} on logged model {model_id}.", field="tag_key")
    model.tags = {k: v for k, v in model.tags.items() if k != key}
    model.save(update_fields=["tags", "updated_at"])
    return {}


@wire.write
@transaction.atomic
def params_log(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    model_id = str(call.kwargs["model_id"])
    call.require("run.log")
    model = LoggedModel.objects.select_for_update().filter(pk=_model(project, model_id).pk).get()
    params = _pairs(message, "params", MAX_PARAMS)
    for key, value in params.items():
        if key in model.params and model.params[key] != value:
            raise Invalid(
                f"Changing param values is not allowed. Param with key={key!r} was already logged with "
                f"value={model.params[key]!r} for logged model {model_id}.",
                field=f"params.{key}",
            )
    model.params = {**model.params, **params}
    if len(model.params) > 10 * MAX_PARAMS:
        raise Invalid(f"A logged model holds at most {10 * MAX_PARAMS} params.", field="params")
    model.save(update_fields=["params", "updated_at"])
    return {}


ATTRIBUTES = {
    "name",
    "model_id",
    "source_run_id",
    "status",
    "model_type",
    "creation_timestamp",
    "last_updated_timestamp",
}
ORDER = {"name", "creation_timestamp", "last_updated_timestamp", "model_id"}


def _value(model: LoggedModel, key: str) -> Any:
    return {
        "name": model.name,
        "model_id": model.id,
        "source_run_id": model.run_id,
        "status": model.status.removeprefix("LOGGED_MODEL_"),
        "model_type": model.model_type,
        "creation_timestamp": millis(model.created_at),
        "last_updated_timestamp": millis(model.updated_at),
    }.get(key)


@wire.read
def search(call: Call) -> dict[str, Any]:
    project, message = call.project, call.msg
    ids = message.get("experiment_ids") or []
    if isinstance(ids, str):
        ids = [ids]
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids) or len(ids) > 100:
        raise Invalid("experiment_ids must be a non-empty list of experiment ids.", field="experiment_ids")
    if message.get("datasets"):
        raise Invalid(
            "Assay does not record metrics per dataset of a logged model: datasets are not supported.", field="datasets"
        )
    raw_order = message.get("order_by") or []
    if not isinstance(raw_order, list):
        raise Invalid("order_by must be a list of {field_name, ascending}.", field="order_by")
    order: list[tuple[str, bool]] = []
    for index, item in enumerate(raw_order):
        if not isinstance(item, dict) or item.get("field_name") not in ORDER:
            raise Invalid(
                f"order_by.{index}.field_name must be one of {', '.join(sorted(ORDER))}.", field=f"order_by.{index}"
            )
        order.append((str(item["field_name"]), item.get("ascending", True) is not False))
    try:
        clauses = search_filter.parse(message.get("filter"), attributes=ATTRIBUTES, entities={"tag", "param"})
        default = Experiment.objects.filter(project=project, name__iexact=DEFAULT_EXPERIMENT_NAME).first()
        ids = [default.pk if i == DEFAULT_EXPERIMENT_ID and default is not None else i for i in ids]
        candidates = LoggedModel.objects.filter(project=project, experiment_id__in=ids, deleted=False)
        found = [
            m
            for m in candidates.order_by("-created_at")[:10_000]
            if all(
                search_filter.matches(
                    c,
                    m.tags.get(c.key)
                    if c.kind == "tag"
                    else m.params.get(c.key)
                    if c.kind == "param"
                    else _value(m, c.key),
                )
                for c in clauses
            )
        ]
    except search_filter.FilterError as exc:
        raise Invalid(str(exc), field="filter") from None
    found = search_filter.sort(found, order or [("creation_timestamp", False)], _value, tie=lambda m: m.id)
    chunk, token = page(found, message, default=100, limit=MAX_RESULTS)
    out: dict[str, Any] = {"models": [model_out(m) for m in chunk]}
    if token:
        out["next_page_token"] = token
    return out
