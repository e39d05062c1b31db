"""MLflow's artifact proxy (``/api/2.0/mlflow-artifacts/…``) over Assay's artifact store.

MLflow names a run's files ``mlflow-artifacts:/<experiment id>/<run id>/artifacts/<path>``
and a logged model's ``mlflow-artifacts:/<experiment id>/models/<model id>/artifacts/<path>``;
the client turns those into ``…/api/2.0/mlflow-artifacts/artifacts/<same path>``. Here both
land among the run's artifacts (a logged model's files under ``models/<model id>/``), so
they are hashed, deduplicated, scanned and shown like files the SDK uploads:

- upload (PUT): the body is read once, hashed while it is written to a temporary file, then
  ``artifacts.services.artifact_store_received`` stores it under its content key and queues
  the same processing as an SDK upload (inspection, the pickle scan, a preview);
- download (GET): a redirect to the store's short-lived URL (S3 presigned, or the local
  store's signed URL), so the bytes do not pass through this process;
- list (GET with ``path``) and delete (DELETE).

The path a client sends is checked like every artifact path (``artifacts.paths``); the run
or logged model it names must be in the project of the URL, whatever the caller may see
elsewhere.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from django.conf import settings
from django.core import signing
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.views.decorators.csrf import csrf_exempt

from accounts import access
from accounts.access import access_project, token_allows
from accounts.models import new_id
from artifacts import downloads, paths, services, storage
from artifacts.models import Artifact, Blob
from compat import auth, wire
from compat.models import LoggedModel
from compat.wire import Call
from core.errors import Conflict, DomainError, Invalid, NotFound, TooLarge
from core.http import body_limit_exempt
from experiments.models import Run

if TYPE_CHECKING:
    from accounts.models import Project, User

SCHEME = "mlflow-artifacts:"
RUN_ID = re.compile(r"^[0-9a-f]{32}$")
MODEL_ID = re.compile(r"^m-[0-9a-f]{32}$")
CHUNK = 1024 * 1024
MEDIA_TYPE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]*/[A-Za-z0-9!#$&^_.+-]+$")


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class ArtifactLocation:
    """Where an MLflow artifact path points: a run and a path among its artifacts ("" for
    its root), and the logged model when the path is one's."""

    run: Run | None
    path: str
    logged_model: LoggedModel | None = None


def run_artifact_uri(experiment_id: str, run_id: str) -> str:
    return f"{SCHEME}/{experiment_id}/{run_id}/artifacts"


def logged_model_artifact_uri(experiment_id: str, model_id: str) -> str:
    return f"{SCHEME}/{experiment_id}/models/{model_id}/artifacts"


def files_uri(experiment_id: str, run_id: str, path: str) -> str:
    """The URI of a folder or file among a run's artifacts."""
    base = run_artifact_uri(experiment_id, run_id)
    return f"{base}/{path}" if path else base


def relative(raw: str, field: str) -> str:
    if raw == "":
        return ""
    try:
        return paths.normalize_path(raw)
    except paths.PathError as exc:
        raise Invalid(f"Invalid artifact path {raw[:200]!r}: {exc}", code="invalid_path", field=field) from None


def locate(project: Project, raw: Any, *, field: str = "path") -> ArtifactLocation:
    """The run (or logged model) and relative path an MLflow artifact path names, in
    ``project``. # SECURITY: a run or model of another project is "not found"; the relative
    part obeys the artifact path rules (no ``..``, no absolute path, …)."""
    if not isinstance(raw, str) or not raw.strip("/"):
        raise NotFound("The artifact root lists nothing: name a run's or a logged model's artifacts.", field=field)
    if len(raw) > paths.MAX_PATH_LENGTH + 200:
        raise Invalid(f"The artifact path is longer than {paths.MAX_PATH_LENGTH} characters.", field=field)
    parts = raw.strip("/").split("/")
    # <experiment>/<run id>/artifacts[/rest]
    if len(parts) >= 3 and RUN_ID.match(parts[1]) and parts[2] == "artifacts":
        run = Run.objects.select_related("project__team", "experiment").filter(project=project, pk=parts[1]).first()
        if run is None or str(run.experiment_id) != parts[0]:
            raise NotFound(f"Run '{parts[1]}' not found.", field=field)
        return ArtifactLocation(run=run, path=relative("/".join(parts[3:]), field))
    # <experiment>/models/<model id>/artifacts[/rest]
    if len(parts) >= 4 and parts[1] == "models" and MODEL_ID.match(parts[2]) and parts[3] == "artifacts":
        model = (
            LoggedModel.objects.select_related("run__project__team", "run__experiment")
            .filter(project=project, pk=parts[2], deleted=False)
            .first()
        )
        if model is None or str(model.experiment_id) != parts[0]:
            raise NotFound(f"Logged model '{parts[2]}' not found.", field=field)
        rest = relative("/".join(parts[4:]), field)
        return ArtifactLocation(
            run=model.run, path="/".join(p for p in (model.files_prefix, rest) if p), logged_model=model
        )
    raise NotFound(
        f"No artifacts at {raw[:200]!r}: artifact paths are <experiment>/<run id>/artifacts/… or "
        "<experiment>/models/<model id>/artifacts/….",
        field=field,
    )


