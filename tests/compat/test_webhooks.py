"""MLflow's webhooks API through the real ``mlflow`` client against a real server: Assay's
webhooks behind it (the same rows, services, rights, SSRF rules and deliveries), MLflow's
events mapped onto Assay's, the rest refused naming the event, errors in MLflow's format.

The server allow-lists 127.0.0.2 only (``ASSAY_WEBHOOK_ALLOW``): the receiver listens there,
and a webhook to 127.0.0.1 is refused as any loopback target is."""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx
import pytest

from accounts.models import AuditEvent
from automations.models import Delivery, Webhook
from compat.urls import webhook_urls
from tests.automations.receiver import receiver
from tests.compat.conftest import MlflowServer, mlflow_client

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

SERVER_ENV = {"ASSAY_WEBHOOK_ALLOW": "127.0.0.2/32"}
SECRET = "mlflow-webhook-secret-0123456789"

EVENTS = """
from mlflow.entities.webhook import WebhookEvent, WebhookStatus
def ev(entity, action):
    return WebhookEvent(entity, action)
def plain(hook):
    return {"id": hook.webhook_id, "name": hook.name, "url": hook.url, "status": hook.status.value,
            "events": sorted(f"{e.entity.value}.{e.action.value}" for e in hook.events),
            "created": hook.creation_timestamp, "updated": hook.last_updated_timestamp}
"""


