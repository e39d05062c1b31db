"""MLflow tracking over Assay's experiments and runs: every handler maps one MLflow call onto
the services and selectors of ``experiments`` (so live events, summaries and search work
as for SDK data) and writes the answer as MLflow's protos in JSON.

Identity: MLflow run ids are Assay run ids (32 hex characters); experiment ids are Assay's,
and ``"0"`` (the client's default experiment) is the project's ``Default`` experiment.
Mapped run fields: ``run_name`` and the ``mlflow.runName`` tag are the run's name, the
``mlflow.note.content`` tag its notes, ``user_id`` its author; datasets of ``log_inputs``
are the run's ``info.datasets`` (as the SDK's ``log_dataset`` writes them), models of
``log_inputs``/``log_outputs`` its ``info.models``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from django.db import transaction
from django.db.models import Q

from accounts.access import can, token_allows
from compat import experiment_filter, wire
from compat.wire import Call, MlflowError, shown
from core.errors import Invalid, NotFound
from experiments import metric_store, selectors, services, tried
from experiments.access import access_run
from experiments.models import Experiment, ExperimentTag, Run, RunStatus, Tag
from experiments.query import compiler
from experiments.query.parser import FilterError

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"

# MLflow's own limits (mlflow/utils/validation.py).
MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_RESULTS = 50_000
SEARCH_DEFAULT = 1000
HISTORY_PAGE_DEFAULT = 25_000
MAX_BULK_RUNS = 100
MAX_DATASETS = 1000

STATUS_IN = {
    "RUNNING": RunStatus.RUNNING,
    "SCHEDULED": RunStatus.RUNNING,
    "FINISHED": RunStatus.FINISHED,
    "FAILED": RunStatus.FAILED,
    "KILLED": RunStatus.KILLED,
}
VIEW_TYPES = {"ACTIVE_ONLY": False, "DELETED_ONLY": True, "ALL": None}

RUN_NAME_TAG = "mlflow.runName"
NOTE_TAG = "mlflow.note.content"
USER_TAG = "mlflow.user"
# Issue 22 ("has this been tried?"): on a run whose configuration (config + params,
# normalised, excluded keys left out: experiments/fingerprint.py) an earlier run of the
# project already had, the id of the most recent such run. Computed when the run is read.
SAME_CONFIG_TAG = "assay.same_config_as"
MODEL_HISTORY_TAG = "mlflow.log-model.history"


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def from_ms(value: int, name: str) -> datetime:
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise MlflowError(
            f"Invalid value {shown(value)} for parameter '{name}' supplied: not a time in ms since the epoch."
        ) from None


def _key_values(msg: dict[str, Any], name: str, limit: int) -> list[tuple[str, Any]]:
    items = msg.get(name) or []
    if not isinstance(items, list):
        raise MlflowError(f"Invalid value {shown(items)} for parameter '{name}' supplied: it must be a list.")
    if len(items) > limit:
        raise MlflowError(
            f"A batch logging request can contain at most {limit} {name}. Got {len(items)} {name}. "
            "Please split up the request into multiple requests."
        )
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise MlflowError(
                f"Invalid value {shown(item)} for parameter '{name}[{index}]' supplied: it must be an object."
            )
        out.append((wire.required_string(item, "key"), item.get("value")))
    return out


def _strings(pairs: list[tuple[str, Any]], name: str, *, single: bool = False) -> dict[str, str]:
    """Keys and string values of params or tags (``name``: "param" or "tag"); a value that is
    not a string is named as MLflow names it: ``value`` in a single call, else
    ``params[i].value``."""
    out: dict[str, str] = {}
    for index, (key, value) in enumerate(pairs):
        if value is None:
            value = ""
        if not isinstance(value, str):
            where = "value" if single else f"{name}s[{index}].value"
            raise MlflowError(
                f"Invalid value {shown(value)} for parameter '{where}' supplied: {name} {key!r} must be a string."
            )
        if key in out and out[key] != value and name == "param":
            raise MlflowError(f"Duplicate parameter key '{key}' with different values in one batch.")
        out[key] = value
    return out


# --- experiments ---------------------------------------------------------------------------------


def artifact_location(experiment: Experiment) -> str:
    """Where the client puts an experiment's artifacts: the mlflow-artifacts proxy of this API."""
    return f"mlflow-artifacts:/{experiment.pk}"


