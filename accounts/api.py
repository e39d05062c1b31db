"""Who am I: lets clients (the SDK's `assay status`, `assay login`) check a token."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User


class MeView(APIView):
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
        user = request.user
        assert isinstance(user, User)
        return Response(
            {
                "username": user.username,
                "email": user.email,
                "is_staff": user.is_staff,
                "teams": list(user.teams.order_by("name").values_list("name", flat=True)),
            }
        )