def test_create_list_get_update_test_delete_round_trip(mlflow_server: MlflowServer) -> None:
    with receiver(host="127.0.0.2") as rx:
        out = mlflow_client(
            mlflow_server,
            EVENTS
            + f"""
url = "{rx.url}"
first = client.create_webhook("deploys", url, [ev("model_version", "created"), ev("model_version_alias", "created")],
                              secret="{SECRET}")
second = client.create_webhook("second", url, [ev("model_version", "created")], status=WebhookStatus.DISABLED)
out["first"], out["second"] = plain(first), plain(second)
page1 = client.list_webhooks(max_results=1)
page2 = client.list_webhooks(max_results=1, page_token=page1.token)
out["pages"] = [[h.name for h in page1], page1.token is not None, [h.name for h in page2], page2.token]
out["got"] = plain(client.get_webhook(first.webhook_id))
updated = client.update_webhook(first.webhook_id, name="renamed", status=WebhookStatus.DISABLED,
                                events=[ev("model_version_alias", "created")])
out["updated"] = plain(updated)
result = client.test_webhook(first.webhook_id)
out["test"] = [result.success, result.response_status, result.error_message]
client.delete_webhook(second.webhook_id)
out["deleted"] = error_of(client.get_webhook, second.webhook_id)
out["after"] = [h.name for h in client.list_webhooks()]
""",
        )
        sent = list(rx.requests)
    first = out["first"]
    assert first["name"] == "deploys"
    assert first["status"] == "ACTIVE"
    assert first["events"] == ["model_version.created", "model_version_alias.created"]
    assert out["second"]["status"] == "DISABLED"
    assert out["pages"] == [["deploys"], True, ["second"], ""]
    assert out["got"] == first
    assert out["updated"]["name"] == "renamed"
    assert out["updated"]["status"] == "DISABLED"
    assert out["updated"]["events"] == ["model_version_alias.created"]
    assert out["test"] == [True, 200, None]
    assert out["deleted"]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["after"] == ["renamed"]
    # Assay's row, written by Assay's services: the MLflow secret is the signing secret.
    hook = Webhook.objects.get(pk=first["id"])
    assert hook.events == ["alias.moved"]
    assert hook.secret == SECRET
    assert not hook.enabled
    actions = set(AuditEvent.objects.filter(target_id=hook.id).values_list("action", flat=True))
    assert {"webhook.create", "webhook.update"} <= actions
    assert AuditEvent.objects.filter(action="webhook.delete", target_id=out["second"]["id"]).exists()
    # The test delivery is Assay's, signed with Assay's headers (a disabled webhook is tested too).
    assert len(sent) == 1
    request = sent[0]
    assert request.headers["x-assay-event"] == "webhook.test"
    stamp = request.headers["x-assay-timestamp"]
    expected = hmac.new(SECRET.encode(), stamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-assay-signature"] == f"sha256={expected}"
    assert json.loads(request.body)["event"] == "webhook.test"
    delivery = Delivery.objects.get(webhook=hook)
    assert delivery.state == "delivered"
    assert delivery.attempts == 1


def test_registry_events_through_the_client_become_deliveries_of_the_mapped_events(
    mlflow_server: MlflowServer,
) -> None:
    out = mlflow_client(
        mlflow_server,
        EVENTS
        + """
import os, tempfile, requests
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
hook = client.create_webhook("registry", "http://127.0.0.2:9/hook",
                             [ev("model_version", "created"), ev("model_version_alias", "created")])
out["id"] = hook.webhook_id
mlflow.set_experiment("hooks")
with mlflow.start_run() as run:
    weights = os.path.join(tempfile.mkdtemp(), "weights.bin")
    open(weights, "wb").write(b"weights")
    MlflowArtifactsRepository(run.info.artifact_uri).log_artifact(weights, "m")
base = os.environ["MLFLOW_TRACKING_URI"].split("/mlflow/")[0] + "/api/v1/projects/acme/proj/models/"
auth = {"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]}
requests.post(base, json={"name": "hooked"}, headers=auth, timeout=30).raise_for_status()
requests.post(base + "hooked/versions/", json={"run": run.info.run_id, "artifact": "m/weights.bin"},
              headers=auth, timeout=30).raise_for_status()
client.set_registered_model_alias("hooked", "candidate", "1")
""",
    )
    events = sorted(Delivery.objects.filter(webhook_id=out["id"]).values_list("event", flat=True))
    assert events == ["alias.moved", "version.created"]
    payload = Delivery.objects.get(webhook_id=out["id"], event="alias.moved").payload
    assert payload["data"]["model"] == "hooked"
    assert payload["data"]["alias"] == "candidate"


def test_viewer_outsider_and_read_token_are_refused(mlflow_server: MlflowServer) -> None:
    with receiver(host="127.0.0.2") as rx:
        made = mlflow_client(
            mlflow_server,
            EVENTS
            + f'out["id"] = client.create_webhook("mine", "{rx.url}", [ev("model_version", "created")]).webhook_id',
        )
    script = (
        EVENTS
        + f"""
hook_id = "{made["id"]}"
out["create"] = error_of(client.create_webhook, "x", "https://example.com/h", [ev("model_version", "created")])
out["list"] = error_of(client.list_webhooks)
out["get"] = error_of(client.get_webhook, hook_id)
out["update"] = error_of(client.update_webhook, hook_id, name="stolen")
out["test"] = error_of(client.test_webhook, hook_id)
out["delete"] = error_of(client.delete_webhook, hook_id)
"""
    )
    viewer = mlflow_client(mlflow_server, script, who="viewer")
    outsider = mlflow_client(mlflow_server, script, who="outsider")
    read_only = mlflow_client(mlflow_server, script, who="owner_read")
    assert {v["code"] for v in viewer.values()} == {"PERMISSION_DENIED"}
    assert {v["code"] for v in outsider.values()} == {"RESOURCE_DOES_NOT_EXIST"}
    assert read_only["create"]["code"] == read_only["update"]["code"] == "PERMISSION_DENIED"
    assert read_only["delete"]["code"] == read_only["test"]["code"] == "PERMISSION_DENIED"
    hook = Webhook.objects.get(pk=made["id"])
    assert hook.name == "mine"
    assert Webhook.objects.filter(name="x").count() == 0


def test_bad_input_is_answered_in_mlflows_error_format_and_writes_nothing(mlflow_server: MlflowServer) -> None:
    before = Webhook.objects.count()
    out = mlflow_client(
        mlflow_server,
        EVENTS
        + """
good = [ev("model_version", "created")]
out["unmapped"] = error_of(client.create_webhook, "x", "http://127.0.0.2/h", [ev("registered_model", "created")])
out["prompt"] = error_of(client.create_webhook, "x", "http://127.0.0.2/h", [ev("prompt", "created")])
out["alias_deleted"] = error_of(client.create_webhook, "x", "http://127.0.0.2/h",
                                [ev("model_version", "created"), ev("model_version_alias", "deleted")])
out["bad_url"] = error_of(client.create_webhook, "x", "not a url", good)
out["loopback"] = error_of(client.create_webhook, "x", "http://127.0.0.1:8080/h", good)
out["short_secret"] = error_of(client.create_webhook, "x", "http://127.0.0.2/h", good, secret="short")
out["description"] = error_of(client.create_webhook, "x", "http://127.0.0.2/h", good, description="d")
out["missing"] = error_of(client.get_webhook, "nope")
hook = client.create_webhook("ok", "http://127.0.0.2/h", good)
out["update_loopback"] = error_of(client.update_webhook, hook.webhook_id, url="http://localhost/h")
out["update_event"] = error_of(client.update_webhook, hook.webhook_id, events=[ev("model_version_tag", "set")])
out["after"] = plain(client.get_webhook(hook.webhook_id))
out["id"] = hook.webhook_id
""",
    )
    for key in ("unmapped", "prompt", "alias_deleted", "bad_url", "loopback", "short_secret", "description"):
        assert out[key]["code"] == "INVALID_PARAMETER_VALUE", (key, out[key])
    assert "'registered_model.created'" in out["unmapped"]["message"]
    assert "'prompt.created'" in out["prompt"]["message"]
    assert "'model_version_alias.deleted'" in out["alias_deleted"]["message"]
    assert "url" in out["bad_url"]["message"]
    assert "url" in out["loopback"]["message"]
    assert "secret" in out["short_secret"]["message"]
    assert "description" in out["description"]["message"]
    assert out["missing"]["code"] == "RESOURCE_DOES_NOT_EXIST"
    assert out["update_loopback"]["code"] == out["update_event"]["code"] == "INVALID_PARAMETER_VALUE"
    assert "'model_version_tag.set'" in out["update_event"]["message"]
    assert out["after"]["url"] == "http://127.0.0.2/h"
    assert out["after"]["events"] == ["model_version.created"]
    assert Webhook.objects.count() == before + 1


def test_the_raw_wire_answers_json_errors(mlflow_server: MlflowServer) -> None:
    with mlflow_server.http() as http:
        no_events = http.post("api/2.0/mlflow/webhooks", json={"name": "x", "url": "http://127.0.0.2/h"})
        bad_status = http.post(
            "api/2.0/mlflow/webhooks",
            json={
                "name": "x",
                "url": "http://127.0.0.2/h",
                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
                "status": "PAUSED",
            },
        )
        bad_token = http.get("api/2.0/mlflow/webhooks", params={"page_token": "zzz"})
        wrong_method = http.put("api/2.0/mlflow/webhooks")
    assert no_events.status_code == 400
    assert no_events.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "events" in no_events.json()["message"]
    assert bad_status.status_code == 400
    assert "status" in bad_status.json()["message"]
    assert bad_token.status_code == 400
    assert "page token" in bad_token.json()["message"]
    assert wrong_method.status_code == 404
    assert wrong_method.json()["error_code"] == "ENDPOINT_NOT_FOUND"


def test_paging_is_checked(mlflow_server: MlflowServer) -> None:
    with mlflow_server.http() as http:
        too_many = http.get("api/2.0/mlflow/webhooks", params={"max_results": "5000"})
    assert too_many.status_code == 400
    assert "max_results" in too_many.json()["message"]


# --- every webhook endpoint against every kind of caller ------------------------------------------

WEBHOOK_ENDPOINTS = [
    (method, str(pattern.pattern), bool(handler.mlflow_write))
    for pattern in webhook_urls
    for method, handler in pattern.callback.mlflow_handlers.items()  # type: ignore[attr-defined]
]


def test_the_walk_finds_the_six_webhook_calls() -> None:
    assert len(WEBHOOK_ENDPOINTS) == 6
    assert ("POST", "api/2.0/mlflow/webhooks/<str:webhook_id>/test", True) in WEBHOOK_ENDPOINTS


@pytest.mark.parametrize(
    ("method", "path", "writes"), WEBHOOK_ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in WEBHOOK_ENDPOINTS]
)
def test_every_webhook_endpoint_applies_the_policy_to_every_kind_of_caller(
    mlflow_server: MlflowServer, method: str, path: str, writes: bool
) -> None:
    with mlflow_server.http() as http:
        made = http.post(
            "api/2.0/mlflow/webhooks",
            json={
                "name": "matrix",
                "url": "http://127.0.0.2/h",
                "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
            },
        )
    assert made.status_code == 200, made.text
    hook_id = made.json()["webhook"]["webhook_id"]
    url = path.replace("<str:webhook_id>", hook_id)
    body = {
        "name": "changed",
        "url": "http://127.0.0.2/other",
        "events": [{"entity": "MODEL_VERSION", "action": "CREATED"}],
    }
    answers: dict[str, tuple[int, str]] = {}
    for who in (None, "outsider", "viewer", "owner_read"):
        with mlflow_server.http(who) as http:
            response = http.get(url) if method == "GET" else http.request(method, url, json=body)
        answers[str(who)] = (response.status_code, response.json().get("error_code", ""))
    assert answers["None"] == (401, "UNAUTHENTICATED")
    assert answers["outsider"] == (404, "RESOURCE_DOES_NOT_EXIST")
    assert answers["viewer"] == (403, "PERMISSION_DENIED")  # webhook.manage: admins only, reads too
    if writes:
        assert answers["owner_read"] == (403, "PERMISSION_DENIED")
    else:
        assert answers["owner_read"][0] == 200, answers
    # and nothing was changed, sent or deleted by any of them
    hook = Webhook.objects.get(pk=hook_id)
    assert hook.name == "matrix"
    assert hook.url == "http://127.0.0.2/h"
    assert not Delivery.objects.filter(webhook=hook).exists()
    hook.delete()  # the project's limit of webhooks: the next case starts from as many


