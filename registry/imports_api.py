"""The import API of registered models (``assay import``): one model with its versions and
aliases per call (registry/imports.py)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project
from accounts.models import User
from core.validation import body_object
from registry import imports

FIELDS = {"source", "source_id", "name", "description", "tags", "versions", "aliases", "created_at"}

MODEL_IMPORT_IN = inline_serializer(
    "ModelImportIn",
    {
        "source": serializers.ChoiceField(choices=["mlflow", "wandb", "neptune"]),
        "source_id": serializers.CharField(max_length=256, help_text="The model's name in its source."),
        "name": serializers.CharField(max_length=64, help_text="The model's name in Assay (lower case)."),
        "description": serializers.CharField(required=False, allow_blank=True),
        "tags": serializers.DictField(child=serializers.CharField(), required=False),
        "created_at": serializers.DateTimeField(required=False),
        "versions": serializers.ListField(
            child=inline_serializer(
                "ModelImportVersionIn",
                {
                    "source_id": serializers.CharField(max_length=256),
                    "version": serializers.IntegerField(min_value=1, help_text="The source's number (kept when free)."),
                    "run": serializers.CharField(help_text="The imported run's Assay id."),
                    "artifact_path": serializers.CharField(help_text="The version's folder or file in that run."),
                    "description": serializers.CharField(required=False, allow_blank=True),
                    "tags": serializers.DictField(child=serializers.CharField(), required=False),
                    "created_at": serializers.DateTimeField(required=False),
                    "author": serializers.CharField(required=False, allow_blank=True),
                    "stage": serializers.CharField(
                        required=False, help_text="MLflow's stage: kept as tag mlflow.stage."
                    ),
                },
            ),
            max_length=imports.MAX_VERSIONS,
            required=False,
        ),
        "aliases": serializers.DictField(child=serializers.IntegerField(min_value=1), required=False),
    },
)

MODEL_IMPORT_OUT = inline_serializer(
    "ModelImport",
    {
        "id": serializers.CharField(),
        "name": serializers.CharField(),
        "created": serializers.BooleanField(),
        "versions": serializers.ListField(
            child=serializers.DictField(),
            help_text="{version, number, id, result: created|already|same_content|skipped, reason?}",
        ),
        "aliases": serializers.ListField(
            child=serializers.DictField(), help_text="{alias, version, number?, result: set|already|skipped, reason?}"
        ),
    },
)


class ModelImportView(APIView):
    @extend_schema(
        request=MODEL_IMPORT_IN,
        responses={201: MODEL_IMPORT_OUT, 200: MODEL_IMPORT_OUT},
        summary="Import a registered model with its versions and aliases (maintainers; protected aliases: admins)",
    )
    def post(self, request: Request, team: str, project: str) -> Response:
        assert isinstance(request.user, User)  # IsAuthenticated ran before the view
        proj = access_project(request.user, team, project, action="model.import")
        body: dict[str, Any] = body_object(request.data, FIELDS, not_null=FIELDS)
        for required in ("source", "source_id", "name"):
            if required not in body:
                body[required] = None  # the service names the missing field
        result = imports.model_import(user=request.user, project=proj, **body)
        out = {
            "id": result.repository.pk,
            "name": result.repository.name,
            "created": result.created,
            "versions": result.versions,
            "aliases": result.aliases,
        }
        return Response(out, status=status.HTTP_201_CREATED if result.created else status.HTTP_200_OK)
