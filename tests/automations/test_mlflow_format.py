"""The ``mlflow`` format's body (automations.payloads.body) for each event MLflow names, and
its signature (services.mlflow_signature) against a hand-computed HMAC."""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from automations import payloads, services


def _payload(event: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"event": event, "occurred_at": "2026-12-06T09:00:00+00:00", "data": data, "links": {}}


def test_a_version_created_is_mlflows_model_version_created() -> None:
    data = {"model": "fraud", "version": {"number": 3, "url": "https://assay/acme/proj/models/fraud/v3/"}, "run": "r1"}
    sent = payloads.body(_payload("version.created", data), "mlflow")
    assert sent == {
        "entity": "model_version",
        "action": "created",
        "timestamp": "2026-12-06T09:00:00+00:00",
        "data": {
            "name": "fraud",
            "version": "3",
            "source": "https://assay/acme/proj/models/fraud/v3/",
            "run_id": "r1",
            "tags": {},
            "description": None,
        },
    }


def test_an_alias_move_is_mlflows_model_version_alias_created() -> None:
    data = {"model": "fraud", "alias": "production", "from": {"number": 1}, "to": {"number": 2}}
    sent = payloads.body(_payload("alias.moved", data), "mlflow")
    assert (sent["entity"], sent["action"]) == ("model_version_alias", "created")
    assert sent["data"] == {"name": "fraud", "alias": "production", "version": "2"}


def test_a_test_is_sent_as_the_webhooks_first_mlflow_event() -> None:
    sent = payloads.body(_payload("webhook.test", {"webhook": "w1"}), "mlflow", ["run.finished", "version.created"])
    assert (sent["entity"], sent["action"]) == ("model_version", "created")
    assert sent["data"] == {"webhook": "w1"}
    # the other formats are unchanged
    assert payloads.body(_payload("webhook.test", {}), "json")["event"] == "webhook.test"


def test_the_signature_is_v1_base64_hmac_of_id_timestamp_body() -> None:
    expected = hmac.new(b"k" * 16, b"d1.1700000000.{}", hashlib.sha256).digest()
    assert services.mlflow_signature("k" * 16, "d1", "1700000000", b"{}") == "v1," + base64.b64encode(expected).decode()
