"""The model registry, logged models and the artifact proxy through the real ``mlflow`` client
(a subprocess of ``.venv-mlflow``) against a real server on PostgreSQL: a 3.x client logs a
model, registers it, sets and deletes aliases and loads ``models:/`` URIs that predict like
the trained model; governance stays (a protected alias is refused with how to ask for the
move); roles apply (viewer, outsider); bad input gets MLflow's error format.

The run the models come from is made here with Assay's own services: these tests are about
the registry, not the tracking calls (tests/compat/test_tracking*.py)."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuditEvent, User
from artifacts.models import Artifact, Blob
from compat.models import LoggedModel, VersionSource
from experiments.models import Run
from experiments.services import run_create
from registry.models import AliasMove, ModelVersion
from tests.compat.conftest import MlflowServer, mlflow_client

pytestmark = [pytest.mark.slow, pytest.mark.django_db]

TRAIN = """
import numpy as np
from sklearn.linear_model import LogisticRegression
X = np.random.RandomState(0).rand(60, 3)
y = (X[:, 0] + X[:, 1] > 1).astype(int)
trained = LogisticRegression().fit(X, y)
expected = trained.predict(X).tolist()
"""


@pytest.fixture(scope="module")
def source_run(mlflow_server: MlflowServer, django_db_blocker: Any) -> Run:
    with django_db_blocker.unblock():
        owner = User.objects.get(username="owner")
        return run_create(user=owner, project_path="acme/proj", experiment="training", name="train-1")


@pytest.fixture(scope="module")
def registered(mlflow_server: MlflowServer, source_run: Run) -> dict[str, Any]:
    """One script of the owner: ``mlflow.sklearn.log_model(..., registered_model_name=…)`` in a
    run (a logged model, its files through the artifact proxy, a registered version), aliases
    moved, the model loaded back by every kind of URI; then the same client as a viewer."""
    script = (
        TRAIN
        + f"""
import os, tempfile
from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository
mlflow.set_experiment("training")
with mlflow.start_run() as run:
    mlflow.log_param("C", 1.0)
    info = mlflow.sklearn.log_model(trained, name="clf", registered_model_name="Fraud", input_example=X[:2])
out["run_id"] = run.info.run_id
out["experiment_id"] = run.info.experiment_id
out["model_id"] = info.model_id
out["found"] = [m.model_id for m in client.search_logged_models([run.info.experiment_id], filter_string="name = 'clf'")]
out["status"] = client.get_logged_model(info.model_id).status.name
version = client.get_model_version("fraud", info.registered_model_version)
out["version"] = version.version
out["source"] = version.source
client.set_registered_model_alias("fraud", "Champion", version.version)
out["by_alias"] = client.get_model_version_by_alias("fraud", "champion").version
for uri in ("models:/fraud@champion", f"models:/fraud/{{version.version}}", "models:/fraud/latest",
            f"models:/{{info.model_id}}"):
    out[uri] = mlflow.pyfunc.load_model(uri).predict(X).tolist() == expected
out["download_uri"] = client.get_model_version_download_uri("fraud", version.version)
out["latest"] = [v.version for v in client.get_latest_versions("fraud")]
out["in_production_stage"] = [v.version for v in client.get_latest_versions("fraud", ["Production"])]
out["stage"] = error_of(client.transition_model_version_stage, "fraud", version.version, "Production")
out["protected_set"] = error_of(client.set_registered_model_alias, "fraud", "production", version.version)
out["protected_delete"] = error_of(client.delete_registered_model_alias, "fraud", "production")
client.set_registered_model_alias("fraud", "staging", version.version)
client.delete_registered_model_alias("fraud", "staging")
out["staging_after_delete"] = error_of(client.get_model_version_by_alias, "fraud", "staging")
out["again"] = error_of(client.create_registered_model, "fraud")
# The same files registered again: MLflow would make version 2; Assay answers the version
# these files already are, and the client's register_model carries on as after a creation.
same = mlflow.register_model(f"models:/{{info.model_id}}", "Fraud")
out["registered_again"] = [same.version, [v.version for v in client.search_model_versions("name = 'fraud'")]]
client.set_registered_model_tag("fraud", "owner", "risk-team")
client.set_model_version_tag("fraud", version.version, "validated", "yes")
client.update_model_version("fraud", version.version, description="first candidate")
out["searched"] = [m.name for m in client.search_registered_models("name LIKE 'fr%' AND tags.owner = 'risk-team'")]
out["versions"] = [v.version for v in client.search_model_versions("name = 'Fraud' AND tags.validated = 'yes'")]

