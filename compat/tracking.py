"""MLflow tracking over Assay's experiments and runs (being built: see docs/mlflow.md)."""

from __future__ import annotations

from typing import Any

from compat import wire
from compat.wire import Call, MlflowError


@wire.write
def experiment_create(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.read
def experiment_get(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.read
def experiment_get_by_name(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.read
def experiment_search(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def experiment_update(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def experiment_delete(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def experiment_restore(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def experiment_set_tag(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def experiment_delete_tag(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_create(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.read
def run_get(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_update(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_delete(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_restore(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.read
def run_search(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_log_metric(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_log_param(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_set_tag(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_delete_tag(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_log_batch(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_log_inputs(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_log_outputs(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.write
def run_log_model(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.read
def metric_history(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")


@wire.read
def metric_history_bulk_interval(call: Call) -> dict[str, Any]:
    raise MlflowError("Not implemented yet.", "NOT_IMPLEMENTED")