def run_artifact_uri(run: Run) -> str:
    return f"mlflow-artifacts:/{run.experiment_id}/{run.pk}/artifacts"


def experiment_out(experiment: Experiment, tags: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "experiment_id": experiment.pk,
        "name": experiment.name,
        "artifact_location": artifact_location(experiment),
        "lifecycle_stage": "deleted" if experiment.deleted_at else "active",
        "last_update_time": ms(experiment.updated_at),
        "creation_time": ms(experiment.created_at),
        "tags": [{"key": k, "value": v} for k, v in tags],
    }


def _experiments_out(experiments: list[Experiment]) -> list[dict[str, Any]]:
    tags: dict[str, list[tuple[str, str]]] = {}
    for exp_id, key, value in ExperimentTag.objects.filter(experiment__in=experiments).values_list(
        "experiment_id", "key", "value"
    ):
        tags.setdefault(exp_id, []).append((key, value))
    return [experiment_out(e, tags.get(e.pk, [])) for e in experiments]


def _experiment(call: Call, experiment_id: str | None, *, action: str = "project.view") -> Experiment:
    """The project's experiment of that id (deleted ones included); ``"0"`` is the default one."""
    call.require(action)
    if not experiment_id:
        raise MlflowError("Missing value for required parameter 'experiment_id'.")
    qs = Experiment.objects.filter(project=call.project)
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        experiment = qs.filter(name__iexact=DEFAULT_EXPERIMENT_NAME).first()
        may_create = token_allows(call.token.scope, "POST") and can(call.user, "experiment.create", call.project)
        if experiment is None and may_create:
            # MLflow's experiment "0" always exists: made on first use by whoever may make it.
            experiment = services.experiment_get_or_create(project=call.project, name=DEFAULT_EXPERIMENT_NAME)
    else:
        experiment = qs.filter(pk=experiment_id).first() if len(experiment_id) <= 32 else None
    if experiment is None:
        raise MlflowError(f"No experiment with id {experiment_id!r} in {call.project}.", "RESOURCE_DOES_NOT_EXIST")
    return experiment


def _one_experiment(experiment: Experiment) -> dict[str, Any]:
    return {"experiment": _experiments_out([experiment])[0]}


@wire.write
def experiment_create(call: Call) -> dict[str, Any]:
    call.require("experiment.create")
    name = wire.required_string(call.msg, "name")
    tags = _strings(_key_values(call.msg, "tags", MAX_PARAMS_TAGS_PER_BATCH), "tag")
    # artifact_location is checked as MLflow does (a string), then not taken: Assay's store
    # decides where artifacts go (docs/mlflow.md).
    wire.string(call.msg, "artifact_location")
    experiment = services.experiment_create(project=call.project, name=name, tags=tags)
    return {"experiment_id": experiment.pk}


@wire.read
def experiment_get(call: Call) -> dict[str, Any]:
    return _one_experiment(_experiment(call, wire.string(call.msg, "experiment_id")))


@wire.read
def experiment_get_by_name(call: Call) -> dict[str, Any]:
    call.require("project.view")
    name = wire.required_string(call.msg, "experiment_name")
    experiment = Experiment.objects.filter(project=call.project, name__iexact=name.strip()).first()
    if experiment is None:
        raise MlflowError(f"Could not find experiment with name '{name}'", "RESOURCE_DOES_NOT_EXIST")
    return _one_experiment(experiment)