# A version registered with Assay's own API (no MLflow source) reads back through the client.
import requests
base = os.environ["MLFLOW_TRACKING_URI"].split("/mlflow/")[0] + "/api/v1/projects/acme/proj/models/"
auth = {{"Authorization": "Bearer " + os.environ["MLFLOW_TRACKING_TOKEN"]}}
weights = os.path.join(tempfile.mkdtemp(), "weights.bin")
open(weights, "wb").write(b"sdk weights")
MlflowArtifactsRepository(run.info.artifact_uri).log_artifact(weights, "sdk")
requests.post(base, json={{"name": "sdk-model"}}, headers=auth, timeout=30).raise_for_status()
requests.post(base + "sdk-model/versions/", json={{"run": run.info.run_id, "artifact": "sdk/weights.bin"}},
              headers=auth, timeout=30).raise_for_status()
out["sdk_source"] = client.get_model_version("sdk-model", "1").source
downloaded = mlflow.artifacts.download_artifacts("models:/sdk-model/1", dst_path=tempfile.mkdtemp())
out["sdk_files"] = {{name: open(os.path.join(downloaded, name)).read() for name in os.listdir(downloaded)}}

# The same client as a viewer (the token is read from the environment at every request;
# one interpreter instead of two keeps the module fast).
os.environ["MLFLOW_TRACKING_TOKEN"] = "{mlflow_server.tokens["viewer"]}"
seen = out["viewer"] = {{}}
seen["model"] = client.get_registered_model("fraud").name
seen["loaded"] = mlflow.pyfunc.load_model("models:/fraud@champion").predict(X).tolist() == expected
seen["alias"] = error_of(client.set_registered_model_alias, "fraud", "canary", "1")
seen["create"] = error_of(client.create_registered_model, "other")
seen["register"] = error_of(client.create_model_version, "fraud", f"models:/{{info.model_id}}")
seen["logged"] = error_of(client.create_logged_model, "{source_run.experiment_id}", name="x")
path = os.path.join(tempfile.mkdtemp(), "note.txt")
open(path, "w").write("hi")
repo = MlflowArtifactsRepository("mlflow-artifacts:/{source_run.experiment_id}/{source_run.id}/artifacts")
try:
    repo.log_artifact(path)
    seen["upload"] = "accepted"
except Exception as exc:
    seen["upload"] = str(exc)
