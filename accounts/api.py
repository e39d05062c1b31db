"""Accounts REST API: who am I, teams and members, projects and their access, tokens, the audit log.

Thin: validate with an input serializer, ask the policy (``accounts.access`` and the
``access_*`` helpers), call a service, present with an output serializer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import access, selectors, services
from accounts.access import access_project
from accounts.models import ApiToken, Membership, Project, ProjectGrant, Team, User
from accounts.serializers import (
    AuditEventOut,
    GrantIn,
    GrantOut,
    GrantRoleIn,
    MemberAddIn,
    MemberOut,
    MemberRoleIn,
    ProjectIn,
    ProjectOut,
    TeamIn,
    TeamOut,
    TokenCreatedOut,
    TokenIn,
    TokenOut,
    TransferIn,
    VisibilityIn,
)
from core import paging
from core.errors import Forbidden, Invalid, NotFound
from core.openapi import DATE_OR_DATETIME_PATTERN, PROJECT_PATH_PATTERN, int_query, or_empty, string_query


def _user(request: Request) -> User:
    assert isinstance(request.user, User)  # TokenScopePermission ran before the view
    return request.user


class MeView(APIView):
    """Who am I: lets clients (the SDK's `assay status`, `assay login`) check a token."""

    @extend_schema(
        responses=inline_serializer(
            "Me",
            {
                "username": serializers.CharField(),
                "email": serializers.EmailField(),
                "is_staff": serializers.BooleanField(),
                "teams": serializers.ListField(child=serializers.CharField()),
            },
        ),
        summary="The authenticated user",
    )
    def get(self, request: Request) -> Response:
        user = _user(request)
        return Response(
            {
                "username": user.username,
                "email": user.email,
                "is_staff": user.is_staff,
                "teams": list(user.teams.order_by("name").values_list("name", flat=True)),
            }
        )


# --- teams ---------------------------------------------------------------------------------------


def _access_team(user: User, name: str, *, manage: bool = False) -> Team:
    team = selectors.team_by_name(name)
    if team is None:
        raise NotFound("Not found.")
    access.require_team(user, team, manage=manage)
    return team


class TeamListView(APIView):
    @extend_schema(responses=TeamOut(many=True), summary="Teams you can see")
    def get(self, request: Request) -> Response:
        user = _user(request)
        roles = dict(Membership.objects.filter(user=user).values_list("team_id", "role"))
        return Response(TeamOut(selectors.teams_visible_to(user), many=True, context={"roles": roles}).data)

    @extend_schema(request=TeamIn, responses={201: TeamOut}, summary="Create a team; you become its owner")
    def post(self, request: Request) -> Response:
        data = TeamIn(data=request.data)
        data.is_valid(raise_exception=True)
        user = _user(request)
        team = services.team_create(
            name=data.validated_data["name"],
            display_name=data.validated_data["display_name"],
            owner=user,
        )
        return Response(TeamOut(team, context={"roles": {team.pk: "owner"}}).data, status=status.HTTP_201_CREATED)


class TeamMemberListView(APIView):
    @extend_schema(responses=MemberOut(many=True), summary="Members of a team")
    def get(self, request: Request, team: str) -> Response:
        found = _access_team(_user(request), team)
        return Response(MemberOut(selectors.members_of(found), many=True).data)

    @extend_schema(request=MemberAddIn, responses={201: MemberOut}, summary="Add a member (team owners)")
    def post(self, request: Request, team: str) -> Response:
        user = _user(request)
        found = _access_team(user, team, manage=True)
        data = MemberAddIn(data=request.data)
        data.is_valid(raise_exception=True)
        member = selectors.user_by_name(data.validated_data["username"])
        if member is None:
            raise NotFound("No such user.", code="not_found", field="username")
        membership = services.team_member_add(team=found, user=member, role=data.validated_data["role"], actor=user)
        return Response(MemberOut(membership).data, status=status.HTTP_201_CREATED)


def _membership(team: Team, username: str) -> Membership:
    membership = selectors.members_of(team).filter(user__username__iexact=username).first()
    if membership is None:
        raise NotFound("Not found.")
    return membership


class TeamMemberDetailView(APIView):
    @extend_schema(request=MemberRoleIn, responses=MemberOut, summary="Change a member's role (team owners)")
    def patch(self, request: Request, team: str, username: str) -> Response:
        user = _user(request)
        found = _access_team(user, team, manage=True)
        data = MemberRoleIn(data=request.data)
        data.is_valid(raise_exception=True)
        membership = services.team_member_role_set(
            membership=_membership(found, username), role=data.validated_data["role"], actor=user
        )
        return Response(MemberOut(membership).data)

    @extend_schema(responses={204: None}, summary="Remove a member (team owners), or leave (yourself)")
    def delete(self, request: Request, team: str, username: str) -> Response:
        user = _user(request)
        leaving = username.lower() == user.username.lower()
        found = _access_team(user, team, manage=not leaving)
        services.team_member_remove(membership=_membership(found, username), actor=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- projects ----------------------------------------------------------------------------------


class _BoundedPagination(PageNumberPagination):
    """DRF's page-number paging with the page size parsed by core.paging: one out of range
    is refused (400 naming page_size), not clamped."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int:
        return paging.page_size(request.query_params, default=self.page_size, maximum=self.max_page_size)


def paged(name: str, item: type[serializers.Serializer[Any]]) -> serializers.Serializer[Any]:
    """The schema of one page of a _BoundedPagination list (DRF's page-number shape)."""
    return inline_serializer(
        name,
        {
            "count": serializers.IntegerField(),
            "next": serializers.URLField(allow_null=True),
            "previous": serializers.URLField(allow_null=True),
            "results": item(many=True),
        },
    )


PAGE_PARAMETERS = [
    int_query("page", lo=1, hi=paging.MAX_OFFSET, default=1, description="1-based page number; past the last: 404"),
    int_query("page_size", lo=1, hi=_BoundedPagination.max_page_size, default=_BoundedPagination.page_size),
]


class ProjectPagination(_BoundedPagination):
    pass


class ProjectListView(APIView):
    @extend_schema(
        parameters=PAGE_PARAMETERS, responses=paged("ProjectPage", ProjectOut), summary="Projects you can see"
    )
    def get(self, request: Request) -> Response:
        paginator = ProjectPagination()
        page = paginator.paginate_queryset(selectors.projects_visible_to(request.user), request, view=self)
        return paginator.get_paginated_response(ProjectOut(page, many=True).data)

    @extend_schema(request=ProjectIn, responses={201: ProjectOut}, summary="Create a project in a team you belong to")
    def post(self, request: Request) -> Response:
        data = ProjectIn(data=request.data)
        data.is_valid(raise_exception=True)
        project = services.project_create(
            user=_user(request),
            team_name=data.validated_data["team"],
            name=data.validated_data["name"],
            description=data.validated_data["description"],
        )
        return Response(ProjectOut(project).data, status=status.HTTP_201_CREATED)


class ProjectDetailView(APIView):
    @extend_schema(responses=ProjectOut)
    def get(self, request: Request, team: str, project: str) -> Response:
        return Response(ProjectOut(access_project(request.user, team, project)).data)


# --- project access ----------------------------------------------------------------------------


class ProjectAccessView(APIView):
    @extend_schema(responses=GrantOut(many=True), summary="Who holds a role on the project (its grants)")
    def get(self, request: Request, team: str, project: str) -> Response:
        proj = access_project(request.user, team, project)
        return Response(GrantOut(selectors.grants_of(proj), many=True).data)

    @extend_schema(
        request=GrantIn,
        responses={201: GrantOut},
        summary="Grant a role to a user or a team",
        description="Give exactly one of `user` or `team` (both, or neither, is a 400 naming `user`).",
    )
    def post(self, request: Request, team: str, project: str) -> Response:
        user = _user(request)
        proj = access_project(user, team, project, action="project.manage_access")
        data = GrantIn(data=request.data)
        data.is_valid(raise_exception=True)
        role = services.project_role(data.validated_data["role"])
        grantee_user = grantee_team = None
        if "user" in data.validated_data:
            grantee_user = selectors.user_by_name(data.validated_data["user"])
            if grantee_user is None:
                raise NotFound("No such user.", code="not_found", field="user")
        else:
            grantee_team = selectors.team_by_name(data.validated_data["team"])
            if grantee_team is None:
                raise NotFound("No such team.", code="not_found", field="team")
        grant = services.grant_create(project=proj, role=role, user=grantee_user, team=grantee_team, actor=user)
        return Response(GrantOut(grant).data, status=status.HTTP_201_CREATED)


def _grant(project: Project, kind: str, name: str) -> ProjectGrant:
    grants = selectors.grants_of(project)
    if kind == "user":
        grant = grants.filter(user__username__iexact=name).first()
    elif kind == "team":
        grant = grants.filter(team__name__iexact=name).first()
    else:
        grant = None
    if grant is None:
        raise NotFound("Not found.")
    return grant


class ProjectAccessDetailView(APIView):
    @extend_schema(request=GrantRoleIn, responses=GrantOut, summary="Change a grant's role")
    def patch(self, request: Request, team: str, project: str, kind: str, name: str) -> Response:
        user = _user(request)
        proj = access_project(user, team, project, action="project.manage_access")
        data = GrantRoleIn(data=request.data)
        data.is_valid(raise_exception=True)
        grant = services.grant_role_set(
            grant=_grant(proj, kind, name),
            role=services.project_role(data.validated_data["role"]),
            actor=user,
        )
        return Response(GrantOut(grant).data)

    @extend_schema(responses={204: None}, summary="Revoke a grant")
    def delete(self, request: Request, team: str, project: str, kind: str, name: str) -> Response:
        user = _user(request)
        proj = access_project(user, team, project, action="project.manage_access")
        services.grant_revoke(grant=_grant(proj, kind, name), actor=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ProjectVisibilityView(APIView):
    @extend_schema(request=VisibilityIn, responses=ProjectOut, summary="Make a project private or internal")
    def put(self, request: Request, team: str, project: str) -> Response:
        user = _user(request)
        proj = access_project(user, team, project, action="project.manage_access")
        data = VisibilityIn(data=request.data)
        data.is_valid(raise_exception=True)
        services.project_visibility_set(project=proj, visibility=data.validated_data["visibility"], actor=user)
        return Response(ProjectOut(proj).data)


class ProjectTransferView(APIView):
    @extend_schema(request=TransferIn, responses=ProjectOut, summary="Move a project to another team you own")
    def post(self, request: Request, team: str, project: str) -> Response:
        user = _user(request)
        proj = access_project(user, team, project, action="project.transfer")
        data = TransferIn(data=request.data)
        data.is_valid(raise_exception=True)
        target = selectors.team_by_name(data.validated_data["team"])
        if target is None or not access.can_see_team(user, target):
            raise NotFound("No such team.", code="not_found", field="team")
        if not access.can_transfer_to(user, target):
            raise Forbidden(
                "You may only move a project into a team you own.",
                code="permission_denied",
                field="team",
            )
        services.project_transfer(project=proj, team=target, actor=user)
        return Response(ProjectOut(proj).data)


# --- tokens ------------------------------------------------------------------------------------


class TokenListView(APIView):
    @extend_schema(responses=TokenOut(many=True), summary="Your API tokens")
    def get(self, request: Request) -> Response:
        return Response(TokenOut(selectors.tokens_of(_user(request)), many=True).data)

    @extend_schema(request=TokenIn, responses={201: TokenCreatedOut}, summary="Create a token (shown once)")
    def post(self, request: Request) -> Response:
        data = TokenIn(data=request.data)
        data.is_valid(raise_exception=True)
        days = data.validated_data["expires_in_days"]
        issued = services.token_create(
            user=_user(request),
            name=data.validated_data["name"],
            scope=data.validated_data["scope"],
            expires_at=timezone.now() + timedelta(days=days) if days else None,
        )
        return Response(TokenCreatedOut(issued.token, context={"raw": issued.raw}).data, status=status.HTTP_201_CREATED)


class TokenDetailView(APIView):
    @extend_schema(responses={204: None}, summary="Revoke one of your tokens")
    def delete(self, request: Request, token_id: str) -> Response:
        user = _user(request)
        token = ApiToken.objects.filter(pk=token_id, user=user).first() if len(token_id) <= 32 else None
        if token is None:
            raise NotFound("Not found.")
        services.token_revoke(token=token, actor=user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- audit log -----------------------------------------------------------------------------------


class AuditPagination(_BoundedPagination):
    max_page_size = selectors.AUDIT_PAGE_MAX


class AuditListView(APIView):
    @extend_schema(
        parameters=[
            string_query(
                "project",
                pattern=PROJECT_PATH_PATTERN,
                description="team/project: that project's events (its admins may)",
            ),
            OpenApiParameter("actor", str, description="username"),
            OpenApiParameter("action", str, description="an action (grant.create) or a family (grant)"),
            OpenApiParameter("target", str, description="part of the target's label"),
            string_query(
                "since", pattern=or_empty(DATE_OR_DATETIME_PATTERN), description="ISO date or date-time, inclusive"
            ),
            string_query(
                "until", pattern=or_empty(DATE_OR_DATETIME_PATTERN), description="ISO date or date-time, exclusive"
            ),
            PAGE_PARAMETERS[0],
            int_query("page_size", lo=1, hi=AuditPagination.max_page_size, default=AuditPagination.page_size),
        ],
        responses=paged("AuditEventPage", AuditEventOut),
        summary="The audit log (site administrators; a project's admins with ?project=)",
    )
    def get(self, request: Request) -> Response:
        user = _user(request)
        filters = selectors.audit_filters_from(request.query_params)
        project: Project | None = None
        wanted = request.query_params.get("project", "")
        if wanted:
            if wanted.count("/") != 1:
                raise Invalid('project must be "team/project".', field="project")
            team, name = wanted.split("/")
            project = access_project(user, team, name, action="project.view_audit")
        else:
            access.require_site_admin(user)
        paginator = AuditPagination()
        page = paginator.paginate_queryset(selectors.audit_events(filters=filters, project=project), request, view=self)
        return paginator.get_paginated_response(AuditEventOut(page, many=True).data)