@wire.read
def experiment_search(call: Call) -> dict[str, Any]:
    call.require("project.view")
    max_results = wire.integer(call.msg, "max_results", default=SEARCH_DEFAULT, minimum=1, maximum=MAX_RESULTS)
    assert max_results is not None
    view = _view_type(call.msg, "view_type")
    qs = Experiment.objects.filter(project=call.project)
    if view is not None:
        qs = qs.filter(deleted_at__isnull=not view)
    qs = qs.filter(experiment_filter.parse(wire.string(call.msg, "filter") or ""))
    qs = qs.order_by(*experiment_filter.order(wire.string_list(call.msg, "order_by")))
    offset = wire.page_offset(call.msg)
    page = list(qs[offset : offset + max_results + 1])
    out: dict[str, Any] = {"experiments": _experiments_out(page[:max_results])}
    if len(page) > max_results:
        out["next_page_token"] = wire.page_token(offset + max_results)
    return out


@wire.write
def experiment_update(call: Call) -> dict[str, Any]:
    experiment = _experiment(call, wire.string(call.msg, "experiment_id"), action="experiment.update")
    new_name = wire.string(call.msg, "new_name")
    if new_name:
        services.experiment_rename(experiment=experiment, name=new_name)
    return {}


@wire.write
def experiment_delete(call: Call) -> dict[str, Any]:
    experiment = _experiment(call, wire.string(call.msg, "experiment_id"), action="experiment.delete")
    services.experiment_delete(experiment=experiment)
    return {}


@wire.write
def experiment_restore(call: Call) -> dict[str, Any]:
    experiment = _experiment(call, wire.string(call.msg, "experiment_id"), action="experiment.delete")
    services.experiment_restore(experiment=experiment)
    return {}


@wire.write
def experiment_set_tag(call: Call) -> dict[str, Any]:
    experiment = _experiment(call, wire.string(call.msg, "experiment_id"), action="experiment.update")
    key = wire.required_string(call.msg, "key")
    value = wire.string(call.msg, "value") or ""
    services.experiment_tag_set(experiment=experiment, key=key, value=value)
    return {}


@wire.write
def experiment_delete_tag(call: Call) -> dict[str, Any]:
    experiment = _experiment(call, wire.string(call.msg, "experiment_id"), action="experiment.update")
    services.experiment_tag_delete(experiment=experiment, key=wire.required_string(call.msg, "key"))
    return {}


def _view_type(msg: dict[str, Any], name: str) -> bool | None:
    value = msg.get(name) or "ACTIVE_ONLY"
    if isinstance(value, int) and not isinstance(value, bool):
        value = {1: "ACTIVE_ONLY", 2: "DELETED_ONLY", 3: "ALL"}.get(value, str(value))
    if value not in VIEW_TYPES:
        raise MlflowError(
            f"Invalid value {shown(value)} for parameter '{name}' supplied: ACTIVE_ONLY, DELETED_ONLY or ALL."
        )
    return VIEW_TYPES[value]


# --- runs ------------------------------------------------------------------------------------------


def _run(call: Call, *, action: str = "run.view") -> Run:
    """The run of the message, if it belongs to the URL's project and the caller may ``action``."""
    run_id = wire.run_id(call.msg)
    try:
        run = access_run(call.user, run_id, action=action)
    except NotFound:
        run = None
    if run is None or run.project_id != call.project.pk:
        raise MlflowError(f"Run with id={run_id} not found", "RESOURCE_DOES_NOT_EXIST")
    if action == "run.log" and run.deleted_at is not None:
        # MLflow refuses to log to a deleted run, in these words.
        raise MlflowError(f"The run {run.pk} must be in the 'active' state. Current state is deleted.")
    return run


def _status_out(run: Run) -> str:
    return run.status.upper()


def run_info_out(run: Run) -> dict[str, Any]:
    return wire.compact(
        {
            "run_id": run.pk,
            "run_uuid": run.pk,
            "run_name": run.name,
            "experiment_id": run.experiment_id,
            "user_id": run.source_author or (run.author.username if run.author else ""),
            "status": _status_out(run),
            "start_time": ms(run.start_time),
            "end_time": ms(run.end_time),
            "artifact_uri": run_artifact_uri(run),
            "lifecycle_stage": "deleted" if run.deleted_at else "active",
        }
    )