def test_the_mlflow_format_sends_mlflows_body_and_a_signature_mlflows_code_computes_alike(
    mlflow_server: MlflowServer,
) -> None:
    with receiver(host="127.0.0.2") as rx:
        made = mlflow_client(
            mlflow_server,
            EVENTS + f'out["id"] = client.create_webhook("mlf", "{rx.url}", [ev("model_version_alias", "created")], '
            f'secret="{SECRET}").webhook_id',
        )
        base = mlflow_server.url + "/api/v1/projects/acme/proj/webhooks/"
        headers = {"Authorization": f"Bearer {mlflow_server.tokens['owner']}"}
        # the format is Assay's setting (MLflow's messages have no field for it)
        bad = httpx.patch(
            f"{base}{made['id']}/", json={"format": "mlflow", "events": ["run.finished"]}, headers=headers
        )
        switched = httpx.patch(f"{base}{made['id']}/", json={"format": "mlflow"}, headers=headers)
        assert switched.status_code == 200, switched.text
        tested = mlflow_client(
            mlflow_server, f'r = client.test_webhook("{made["id"]}")\nout["ok"] = [r.success, r.response_status]'
        )
        request = rx.requests[-1]
    assert bad.status_code == 400
    assert "format" in bad.text
    assert tested["ok"] == [True, 200]
    sent = json.loads(request.body)
    assert sent["entity"] == "model_version_alias"
    assert sent["action"] == "created"
    assert set(sent) == {"entity", "action", "timestamp", "data"}
    # MLflow's own signing function, fed what the receiver got, computes the same header
    check = mlflow_client(
        mlflow_server,
        f"""
from mlflow.webhooks.delivery import _generate_hmac_signature
out["sig"] = _generate_hmac_signature({SECRET!r}, {request.headers["x-mlflow-delivery-id"]!r},
                                      {request.headers["x-mlflow-timestamp"]!r}, {request.body.decode()!r})
""",
    )
    assert check["sig"] == request.headers["x-mlflow-signature"]
    assert request.headers["x-assay-signature"].startswith("sha256=")  # Assay's headers are sent too


