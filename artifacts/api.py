"""Artifacts REST API (thin): list, declare (upload URLs), complete, download URL."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from artifacts import downloads, paths, selectors, services
from artifacts.access import access_artifact
from artifacts.models import Artifact
from artifacts.presenters import artifact_out
from core.api import StrictSerializer
from core.errors import Conflict, Invalid
from core.openapi import NOT_BLANK, string_query
from core.validation import refuse_unknown_fields
from experiments.access import access_run


class FileIn(StrictSerializer):
    path = serializers.CharField(help_text="Relative name, e.g. model/weights.safetensors (≤ 1024 characters).")
    size = serializers.IntegerField(
        min_value=0, max_value=settings.ASSAY_MAX_ARTIFACT_BYTES, help_text="Bytes (ASSAY_MAX_ARTIFACT_BYTES)"
    )
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", help_text="64 hex characters.")
    media_type = serializers.RegexField(
        f"^({services.MEDIA_TYPE_PATTERN})?$",
        max_length=services.MAX_MEDIA_TYPE,
        required=False,
        allow_blank=True,
        help_text="A hint; the worker detects the real type.",
    )


class DeclareIn(StrictSerializer):
    kind = serializers.ChoiceField(choices=Artifact.Kind.choices, required=False, default="file")
    files = serializers.ListField(
        child=FileIn(),
        min_length=1,
        max_length=services.MAX_FILES_PER_DECLARE,
        help_text="A directory is one manifest.",
    )


ARTIFACT_FIELDS: dict[str, Any] = {
    "id": serializers.CharField(),
    "path": serializers.CharField(),
    "size": serializers.IntegerField(),
    "sha256": serializers.CharField(),
    "media_type": serializers.CharField(),
    "kind": serializers.CharField(),
    "status": serializers.ChoiceField(choices=Artifact.Status.choices),
    "reason": serializers.CharField(),
    "findings": serializers.JSONField(),
    "preview": serializers.JSONField(),
    "created_at": serializers.DateTimeField(),
    "updated_at": serializers.DateTimeField(),
}
ARTIFACT_OUT = inline_serializer("Artifact", ARTIFACT_FIELDS)
UPLOAD_FIELDS: dict[str, Any] = {
    "artifact": inline_serializer("Artifact", ARTIFACT_FIELDS),
    "upload": serializers.JSONField(
        allow_null=True,
        help_text="null: the server has the content, nothing to send. Else {method, url, headers, done} for "
        "one PUT, or {multipart: true, part_size, parts: [{number, size, url}], parts_done, headers}.",
    ),
}


class RunArtifactListView(APIView):
    @extend_schema(
        parameters=[
            string_query(
                "path",
                pattern=NOT_BLANK,
                description="Only this path, or the artifacts under this folder (an artifact path: see the POST)",
            )
        ],
        responses=inline_serializer("Artifact", ARTIFACT_FIELDS, many=True),
        summary="A run's artifacts, with processing status, findings and previews",
    )
    def get(self, request: Request, run_id: str) -> Response:
        run = access_run(request.user, run_id, action="artifact.view")
        prefix = request.query_params.get("path")
        if prefix is not None:
            try:
                prefix = paths.normalize_path(prefix.rstrip("/"))
            except paths.PathError as exc:
                raise Invalid(f"Refused path: {exc}", code="invalid_path", field="path") from None
        return Response([artifact_out(a) for a in selectors.artifacts_of(run, path=prefix)])

    @extend_schema(
        request=DeclareIn,
        responses={
            201: inline_serializer(
                "ArtifactDeclared", {"artifacts": inline_serializer("ArtifactUpload", UPLOAD_FIELDS, many=True)}
            )
        },
        summary="Declare files to upload; answers presigned upload URLs",
        description=(
            "Declare a file or a whole directory (a manifest of files). For each file the answer says what to "
            f"send: nothing when the project already holds the content (same sha256), one PUT up to "
            f"{settings.ASSAY_MULTIPART_THRESHOLD} bytes, else a multipart upload whose parts are PUT in parallel. "
            "Send the parts with `Content-Type: application/octet-stream` and exactly the signed size, then call "
            "`complete`. Declaring the same path and content again resumes: only the missing parts are listed. "
            f"Limits: {services.MAX_FILES_PER_DECLARE} files per call, {settings.ASSAY_MAX_ARTIFACT_BYTES} bytes "
            "per file (413 beyond), paths relative without `..`, `.`, empty segments, backslashes, control "
            "characters, `;?#` or drive letters, ≤ 1024 characters."
        ),
    )
    def post(self, request: Request, run_id: str) -> Response:
        run = access_run(request.user, run_id, action="artifact.upload")
        body = request.data
        if not isinstance(body, dict):
            raise Invalid("The body must be a JSON object {kind, files}.")
        refuse_unknown_fields(body, {"kind", "files"})
        files, kind = services.check_manifest(body.get("files"), body.get("kind", "file"))
        declared = services.artifact_declare(run=run, files=files, kind=kind)
        return Response(
            {"artifacts": [{"artifact": artifact_out(a), "upload": upload} for a, upload in declared]},
            status=status.HTTP_201_CREATED,
        )


class ArtifactCompleteView(APIView):
    @extend_schema(
        request=None,
        responses=ARTIFACT_OUT,
        summary="Say an upload is complete; queues verification and processing",
        description="400 `upload_incomplete` names the missing bytes or parts. Completing again is harmless.",
    )
    def post(self, request: Request, run_id: str, artifact_id: str) -> Response:
        artifact = access_artifact(request.user, run_id, artifact_id, action="artifact.upload")
        return Response(artifact_out(services.artifact_complete(artifact=artifact)))


class ArtifactDownloadView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "ArtifactDownload",
            {"url": serializers.URLField(), "expires_in": serializers.IntegerField(), "artifact": ARTIFACT_OUT},
        ),
        summary="A short-lived download URL for an artifact's bytes",
        description="409 `not_ready` while the content is not verified. HTML and SVG always download as attachments.",
    )
    def get(self, request: Request, run_id: str, artifact_id: str) -> Response:
        artifact = access_artifact(request.user, run_id, artifact_id, action="artifact.view")
        url = downloads.download_url(artifact)
        if url is None:
            raise Conflict(
                f"The artifact is {artifact.status}; it can be downloaded once verified.",
                code="not_ready",
            )
        return Response(
            {"url": url, "expires_in": settings.ASSAY_DOWNLOAD_URL_EXPIRY_SECONDS, "artifact": artifact_out(artifact)}
        )