def _metric_out(key: str, last: float | None, last_step: int, last_timestamp: int) -> dict[str, Any]:
    return {
        "key": key,
        "value": wire.double(last if last is not None else math.nan),
        "timestamp": last_timestamp,
        "step": last_step,
    }


def _inputs_out(run: Run) -> dict[str, Any]:
    datasets = []
    for name, fingerprint in (run.info.get("datasets") or {}).items():
        if not isinstance(fingerprint, dict):
            continue
        dataset = wire.compact(
            {
                "name": str(fingerprint.get("name") or name),
                "digest": str(fingerprint.get("digest") or ""),
                "source_type": str(fingerprint.get("source_type") or ("local" if fingerprint.get("path") else "")),
                "source": str(fingerprint.get("uri") or fingerprint.get("path") or ""),
                "schema": fingerprint.get("schema"),
                "profile": fingerprint.get("profile"),
            }
        )
        tags = [{"key": k, "value": v} for k, v in (fingerprint.get("tags") or {}).items()]
        datasets.append({"tags": tags, "dataset": dataset})
    models = run.info.get("models") or {}
    model_inputs = [{"model_id": m} for m, v in models.items() if isinstance(v, dict) and v.get("input")]
    return {"dataset_inputs": datasets, "model_inputs": model_inputs}


def _outputs_out(run: Run) -> dict[str, Any]:
    models = run.info.get("models") or {}
    return {
        "model_outputs": [
            {"model_id": m, "step": v.get("output_step", 0)}
            for m, v in models.items()
            if isinstance(v, dict) and "output_step" in v
        ]
    }


def runs_out(runs: list[Run]) -> list[dict[str, Any]]:
    """Runs as MLflow's Run messages: two queries for the whole list (params, metrics and
    tags in one; the earlier runs of the same configuration)."""
    records = selectors.run_records_of([run.pk for run in runs])
    params, summaries, tags = records.params, records.metrics, records.tags
    same_config = tried.earlier_same_config(runs)
    out = []
    for run in runs:
        run_tags = dict(tags.get(run.pk, {}))
        run_tags.pop(SAME_CONFIG_TAG, None)  # Assay's to say, not the client's
        if run.pk in same_config:
            run_tags[SAME_CONFIG_TAG] = same_config[run.pk]
        run_tags[RUN_NAME_TAG] = run.name
        if run.notes:
            run_tags[NOTE_TAG] = run.notes
        if run.author and USER_TAG not in run_tags:
            run_tags[USER_TAG] = run.author.username
        out.append(
            {
                "info": run_info_out(run),
                "data": {
                    "metrics": [_metric_out(k, *s) for k, s in summaries.get(run.pk, {}).items()],
                    "params": [{"key": k, "value": v} for k, v in params.get(run.pk, {}).items()],
                    "tags": [{"key": k, "value": v} for k, v in run_tags.items()],
                },
                "inputs": _inputs_out(run),
                "outputs": _outputs_out(run),
            }
        )
    return out


def _special_tags(run: Run, tags: dict[str, str]) -> dict[str, str]:
    """Apply the tags that are run fields in Assay (name, notes); return the others."""
    rest = dict(tags)
    name = rest.pop(RUN_NAME_TAG, None)
    notes = rest.pop(NOTE_TAG, None)
    if name is not None or notes is not None:
        services.run_update(run=run, name=name or None, notes=notes)
    return rest