def parse_artifact_uri(project: Project, uri: str, *, field: str) -> ArtifactLocation:
    """An ``mlflow-artifacts:`` URI (or the server's own ``…/mlflow-artifacts/artifacts/…``
    URL path) of this project's artifacts."""
    if uri.startswith(SCHEME):
        rest = uri[len(SCHEME) :]
        if rest.startswith("//"):  # mlflow-artifacts://host/path: the host is ours or ignored
            rest = "/" + rest[2:].partition("/")[2]
        return locate(project, rest, field=field)
    raise Invalid(
        f"Assay registers files it stores: source must be models:/<model id>, runs:/<run id>/<path> or an "
        f"mlflow-artifacts: URI of this project, not {uri[:200]!r}.",
        field=field,
    )


def _run_files(location: ArtifactLocation, *, user: User, project: Project, action: str, field: str) -> Run:
    if location.run is None:
        model = location.logged_model
        raise Invalid(
            f"Logged model {model.id if model else ''} was logged outside a run, so Assay can hold no files for it: "
            "Assay keeps a model's files with the run that made it. Log it inside mlflow.start_run().",
            field=field,
        )
    # ``project`` is the URL's, loaded with the caller's role; the run is one of its runs.
    access.require(user, action, project, annotated=project)
    return location.run


# --- list -------------------------------------------------------------------------------------------


def list_files(user: User, project: Project, raw_path: Any) -> dict[str, Any]:
    """The entries directly under a folder: ``{"files": [{path, is_dir, file_size}]}`` with
    names relative to the folder (as MLflow's server answers); nothing for a file."""
    if raw_path in (None, "", "/"):
        return {}
    location = locate(project, raw_path)
    run = _run_files(location, user=user, project=project, action="artifact.view", field="path")
    prefix = location.path
    found = Artifact.objects.filter(run=run).exclude(status=Artifact.Status.FAILED)
    if prefix:
        found = found.filter(path__startswith=f"{prefix}/")
    entries: dict[str, dict[str, Any]] = {}
    for path, size in found.order_by("path").values_list("path", "size"):
        rest = path[len(prefix) + 1 :] if prefix else path
        head, slash, _ = rest.partition("/")
        if slash:
            entries.setdefault(head, {"path": head, "is_dir": True})
        else:
            entries[head] = {"path": head, "is_dir": False, "file_size": size}
    return {"files": list(entries.values())} if entries else {}


# --- upload -----------------------------------------------------------------------------------------


def _media_type(header: str | None, path: str) -> str:
    value = (header or "").split(";", 1)[0].strip()
    if value and len(value) <= 255 and MEDIA_TYPE.match(value):
        return value
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "application/octet-stream"


def upload(user: User, project: Project, raw_path: str, body: Readable, content_type: str | None) -> dict[str, Any]:
    location = locate(project, raw_path)
    run = _run_files(location, user=user, project=project, action="artifact.upload", field="path")
    if not location.path or (location.logged_model is not None and location.path == location.logged_model.files_prefix):
        raise Invalid("Name a file to upload, not the artifact root.", field="path")
    limit = settings.ASSAY_MAX_ARTIFACT_BYTES
    digest = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(prefix="assay-mlflow-") as spool:
        while block := body.read(CHUNK):
            size += len(block)
            if size > limit:
                raise TooLarge(f"Artifacts are at most {limit} bytes.", code="too_large", field="path")
            digest.update(block)
            spool.write(block)
        spool.flush()
        services.artifact_store_received(
            run=run,
            path=location.path,
            local_file=Path(spool.name),
            sha256=digest.hexdigest(),
            size=size,
            media_type=_media_type(content_type, location.path),
            kind=Artifact.Kind.MODEL if location.logged_model is not None else Artifact.Kind.FILE,
        )
    return {}