def test_assays_other_events_stay_hidden_and_kept_and_a_failed_test_says_why(mlflow_server: MlflowServer) -> None:
    base = mlflow_server.url + "/api/v1/projects/acme/proj/webhooks/"
    headers = {"Authorization": f"Bearer {mlflow_server.tokens['owner']}"}
    made = httpx.post(
        base,
        json={"url": "http://127.0.0.2:9/h", "events": ["alias.moved", "run.finished"], "secret": SECRET},
        headers=headers,
    )
    assert made.status_code == 201, made.text
    hook_id = made.json()["id"]
    out = mlflow_client(
        mlflow_server,
        EVENTS
        + f"""
out["before"] = plain(client.get_webhook("{hook_id}"))["events"]
out["after"] = plain(client.update_webhook("{hook_id}", events=[ev("model_version", "created")]))["events"]
r = client.test_webhook("{hook_id}")
out["test"] = [r.success, r.response_status, r.error_message]
""",
    )
    assert out["before"] == ["model_version_alias.created"]
    assert out["after"] == ["model_version.created"]
    assert Webhook.objects.get(pk=hook_id).events == ["version.created", "run.finished"]
    success, status, error = out["test"]
    assert success is False
    assert status in (None, 0)
    assert "ConnectionRefused" in error
    delivery = Delivery.objects.get(webhook_id=hook_id)
    assert delivery.state == "failed"
    assert delivery.attempts == 1