@wire.write
def run_create(call: Call) -> dict[str, Any]:
    call.require("run.create")
    experiment_id = wire.string(call.msg, "experiment_id") or DEFAULT_EXPERIMENT_ID
    if experiment_id == DEFAULT_EXPERIMENT_ID:
        experiment = services.experiment_get_or_create(project=call.project, name=DEFAULT_EXPERIMENT_NAME)
    else:
        experiment = _experiment(call, experiment_id)
    if experiment.deleted_at is not None:
        raise MlflowError(
            f"The experiment {experiment.name!r} is deleted: restore it before creating runs in it.", "INVALID_STATE"
        )
    tags = _strings(_key_values(call.msg, "tags", MAX_ENTITIES_PER_BATCH), "tag")
    name = wire.string(call.msg, "run_name") or tags.pop(RUN_NAME_TAG, None)
    tags.pop(RUN_NAME_TAG, None)
    notes = tags.pop(NOTE_TAG, "")
    start = wire.integer(call.msg, "start_time", minimum=0)
    run = services.run_create(
        user=call.user,
        project_path=call.project.path,
        experiment=experiment.name,
        name=name,
        tags=tags or None,
        notes=notes,
        start_time=from_ms(start, "start_time") if start is not None else None,
    )
    return {"run": runs_out([run])[0]}


@wire.read
def run_get(call: Call) -> dict[str, Any]:
    return {"run": runs_out([_run(call)])[0]}


@wire.write
def run_update(call: Call) -> dict[str, Any]:
    run = _run(call, action="run.update")
    status_in = wire.string(call.msg, "status")
    status = None
    if status_in is not None:
        if status_in not in STATUS_IN:
            raise MlflowError(
                f"Invalid value {shown(status_in)} for parameter 'status' supplied: one of {', '.join(STATUS_IN)}."
            )
        status = STATUS_IN[status_in]
    end = wire.integer(call.msg, "end_time", minimum=0)
    run = services.run_update(
        run=run,
        name=wire.string(call.msg, "run_name") or None,
        status=status,
        end_time=from_ms(end, "end_time") if end is not None else None,
    )
    return {"run_info": run_info_out(run)}


@wire.write
def run_delete(call: Call) -> dict[str, Any]:
    services.run_delete(run=_run(call, action="run.delete"))
    return {}


@wire.write
def run_restore(call: Call) -> dict[str, Any]:
    services.run_restore(run=_run(call, action="run.delete"))
    return {}


# MLflow keeps a run's name in the tag mlflow.runName too, and users filter and sort on it;
# in Assay the name is the run's attribute.
_RUN_NAME_TAG_FIELD = re.compile(r"\btags?\.(?:`mlflow\.runName`|\"mlflow\.runName\"|mlflow\.runName\b)", re.IGNORECASE)


def _filter_text(text: str) -> str:
    return _RUN_NAME_TAG_FIELD.sub("attributes.run_name", text)


def _order_by(items: list[str]) -> list[str]:
    """MLflow's order_by items in Assay's query language (the same syntax); ``status``
    values are upper case in MLflow and lower case in Assay, which the compiler folds."""
    return [_filter_text(item) for item in items] or ["attributes.start_time DESC"]


@wire.read
def run_search(call: Call) -> dict[str, Any]:
    call.require("run.view")
    max_results = wire.integer(call.msg, "max_results", default=SEARCH_DEFAULT, minimum=1, maximum=MAX_RESULTS)
    assert max_results is not None
    deleted = _view_type(call.msg, "run_view_type")
    qs = selectors.runs_of(call.project, deleted=deleted)
    experiment_ids = wire.string_list(call.msg, "experiment_ids")
    if experiment_ids:
        # In the search's own query (no round trip of its own): the project's experiments of
        # these ids, and for "0" the project's Default experiment (the first by name, as
        # run_create picks it).
        wanted = Experiment.objects.filter(
            project=call.project, pk__in=[e for e in experiment_ids if e != DEFAULT_EXPERIMENT_ID and len(e) <= 32]
        )
        where = Q(experiment_id__in=wanted.values("pk"))
        if DEFAULT_EXPERIMENT_ID in experiment_ids:
            default = Experiment.objects.filter(project=call.project, name__iexact=DEFAULT_EXPERIMENT_NAME)
            where |= Q(experiment_id__in=default.values("pk")[:1])
        qs = qs.filter(where)
    # What runs_out reads: the author's name, not the experiment row nor the config.
    qs = qs.select_related(None).select_related("author").defer("config")
    try:
        qs, _, _, _ = compiler.search(
            qs,
            filter_text=_filter_text(wire.string(call.msg, "filter") or ""),
            order_by=_order_by(wire.string_list(call.msg, "order_by")),
        )
    except FilterError as exc:
        raise MlflowError(f"Invalid {exc.source or 'filter'} at character {exc.position}: {exc}") from None
    offset = wire.page_offset(call.msg)
    page = list(qs[offset : offset + max_results + 1])
    out: dict[str, Any] = {"runs": runs_out(page[:max_results])}
    if len(page) > max_results:
        out["next_page_token"] = wire.page_token(offset + max_results)
    return out


