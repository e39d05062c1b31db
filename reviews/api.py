"""Reviews REST API, GitHub-like (thin: load through the policy, write through the services).

Errors of the review policy answer 403 or 409 with the rule's code (``author_cannot_approve``,
``stale_version``, ``approvals_missing`` …; see reviews/policy.py).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.plumbing import build_array_type
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.access import access_project
from accounts.models import ProjectRole, User
from core import paging
from core.errors import Invalid
from core.openapi import VERSION_REF_PATTERN, int_query
from core.validation import body_object, query_bool
from registry.access import access_model
from reviews import selectors, services
from reviews import serializers as out
from reviews.access import access_comment, access_review, access_review_request
from reviews.models import Notification
from reviews.services.inputs import ANCHOR_KINDS

MAX_PAGE = 100
DEFAULT_PAGE = 50


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # IsAuthenticated ran before the view
    return request.user


def _page(request: Request) -> tuple[int, int]:
    return paging.offset_limit(request.query_params, default_limit=DEFAULT_PAGE, max_limit=MAX_PAGE)


PAGE_PARAMETERS = [
    int_query("limit", lo=1, hi=MAX_PAGE, default=DEFAULT_PAGE),
    int_query("offset", lo=0, hi=paging.MAX_OFFSET, default=0),
]


OBJECT = OpenApiTypes.OBJECT
OBJECTS = OpenApiResponse(build_array_type({"type": "object", "additionalProperties": {}}), description="A JSON array")
REQUEST_IN = inline_serializer(
    "ReviewRequestIn",
    {
        "model": serializers.CharField(),
        "version": serializers.RegexField(
            VERSION_REF_PATTERN, help_text="vN, a number, latest or a hash prefix: the candidate"
        ),
        "alias": serializers.CharField(help_text="The alias to move, e.g. production"),
        "title": serializers.CharField(),
        "description": serializers.CharField(required=False, help_text="Markdown; @mentions notify"),
        "reviewers": serializers.ListField(child=serializers.CharField(), required=False),
        "labels": serializers.ListField(child=serializers.CharField(), required=False),
    },
)
REQUEST_PATCH = inline_serializer(
    "ReviewRequestPatch",
    {
        "title": serializers.CharField(required=False),
        "description": serializers.CharField(required=False),
        "labels": serializers.ListField(child=serializers.CharField(), required=False),
        "reviewers": serializers.ListField(child=serializers.CharField(), required=False),
        "version": serializers.RegexField(VERSION_REF_PATTERN, required=False, help_text="Push a new candidate (R5)"),
        "state": serializers.ChoiceField(choices=["open", "closed"], required=False, help_text="Close or reopen"),
    },
)
REVIEW_IN = inline_serializer(
    "ReviewIn",
    {
        "verdict": serializers.ChoiceField(choices=["approve", "request_changes", "comment"]),
        "body": serializers.CharField(required=False),
        "version_hash": serializers.CharField(required=False, help_text="The candidate's content hash (R7)"),
    },
)
COMMENT_IN = inline_serializer(
    "ReviewCommentIn",
    {
        "body": serializers.CharField(),
        "parent": serializers.CharField(required=False),
        "anchor": inline_serializer(
            "CommentAnchor",
            {
                "kind": serializers.ChoiceField(choices=sorted(ANCHOR_KINDS)),
                "key": serializers.RegexField("^[^\\x00-\\x1f]{1,500}$", help_text="A name of the diff's two sides"),
            },
            required=False,
        ),
    },
)
COMMENT_PATCH = inline_serializer(
    "ReviewCommentPatch",
    {"body": serializers.CharField(required=False), "resolved": serializers.BooleanField(required=False)},
)
REASON_IN = inline_serializer("ReviewDismissIn", {"reason": serializers.CharField()})
MERGE_IN = inline_serializer(
    "ReviewMergeIn",
    {
        "bypass": serializers.BooleanField(required=False, help_text="Admins only (R9); needs a reason"),
        "reason": serializers.CharField(required=False),
    },
)
SETTINGS_IN = inline_serializer(
    "ReviewSettingsIn",
    {
        "required_approvals": serializers.IntegerField(required=False, min_value=1, max_value=6),
        "approver_role": serializers.ChoiceField(choices=["writer", "maintainer"], required=False),
        "gates": serializers.ListField(child=serializers.DictField(), required=False, help_text="[{name, expression}]"),
        "required_checks": serializers.ListField(child=serializers.CharField(), required=False),
        "block_unscanned": serializers.BooleanField(
            required=False,
            help_text="Whether a model file the scanner could not read fails artifact-integrity (default false: "
            "it passes with a warning); a dangerous pickle global always fails it",
        ),
    },
)
READ_IN = inline_serializer(
    "NotificationsReadIn",
    {
        "ids": serializers.ListField(child=serializers.CharField(), min_length=1, max_length=500, required=False),
        "all": serializers.BooleanField(required=False),
    },
)
PREFS_IN = inline_serializer(
    "NotificationPreferencesIn",
    {"email": serializers.ListField(child=serializers.ChoiceField(choices=Notification.Kind.values))},
)


def _with_mentions(data: dict[str, Any], unreachable: list[str]) -> dict[str, Any]:
    """Say which mentions reached no one (a user without access, or no such name)."""
    data["unreachable_mentions"] = unreachable
    return data


class ReviewRequestListView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=["open", "closed", "merged", "all"]),
            OpenApiParameter("author", str, description="A username, or `me`"),
            OpenApiParameter("reviewer", str, enum=["me", ""], description="`me`: requests awaiting my review"),
            OpenApiParameter("model", str),
            *PAGE_PARAMETERS,
        ],
        responses=inline_serializer(
            "ReviewRequestPage",
            {"count": serializers.IntegerField(), "results": serializers.ListField(child=serializers.DictField())},
        ),
        summary="Review requests of a project",
    )
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="review.view")
        offset, limit = _page(request)  # checked before any early return below
        state = request.query_params.get("state", "open")
        if state not in ("open", "closed", "merged", "all"):
            raise Invalid('state must be "open", "closed", "merged" or "all".', field="state")
        author = None
        author_name = request.query_params.get("author")
        if author_name:
            author = (
                _user(request) if author_name == "me" else User.objects.filter(username=author_name.lower()).first()
            )
            if author is None:
                return Response({"count": 0, "results": []})
        reviewer = None
        if request.query_params.get("reviewer"):
            if request.query_params["reviewer"] != "me":
                raise Invalid('reviewer takes "me".', field="reviewer")
            reviewer = _user(request)
        qs = selectors.requests_of(proj, state=None if state == "all" else state, author=author, reviewer=reviewer)
        model = request.query_params.get("model")
        if model:
            qs = qs.filter(repository__name=model.lower())
        items = list(qs[offset : offset + limit])
        return Response({"count": qs.count(), "results": [out.request_out(r) for r in items]})

    @extend_schema(request=REQUEST_IN, responses={201: OBJECT}, summary="Open a review request (writers)")
    def post(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="review.create")
        body = body_object(
            request.data,
            {"model", "version", "alias", "title", "description", "reviewers", "labels"},
            not_null={"version"},
        )
        review_request, unreachable = services.review_request_open(
            user=_user(request),
            project=proj,
            model=body.get("model"),
            version=body.get("version"),
            alias=body.get("alias"),
            title=body.get("title"),
            description=body.get("description", ""),
            reviewers=body.get("reviewers"),
            labels=body.get("labels"),
        )
        return Response(_with_mentions(out.request_out(review_request), unreachable), status=status.HTTP_201_CREATED)


class ReviewRequestDetailView(APIView):
    @extend_schema(responses=OBJECT, summary="A review request")
    def get(self, request: Request, team: str, project: str, number: int) -> Response:
        return Response(out.request_out(access_review_request(request.user, team, project, number)))

    @extend_schema(
        request=REQUEST_PATCH,
        responses=OBJECT,
        summary="Edit, push a new candidate, close or reopen (author or maintainers)",
    )
    def patch(self, request: Request, team: str, project: str, number: int) -> Response:
        review_request = access_review_request(request.user, team, project, number)
        body = body_object(
            request.data, {"title", "description", "labels", "reviewers", "version", "state"}, not_null={"version"}
        )
        review_request, unreachable = services.review_request_update(
            user=_user(request),
            review_request=review_request,
            title=body.get("title"),
            description=body.get("description"),
            labels=body.get("labels"),
            reviewers=body.get("reviewers"),
            version=body.get("version"),
            state=body.get("state"),
        )
        return Response(_with_mentions(out.request_out(review_request), unreachable))


class ReviewListView(APIView):
    @extend_schema(responses=OBJECTS, summary="Reviews of a request")
    def get(self, request: Request, team: str, project: str, number: int) -> Response:
        review_request = access_review_request(request.user, team, project, number)
        return Response([out.review_out(r) for r in selectors.reviews_of(review_request)])

    @extend_schema(request=REVIEW_IN, responses={201: OBJECT}, summary="Approve, request changes or comment")
    def post(self, request: Request, team: str, project: str, number: int) -> Response:
        review_request = access_review_request(request.user, team, project, number)
        body = body_object(request.data, {"verdict", "body", "version_hash"})
        review, unreachable = services.review_submit(
            user=_user(request),
            review_request=review_request,
            verdict=body.get("verdict"),
            body=body.get("body", ""),
            version_hash=body.get("version_hash"),
        )
        return Response(_with_mentions(out.review_out(review), unreachable), status=status.HTTP_201_CREATED)


class ReviewDismissView(APIView):
    @extend_schema(request=REASON_IN, responses=OBJECT, summary="Dismiss a review with a reason (maintainers, R6)")
    def post(self, request: Request, team: str, project: str, number: int, review_id: str) -> Response:
        review = access_review(request.user, team, project, number, review_id)
        body = body_object(request.data, {"reason"})
        review = services.review_dismiss(user=_user(request), review=review, reason=body.get("reason"))
        return Response(out.review_out(review))


class CommentListView(APIView):
    @extend_schema(responses=OBJECTS, summary="Comments of a request (threads by `parent`)")
    def get(self, request: Request, team: str, project: str, number: int) -> Response:
        review_request = access_review_request(request.user, team, project, number)
        return Response([out.comment_out(c) for c in selectors.comments_of(review_request)])

    @extend_schema(request=COMMENT_IN, responses={201: OBJECT}, summary="Comment (markdown; replies, anchors)")
    def post(self, request: Request, team: str, project: str, number: int) -> Response:
        review_request = access_review_request(request.user, team, project, number)
        body = body_object(request.data, {"body", "parent", "anchor"}, not_null={"parent", "anchor"})
        comment, unreachable = services.comment_create(
            user=_user(request),
            review_request=review_request,
            body=body.get("body"),
            parent=body.get("parent"),
            anchor=body.get("anchor"),
        )
        return Response(_with_mentions(out.comment_out(comment), unreachable), status=status.HTTP_201_CREATED)


class CommentDetailView(APIView):
    @extend_schema(request=COMMENT_PATCH, responses=OBJECT, summary="Edit your comment, or resolve its thread")
    def patch(self, request: Request, team: str, project: str, number: int, comment_id: str) -> Response:
        comment = access_comment(request.user, team, project, number, comment_id)
        body = body_object(request.data, {"body", "resolved"}, not_null={"resolved"})
        comment, unreachable = services.comment_update(
            user=_user(request), comment=comment, body=body.get("body"), resolved=body.get("resolved")
        )
        return Response(_with_mentions(out.comment_out(comment), unreachable))

    @extend_schema(request=None, responses={200: OBJECT}, summary="Delete your comment")
    def delete(self, request: Request, team: str, project: str, number: int, comment_id: str) -> Response:
        comment = access_comment(request.user, team, project, number, comment_id)
        return Response(out.comment_out(services.comment_delete(user=_user(request), comment=comment)))


class CheckListView(APIView):
    @extend_schema(responses=OBJECTS, summary="Checks of the current candidate")
    def get(self, request: Request, team: str, project: str, number: int) -> Response:
        return Response(out.checks_out(access_review_request(request.user, team, project, number)))

    @extend_schema(request=None, responses={202: OBJECTS}, summary="Re-run the checks (maintainers)")
    def post(self, request: Request, team: str, project: str, number: int) -> Response:
        review_request = access_review_request(request.user, team, project, number)
        if request.data:
            body_object(request.data, set())  # nothing to send: refuse unknown fields rather than ignore them
        services.checks_rerun(user=_user(request), review_request=review_request)
        return Response(out.checks_out(review_request), status=status.HTTP_202_ACCEPTED)


class TimelineView(APIView):
    @extend_schema(responses=OBJECTS, summary="Every event of a request, oldest first")
    def get(self, request: Request, team: str, project: str, number: int) -> Response:
        review_request = access_review_request(request.user, team, project, number)
        return Response([out.event_out(e) for e in selectors.timeline_of(review_request)])


class MergeView(APIView):
    @extend_schema(request=MERGE_IN, responses=OBJECT, summary="Merge: move the alias (maintainers)")
    def post(self, request: Request, team: str, project: str, number: int) -> Response:
        review_request = access_review_request(request.user, team, project, number)
        body = body_object(request.data, {"bypass", "reason"})
        review_request = services.review_request_merge(
            user=_user(request),
            review_request=review_request,
            bypass=body.get("bypass", False),
            reason=body.get("reason"),
        )
        return Response(out.request_out(review_request))


class MentionableView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("q", str, description="The start of a name")],
        responses=OBJECTS,
        summary="Users and teams who may be @mentioned in a project (editor completion)",
    )
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="review.view")
        prefix = request.query_params.get("q", "")
        if len(prefix) > 64:
            raise Invalid("q is at most 64 characters.", field="q")
        return Response(selectors.mentionable(proj, prefix))


def settings_out(settings: Any) -> dict[str, Any]:
    return {
        "required_approvals": settings.required_approvals,
        "approver_role": ProjectRole(settings.approver_role).label.lower(),
        "gates": settings.gates,
        "required_checks": settings.required_checks,
        "block_unscanned": settings.block_unscanned,
        "checks": [c["name"] for c in selectors.configured_checks(settings)],
        # "repository" (its own), "project" (inherited) or "default" (none saved)
        "source": selectors.settings_source(settings),
    }


SETTINGS_FIELDS = {"required_approvals", "approver_role", "gates", "required_checks", "block_unscanned"}


def _settings_changes(request: Request) -> dict[str, Any]:
    body = body_object(request.data, SETTINGS_FIELDS, not_null={"required_checks"})
    return {
        "required_approvals": body.get("required_approvals"),
        "approver_role": body.get("approver_role"),
        "gates_config": body.get("gates"),
        "required_checks": body.get("required_checks"),
        "block_unscanned": body.get("block_unscanned"),
    }


class ReviewSettingsView(APIView):
    @extend_schema(responses=OBJECT, summary="The review policy that applies to a model (R3, R4, R8, gates)")
    def get(self, request: Request, team: str, project: str, model: str) -> Response:
        repository = access_model(request.user, team, project, model)
        return Response(settings_out(selectors.settings_for(repository)))

    @extend_schema(
        request=SETTINGS_IN, responses=OBJECT, summary="Change a model's review policy (project admins, R10)"
    )
    def patch(self, request: Request, team: str, project: str, model: str) -> Response:
        repository = access_model(request.user, team, project, model, action="review.settings")
        settings = services.review_settings_update(
            user=_user(request), repository=repository, **_settings_changes(request)
        )
        return Response(settings_out(settings))

    @extend_schema(responses={200: OBJECT}, summary="Drop a model's own review policy: its project's applies again")
    def delete(self, request: Request, team: str, project: str, model: str) -> Response:
        repository = access_model(request.user, team, project, model, action="review.settings")
        settings = services.review_settings_delete(user=_user(request), repository=repository)
        return Response(settings_out(settings))


class ProjectReviewSettingsView(APIView):
    @extend_schema(responses=OBJECT, summary="The review policy of a project, the default of its models")
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project)
        return Response(settings_out(selectors.project_settings_for(proj)))

    @extend_schema(request=SETTINGS_IN, responses=OBJECT, summary="Change a project's review policy (admins, R10)")
    def patch(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project, action="review.settings")
        settings = services.project_review_settings_update(
            user=_user(request), project=proj, **_settings_changes(request)
        )
        return Response(settings_out(settings))


class NotificationListView(APIView):
    @extend_schema(
        parameters=[OpenApiParameter("unread", bool), *PAGE_PARAMETERS],
        responses=OBJECT,
        summary="My notifications, newest first",
    )
    def get(self, request: Request) -> Response:
        user = _user(request)
        unread = query_bool(request.query_params.get("unread"), field="unread")
        offset, limit = _page(request)
        qs = selectors.notifications_of(user, unread=unread)
        return Response(
            {
                "unread": selectors.unread_count(user),
                "count": qs.count(),
                "results": [out.notification_out(n) for n in qs[offset : offset + limit]],
            }
        )

    @extend_schema(request=READ_IN, responses=OBJECT, summary='Mark read: {"ids": […]} or {"all": true}')
    def post(self, request: Request) -> Response:
        user = _user(request)
        body = body_object(request.data, {"ids", "all"})
        marked = services.notifications_mark_read(user=user, ids=body.get("ids"), all_unread=body.get("all", False))
        return Response({"marked": marked, "unread": selectors.unread_count(user)})


class NotificationPreferencesView(APIView):
    @extend_schema(responses=OBJECT, summary="Which notification kinds I also receive by e-mail")
    def get(self, request: Request) -> Response:
        return Response({"email": selectors.email_kinds(_user(request))})

    @extend_schema(request=PREFS_IN, responses=OBJECT, summary="Choose which kinds are e-mailed")
    def put(self, request: Request) -> Response:
        body = body_object(request.data, {"email"})
        if "email" not in body:
            raise Invalid("email is required: a list of notification kinds.", field="email")
        return Response(
            {"email": services.notification_preferences_update(user=_user(request), email_kinds=body["email"])}
        )