# --- download ---------------------------------------------------------------------------------------


def download_url(user: User, project: Project, raw_path: str) -> str:
    """A short-lived URL of the file's bytes (the caller redirects to it)."""
    location = locate(project, raw_path)
    run = _run_files(location, user=user, project=project, action="artifact.view", field="path")
    artifact = (
        Artifact.objects.select_related("blob")
        .filter(run=run, path=location.path)
        .exclude(status=Artifact.Status.FAILED)
        .first()
        if location.path
        else None
    )
    if artifact is None:
        raise NotFound(f"No artifact at {raw_path[:200]!r}.", field="path")
    url = downloads.download_url(artifact)
    if url is None:
        state = "is being uploaded" if artifact.blob.status == Blob.Status.PENDING else "is being verified"
        raise Conflict(f"The artifact {state}; it can be downloaded once verified.", code="not_ready", field="path")
    return url


# --- delete -----------------------------------------------------------------------------------------


def delete(user: User, project: Project, raw_path: str) -> dict[str, Any]:
    location = locate(project, raw_path)
    run = _run_files(location, user=user, project=project, action="artifact.upload", field="path")
    target = location.path or None
    exists = Artifact.objects.filter(run=run)
    if target is not None:
        exists = exists.filter(Q(path=target) | Q(path__startswith=f"{target}/"))
    if not exists.exists():
        raise NotFound(f"No artifact at {raw_path[:200]!r}.", field="path")
    services.artifacts_delete(run=run, path=target)
    return {}


# --- views ------------------------------------------------------------------------------------------


@wire.read
def list_handler(call: Call) -> dict[str, Any]:
    return list_files(call.user, call.project, call.msg.get("path"))


@csrf_exempt
@body_limit_exempt  # an artifact is up to ASSAY_MAX_ARTIFACT_BYTES; upload() counts while it reads
def file_view(request: HttpRequest, team: str, project: str, artifact_path: str) -> HttpResponse:
    """``…/mlflow-artifacts/artifacts/<path>``: GET downloads, PUT uploads, DELETE removes.
    Not a ``wire.route``: an upload's body is the file, not a JSON message. The same steps
    as every MLflow endpoint otherwise: the token, its scope, the project by the policy."""
    method = request.method or "GET"
    if method not in ("GET", "PUT", "DELETE"):
        return wire.error_response("ENDPOINT_NOT_FOUND", f"{method} is not served at {request.path}.")
    try:
        user, token = auth.authenticate(request)
        writes = method != "GET"
        # SECURITY: a read token never writes; the project through the policy (404 alike).
        if not token_allows(token.scope, "POST" if writes else "GET"):
            raise wire.MlflowError("This token is read-only; this call needs a write token.", "PERMISSION_DENIED")
        found = access_project(user, team, project)
        if method == "GET":
            return HttpResponseRedirect(download_url(user, found, artifact_path))
        if method == "PUT":
            return wire.json_response(upload(user, found, artifact_path, request, request.headers.get("Content-Type")))
        return wire.json_response(delete(user, found, artifact_path))
    except auth.Unauthenticated as exc:
        return wire.error_response("UNAUTHENTICATED", str(exc), {"WWW-Authenticate": auth.CHALLENGE})
    except wire.MlflowError as exc:
        return wire.error_response(exc.code, exc.message)
    except DomainError as exc:
        mapped = wire.from_domain_error(exc)
        return wire.error_response(mapped.code, mapped.message)


# --- multipart upload (S3 only) -------------------------------------------------------------------

MPU_SALT = "assay.mlflow-mpu"
MPU_MAX_AGE = 7 * 24 * 3600
MAX_PARTS = 10_000  # S3's limit
# The client falls back to one PUT when the refusal starts with this sentence
# (mlflow.exceptions._UnsupportedMultipartUploadException.MESSAGE).
UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"


def multipart_available() -> bool:
    """Multipart uploads go straight to the store with presigned part URLs: S3 only (the
    local store's URLs are this server's, so one PUT through the proxy is as good)."""
    return isinstance(storage.artifact_store(), storage.S3Store)