def _metric_row(item: Any, index: int | None) -> dict[str, Any]:
    """One metric point of a log-batch (``index``) or of a log-metric call (None)."""
    where = "" if index is None else f"metrics[{index}]."
    if not isinstance(item, dict):
        raise MlflowError(
            f"Invalid value {shown(item)} for parameter 'metrics[{index}]' supplied: it must be an object."
        )
    key = wire.string(item, "key", required=True)
    for field in ("value", "timestamp"):  # both required by MLflow's LogMetric and LogBatch
        if item.get(field) is None:
            raise MlflowError(f"Missing value for required parameter '{where}{field}'.")
    value = wire.number(item["value"], f"{where}value")
    timestamp = wire.integer(item, "timestamp", minimum=0)
    step = wire.integer(item, "step", default=0, minimum=0)
    row: dict[str, Any] = {"key": key, "step": step, "value": value if math.isfinite(value) else metric_text(value)}
    if timestamp is not None:
        row["timestamp"] = timestamp
    return row


_ROW_FIELDS = {"key", "value", "timestamp", "step"}


def _metric_rows(items: list[Any]) -> list[dict[str, Any]]:
    """The client's metrics as the log service's rows. What the client sends (every field,
    numbers, "NaN"/"Infinity" strings) is already that shape: it goes to the service's
    columnar check as it is (which names ``metrics.<i>.<field>`` at fault); anything else
    is checked and converted point by point."""
    if all(type(item) is dict and item.keys() == _ROW_FIELDS for item in items):
        return items
    return [_metric_row(item, i) for i, item in enumerate(items)]


def metric_text(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _log(run: Run, *, metrics: list[dict[str, Any]], params: dict[str, str], tags: dict[str, str]) -> None:
    """One all-or-nothing write through the log service (live events, summaries, key
    registry). The service is atomic by itself, and a batch of points alone is one
    statement there: an outer transaction is opened only when a name or notes tag adds
    a second write (BEGIN and COMMIT are two more round trips on every log call)."""
    if RUN_NAME_TAG in tags or NOTE_TAG in tags:
        with transaction.atomic():
            _log(run, metrics=metrics, params=params, tags=_special_tags(run, tags))
        return
    if metrics or params or tags:
        services.run_log(
            run=run,
            batch_id=None,
            params=params or None,
            tags=tags or None,
            metric_rows=metrics or None,
        )


@wire.write
def run_log_metric(call: Call) -> dict[str, Any]:
    run = _run(call, action="run.log")
    row = _metric_row(call.msg, None)
    _log(run, metrics=[row], params={}, tags={})
    return {}


@wire.write
def run_log_param(call: Call) -> dict[str, Any]:
    run = _run(call, action="run.log")
    key = wire.required_string(call.msg, "key")
    _log(run, metrics=[], params=_strings([(key, call.msg.get("value"))], "param", single=True), tags={})
    return {}


@wire.write
def run_set_tag(call: Call) -> dict[str, Any]:
    run = _run(call, action="run.log")
    key = wire.required_string(call.msg, "key")
    _log(run, metrics=[], params={}, tags=_strings([(key, call.msg.get("value"))], "tag", single=True))
    return {}


@wire.write
def run_delete_tag(call: Call) -> dict[str, Any]:
    run = _run(call, action="run.log")
    key = wire.required_string(call.msg, "key")
    if key == NOTE_TAG:
        services.run_update(run=run, notes="")
        return {}
    try:
        services.run_tag_delete(run=run, key=key)
    except NotFound:
        # MLflow's words, which its clients and tests match.
        raise MlflowError(f"No tag with name: {key} in run with id {run.id}", "RESOURCE_DOES_NOT_EXIST") from None
    return {}


@wire.write
def run_log_batch(call: Call) -> dict[str, Any]:
    run = _run(call, action="run.log")
    raw_metrics = call.msg.get("metrics") or []
    if not isinstance(raw_metrics, list):
        raise MlflowError(f"Invalid value {shown(raw_metrics)} for parameter 'metrics' supplied: it must be a list.")
    if len(raw_metrics) > MAX_METRICS_PER_BATCH:
        raise MlflowError(
            f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. "
            f"Got {len(raw_metrics)} metrics. Please split up the request into multiple requests."
        )
    params = _strings(_key_values(call.msg, "params", MAX_PARAMS_TAGS_PER_BATCH), "param")
    tags = _strings(_key_values(call.msg, "tags", MAX_PARAMS_TAGS_PER_BATCH), "tag")
    total = len(raw_metrics) + len(params) + len(tags)
    if total > MAX_ENTITIES_PER_BATCH:
        raise MlflowError(
            f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} total metrics, params "
            f"and tags. Got {total}. Please split up the request into multiple requests."
        )
    _log(run, metrics=_metric_rows(raw_metrics), params=params, tags=tags)
    return {}


