"""Reports REST API: /api/v1/projects/{team}/{project}/reports/… (thin: load through
reports.access, write through reports.services, present with reports.presenters)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.plumbing import build_array_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project
from accounts.models import User
from core import paging
from core.errors import Invalid, NotFound
from core.openapi import int_query
from core.validation import body_object
from reports import presenters, selectors, services
from reports.access import access_report
from reports.models import ReportLink

MAX_PAGE = 100
DEFAULT_PAGE = 50
OBJECT = OpenApiTypes.OBJECT
OBJECTS = OpenApiResponse(build_array_type({"type": "object", "additionalProperties": {}}), description="A JSON array")
PAGE_PARAMETERS = [
    int_query("limit", lo=1, hi=MAX_PAGE, default=DEFAULT_PAGE),
    int_query("offset", lo=0, hi=paging.MAX_OFFSET, default=0),
]
REPORT_IN = inline_serializer(
    "ReportIn",
    {
        "title": serializers.CharField(max_length=services.MAX_TITLE),
        "body": serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=services.MAX_BODY,
            help_text="Markdown with live blocks; @mentions notify",
        ),
        "message": serializers.CharField(
            required=False, allow_blank=True, max_length=services.MAX_MESSAGE, help_text="Why"
        ),
    },
)
REPORT_PATCH = inline_serializer(
    "ReportPatch",
    {
        "title": serializers.CharField(required=False, max_length=services.MAX_TITLE),
        "body": serializers.CharField(required=False, allow_blank=True, max_length=services.MAX_BODY),
        "message": serializers.CharField(required=False, allow_blank=True, max_length=services.MAX_MESSAGE),
    },
)
FREEZE_IN = inline_serializer(
    "ReportFreezeIn",
    {"message": serializers.CharField(required=False, allow_blank=True, max_length=services.MAX_MESSAGE)},
)
COMMENT_IN = inline_serializer("ReportCommentIn", {"body": serializers.CharField(max_length=services.MAX_COMMENT)})
LINK_IN = inline_serializer(
    "ReportLinkIn",
    {
        "review_request": serializers.IntegerField(required=False, min_value=1, help_text="A request's number"),
        "model": serializers.CharField(required=False),
        "version": serializers.CharField(required=False, help_text="vN or a number"),
    },
)


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated ran before the view
    return request.user


def _saved(saved: services.Saved) -> dict[str, Any]:
    data = presenters.report_out(saved.report)
    data["unreachable_mentions"] = saved.unreachable_mentions
    return data


class ReportListView(APIView):
    @extend_schema(
        parameters=PAGE_PARAMETERS,
        responses=inline_serializer(
            "ReportPage",
            {"count": serializers.IntegerField(), "results": serializers.ListField(child=serializers.DictField())},
        ),
        summary="Reports of a project, last edited first",
    )
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="report.view")
        offset, limit = paging.offset_limit(request.query_params, default_limit=DEFAULT_PAGE, max_limit=MAX_PAGE)
        qs = selectors.reports_of(proj)
        return Response(
            {"count": qs.count(), "results": [presenters.report_out(r) for r in qs[offset : offset + limit]]}
        )

    @extend_schema(request=REPORT_IN, responses={201: OBJECT}, summary="Write a report (writers)")
    def post(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="report.edit")
        body = body_object(request.data, {"title", "body", "message"}, not_null={"title", "body", "message"})
        if "title" not in body:
            raise Invalid("title is required.", field="title")
        saved = services.report_create(
            user=_user(request),
            project=proj,
            title=body["title"],
            body=body.get("body", ""),
            message=body.get("message", ""),
        )
        return Response(_saved(saved), status=status.HTTP_201_CREATED)


class ReportDetailView(APIView):
    @extend_schema(responses=OBJECT, summary="A report (its newest revision)")
    def get(self, request: Request, team: str, project: str, report: int) -> Response:
        return Response(presenters.report_out(access_report(request.user, team, project, report)))

    @extend_schema(request=REPORT_PATCH, responses=OBJECT, summary="Edit: a new revision (writers)")
    def patch(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report, action="report.edit")
        body = body_object(request.data, {"title", "body", "message"}, not_null={"title", "body", "message"})
        saved = services.report_update(
            user=_user(request),
            report=found,
            title=body.get("title"),
            body=body.get("body"),
            message=body.get("message", ""),
        )
        return Response(_saved(saved))

    @extend_schema(request=None, responses={204: None}, summary="Delete (its author or maintainers)")
    def delete(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report, action="report.delete")
        services.report_delete(user=_user(request), report=found)
        return Response(status=status.HTTP_204_NO_CONTENT)


class RevisionListView(APIView):
    @extend_schema(responses=OBJECTS, summary="Revisions, newest first (author, message, frozen)")
    def get(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report)
        return Response([presenters.revision_out(r) for r in selectors.revisions_of(found)])


class RevisionDetailView(APIView):
    @extend_schema(responses=OBJECT, summary="One revision, with its body and (frozen) snapshot")
    def get(self, request: Request, team: str, project: str, report: int, revision: int) -> Response:
        found = access_report(request.user, team, project, report)
        return Response(presenters.revision_out(selectors.revision_of(found, revision), with_body=True))


class RevisionDiffView(APIView):
    @extend_schema(
        parameters=[int_query("from", lo=1, hi=10**9 - 1, default=1), int_query("to", lo=1, hi=10**9 - 1, default=1)],
        responses=OBJECT,
        summary="Unified diff between two revisions (difflib)",
    )
    def get(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report)
        latest = found.revision_count
        a_number = paging.int_param(request.query_params, "from", default=max(latest - 1, 1), lo=1, hi=10**9 - 1)
        b_number = paging.int_param(request.query_params, "to", default=latest, lo=1, hi=10**9 - 1)
        a = selectors.revision_of(found, a_number, field="from")
        b = selectors.revision_of(found, b_number, field="to")
        lines = selectors.revision_diff(a, b)
        return Response({"from": a.number, "to": b.number, "lines": [{"kind": x.kind, "text": x.text} for x in lines]})


class FreezeView(APIView):
    @extend_schema(request=FREEZE_IN, responses={201: OBJECT}, summary="Freeze: store the blocks' data now (writers)")
    def post(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report, action="report.edit")
        body = body_object(request.data or {}, {"message"}, not_null={"message"})
        revision = services.report_freeze(user=_user(request), report=found, message=body.get("message", ""))
        return Response(presenters.revision_out(revision, with_body=True), status=status.HTTP_201_CREATED)


class CommentListView(APIView):
    @extend_schema(responses=OBJECTS, summary="Comments, oldest first")
    def get(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report)
        return Response([presenters.comment_out(c) for c in selectors.comments_of(found)])

    @extend_schema(request=COMMENT_IN, responses={201: OBJECT}, summary="Comment (markdown; @mentions notify)")
    def post(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report, action="report.edit")
        body = body_object(request.data, {"body"}, not_null={"body"})
        if "body" not in body:
            raise Invalid("body is required.", field="body")
        comment, unreachable = services.report_comment_create(user=_user(request), report=found, body=body["body"])
        return Response(
            {**presenters.comment_out(comment), "unreachable_mentions": unreachable}, status=status.HTTP_201_CREATED
        )


class LinkListView(APIView):
    @extend_schema(responses=OBJECTS, summary="Where the report is cited as evidence")
    def get(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report)
        return Response([presenters.link_out(link) for link in selectors.links_of(found)])

    @extend_schema(
        request=LINK_IN, responses={201: OBJECT}, summary="Cite on a review request or a model version (writers)"
    )
    def post(self, request: Request, team: str, project: str, report: int) -> Response:
        found = access_report(request.user, team, project, report, action="report.edit")
        body = body_object(request.data, {"review_request", "model", "version"})
        target = services.link_target(
            found, review_request=body.get("review_request"), model=body.get("model"), version=body.get("version")
        )
        link = services.report_link_add(user=_user(request), report=found, target=target)
        return Response(presenters.link_out(link), status=status.HTTP_201_CREATED)


class LinkDetailView(APIView):
    @extend_schema(request=None, responses={204: None}, summary="Remove a citation (writers)")
    def delete(self, request: Request, team: str, project: str, report: int, link_id: str) -> Response:
        found = access_report(request.user, team, project, report, action="report.edit")
        link = (
            ReportLink.objects.filter(report=found, pk=link_id).first()
            if isinstance(link_id, str) and len(link_id) <= 32
            else None
        )
        if link is None:
            raise NotFound("Not found.")
        services.report_link_remove(user=_user(request), link=link)
        return Response(status=status.HTTP_204_NO_CONTENT)
