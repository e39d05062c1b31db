"""The import API of runs (``assay import``, sdk/src/assay/importers/writer.py): create a run
as its source system had it, once; mark its import complete; look up what is imported.

Points go through the ordinary log endpoint (``POST /api/v1/runs/{id}/log/``) with batch ids
the importer derives from the source, so a resumed import re-sends nothing the server
holds: the create answer lists the batch ids the run has already.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project, can
from accounts.models import User
from core.api import JSONObjectField, StrictCharField, StrictRegexField, StrictSerializer
from core.errors import NotFound
from core.validation import body_object
from experiments import services
from experiments.access import access_run
from experiments.models import LogBatch, Run, RunStatus
from experiments.serializers import ParamsField, RunInfoField, TagsField

MAX_LOOKUP = 1_000


class RunImportIn(StrictSerializer):
    source = serializers.ChoiceField(choices=services.IMPORT_SOURCES)  # type: ignore[assignment]  # the metaclass takes declared fields off the class
    source_id = StrictCharField(max_length=services.MAX_SOURCE_ID, help_text="The run's id in its source system.")
    experiment = StrictCharField(max_length=128, required=False, default="default")
    name = StrictCharField(max_length=128, required=False, allow_blank=True, default="")
    run_id = StrictRegexField(
        r"^[0-9a-f]{32}$",
        required=False,
        allow_null=True,
        default=None,
        help_text="Kept as the Assay run id when no run has it (MLflow's 32-hex ids).",
    )
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False, default=RunStatus.FINISHED)
    start_time = serializers.DateTimeField(required=False, allow_null=True, default=None)
    end_time = serializers.DateTimeField(required=False, allow_null=True, default=None)
    author = StrictCharField(
        max_length=150,
        required=False,
        allow_blank=True,
        default="",
        help_text="The source's user name: the run's author when a user of that name holds a role on the "
        "project, else kept as source_author.",
    )
    params = ParamsField(required=False, default=dict, help_text="At most 1,000; more through the log endpoint.")
    tags = TagsField(required=False, default=dict)
    config = JSONObjectField(required=False, default=dict)
    notes = StrictCharField(max_length=100_000, required=False, allow_blank=True, default="")
    info = RunInfoField(required=False, default=dict)


RUN_IMPORT_OUT = inline_serializer(
    "RunImport",
    {
        "id": serializers.CharField(),
        "created": serializers.BooleanField(help_text="False: imported before (nothing was written)."),
        "complete": serializers.BooleanField(help_text="The import of the run finished before."),
        "id_kept": serializers.BooleanField(help_text="The source's run id is the Assay run id."),
        "batches": serializers.ListField(
            child=serializers.CharField(), help_text="Batch ids the run holds already (an unfinished import)."
        ),
    },
)


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated ran before the view
    return request.user


def run_import_out(result: services.RunImport) -> dict[str, Any]:
    run = result.run
    complete = run.imported_at is not None
    batches: list[str] = []
    if not complete and not result.created:
        batches = list(LogBatch.objects.filter(run=run).order_by("batch_id").values_list("batch_id", flat=True))
    return {
        "id": run.pk,
        "created": result.created,
        "complete": complete,
        "id_kept": result.id_kept,
        "batches": batches,
    }


class RunImportView(APIView):
    @extend_schema(
        request=RunImportIn,
        responses={201: RUN_IMPORT_OUT, 200: RUN_IMPORT_OUT},
        summary="Import a run from MLflow, W&B or Neptune (200 with the existing run when imported before)",
    )
    def post(self, request: Request, team: str, project: str) -> Response:
        user = _user(request)
        proj = access_project(user, team, project, action="run.import")
        data = RunImportIn(data=request.data)
        data.is_valid(raise_exception=True)
        result = services.run_import(user=user, project=proj, **data.validated_data)
        code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
        return Response(run_import_out(result), status=code)


class RunImportCompleteView(APIView):
    @extend_schema(
        request=None,
        responses=inline_serializer(
            "RunImportComplete", {"id": serializers.CharField(), "complete": serializers.BooleanField()}
        ),
        summary="Mark an imported run's import finished (its points and files are in)",
    )
    def post(self, request: Request, team: str, project: str, run_id: str) -> Response:
        proj = access_project(request.user, team, project, action="run.import")
        run = access_run(request.user, run_id, action="run.import")
        if run.project_id != proj.pk:
            # SECURITY: a run of another project is "not found" here, whatever the caller may see.
            raise NotFound()
        run = services.run_import_complete(run=run)
        return Response({"id": run.pk, "complete": True})


class RunImportLookupIn(StrictSerializer):
    source = serializers.ChoiceField(choices=services.IMPORT_SOURCES)  # type: ignore[assignment]  # the metaclass takes declared fields off the class
    source_ids = serializers.ListField(
        child=StrictCharField(max_length=services.MAX_SOURCE_ID), min_length=1, max_length=MAX_LOOKUP
    )


class RunImportLookupView(APIView):
    @extend_schema(
        request=RunImportLookupIn,
        responses=inline_serializer(
            "RunImportLookup",
            {
                "found": serializers.DictField(child=serializers.DictField(), help_text="source_id: {id, complete}"),
                "may": serializers.DictField(
                    child=serializers.BooleanField(),
                    help_text="What the caller may import here: runs, models, protected_aliases.",
                ),
            },
        ),
        summary="Which of these source runs the project holds, and what the caller may import",
    )
    def post(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="run.view")
        body = body_object(request.data, {"source", "source_ids"}, not_null={"source", "source_ids"})
        data = RunImportLookupIn(data=body)
        data.is_valid(raise_exception=True)
        rows = Run.objects.filter(
            project=proj, source=data.validated_data["source"], source_id__in=data.validated_data["source_ids"]
        ).values_list("source_id", "pk", "imported_at")
        may = {
            "runs": can(request.user, "run.import", proj, annotated=proj),
            "models": can(request.user, "model.import", proj, annotated=proj),
            "protected_aliases": can(request.user, "alias.import_protected", proj, annotated=proj),
        }
        return Response({"found": {sid: {"id": pk, "complete": at is not None} for sid, pk, at in rows}, "may": may})


__all__ = ["RunImportCompleteView", "RunImportLookupView", "RunImportView"]