def _dataset_fingerprint(item: Any, index: int) -> tuple[str, dict[str, Any]]:
    if not isinstance(item, dict) or not isinstance(item.get("dataset"), dict):
        raise MlflowError(f"Invalid value for parameter 'datasets[{index}]': it needs a 'dataset' object.")
    dataset = item["dataset"]
    name = wire.required_string(dataset, "name")
    fingerprint: dict[str, Any] = {
        "name": name,
        "digest": wire.required_string(dataset, "digest"),
        "source_type": wire.required_string(dataset, "source_type"),
        "uri": wire.required_string(dataset, "source"),
    }
    for optional in ("schema", "profile"):
        text = wire.string(dataset, optional)
        if text:
            fingerprint[optional] = text
    tags = _strings(_key_values(item, "tags", MAX_PARAMS_TAGS_PER_BATCH), "tag")
    if tags:
        fingerprint["tags"] = tags
    return f"{name}@{fingerprint['digest']}", fingerprint


@wire.write
def run_log_inputs(call: Call) -> dict[str, Any]:
    run = _run(call, action="run.log")
    datasets = call.msg.get("datasets") or []
    models = call.msg.get("models") or []
    if not isinstance(datasets, list) or not isinstance(models, list) or len(datasets) + len(models) > MAX_DATASETS:
        raise MlflowError(f"'datasets' and 'models' are lists of at most {MAX_DATASETS} items together.")
    info: dict[str, Any] = {}
    if datasets:
        info["datasets"] = dict(_dataset_fingerprint(item, i) for i, item in enumerate(datasets))
    if models:
        info["models"] = {_model_id(item, i, "models"): {"input": True} for i, item in enumerate(models)}
    if info:
        _merge_models(run, info)
    return {}


def _model_id(item: Any, index: int, name: str) -> str:
    if not isinstance(item, dict):
        raise MlflowError(f"Invalid value for parameter '{name}[{index}]': it must be an object.")
    return wire.required_string(item, "model_id")


def _merge_models(run: Run, info: dict[str, Any]) -> None:
    """Merge into info; a model already listed keeps what it had (input and output alike)."""
    models = info.get("models")
    if models:
        old = run.info.get("models") or {}
        info["models"] = {k: {**old.get(k, {}), **v} for k, v in models.items()}
    try:
        services.run_update(run=run, info=info)
    except Invalid as exc:
        raise MlflowError(f"{exc.message} (field: {exc.field})") from None


@wire.write
def run_log_outputs(call: Call) -> dict[str, Any]:
    run = _run(call, action="run.log")
    models = call.msg.get("models") or []
    if not isinstance(models, list) or len(models) > MAX_DATASETS:
        raise MlflowError(f"'models' is a list of at most {MAX_DATASETS} items.")
    out: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(models):
        model_id = _model_id(item, i, "models")
        out[model_id] = {"output_step": wire.integer(item, "step", default=0)}
    if out:
        _merge_models(run, {"models": out})
    return {}


