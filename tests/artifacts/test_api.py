"""The artifact upload protocol against the local store (the embedded profile): declare,
PUT to signed URLs on this server, complete, process (Celery eager), list, download."""

from __future__ import annotations

import io
import json
import pickle
import struct
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from django.core import signing
from django.utils import timezone
from rest_framework.test import APIClient

from artifacts import processing, services, storage
from artifacts.models import Artifact, Blob
from experiments.models import Run
from tests.artifacts.conftest import (
    artifacts_path,
    complete,
    declare,
    file_entry,
    local_get,
    local_put,
    log_file,
    sha,
    upload,
)
from tests.helpers import assert_error, post_json

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store_root", "eager")]


def listed(client: APIClient, run: Run, **query: str) -> list[dict[str, Any]]:
    response = client.get(artifacts_path(run), query)
    assert response.status_code == 200, response.content
    return orjson.loads(response.content)  # type: ignore[no-any-return]


def processed(client: APIClient, run: Run, path: str, data: bytes, captured: Any, kind: str = "file") -> dict[str, Any]:
    with captured(execute=True):
        log_file(client, run, path, data, kind)
    [item] = [a for a in listed(client, run) if a["path"] == path]
    return item


def class_with_system_call() -> bytes:
    """A pickle that would call os.system on load (built by hand; never loaded)."""
    return b"\x80\x04\x95\x1c\x00\x00\x00\x00\x00\x00\x00\x8c\x02os\x94\x8c\x06system\x94\x93\x94\x8c\x02id\x94\x85\x94R\x94."


def safetensors_bytes() -> bytes:
    header = {
        "__metadata__": {"format": "pt"},
        "embed.weight": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
        "head.bias": {"dtype": "F16", "shape": [2], "data_offsets": [32, 36]},
    }
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + b"\x00" * 36


# --- the happy path ---------------------------------------------------------------------------