"""
    )
    return mlflow_client(mlflow_server, script)


def test_a_registered_model_loads_by_every_uri_and_predicts_like_the_trained_model(
    registered: dict[str, Any],
) -> None:
    model_id = registered["model_id"]
    assert registered["found"] == [model_id]
    assert registered["status"] == "READY"
    assert registered["version"] == "1"
    assert registered["source"] == f"models:/{model_id}"
    assert registered["by_alias"] == "1"
    for uri in ("models:/fraud@champion", "models:/fraud/1", "models:/fraud/latest", f"models:/{model_id}"):
        assert registered[uri] is True, uri
    assert registered["download_uri"].endswith(f"/artifacts/models/{model_id}")
    assert registered["searched"] == ["fraud"]
    assert registered["versions"] == ["1"]


def test_a_version_registered_with_assays_api_downloads_through_the_client(registered: dict[str, Any]) -> None:
    assert registered["sdk_source"].endswith(f"/{registered['run_id']}/artifacts/sdk/weights.bin")
    assert registered["sdk_files"] == {"weights.bin": "sdk weights"}


def test_the_version_is_assays_with_the_models_files_among_the_runs_artifacts(registered: dict[str, Any]) -> None:
    model_id = registered["model_id"]
    version = ModelVersion.objects.get(repository__name="fraud", number=1)
    assert version.source_run_id == registered["run_id"]
    assert version.params == {"C": "1.0"}  # Assay's snapshot of the run's ingredients
    # the binary is the model's payload, not its metadata (MLmodel, environment files)
    assert version.binary_path.startswith(f"models/{model_id}/model.")
    assert not version.binary_path.endswith(("MLmodel", ".yaml", ".txt"))
    assert (version.description, version.tags) == ("first candidate", {"validated": "yes"})
    files = Artifact.objects.filter(run_id=registered["run_id"], path__startswith=f"models/{model_id}/")
    assert {"MLmodel", "requirements.txt", "input_example.json"} <= {f.path.rsplit("/", 1)[1] for f in files}
    # stored by content and queued for the worker's processing, like an SDK upload
    assert {f.kind for f in files} == {Artifact.Kind.MODEL}
    assert {f.blob.status for f in files} == {Blob.Status.VERIFIED}
    assert VersionSource.objects.get(version=version).model_id == model_id
    assert LoggedModel.objects.get(pk=model_id).status == LoggedModel.Status.READY


def test_aliases_move_through_the_registry_and_its_log(registered: dict[str, Any]) -> None:
    moves = list(AliasMove.objects.filter(repository__name="fraud").order_by("id").values_list("alias", "reason"))
    assert moves == [("champion", "set with the MLflow client"), ("staging", "set with the MLflow client")]
    assert AuditEvent.objects.filter(action="model.alias.delete", data__alias="staging").exists()
    assert registered["staging_after_delete"]["code"] == "RESOURCE_DOES_NOT_EXIST"


def test_a_protected_alias_is_refused_with_how_to_open_a_review_request(registered: dict[str, Any]) -> None:
    for key in ("protected_set", "protected_delete"):
        refused = registered[key]
        assert refused["code"] == "PERMISSION_DENIED"
        assert "'production' of model fraud is protected" in refused["message"]
        assert "/acme/proj/reviews/new/?model=fraud&alias=production" in refused["message"]
        assert "/api/v1/projects/acme/proj/review-requests/" in refused["message"]
    assert "&version=1" in registered["protected_set"]["message"]
    assert not AliasMove.objects.filter(alias="production").exists()


def test_stages_are_answered_as_by_a_registry_without_them(registered: dict[str, Any]) -> None:
    assert registered["latest"] == ["1"]
    assert registered["in_production_stage"] == []
    assert registered["stage"]["code"] == "INVALID_PARAMETER_VALUE"
    assert "aliases" in registered["stage"]["message"]
    assert registered["again"]["code"] == "RESOURCE_ALREADY_EXISTS"


def test_registering_the_same_files_again_answers_their_version(registered: dict[str, Any]) -> None:
    assert registered["registered_again"] == [registered["version"], [registered["version"]]]


def test_a_viewer_reads_and_loads_but_changes_nothing(registered: dict[str, Any]) -> None:
    seen = registered["viewer"]

    assert seen["model"] == "fraud"
    assert seen["loaded"] is True
    for key in ("alias", "create", "register", "logged"):
        assert seen[key]["code"] == "PERMISSION_DENIED", key
    assert "403" in seen["upload"]
    assert not Artifact.objects.filter(path="note.txt").exists()


def test_an_outsider_gets_the_answer_of_a_missing_project(
    mlflow_server: MlflowServer, registered: dict[str, Any]
) -> None:
    files = f"api/2.0/mlflow-artifacts/artifacts/{registered['experiment_id']}/{registered['run_id']}/artifacts"
    with mlflow_server.http("outsider") as outsider, mlflow_server.http("owner", project="acme/nope") as missing:
        seen = [
            outsider.get("api/2.0/mlflow/registered-models/get", params={"name": "fraud"}),
            outsider.get(f"{files}/models/{registered['model_id']}/MLmodel"),
            outsider.put(f"{files}/x.txt", content=b"x"),
        ]
        reference = missing.get("api/2.0/mlflow/registered-models/get", params={"name": "fraud"})
    for response in seen:
        assert response.status_code == 404
        assert response.json() == reference.json()
    assert reference.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code", "names"),
    [
        ("POST", "registered-models/create", {"name": "no spaces allowed"}, 400, "INVALID_PARAMETER_VALUE", "name"),
        ("POST", "registered-models/create", {}, 400, "INVALID_PARAMETER_VALUE", "'name'"),
        ("GET", "model-versions/get", {"name": "fraud", "version": "one"}, 400, "INVALID_PARAMETER_VALUE", "version"),
        ("GET", "model-versions/get", {"name": "fraud", "version": "9"}, 404, "RESOURCE_DOES_NOT_EXIST", "version=9"),
        ("GET", "registered-models/get", {"name": "ghost"}, 404, "RESOURCE_DOES_NOT_EXIST", "ghost"),
        ("GET", "registered-models/search", {"filter": "name ~ 'x'"}, 400, "INVALID_PARAMETER_VALUE", "filter"),
        ("GET", "model-versions/search", {"filter": "owner = 'x'"}, 400, "INVALID_PARAMETER_VALUE", "owner"),
        ("GET", "registered-models/search", {"page_token": "garbage"}, 400, "INVALID_PARAMETER_VALUE", "page"),
        (
            "POST",
            "registered-models/alias",
            {"name": "fraud", "alias": "v3", "version": "1"},
            400,
            "INVALID_PARAMETER_VALUE",
            "reserved",
        ),
        (
            "POST",
            "model-versions/create",
            {"name": "fraud", "source": "s3://bucket/model"},
            400,
            "INVALID_PARAMETER_VALUE",
            "source",
        ),
        (
            "POST",
            "model-versions/create",
            {"name": "fraud", "source": "runs:/../../etc"},
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "Run",
        ),
        ("POST", "logged-models", {"experiment_id": "nope"}, 404, "RESOURCE_DOES_NOT_EXIST", "experiment"),
        ("PATCH", "logged-models/m-0123", {"status": "LOGGED_MODEL_READY"}, 404, "RESOURCE_DOES_NOT_EXIST", "m-0123"),
    ],
)
def test_bad_input_is_answered_in_mlflows_error_format(
    mlflow_server: MlflowServer,
    registered: dict[str, Any],
    method: str,
    path: str,
    body: dict[str, Any],
    status: int,
    code: str,
    names: str,
) -> None:
    with mlflow_server.http() as http:
        if method == "GET":
            response = http.get(f"api/2.0/mlflow/{path}", params=body)
        else:
            response = http.request(method, f"api/2.0/mlflow/{path}", json=body)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code
    assert names in response.json()["message"]


@pytest.mark.parametrize(
    "bad",
    ["{e}/{r}/artifacts/..%2F..%2Fsecrets", "{e}/{r}/artifacts/a/%252e%252e/b", "{e}/{r}/artifacts/a;b", "{e}/{r}/x"],
)
def test_artifact_paths_are_checked_before_anything_is_written(
    mlflow_server: MlflowServer, source_run: Run, bad: str
) -> None:
    path = bad.format(e=source_run.experiment_id, r=source_run.id)
    with mlflow_server.http() as http:
        response = http.put(f"api/2.0/mlflow-artifacts/artifacts/{path}", content=b"x")
    assert response.status_code in (400, 404), response.text
    assert response.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST")
    assert not Artifact.objects.filter(run=source_run, size=1).exists()


def test_a_read_token_reads_and_downloads_but_writes_nothing(
    mlflow_server: MlflowServer, registered: dict[str, Any]
) -> None:
    files = f"api/2.0/mlflow-artifacts/artifacts/{registered['experiment_id']}/{registered['run_id']}/artifacts"
    with mlflow_server.http("owner_read") as http:
        model = http.get("api/2.0/mlflow/registered-models/get", params={"name": "fraud"})
        download = http.get(f"{files}/models/{registered['model_id']}/MLmodel")
        refused = [
            http.post("api/2.0/mlflow/registered-models/alias", json={"name": "fraud", "alias": "b", "version": "1"}),
            http.put(f"{files}/read-token.txt", content=b"x"),
            http.request("DELETE", f"{files}/models/{registered['model_id']}/MLmodel"),
        ]
    assert model.status_code == 200
    assert download.status_code == 302
    for response in refused:
        assert (response.status_code, response.json()["error_code"]) == (403, "PERMISSION_DENIED")
    assert not Artifact.objects.filter(path="read-token.txt").exists()
    assert Artifact.objects.filter(path=f"models/{registered['model_id']}/MLmodel").exists()


def test_prompts_are_refused_clearly_and_leave_ordinary_models_alone(mlflow_server: MlflowServer) -> None:
    """MLflow 3 keeps a prompt as a registered model tagged ``mlflow.prompt.is_prompt`` whose
    versions hold no files (docs/mlflow.md: what was verified)."""
    out = mlflow_client(
        mlflow_server,
        """
out["register"] = error_of(mlflow.genai.register_prompt, name="greet", template="Hello {{name}}")
out["load"] = error_of(mlflow.genai.load_prompt, "prompts:/greet/1")
out["models"] = [m.name for m in client.search_registered_models()]
""",
    )

    assert out["register"]["code"] == "INVALID_PARAMETER_VALUE"
    assert "Assay registers files it stores" in out["register"]["message"]
    assert out["load"] is not None
    assert "greet" not in out["models"]  # hidden from the model list, as MLflow hides prompts
    assert not ModelVersion.objects.filter(repository__name="greet").exists()