MAX_MODEL_JSON = 100_000


@wire.write
def run_log_model(call: Call) -> dict[str, Any]:
    """MLflow 2's record of a logged model: appended to the run's ``mlflow.log-model.history`` tag."""
    run = _run(call, action="run.log")
    model_json = wire.required_string(call.msg, "model_json")
    if len(model_json) > MAX_MODEL_JSON:
        raise MlflowError(f"model_json is at most {MAX_MODEL_JSON} characters.")
    try:
        model = orjson.loads(model_json)
    except orjson.JSONDecodeError:
        raise MlflowError("model_json is not valid JSON.") from None
    with transaction.atomic():
        tag = Tag.objects.select_for_update().filter(run=run, key=MODEL_HISTORY_TAG).first()
        history = orjson.loads(tag.value) if tag else []
        history.append(model)
        services.run_log(run=run, batch_id=None, tags={MODEL_HISTORY_TAG: orjson.dumps(history).decode()})
    return {}


# --- metric history ----------------------------------------------------------------------------------


def _points(history: Any, key: str, run_id: str | None = None) -> list[dict[str, Any]]:
    steps, values, stamps = history.steps.tolist(), history.values.tolist(), history.timestamps.tolist()
    finite = bool(np.isfinite(history.values).all())
    out = []
    for step, value, stamp in zip(steps, values, stamps, strict=True):
        point = {"key": key, "value": value if finite else wire.double(value), "timestamp": stamp, "step": step}
        if run_id is not None:
            point["run_id"] = run_id
        out.append(point)
    return out


@wire.read
def metric_history(call: Call) -> dict[str, Any]:
    run = _run(call)
    key = wire.required_string(call.msg, "metric_key")
    max_results = wire.integer(call.msg, "max_results", default=HISTORY_PAGE_DEFAULT, minimum=1, maximum=1_000_000)
    assert max_results is not None
    offset = wire.page_offset(call.msg)
    history = metric_store.history(run, key)
    page = history.slice(offset, offset + max_results)
    out: dict[str, Any] = {"metrics": _points(page, key)}
    if offset + max_results < len(history):
        out["next_page_token"] = wire.page_token(offset + max_results)
    return out


@wire.read
def metric_history_bulk_interval(call: Call) -> dict[str, Any]:
    """Each run's points of one key between ``start_step`` and ``end_step``, at most
    ``max_results`` per run, evenly spread (first and last kept), as MLflow samples them."""
    run_ids = wire.string_list(call.msg, "run_ids")
    if not run_ids:
        raise MlflowError("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise MlflowError(
            f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. "
            f"Received {len(run_ids)} run_ids."
        )
    key = wire.required_string(call.msg, "metric_key")
    start = wire.integer(call.msg, "start_step")
    end = wire.integer(call.msg, "end_step")
    if (start is None) != (end is None):
        raise MlflowError("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise MlflowError(f"end_step must be greater than start_step. Found start_step={start} and end_step={end}.")
    max_results = wire.integer(
        call.msg, "max_results", default=HISTORY_PAGE_DEFAULT, minimum=1, maximum=HISTORY_PAGE_DEFAULT
    )
    assert max_results is not None
    out: list[dict[str, Any]] = []
    for run_id in dict.fromkeys(run_ids):
        run = _run(Call(call.user, call.token, call.project, {"run_id": run_id}, {}, call.request))
        history = metric_store.history(run, key)
        if start is not None and end is not None:
            mask = (history.steps >= start) & (history.steps <= end)
            history = history.take(np.nonzero(mask)[0])
        if len(history) > max_results:
            history = history.take(np.unique(np.linspace(0, len(history) - 1, max_results).round().astype(np.int64)))
        out.extend(_points(history, key, run.pk))
    return {"metrics": out}
