"""The project access page's transfer form (issue 16, bug 12): "Move to a team you own"
lists the teams the caller owns, never another user's personal team."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts import access
from accounts.models import Project, User
from accounts.services import team_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def _options(user: User) -> list[str]:
    web = Client()
    web.force_login(user)
    page = web.get("/acme/proj/access/").content.decode()
    select = page.split('id="transfer-team"')[1].split("</select>")[0]
    return re.findall(r'<option value="([^"]+)">', select)


def test_the_transfer_form_offers_only_teams_the_caller_owns(project: Project, owner: User, outsider: User) -> None:
    team_create(name="newhome", owner=owner)
    team_create(name="theirs", owner=outsider)
    owner.is_staff = True  # a site admin (the README's first user) may manage every team
    owner.save()

    assert _options(owner) == ["newhome", "owner"]  # not outsider's personal team, nor "theirs"


def test_a_project_never_moves_into_another_users_personal_team(project: Project, owner: User, outsider: User) -> None:
    owner.is_staff = True
    owner.save()
    bob = UserFactory.create(username="bob")
    web = Client()
    web.force_login(owner)

    assert not access.can_transfer_to(owner, bob.personal_team)
    assert access.can_transfer_to(owner, owner.personal_team)
    web.post("/acme/proj/access/transfer/", {"team": "bob"})
    project.refresh_from_db()
    assert project.team.name == "acme"
