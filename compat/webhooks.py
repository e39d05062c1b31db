"""MLflow's webhooks API (``/api/2.0/mlflow/webhooks``, ``MlflowClient.create_webhook`` …)
laid over Assay's webhooks: the same rows, the same services (``automations.services``: the
``webhook.manage`` right of project admins, the URL's SSRF rules, the secret's length, the
audit log) and the same deliveries, signed and sent as Assay sends them.

MLflow names an event ``entity.action`` (``model_version.created``); the registry events
Assay emits map one to one, the others are refused naming the event (:data:`TO_ASSAY`).
An Assay webhook may also hold events MLflow cannot name (``run.finished`` …): MLflow does
not see them and an update of ``events`` keeps them. The mapping is listed in docs/mlflow.md.
"""

from __future__ import annotations

from typing import Any

from automations import payloads, services
from automations.models import Webhook
from compat import wire
from compat.wire import Call, MlflowError

# MLflow's event (entity.action, lower-case) -> Assay's event; the mapping is automations'
# (its ``mlflow`` format uses it too). alias.moved is a set or a move of an alias.
TO_ASSAY: dict[str, str] = {f"{entity}.{action}": assay for assay, (entity, action) in payloads.MLFLOW_EVENTS.items()}
TO_MLFLOW: dict[str, str] = {assay: mlflow for mlflow, assay in TO_ASSAY.items()}
# Valid in MLflow, with no Assay event behind them: refused by name.
UNMAPPED = (
    "registered_model.created",
    "model_version_tag.set",
    "model_version_tag.deleted",
    "model_version_alias.deleted",
    "prompt.created",
    "prompt_version.created",
    "prompt_tag.set",
    "prompt_tag.deleted",
    "prompt_version_tag.set",
    "prompt_version_tag.deleted",
    "prompt_alias.created",
    "prompt_alias.deleted",
    "budget_policy.exceeded",
)
MAX_RESULTS = 1_000
DEFAULT_RESULTS = 100


def _event_name(item: Any, index: int) -> str:
    if not isinstance(item, dict) or not isinstance(item.get("entity"), str) or not isinstance(item.get("action"), str):
        raise MlflowError(f"Invalid value for parameter 'events[{index}]': it must be an object {{entity, action}}.")
    return f"{item['entity'].lower()}.{item['action'].lower()}"


def _events(msg: dict[str, Any]) -> list[str]:
    """The Assay events of the message's ``events`` (MLflow's), or INVALID_PARAMETER_VALUE
    naming the first one Assay cannot deliver."""
    raw = msg.get("events")
    if not isinstance(raw, list) or not raw:
        raise MlflowError("Missing value for required parameter 'events': name at least one event.")
    out: list[str] = []
    for index, item in enumerate(raw):
        name = _event_name(item, index)
        if name not in TO_ASSAY:
            why = "Assay emits no such event" if name in UNMAPPED else "it is not an MLflow webhook event"
            raise MlflowError(
                f"Invalid value for parameter 'events': {name!r} cannot be delivered ({why}); "
                f"supported: {', '.join(sorted(TO_ASSAY))}."
            )
        if TO_ASSAY[name] not in out:
            out.append(TO_ASSAY[name])
    return out


def _status(msg: dict[str, Any]) -> bool | None:
    value = msg.get("status")
    if value in (None, ""):
        return None
    if value not in ("ACTIVE", "DISABLED"):
        raise MlflowError(f"Invalid value {value!r} for parameter 'status': it must be ACTIVE or DISABLED.")
    return bool(value == "ACTIVE")


def _no_description(msg: dict[str, Any]) -> None:
    # Assay's webhooks have no description: refused rather than dropped without a word.
    if msg.get("description") not in (None, ""):
        raise MlflowError("Invalid value for parameter 'description': Assay's webhooks have no description.")


def webhook_out(webhook: Webhook) -> dict[str, Any]:
    events = []
    for assay in webhook.events:
        name = TO_MLFLOW.get(assay)
        if name is not None:
            entity, action = name.split(".")
            events.append({"entity": entity.upper(), "action": action.upper()})
    return {
        "webhook_id": webhook.id,
        "name": webhook.name,
        "url": webhook.url,
        "events": events,
        "status": "ACTIVE" if webhook.enabled else "DISABLED",
        "creation_timestamp": int(webhook.created_at.timestamp() * 1000),
        "last_updated_timestamp": int(webhook.updated_at.timestamp() * 1000),
    }


def _webhook(call: Call) -> Webhook:
    return services.webhook_get(call.project, call.kwargs.get("webhook_id"))


@wire.write
def create(call: Call) -> dict[str, Any]:
    call.require("webhook.manage")  # before the message is judged: a viewer learns nothing
    msg = call.msg
    _no_description(msg)
    status = _status(msg)
    webhook, _secret = services.webhook_create(
        user=call.user,
        project=call.project,
        url=wire.required_string(msg, "url"),
        events=_events(msg),
        name=wire.required_string(msg, "name"),
        secret=wire.string(msg, "secret"),
        enabled=True if status is None else status,
    )
    return {"webhook": webhook_out(webhook)}


@wire.read
def get(call: Call) -> dict[str, Any]:
    call.require("webhook.manage")
    return {"webhook": webhook_out(_webhook(call))}


@wire.read
def list_(call: Call) -> dict[str, Any]:
    call.require("webhook.manage")
    size = wire.integer(call.msg, "max_results", default=DEFAULT_RESULTS, minimum=1, maximum=MAX_RESULTS)
    assert size is not None
    start = wire.page_offset(call.msg)
    rows = list(services.webhooks_of(call.project)[start : start + size + 1])
    out: dict[str, Any] = {"webhooks": [webhook_out(w) for w in rows[:size]]}
    if len(rows) > size:
        out["next_page_token"] = wire.page_token(start + size)
    return out


@wire.write
def update(call: Call) -> dict[str, Any]:
    call.require("webhook.manage")
    webhook = _webhook(call)
    msg = call.msg
    _no_description(msg)
    changes: dict[str, Any] = {}
    for key in ("name", "url", "secret"):
        value = wire.string(msg, key)
        if value is not None:
            changes[key] = value
    if msg.get("events"):
        # Events MLflow cannot name (run.finished …) stay: MLflow never showed them.
        kept = [e for e in webhook.events if e not in TO_MLFLOW]
        changes["events"] = _events(msg) + kept
    status = _status(msg)
    if status is not None:
        changes["enabled"] = status
    if changes:
        webhook = services.webhook_update(user=call.user, webhook=webhook, changes=changes)
    return {"webhook": webhook_out(webhook)}


@wire.write
def delete(call: Call) -> dict[str, Any]:
    call.require("webhook.manage")
    services.webhook_delete(user=call.user, webhook=_webhook(call))
    return {}


@wire.write
def test(call: Call) -> dict[str, Any]:
    """Send Assay's ``webhook.test`` delivery now and answer the receiver's answer. An
    ``event`` is checked (it must be one Assay delivers) but the payload is Assay's test one."""
    call.require("webhook.manage")
    webhook = _webhook(call)
    if call.msg.get("event"):
        name = _event_name(call.msg["event"], 0)
        if name not in TO_ASSAY:
            raise MlflowError(f"Invalid value for parameter 'event': {name!r} is not an event Assay delivers.")
    attempt = services.send_test_now(user=call.user, webhook=webhook)
    return {
        "result": wire.compact(
            {
                "success": attempt.ok,
                "response_status": attempt.status_code,
                "response_body": attempt.response_excerpt or None,
                "error_message": attempt.error or None,
            }
        )
    }