def server_info_flags() -> dict[str, bool]:
    """What ``server-info`` announces of the artifact proxy."""
    return {"multipart_uploads_enabled": multipart_available()}


def _mpu_target(call: Call) -> tuple[Run, ArtifactLocation]:
    """The run and the file's path: as MLflow's server does, the URL names the folder and
    the message's ``path`` (the client's local file) gives the file's name."""
    location = locate(call.project, call.kwargs.get("artifact_path", ""))
    run = _run_files(location, user=call.user, project=call.project, action="artifact.upload", field="path")
    local = wire.required_string(call.msg, "path")
    name = relative(re.split(r"[/\\]", local)[-1], "path")
    if not name:
        raise Invalid("path must name the file being uploaded.", field="path")
    if not multipart_available():
        raise wire.MlflowError(f"{UNSUPPORTED}: this server keeps artifacts in a local folder.", "NOT_IMPLEMENTED")
    path = f"{location.path}/{name}" if location.path else name
    return run, ArtifactLocation(run=run, path=relative(path, "path"), logged_model=location.logged_model)


def _mpu_token(call: Call, run: Run, location: ArtifactLocation) -> dict[str, Any]:
    """The state of an upload, read back from the ``upload_id`` the client was given: a
    signed token naming the store's upload, its staging key, the run and the path.
    # SECURITY: signed, and checked against the URL's project, run and path, so an id of
    another upload (or a forged one) completes or aborts nothing."""
    raw = call.msg.get("upload_id")
    try:
        state = signing.loads(str(raw), salt=MPU_SALT, max_age=MPU_MAX_AGE) if isinstance(raw, str) else None
    except signing.BadSignature:
        state = None
    if (
        not isinstance(state, dict)
        or state.get("project") != call.project.id
        or state.get("run") != run.id
        or state.get("path") != location.path
    ):
        raise NotFound("No such multipart upload for this path.", field="upload_id")
    storage.check_key(str(state.get("key", "")))
    return state


@wire.write
def mpu_create(call: Call) -> dict[str, Any]:
    run, location = _mpu_target(call)
    count = wire.integer(call.msg, "num_parts", required=True, minimum=1, maximum=MAX_PARTS)
    assert count is not None
    store = storage.artifact_store()
    key = storage.staging_key(new_id())
    upload_id = store.multipart_create(key)
    expires = settings.ASSAY_UPLOAD_URL_EXPIRY_SECONDS
    token = signing.dumps(
        {"project": call.project.id, "run": run.id, "path": location.path, "key": key, "upload": upload_id},
        salt=MPU_SALT,
    )
    credentials = [
        {"url": store.part_url(key, upload_id=upload_id, number=n, size=None, expires=expires), "part_number": n}
        for n in range(1, count + 1)
    ]
    return {"upload_id": token, "credentials": credentials}


@wire.write
def mpu_complete(call: Call) -> dict[str, Any]:
    """Assemble the parts, then read the file back once to hash it (the client sends no
    hash; the bytes never passed through this server) and record it like a proxied upload."""
    run, location = _mpu_target(call)
    state = _mpu_token(call, run, location)
    store = storage.artifact_store()
    key, upload_id = str(state["key"]), str(state["upload"])
    parts = store.multipart_parts(key, upload_id=upload_id)
    if not parts:
        raise Invalid("No part of this upload arrived.", code="upload_incomplete", field="parts")
    expected = call.msg.get("parts")
    if isinstance(expected, list) and len(expected) != len(parts):
        raise Invalid(
            f"The store holds {len(parts)} part(s) of this upload, the request names {len(expected)}.",
            code="upload_incomplete",
            field="parts",
        )
    store.multipart_complete(key, upload_id=upload_id, parts=parts)
    with store.local_copy(key) as local:
        digest, size = storage.sha256_of(local)
    services.artifact_store_received(
        run=run,
        path=location.path,
        staged_key=key,
        sha256=digest,
        size=size,
        media_type=_media_type(None, location.path),
        kind=Artifact.Kind.MODEL if location.logged_model is not None else Artifact.Kind.FILE,
    )
    return {}


@wire.write
def mpu_abort(call: Call) -> dict[str, Any]:
    run, location = _mpu_target(call)
    state = _mpu_token(call, run, location)
    storage.artifact_store().multipart_abort(str(state["key"]), upload_id=str(state["upload"]))
    return {}
