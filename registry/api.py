"""Registry REST API (thin: load through the policy, validate in the services, present)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project
from accounts.models import User
from core.api import NameField
from core.errors import Forbidden, Invalid, NotFound
from core.openapi import NAME_PATTERN, VERSION_ONLY_PATTERN, VERSION_REF_PATTERN, or_empty, string_query
from core.validation import body_object
from experiments.access import access_run
from registry import refs, reproduce, selectors, services
from registry.access import access_model, access_version
from registry.models import Alias, AliasMove, ModelRepository, ModelVersion

MAX_LIST = 1000


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated ran before the view
    return request.user


def model_url(repository: ModelRepository) -> str:
    project = repository.project
    return f"{settings.PUBLIC_URL}/{project.team.name}/{project.name}/models/{repository.name}/"


def model_out(repository: ModelRepository) -> dict[str, Any]:
    aliases = {a.name: a.version.number for a in selectors.aliases_of(repository)}
    count, latest = selectors.version_count_and_latest(repository)
    return {
        "name": repository.name,
        "project": repository.project.path,
        "description": repository.description,
        "tags": repository.tags,
        "protected_aliases": repository.protected_aliases,
        "aliases": aliases,
        "versions": count,
        "latest": latest,
        "created_at": repository.created_at,
        "updated_at": repository.updated_at,
        "url": model_url(repository),
    }


def version_out(version: ModelVersion, *, full: bool = True) -> dict[str, Any]:
    code = dict(version.code)
    environment = dict(version.environment)
    if not full:
        code.pop("diff", None)
        environment["packages"] = len(environment.get("packages") or {})
    return {
        "model": version.repository.name,
        "project": version.repository.project.path,
        "number": version.number,
        "content_hash": version.content_hash,
        "url": selectors.version_url(version),
        "run": {
            "id": version.source_run_ref,
            "name": version.source_run_name,
            "experiment": version.source_experiment,
            "exists": version.source_run_id is not None,
        },
        "binary": {
            "sha256": version.binary_sha256,
            "size": version.binary_size,
            "path": version.binary_path,
            "artifact": version.artifact_id,
        },
        "code": code,
        "config": version.config,
        "params": version.params,
        "datasets": version.datasets,
        "environment": environment,
        "metrics": version.metrics,
        "parents": [
            {"model": p.repository.name, "number": p.number, "content_hash": p.content_hash}
            for p in version.parents.select_related("repository").order_by("repository__name", "number")
        ],
        "aliases": sorted(a.name for a in version.aliases.all()),
        "author": version.author_label or None,
        "created_at": version.created_at,
        "description": version.description,
        "tags": version.tags,
    }


def move_out(move: AliasMove) -> dict[str, Any]:
    return {
        "alias": move.alias,
        "from": move.from_version.number if move.from_version is not None else None,
        "to": move.to_version.number,
        "by": move.actor_label or None,
        "at": move.created_at,
        "reason": move.reason,
        "review_request": move.review_request_id,
    }


def alias_out(alias: Alias, repository: ModelRepository) -> dict[str, Any]:
    return {
        "alias": alias.name,
        "protected": alias.name in repository.protected_aliases,
        "version": version_out(alias.version, full=False),
        "log": [move_out(m) for m in selectors.alias_log(repository, alias.name)],
    }


MODEL_OUT = inline_serializer(
    "Model",
    {
        "name": serializers.CharField(),
        "project": serializers.CharField(),
        "description": serializers.CharField(),
        "tags": serializers.DictField(child=serializers.CharField()),
        "protected_aliases": serializers.ListField(child=serializers.CharField()),
        "aliases": serializers.DictField(child=serializers.IntegerField()),
        "versions": serializers.IntegerField(),
        "latest": serializers.IntegerField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
        "url": serializers.URLField(),
    },
)
VERSION_OUT = inline_serializer(
    "ModelVersion",
    {
        "model": serializers.CharField(),
        "project": serializers.CharField(),
        "number": serializers.IntegerField(),
        "content_hash": serializers.CharField(),
        "url": serializers.URLField(),
        "run": serializers.JSONField(),
        "binary": serializers.JSONField(),
        "code": serializers.JSONField(),
        "config": serializers.JSONField(),
        "params": serializers.DictField(child=serializers.CharField()),
        "datasets": serializers.JSONField(),
        "environment": serializers.JSONField(),
        "metrics": serializers.JSONField(),
        "parents": serializers.JSONField(),
        "aliases": serializers.ListField(child=serializers.CharField()),
        "author": serializers.CharField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "description": serializers.CharField(),
        "tags": serializers.DictField(child=serializers.CharField()),
    },
)


@extend_schema_field(
    {
        "oneOf": [
            {"type": "integer", "minimum": 1, "maximum": 999_999_999},
            {"type": "string", "pattern": VERSION_ONLY_PATTERN},
        ]
    }
)
class VersionArgField(serializers.JSONField):
    """Documentation: a version number, or a reference to a version (not an alias)."""


MODEL_IN = inline_serializer(
    "ModelIn",
    {
        "name": NameField(),
        "description": serializers.CharField(required=False),
        "tags": serializers.DictField(child=serializers.CharField(), required=False),
        "protected_aliases": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
MODEL_PATCH = inline_serializer(
    "ModelPatch",
    {
        "description": serializers.CharField(required=False),
        "tags": serializers.DictField(child=serializers.CharField(), required=False),
        "protected_aliases": serializers.ListField(
            child=serializers.CharField(), required=False, help_text="Changing it needs the admin role."
        ),
    },
)
REGISTER_IN = inline_serializer(
    "ModelVersionRegister",
    {
        "run": serializers.CharField(help_text="The source run's id (same project)."),
        "artifact": serializers.CharField(help_text="Path or id of an uploaded artifact of that run: the binary."),
        "datasets": serializers.ListField(
            child=serializers.JSONField(),
            required=False,
            help_text="Names of datasets the run logged, or fingerprints {name, uri, path, digest, size, rows}. "
            "Default: every dataset the run logged.",
        ),
        "parents": serializers.ListField(
            child=serializers.CharField(),
            required=False,
            help_text="vN, alias, hash prefix or model@ref (same project).",
        ),
        "description": serializers.CharField(required=False),
        "tags": serializers.DictField(child=serializers.CharField(), required=False),
        "aliases": serializers.ListField(child=serializers.CharField(), required=False),
        "reason": serializers.CharField(required=False, help_text="Why the aliases move (logged)."),
    },
)
VERSION_PATCH = inline_serializer(
    "ModelVersionPatch",
    {
        "description": serializers.CharField(required=False),
        "tags": serializers.DictField(child=serializers.CharField(), required=False),
    },
)
ALIAS_OUT = inline_serializer(
    "ModelAlias",
    {
        "alias": serializers.CharField(),
        "protected": serializers.BooleanField(),
        "version": VERSION_OUT,
        "log": serializers.JSONField(),
    },
)
ALIAS_IN = inline_serializer(
    "ModelAliasMove",
    {
        "version": VersionArgField(help_text="n, vN or a hash prefix"),
        "reason": serializers.CharField(required=False),
    },
)


def _filter_params(request: Request) -> tuple[str, str | None]:
    filter_text = request.query_params.get("filter", "")
    alias = request.query_params.get("alias") or None
    if alias is not None:
        alias = services.check_alias_name(alias, field="alias")
    return filter_text, alias


class ModelListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "filter",
                str,
                description="Keep models having a version that matches, in the run query language: "
                "metrics.<key>, params.<key>, tags.<key>, attributes.name (e.g. `metrics.acc > 0.9`)",
            ),
            string_query("alias", pattern=or_empty(NAME_PATTERN), description="Keep models having this alias"),
        ],
        responses=type(MODEL_OUT)(many=True),
        summary="Models of a project",
    )
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="model.view")
        filter_text, alias = _filter_params(request)
        models = selectors.models_search(proj, filter_text=filter_text, alias=alias, limit=MAX_LIST)
        return Response([model_out(m) for m in models])

    @extend_schema(request=MODEL_IN, responses={201: MODEL_OUT}, summary="Create a model (maintainers)")
    def post(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="model.create")
        body = body_object(
            request.data, {"name", "description", "tags", "protected_aliases"}, not_null={"protected_aliases"}
        )
        repository = services.model_create(
            user=_user(request),
            project=proj,
            name=body.get("name"),
            description=body.get("description", ""),
            tags=body.get("tags"),
            protected_aliases=body.get("protected_aliases"),
        )
        return Response(model_out(repository), status=status.HTTP_201_CREATED)


class ModelDetailView(APIView):
    @extend_schema(responses=MODEL_OUT, summary="A model: aliases, protection, version count")
    def get(self, request: Request, team: str, project: str, model: str) -> Response:
        return Response(model_out(access_model(request.user, team, project, model)))

    @extend_schema(
        request=MODEL_PATCH, responses=MODEL_OUT, summary="Edit a model's description, tags, protected aliases"
    )
    def patch(self, request: Request, team: str, project: str, model: str) -> Response:
        repository = access_model(request.user, team, project, model, action="model.update")
        body = body_object(request.data, {"description", "tags", "protected_aliases"}, not_null={"protected_aliases"})
        repository = services.model_update(
            user=_user(request),
            repository=repository,
            description=body.get("description"),
            tags=body.get("tags"),
            protected_aliases=body.get("protected_aliases"),
        )
        return Response(model_out(repository))


class VersionListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter(
                "filter", str, description="Run query language over metrics, params, tags of the versions"
            ),
            string_query("alias", pattern=or_empty(NAME_PATTERN), description="Only the version carrying this alias"),
        ],
        responses=type(VERSION_OUT)(many=True),
        summary="Versions of a model, newest first (code diffs and package lists left out)",
    )
    def get(self, request: Request, team: str, project: str, model: str) -> Response:
        repository = access_model(request.user, team, project, model)
        filter_text, alias = _filter_params(request)
        versions = selectors.versions_search(repository.project, filter_text=filter_text, model=repository, alias=alias)
        return Response([version_out(v, full=False) for v in versions[:MAX_LIST]])

    @extend_schema(
        request=REGISTER_IN,
        responses={201: VERSION_OUT},
        summary="Register a version from a run (maintainers)",
        description="409 `version_exists` when the same ingredients are already a version; 409 "
        "`protected_alias` when `aliases` names a protected alias; 409 `artifact_not_ready` for an artifact "
        "whose bytes were not uploaded. Nothing is written on an error.",
    )
    def post(self, request: Request, team: str, project: str, model: str) -> Response:
        repository = access_model(request.user, team, project, model, action="model.register")
        body = body_object(
            request.data, {"run", "artifact", "datasets", "parents", "description", "tags", "aliases", "reason"}
        )
        run_id = body.get("run")
        if not isinstance(run_id, str) or not run_id:
            raise Invalid("run must be the id of a run of this project.", field="run")
        try:
            run = access_run(request.user, run_id, action="run.view")
        except (NotFound, Forbidden) as exc:  # alike, and naming the field
            raise NotFound("No such run in this project.", code="not_found", field="run") from exc
        version = services.version_register(
            user=_user(request),
            repository=repository,
            run=run,
            artifact=body.get("artifact"),
            datasets=body.get("datasets"),
            parents=body.get("parents"),
            description=body.get("description", ""),
            tags=body.get("tags"),
            aliases=body.get("aliases"),
            reason=body.get("reason"),
        )
        return Response(version_out(version), status=status.HTTP_201_CREATED)


class VersionDetailView(APIView):
    @extend_schema(
        responses=VERSION_OUT, summary="A version: every ingredient (version is n, vN, alias or hash prefix)"
    )
    def get(self, request: Request, team: str, project: str, model: str, version: str) -> Response:
        return Response(version_out(access_version(request.user, team, project, model, version)))

    @extend_schema(
        request=VERSION_PATCH, responses=VERSION_OUT, summary="Edit a version's description or tags (logged)"
    )
    def patch(self, request: Request, team: str, project: str, model: str, version: str) -> Response:
        found = access_version(request.user, team, project, model, version, action="model.update")
        body = body_object(request.data, {"description", "tags"})
        updated = services.version_update(
            user=_user(request),
            version=found,
            description=body.get("description"),
            tags=body.get("tags"),
        )
        return Response(version_out(updated))


class VersionReproduceView(APIView):
    @extend_schema(
        responses=OpenApiResponse(OpenApiTypes.OBJECT, description="The manifest itself (not wrapped)"),
        summary="What is needed to rebuild a version (the SDK's `assay reproduce` reads it)",
    )
    def get(self, request: Request, team: str, project: str, model: str, version: str) -> Response:
        found = access_version(request.user, team, project, model, version)
        return Response(reproduce.manifest(found))


class VersionDownloadView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "ModelVersionDownload",
            {
                "url": serializers.URLField(),
                "expires_in": serializers.IntegerField(),
                "sha256": serializers.CharField(),
            },
        ),
        summary="A short-lived download URL for a version's binary",
        description="409 `not_ready` while the artifact's bytes are not verified; 410 `gone` when the run and its "
        "artifact were deleted.",
    )
    def get(self, request: Request, team: str, project: str, model: str, version: str) -> Response:
        found = access_version(request.user, team, project, model, version)
        return Response(
            {
                "url": selectors.version_download_url(found),
                "expires_in": settings.ASSAY_DOWNLOAD_URL_EXPIRY_SECONDS,
                "sha256": found.binary_sha256,
                "path": found.binary_path,
                "size": found.binary_size,
            }
        )


class AliasView(APIView):
    @extend_schema(responses=ALIAS_OUT, summary="The version an alias points to, and the alias's log")
    def get(self, request: Request, team: str, project: str, model: str, alias: str) -> Response:
        repository = access_model(request.user, team, project, model)
        found = selectors.alias_of(repository, alias.lower())
        if found is None:
            raise NotFound(f"Model {repository.name} has no alias {alias!r}.", code="not_found", field="alias")
        return Response(alias_out(found, repository))

    @extend_schema(
        request=ALIAS_IN,
        responses=ALIAS_OUT,
        summary="Move (or create) an unprotected alias",
        description="A protected alias answers 409 `protected_alias`: it moves only by merging a review request.",
    )
    def put(self, request: Request, team: str, project: str, model: str, alias: str) -> Response:
        repository = access_model(request.user, team, project, model, action="alias.move")
        body = body_object(request.data, {"version", "reason"})
        moved = services.alias_move_direct(
            user=_user(request),
            repository=repository,
            alias=alias,
            version=body.get("version"),
            reason=body.get("reason"),
        )
        return Response(alias_out(moved, repository))


class DiffView(APIView):
    @extend_schema(
        parameters=[
            string_query(
                "a",
                pattern=or_empty(VERSION_REF_PATTERN),
                description="From: vN, alias, hash prefix (default: b's first parent, else b-1)",
            ),
            string_query(
                "b", pattern=or_empty(VERSION_REF_PATTERN), description="To: vN, alias, hash prefix (default: latest)"
            ),
        ],
        responses=inline_serializer(
            "ModelDiff", {"params": serializers.JSONField(), "metrics": serializers.JSONField()}
        ),
        summary="Diff two versions ingredient by ingredient",
    )
    def get(self, request: Request, team: str, project: str, model: str) -> Response:
        repository = access_model(request.user, team, project, model)
        b = _version_param(repository, request.query_params.get("b"), "b")
        raw_a = request.query_params.get("a")
        a = _version_param(repository, raw_a, "a") if raw_a else (selectors.diff_base(b) or b)
        return Response(selectors.version_diff(a, b))


def _version_param(repository: ModelRepository, raw: str | None, field: str) -> ModelVersion:
    try:
        ref = refs.parse_version_arg(raw) if raw else refs.VersionRef("latest", "latest")
    except refs.RefError as exc:
        raise Invalid(str(exc), field=field) from None
    return selectors.resolve_version(repository, ref, field=field)