def test_a_small_file_is_uploaded_processed_and_listed(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    data = b"epoch,loss\n0,0.9\n1,0.5\n"

    item = processed(owner_client, run, "metrics/loss.csv", data, django_capture_on_commit_callbacks)

    assert set(item) >= {"path", "size", "sha256", "media_type", "kind", "status", "reason", "findings", "preview"}
    assert item["status"] == "ready"
    assert item["size"] == len(data)
    assert item["sha256"] == sha(data)
    assert item["media_type"] == "text/csv"
    assert item["preview"] == {
        "type": "table",
        "columns": ["epoch", "loss"],
        "rows": [["0", "0.9"], ["1", "0.5"]],
        "truncated": False,
    }
    artifact = Artifact.objects.get()
    assert artifact.processed == 1
    assert artifact.blob.status == Blob.Status.VERIFIED


def test_the_declare_answer_is_one_signed_put_below_the_threshold(owner_client: APIClient, run: Run) -> None:
    data = b"x" * 100

    answer = orjson.loads(declare(owner_client, run, [file_entry("a.bin", data)]).content)

    upload_ = answer["artifacts"][0]["upload"]
    assert upload_["method"] == "PUT"
    assert upload_["url"].startswith("http://127.0.0.1:8000/-/store/?t=")
    assert upload_["headers"] == {"Content-Type": "application/octet-stream"}
    assert answer["artifacts"][0]["artifact"]["status"] == "pending"


def test_a_large_file_is_a_multipart_upload_and_resumes_with_the_parts_already_stored(
    owner_client: APIClient, run: Run, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.ASSAY_MULTIPART_THRESHOLD = 1024 * 1024
    settings.ASSAY_UPLOAD_PART_BYTES = 5 * 1024 * 1024
    data = bytes(range(256)) * (11 * 4096)  # 11 MiB: parts of 5, 5 and 1 MiB
    first = orjson.loads(declare(owner_client, run, [file_entry("big.bin", data)]).content)["artifacts"][0]
    plan = first["upload"]
    assert plan["multipart"] is True
    assert [(p["number"], p["size"]) for p in plan["parts"]] == [(1, 5 << 20), (2, 5 << 20), (3, 1 << 20)]
    # the client sends part 2, then is interrupted
    assert local_put(APIClient(), plan["parts"][1]["url"], data[5 << 20 : 10 << 20]).status_code == 200
    early = complete(owner_client, run, first["artifact"]["id"])
    assert_error(early, 400, code="upload_incomplete")
    assert "1, 3" in orjson.loads(early.content)["error"]["message"]

    # when it declares the same file again, only the missing parts are asked for
    again = orjson.loads(declare(owner_client, run, [file_entry("big.bin", data)]).content)["artifacts"][0]
    assert again["artifact"]["id"] == first["artifact"]["id"]
    assert again["upload"]["parts_done"] == [2]
    assert [p["number"] for p in again["upload"]["parts"]] == [1, 3]
    upload(owner_client, again, data)
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(owner_client, run, first["artifact"]["id"]).status_code == 200

    artifact = Artifact.objects.get()
    assert artifact.status == Artifact.Status.READY
    path = storage.artifact_store().path(storage.object_key(run.project_id, sha(data)))  # type: ignore[attr-defined]
    assert path.read_bytes() == data


def test_a_directory_is_one_manifest_of_many_files(owner_client: APIClient, run: Run) -> None:
    files = [file_entry(f"checkpoint/shard-{i}.bin", bytes([i]) * 10) for i in range(5)]

    response = declare(owner_client, run, files, kind="model")

    assert response.status_code == 201
    assert [a["artifact"]["path"] for a in orjson.loads(response.content)["artifacts"]] == [f["path"] for f in files]
    assert Artifact.objects.filter(run=run, kind="model").count() == 5


def test_content_the_project_already_has_is_not_uploaded_again(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    data = b"the same weights" * 100
    processed(owner_client, run, "model.bin", data, django_capture_on_commit_callbacks)
    second_run = Run.objects.create(
        project=run.project, experiment=run.experiment, name="second", start_time=run.start_time
    )

    with django_capture_on_commit_callbacks(execute=True):
        answer = orjson.loads(declare(owner_client, second_run, [file_entry("copy/model.bin", data)]).content)

    assert answer["artifacts"][0]["upload"] is None
    assert Blob.objects.count() == 1
    assert listed(owner_client, second_run)[0]["status"] == "ready"


# --- what processing finds -----------------------------------------------------------------------


def test_a_pickle_with_an_unsafe_global_is_flagged(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    item = processed(
        owner_client, run, "model.pkl", class_with_system_call(), django_capture_on_commit_callbacks, "model"
    )

    assert item["status"] == "ready"
    assert item["findings"]["format"] == "pickle"
    assert item["findings"]["unsafe"] is True
    assert "os.system" in item["findings"]["unsafe_globals"]


def test_a_harmless_pickle_is_not_flagged(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    data = pickle.dumps({"weights": [1.0, 2.0], "classes": ("a", "b")}, protocol=4)

    item = processed(owner_client, run, "state.pkl", data, django_capture_on_commit_callbacks, "model")

    assert item["findings"]["unsafe"] is False
    assert item["findings"]["unsafe_globals"] == []


def test_a_joblib_sklearn_model_is_scanned_without_loading_it(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any, tmp_path: Path
) -> None:
    joblib = pytest.importorskip("joblib")
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    joblib.dump(model, tmp_path / "model.joblib")

    item = processed(
        owner_client, run, "model.joblib", (tmp_path / "model.joblib").read_bytes(), django_capture_on_commit_callbacks
    )

    assert item["findings"]["format"] == "joblib"
    assert item["findings"]["unsafe"] is False
    assert any(g.startswith("sklearn.linear_model") for g in item["findings"]["globals"])


def test_safetensors_tensors_are_listed_from_the_header(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    item = processed(owner_client, run, "model.safetensors", safetensors_bytes(), django_capture_on_commit_callbacks)

    findings = item["findings"]
    assert findings["format"] == "safetensors"
    assert findings["tensors"] == [
        {"name": "embed.weight", "dtype": "F32", "shape": [4, 2]},
        {"name": "head.bias", "dtype": "F16", "shape": [2]},
    ]
    assert findings["parameters"] == 10
    assert findings["metadata"] == {"format": "pt"}


def test_an_onnx_model_shows_its_opset_inputs_and_outputs(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
    )
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    assert onnx.__version__

    item = processed(owner_client, run, "model.onnx", data, django_capture_on_commit_callbacks, "model")

    findings = item["findings"]
    assert findings["format"] == "onnx"
    assert findings["opset"] == {"ai.onnx": 17}
    assert findings["inputs"] == [{"name": "x", "dtype": "float", "shape": ["batch", 3]}]
    assert findings["outputs"] == [{"name": "y", "dtype": "float", "shape": ["batch", 3]}]


def test_an_image_gets_a_thumbnail(owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any) -> None:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (800, 400), (200, 30, 30)).save(out, format="PNG")

    item = processed(owner_client, run, "plots/loss.png", out.getvalue(), django_capture_on_commit_callbacks)

    assert item["media_type"] == "image/png"
    assert item["preview"] == {"type": "image", "width": 800, "height": 400, "format": "PNG", "thumbnail": True}
    key = storage.derived_key(run.project_id, sha(out.getvalue()), "thumbnail.png")
    thumbnail = Image.open(io.BytesIO(storage.artifact_store().read_bytes(key, limit=1 << 20) or b""))
    assert thumbnail.size == (320, 160)


def test_json_and_text_get_a_preview_of_their_first_lines(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    config = processed(
        owner_client, run, "config.json", b'{"lr": 0.1, "layers": [1, 2]}', django_capture_on_commit_callbacks
    )
    notes = processed(
        owner_client,
        run,
        "notes.txt",
        "\n".join(f"line {i}" for i in range(100)).encode(),
        django_capture_on_commit_callbacks,
    )

    assert config["preview"]["type"] == "text"
    assert config["preview"]["lines"][:2] == ["{", '  "lr": 0.1,']
    assert notes["preview"]["lines"][0] == "line 0"
    assert len(notes["preview"]["lines"]) == 40
    assert notes["preview"]["truncated"] is True


def test_bytes_that_do_not_match_the_declared_sha256_fail_the_artifact(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    declared, sent = b"A" * 64, b"B" * 64
    answer = orjson.loads(declare(owner_client, run, [file_entry("model.bin", declared)]).content)["artifacts"][0]

    assert local_put(APIClient(), answer["upload"]["url"], sent).status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert complete(owner_client, run, answer["artifact"]["id"]).status_code == 200

    item = listed(owner_client, run)[0]
    assert item["status"] == "failed"
    assert "sha256 mismatch" in item["reason"]
    assert Blob.objects.get().status == Blob.Status.FAILED
    assert storage.artifact_store().size_of(storage.object_key(run.project_id, sha(declared))) is None
    # the content can be declared again, and then succeeds
    with django_capture_on_commit_callbacks(execute=True):
        log_file(owner_client, run, "model.bin", declared)
    assert listed(owner_client, run)[0]["status"] == "ready"


def test_processing_twice_writes_the_results_once(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    processed(owner_client, run, "a.txt", b"hello\n", django_capture_on_commit_callbacks)
    artifact = Artifact.objects.get()

    processing.artifact_process(artifact_id=artifact.id)

    artifact.refresh_from_db()
    assert (artifact.status, artifact.processed, artifact.attempts) == ("ready", 1, 1)


def test_a_processing_interrupted_midway_is_finished_by_the_next_delivery(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"interrupted\n"
    answer = orjson.loads(declare(owner_client, run, [file_entry("a.txt", data)]).content)["artifacts"][0]
    upload(owner_client, answer, data)
    complete(owner_client, run, answer["artifact"]["id"])  # on_commit not run: the task was "lost"

    def crash(*args: Any, **kwargs: Any) -> None:
        raise SystemExit("worker killed")

    monkeypatch.setattr("artifacts.inspection.inspect_file", crash)
    with pytest.raises(SystemExit):
        processing.artifact_process(artifact_id=answer["artifact"]["id"])
    assert Artifact.objects.get().status == "processing"
    monkeypatch.undo()

    processing.artifact_process(artifact_id=answer["artifact"]["id"])

    artifact = Artifact.objects.get()
    assert (artifact.status, artifact.processed, artifact.attempts) == ("ready", 1, 2)


# --- downloads -------------------------------------------------------------------------------------


def test_a_download_url_streams_the_bytes_as_an_attachment(
    viewer_client: APIClient, owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    data = b"weights" * 10
    processed(owner_client, run, "model/w.bin", data, django_capture_on_commit_callbacks)
    artifact = Artifact.objects.get()

    answer = orjson.loads(viewer_client.get(f"{artifacts_path(run)}{artifact.id}/download/").content)
    response = local_get(APIClient(), answer["url"])

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == data
    assert response["Content-Disposition"] == 'attachment; filename="w.bin"'
    assert response["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize(
    ("name", "body"),
    [
        ("page.html", b"<script>alert(1)</script>"),
        ("x.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
    ],
)
def test_uploaded_html_and_svg_are_never_served_inline(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any, name: str, body: bytes
) -> None:
    processed(owner_client, run, name, body, django_capture_on_commit_callbacks)
    artifact = Artifact.objects.get()

    answer = orjson.loads(owner_client.get(f"{artifacts_path(run)}{artifact.id}/download/").content)
    response = local_get(APIClient(), answer["url"])

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]


def test_a_download_before_verification_is_a_conflict(owner_client: APIClient, run: Run) -> None:
    answer = orjson.loads(declare(owner_client, run, [file_entry("a.bin", b"abc")]).content)["artifacts"][0]

    response = owner_client.get(f"{artifacts_path(run)}{answer['artifact']['id']}/download/")

    assert_error(response, 409, code="not_ready")


def test_an_artifact_of_another_run_is_not_found_through_this_run(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    processed(owner_client, run, "a.txt", b"a\n", django_capture_on_commit_callbacks)
    other = Run.objects.create(project=run.project, experiment=run.experiment, name="other", start_time=run.start_time)

    response = owner_client.get(f"{artifacts_path(other)}{Artifact.objects.get().id}/download/")

    assert_error(response, 404, code="not_found")


# --- signed store URLs --------------------------------------------------------------------------------


def test_a_tampered_upload_url_is_refused(owner_client: APIClient, run: Run) -> None:
    answer = orjson.loads(declare(owner_client, run, [file_entry("a.bin", b"abc")]).content)["artifacts"][0]
    url = answer["upload"]["url"]
    forged = url[:-3] + ("AAA" if not url.endswith("AAA") else "BBB")

    response = local_put(APIClient(), forged, b"abc")

    assert_error(response, 403, code="bad_signature")
    assert storage.artifact_store().size_of(storage.staging_key(Blob.objects.get().id)) is None


def test_an_expired_upload_url_is_refused(owner_client: APIClient, run: Run, settings: Any) -> None:
    settings.ASSAY_UPLOAD_URL_EXPIRY_SECONDS = -1
    answer = orjson.loads(declare(owner_client, run, [file_entry("a.bin", b"abc")]).content)["artifacts"][0]

    assert_error(local_put(APIClient(), answer["upload"]["url"], b"abc"), 403)


def test_more_or_fewer_bytes_than_signed_are_refused(owner_client: APIClient, run: Run) -> None:
    answer = orjson.loads(declare(owner_client, run, [file_entry("a.bin", b"abc")]).content)["artifacts"][0]

    assert_error(local_put(APIClient(), answer["upload"]["url"], b"abcd"), 413, code="too_large")
    assert_error(local_put(APIClient(), answer["upload"]["url"], b"ab"), 400, code="size_mismatch")
    assert_error(complete(owner_client, run, answer["artifact"]["id"]), 400, code="upload_incomplete")


def test_a_download_url_cannot_be_used_to_upload(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    processed(owner_client, run, "a.txt", b"original\n", django_capture_on_commit_callbacks)
    url = orjson.loads(owner_client.get(f"{artifacts_path(run)}{Artifact.objects.get().id}/download/").content)["url"]

    response = local_put(APIClient(), url, b"replaced\n")

    assert_error(response, 403, code="bad_signature")


def test_a_store_token_naming_a_path_outside_the_store_is_refused(owner_client: APIClient) -> None:
    import time

    token = signing.dumps(
        {"op": "get", "k": "objects/../../etc/passwd", "exp": int(time.time()) + 60}, salt=storage.STORE_SALT
    )

    response = owner_client.get("/-/store/", {"t": token})

    assert_error(response, 403, code="bad_signature")


# --- bad input: a clear 4xx naming the field, nothing written ---------------------------------


BAD_FILES = [
    ({"path": "a", "size": -1, "sha256": "0" * 64}, "files.0.size"),
    ({"path": "a", "size": "3", "sha256": "0" * 64}, "files.0.size"),
    ({"path": "a", "size": True, "sha256": "0" * 64}, "files.0.size"),
    ({"path": "a", "size": 3, "sha256": "xyz"}, "files.0.sha256"),
    ({"path": "a", "size": 3, "sha256": "0" * 63}, "files.0.sha256"),
    ({"path": "a", "size": 3, "sha256": "0" * 64, "media_type": "not a type"}, "files.0.media_type"),
    ({"path": "a", "size": 3, "sha256": "0" * 64, "owner": "me"}, "files.0.owner"),
    ({"path": "../a", "size": 3, "sha256": "0" * 64}, "files.0.path"),
    ({"size": 3, "sha256": "0" * 64}, "files.0.path"),
    ("a.txt", "files.0"),
]


@pytest.mark.parametrize(("entry", "field"), BAD_FILES)
def test_a_bad_file_entry_is_refused_with_its_field(owner_client: APIClient, run: Run, entry: Any, field: str) -> None:
    response = post_json(owner_client, artifacts_path(run), {"files": [entry]})

    assert_error(response, 400, field=field)
    assert Artifact.objects.count() == Blob.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"files": []}, "files"),
        ({"files": "a"}, "files"),
        ({"kind": "weights", "files": [{"path": "a", "size": 1, "sha256": "0" * 64}]}, "kind"),
        ({"files": [{"path": "a", "size": 1, "sha256": "0" * 64}], "status": "ready"}, "status"),
        (
            {"files": [{"path": "a", "size": 1, "sha256": "0" * 64}, {"path": "a", "size": 2, "sha256": "1" * 64}]},
            "files.1.path",
        ),
    ],
)
def test_a_bad_manifest_is_refused_with_its_field(owner_client: APIClient, run: Run, body: Any, field: str) -> None:
    assert_error(post_json(owner_client, artifacts_path(run), body), 400, field=field)
    assert Artifact.objects.count() == 0


def test_a_bad_file_late_in_a_manifest_writes_nothing_of_it(owner_client: APIClient, run: Run) -> None:
    files = [file_entry("good.txt", b"ok"), {"path": "bad/../x", "size": 1, "sha256": "0" * 64}]

    assert_error(declare(owner_client, run, files), 400, field="files.1.path")
    assert Artifact.objects.count() == Blob.objects.count() == 0


def test_a_file_over_the_size_limit_is_refused(owner_client: APIClient, run: Run, settings: Any) -> None:
    settings.ASSAY_MAX_ARTIFACT_BYTES = 1000

    response = declare(owner_client, run, [{"path": "big.bin", "size": 1001, "sha256": "0" * 64}])

    assert_error(response, 413, code="too_large", field="files.0.size")


def test_the_default_size_limit_is_five_gib(owner_client: APIClient, run: Run) -> None:
    ok = declare(owner_client, run, [{"path": "five.bin", "size": 5 * 1024**3, "sha256": "0" * 64}])
    over = declare(owner_client, run, [{"path": "more.bin", "size": 5 * 1024**3 + 1, "sha256": "1" * 64}])

    assert ok.status_code == 201
    assert over.status_code == 413


def test_a_path_logged_with_other_content_is_a_conflict(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    processed(owner_client, run, "model.bin", b"v1", django_capture_on_commit_callbacks)

    response = declare(owner_client, run, [file_entry("model.bin", b"v2")])

    assert_error(response, 409, code="artifact_exists", field="files.0.path")


def test_a_viewer_may_list_but_not_upload(viewer_client: APIClient, run: Run) -> None:
    assert viewer_client.get(artifacts_path(run)).status_code == 200
    assert_error(declare(viewer_client, run, [file_entry("a", b"a")]), 403, code="permission_denied")


# --- the periodic sweep ------------------------------------------------------------------------------


def test_an_upload_never_completed_is_aborted_after_the_expiry(
    owner_client: APIClient, run: Run, settings: Any
) -> None:
    settings.ASSAY_MULTIPART_THRESHOLD = 10
    settings.ASSAY_UPLOAD_EXPIRY_HOURS = 24
    data = b"z" * 100
    answer = orjson.loads(declare(owner_client, run, [file_entry("a.bin", data)]).content)["artifacts"][0]
    assert local_put(APIClient(), answer["upload"]["parts"][0]["url"], data).status_code == 200
    blob = Blob.objects.get()
    parts_dir = storage.artifact_store()._parts_dir(blob.upload_id)  # type: ignore[attr-defined]
    assert parts_dir.is_dir()

    young = services.artifacts_sweep(now=timezone.now() + timedelta(hours=23))
    old = services.artifacts_sweep(now=timezone.now() + timedelta(hours=25))

    assert (young["expired"], old["expired"]) == (0, 1)
    assert not parts_dir.exists()
    artifact = Artifact.objects.get()
    assert artifact.status == "failed"
    assert "never completed" in artifact.reason


def test_an_artifact_whose_task_was_lost_is_queued_again(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    data = b"lost task\n"
    answer = orjson.loads(declare(owner_client, run, [file_entry("a.txt", data)]).content)["artifacts"][0]
    upload(owner_client, answer, data)
    complete(owner_client, run, answer["artifact"]["id"])  # its on_commit never ran: the message was lost
    assert Artifact.objects.get().status == "uploaded"

    with django_capture_on_commit_callbacks(execute=True):
        result = services.artifacts_sweep(now=timezone.now() + timedelta(hours=1))

    assert result["requeued"] == 1
    assert Artifact.objects.get().status == "ready"


def test_an_upload_url_takes_no_bytes_once_the_upload_is_complete(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any
) -> None:
    data = b"final bytes"
    answer = orjson.loads(declare(owner_client, run, [file_entry("a.bin", data)]).content)["artifacts"][0]
    upload(owner_client, answer, data)
    with django_capture_on_commit_callbacks(execute=True):
        complete(owner_client, run, answer["artifact"]["id"])

    response = local_put(APIClient(), answer["upload"]["url"], b"other bytes")

    assert_error(response, 409, code="upload_closed")
    assert storage.artifact_store().size_of(storage.staging_key(Blob.objects.get().id)) is None


def test_store_uploads_no_blob_owns_are_removed_once_old(
    owner_client: APIClient, run: Run, settings: Any, store_root: Path
) -> None:
    # given a multipart upload whose declaration was rolled back (a later file was refused)
    settings.ASSAY_MULTIPART_THRESHOLD = 10
    small = b"12345"
    log_file(owner_client, run, "small.bin", small)
    lying = {"path": "lie.bin", "size": 6, "sha256": sha(small)}
    assert_error(declare(owner_client, run, [file_entry("big.bin", b"b" * 100), lying]), 409, code="size_mismatch")
    [orphan] = list((store_root / "multipart").iterdir())
    # and bytes PUT to staging after their blob had expired, and a live upload
    stray = store_root / "staging" / ("f" * 32)
    stray.write_bytes(b"late bytes")
    live = orjson.loads(declare(owner_client, run, [file_entry("live.bin", b"l" * 100)]).content)["artifacts"][0]
    live_dir = storage.artifact_store()._parts_dir(Blob.objects.get(size=100).upload_id)  # type: ignore[attr-defined]
    assert live["upload"]["multipart"]
    assert live_dir.is_dir()

    # when the sweep runs within the expiry, then after it (the live upload's row kept fresh)
    young = services.artifacts_sweep(now=timezone.now() + timedelta(hours=1))
    Blob.objects.filter(size=100).update(updated_at=timezone.now() + timedelta(days=2))
    old = services.artifacts_sweep(now=timezone.now() + timedelta(hours=25))

    # then nothing young was touched, and afterwards only the orphans are gone
    assert (young["orphans"], old["orphans"]) == (0, 2)
    assert not orphan.exists()
    assert not stray.exists()
    assert live_dir.is_dir()
    # an upload completed but not processed yet keeps its staged bytes
    assert Artifact.objects.get(path="small.bin").status == "uploaded"
    assert (store_root / storage.staging_key(Blob.objects.get(size=5).id)).is_file()
