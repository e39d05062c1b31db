"""Requested reviewers may be whole teams (each member who may see the project is asked,
nobody else), and labels are stored and returned as given."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import team_create, team_member_add
from registry.models import ModelVersion
from reviews.models import Notification
from tests.helpers import post_json

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/acme/proj/review-requests/"


def test_a_team_reviewer_asks_its_members_who_may_see_and_labels_are_kept(
    member_client: APIClient, maintainer: User, outsider: User, v2: ModelVersion
) -> None:
    reviewers = team_create(name="mlteam", owner=maintainer)
    team_member_add(team=reviewers, user=outsider)  # in the team, but cannot see acme/proj

    response = post_json(
        member_client,
        BASE,
        {
            "model": "fraud",
            "version": 2,
            "alias": "production",
            "title": "Ship v2",
            "reviewers": ["team:mlteam"],
            "labels": ["ml", "urgent"],
        },
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["reviewers"] == [{"kind": "team", "name": "mlteam"}]
    assert body["labels"] == ["ml", "urgent"]
    asked = Notification.objects.filter(kind=Notification.Kind.REVIEW_REQUESTED)
    assert sorted(asked.values_list("user__username", flat=True)) == ["maint"]
    assert member_client.get(f"{BASE}1/").json()["labels"] == ["ml", "urgent"]
