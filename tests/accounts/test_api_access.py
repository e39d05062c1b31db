"""Teams, members, project grants, visibility, transfer, tokens and the audit log over the REST API."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import access
from accounts.models import ApiToken, AuditEvent, Membership, Project, ProjectGrant, ProjectRole, Team, User
from accounts.services import (
    invitation_accept,
    invitation_create,
    token_authenticate,
    token_create,
)
from core.errors import DomainError
from tests.conftest import ClientFor
from tests.factories import ProjectFactory, UserFactory
from tests.helpers import assert_error, patch_json, post_json

pytestmark = pytest.mark.django_db


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + raw)
    return client


# --- teams and members ---------------------------------------------------------------------------


def test_creating_a_team_makes_the_caller_its_owner_and_is_audited(owner_client: APIClient, owner: User) -> None:
    response = post_json(owner_client, "/api/v1/teams/", {"name": "Vision", "display_name": "Vision group"})

    assert response.status_code == 201, response.content
    assert response.json()["name"] == "vision"
    assert response.json()["your_role"] == "owner"
    assert Membership.objects.get(team__name="vision", user=owner).role == "owner"
    assert AuditEvent.objects.filter(action="team.create", actor=owner, target_label="vision").exists()


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"name": "api"}, "name", 400),  # reserved
        ({"name": "no spaces"}, "name", 400),
        ({"name": "acme"}, "name", 409),  # taken
        ({"name": "owner"}, "name", 409),  # a user's personal team
        ({}, "name", 400),
        ({"name": "ok", "role": "owner"}, "role", 400),  # mass assignment refused
    ],
)
def test_team_creation_refuses_bad_input(
    owner_client: APIClient, team: Team, body: dict[str, Any], field: str, status: int
) -> None:
    before = Team.objects.count()

    assert_error(post_json(owner_client, "/api/v1/teams/", body), status, field=field)
    assert Team.objects.count() == before


def test_an_owner_adds_changes_and_removes_a_member(owner_client: APIClient, team: Team, outsider: User) -> None:
    added = post_json(owner_client, "/api/v1/teams/acme/members/", {"username": "outsider", "role": "member"})
    changed = patch_json(owner_client, "/api/v1/teams/acme/members/outsider/", {"role": "owner"})
    listed = owner_client.get("/api/v1/teams/acme/members/").json()
    removed = owner_client.delete("/api/v1/teams/acme/members/outsider/")

    assert added.status_code == 201
    assert changed.json()["role"] == "owner"
    assert {m["username"]: m["role"] for m in listed} == {"owner": "owner", "member": "member", "outsider": "owner"}
    assert removed.status_code == 204
    assert not Membership.objects.filter(team=team, user=outsider).exists()
    actions = list(AuditEvent.objects.filter(target_label="acme").values_list("action", flat=True))
    assert {"team.member_add", "team.member_role", "team.member_remove"} <= set(actions)


def test_a_member_may_not_manage_the_team(member_client: APIClient, team: Team, outsider: User) -> None:
    assert_error(post_json(member_client, "/api/v1/teams/acme/members/", {"username": "outsider"}), 403)
    assert_error(patch_json(member_client, "/api/v1/teams/acme/members/owner/", {"role": "member"}), 403)
    assert_error(member_client.delete("/api/v1/teams/acme/members/owner/"), 403)


def test_a_member_may_leave(member_client: APIClient, team: Team, member: User) -> None:
    assert member_client.delete("/api/v1/teams/acme/members/member/").status_code == 204
    assert not Membership.objects.filter(team=team, user=member).exists()
    assert AuditEvent.objects.filter(action="team.member_leave", actor=member).exists()


def test_the_last_owner_cannot_leave_nor_be_demoted(owner_client: APIClient, team: Team, owner: User) -> None:
    assert_error(owner_client.delete("/api/v1/teams/acme/members/owner/"), 409, code="last_owner")
    assert_error(patch_json(owner_client, "/api/v1/teams/acme/members/owner/", {"role": "member"}), 409)
    assert Membership.objects.get(team=team, user=owner).role == "owner"


def test_with_a_second_owner_the_first_may_leave(owner_client: APIClient, team: Team, member: User) -> None:
    patch_json(owner_client, "/api/v1/teams/acme/members/member/", {"role": "owner"})

    assert owner_client.delete("/api/v1/teams/acme/members/owner/").status_code == 204


def test_a_personal_team_keeps_its_one_member(owner_client: APIClient, outsider: User) -> None:
    response = post_json(owner_client, "/api/v1/teams/owner/members/", {"username": "outsider"})

    assert_error(response, 400, code="personal_team")


def test_adding_an_unknown_user_or_role_is_refused(owner_client: APIClient, team: Team, outsider: User) -> None:
    assert_error(post_json(owner_client, "/api/v1/teams/acme/members/", {"username": "ghost"}), 404, field="username")
    body = {"username": "outsider", "role": "admin"}
    assert_error(post_json(owner_client, "/api/v1/teams/acme/members/", body), 400, field="role")


# --- invitations -----------------------------------------------------------------------------------


def test_an_invitation_by_email_is_mailed_after_commit_and_accepted_once(
    owner: User, team: Team, outsider: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        issued = invitation_create(team=team, inviter=owner, email="new@example.com", role="member")

    assert len(mail.outbox) == 1
    assert issued.url in mail.outbox[0].body
    assert issued.raw not in issued.invitation.digest
    membership = invitation_accept(raw=issued.raw, user=outsider)
    assert membership.team == team
    assert membership.role == "member"
    with pytest.raises(DomainError):
        invitation_accept(raw=issued.raw, user=outsider)


def test_an_expired_invitation_is_refused(owner: User, team: Team, outsider: User) -> None:
    issued = invitation_create(team=team, inviter=owner, username="outsider")
    issued.invitation.expires_at = timezone.now() - timedelta(seconds=1)
    issued.invitation.save()

    with pytest.raises(DomainError, match="expired"):
        invitation_accept(raw=issued.raw, user=outsider)
    assert not Membership.objects.filter(team=team, user=outsider).exists()


def test_an_invitation_for_a_username_is_only_for_that_user(owner: User, team: Team, outsider: User) -> None:
    issued = invitation_create(team=team, inviter=owner, username="outsider")
    intruder = UserFactory.create(username="intruder")

    with pytest.raises(DomainError, match="another account"):
        invitation_accept(raw=issued.raw, user=intruder)
    assert not Membership.objects.filter(team=team, user=intruder).exists()


# --- project access ----------------------------------------------------------------------------------


def test_an_admin_grants_changes_and_revokes_a_role(owner_client: APIClient, project: Project, outsider: User) -> None:
    granted = post_json(owner_client, "/api/v1/projects/acme/proj/access/", {"user": "outsider", "role": "viewer"})
    assert granted.status_code == 201
    assert access.role_on(outsider, project) == ProjectRole.VIEWER

    patch_json(owner_client, "/api/v1/projects/acme/proj/access/user/outsider/", {"role": "maintainer"})
    assert access.role_on(outsider, project) == ProjectRole.MAINTAINER

    assert owner_client.delete("/api/v1/projects/acme/proj/access/user/outsider/").status_code == 204
    assert access.role_on(outsider, project) is None
    events = AuditEvent.objects.filter(project=project).values_list("action", flat=True)
    assert {"grant.create", "grant.change", "grant.revoke"} <= set(events)


def test_a_team_grant_gives_every_member_the_role(owner_client: APIClient, project: Project) -> None:
    other_owner = UserFactory.create(username="vision-lead")
    vision = Team.objects.create(name="vision")
    Membership.objects.create(team=vision, user=other_owner, role="member")

    post_json(owner_client, "/api/v1/projects/acme/proj/access/", {"team": "vision", "role": "writer"})

    assert access.role_on(other_owner, project) == ProjectRole.WRITER


def test_the_effective_role_is_the_highest_grant(project: Project) -> None:
    user = UserFactory.create(username="both")
    vision = Team.objects.create(name="vision")
    Membership.objects.create(team=vision, user=user, role="member")
    ProjectGrant.objects.create(project=project, user=user, role=ProjectRole.VIEWER)
    ProjectGrant.objects.create(project=project, team=vision, role=ProjectRole.MAINTAINER)

    assert access.role_on(user, project) == ProjectRole.MAINTAINER


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"user": "outsider", "role": "owner"}, "role", 400),
        ({"user": "outsider"}, "role", 400),
        ({"role": "viewer"}, "user", 400),
        ({"user": "outsider", "team": "acme", "role": "viewer"}, "user", 400),
        ({"user": "ghost", "role": "viewer"}, "user", 404),
        ({"team": "ghosts", "role": "viewer"}, "team", 404),
        ({"user": "viewer", "role": "viewer"}, "user", 409),
    ],
)
def test_bad_grants_are_refused_and_write_nothing(
    owner_client: APIClient, viewer: User, outsider: User, body: dict[str, Any], field: str, status: int
) -> None:
    before = ProjectGrant.objects.count()

    assert_error(post_json(owner_client, "/api/v1/projects/acme/proj/access/", body), status, field=field)
    assert ProjectGrant.objects.count() == before


def test_a_maintainer_may_not_manage_access(client_for: ClientFor, project: Project, outsider: User) -> None:
    maintainer = UserFactory.create(username="maint")
    ProjectGrant.objects.create(project=project, user=maintainer, role=ProjectRole.MAINTAINER)

    response = post_json(
        client_for(maintainer), "/api/v1/projects/acme/proj/access/", {"user": "outsider", "role": "admin"}
    )

    assert_error(response, 403)
    assert access.role_on(outsider, project) is None


def test_an_internal_project_is_visible_to_every_signed_in_user(
    owner_client: APIClient, outsider_client: APIClient, project: Project, outsider: User
) -> None:
    assert_error(outsider_client.get("/api/v1/projects/acme/proj/"), 404)

    response = owner_client.put(
        "/api/v1/projects/acme/proj/visibility/", data=b'{"visibility": "internal"}', content_type="application/json"
    )

    assert response.status_code == 200
    project.refresh_from_db()
    assert outsider_client.get("/api/v1/projects/acme/proj/").status_code == 200
    assert "acme/proj" in [p["path"] for p in outsider_client.get("/api/v1/projects/").json()["results"]]
    assert access.role_on(outsider, project) == ProjectRole.VIEWER
    assert_error(post_json(outsider_client, "/api/v1/runs/", {"project": "acme/proj"}), 403)
    assert_error(APIClient().get("/api/v1/projects/acme/proj/"), 401)


def test_a_project_moves_only_to_a_team_its_admin_owns(
    owner_client: APIClient, client_for: ClientFor, project: Project, owner: User
) -> None:
    team_create_response = post_json(owner_client, "/api/v1/teams/", {"name": "newhome"})
    assert team_create_response.status_code == 201
    Team.objects.create(name="strangers")

    assert_error(
        post_json(owner_client, "/api/v1/projects/acme/proj/transfer/", {"team": "strangers"}), 404, field="team"
    )
    moved = post_json(owner_client, "/api/v1/projects/acme/proj/transfer/", {"team": "newhome"})

    assert moved.status_code == 200, moved.content
    assert moved.json()["path"] == "newhome/proj"
    assert Project.objects.get(pk=project.pk).team.name == "newhome"
    assert AuditEvent.objects.filter(action="project.transfer", data__from="acme/proj").exists()


def test_a_transfer_onto_an_existing_name_is_a_conflict(owner_client: APIClient, project: Project, owner: User) -> None:
    ProjectFactory.create(team=Team.objects.get(name="owner"), name="proj")

    assert_error(post_json(owner_client, "/api/v1/projects/acme/proj/transfer/", {"team": "owner"}), 409)
    assert Project.objects.get(pk=project.pk).team.name == "acme"


# --- tokens ---------------------------------------------------------------------------------------------


def test_a_token_is_created_shown_once_listed_by_prefix_and_revoked(owner_client: APIClient, owner: User) -> None:
    created = post_json(owner_client, "/api/v1/tokens/", {"name": "laptop", "scope": "read", "expires_in_days": 30})
    listed = owner_client.get("/api/v1/tokens/").json()

    assert created.status_code == 201
    raw = created.json()["token"]
    assert raw.startswith("asy_")
    assert all("token" not in t for t in listed)
    assert created.json()["prefix"] in [t["prefix"] for t in listed]
    assert bearer(raw).get("/api/v1/me/").status_code == 200
    assert owner_client.delete(f"/api/v1/tokens/{created.json()['id']}/").status_code == 204
    assert_error(bearer(raw).get("/api/v1/me/"), 401)
    assert set(AuditEvent.objects.filter(actor=owner).values_list("action", flat=True)) >= {
        "token.create",
        "token.revoke",
    }


def test_a_read_token_may_read_but_not_write(owner: User, run) -> None:
    client = bearer(token_create(user=owner, name="ro", scope="read").raw)

    assert client.get(f"/api/v1/runs/{run.id}/").status_code == 200
    error = assert_error(patch_json(client, f"/api/v1/runs/{run.id}/", {"notes": "x"}), 403)
    assert "read-only" in error["message"]
    assert_error(post_json(client, "/api/v1/tokens/", {"name": "escalate"}), 403)


def test_an_expired_token_fails_like_an_unknown_one(owner: User) -> None:
    issued = token_create(user=owner, name="old", expires_at=timezone.now() + timedelta(days=1))
    ApiToken.objects.filter(pk=issued.token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))

    expired = bearer(issued.raw).get("/api/v1/me/")
    unknown = bearer("asy_" + "x" * 43).get("/api/v1/me/")

    assert token_authenticate(raw=issued.raw) is None
    assert expired.status_code == unknown.status_code == 401
    assert expired.json() == unknown.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "t", "scope": "admin"}, "scope"),
        ({"name": "t", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "t", "expires_in_days": 367}, "expires_in_days"),
        ({"name": "t", "user": "member"}, "user"),
    ],
)
def test_bad_token_requests_are_refused(owner_client: APIClient, owner: User, body: dict[str, Any], field: str) -> None:
    before = ApiToken.objects.count()

    assert_error(post_json(owner_client, "/api/v1/tokens/", body), 400, field=field)
    assert ApiToken.objects.count() == before


def test_nobody_revokes_another_users_token(owner: User, outsider_client: APIClient) -> None:
    issued = token_create(user=owner, name="mine")

    assert_error(outsider_client.delete(f"/api/v1/tokens/{issued.token.id}/"), 404)
    assert ApiToken.objects.get(pk=issued.token.pk).revoked_at is None


# --- audit log --------------------------------------------------------------------------------------------


def test_staff_read_and_filter_the_whole_audit_log(
    client_for: ClientFor, staff: User, owner_client: APIClient, project
) -> None:
    post_json(owner_client, "/api/v1/projects/acme/proj/access/", {"user": "staffer", "role": "viewer"})
    post_json(owner_client, "/api/v1/teams/", {"name": "another"})
    client = client_for(staff)

    everything = client.get("/api/v1/audit/").json()
    grants = client.get("/api/v1/audit/", {"action": "grant", "actor": "owner"}).json()

    assert everything["count"] >= 3
    assert [e["action"] for e in grants["results"]] == ["grant.create"]
    assert grants["results"][0]["project"] == "acme/proj"
    assert grants["results"][0]["ip"] == "127.0.0.1"
    assert_error(client.get("/api/v1/audit/", {"since": "yesterday"}), 400, field="since")


def test_project_admins_read_only_their_projects_events(
    owner_client: APIClient, member_client: APIClient, project, outsider: User
) -> None:
    post_json(owner_client, "/api/v1/projects/acme/proj/access/", {"user": "outsider", "role": "viewer"})
    post_json(owner_client, "/api/v1/teams/", {"name": "another"})

    mine = owner_client.get("/api/v1/audit/", {"project": "acme/proj"}).json()

    assert {e["action"] for e in mine["results"]} == {"grant.create"}
    assert_error(owner_client.get("/api/v1/audit/"), 403)
    assert_error(member_client.get("/api/v1/audit/", {"project": "acme/proj"}), 403)


def test_the_audit_log_is_append_only(owner: User) -> None:
    token_create(user=owner, name="x")
    event = AuditEvent.objects.get(action="token.create")

    event.action = "nothing"
    with pytest.raises(TypeError):
        event.save()
    with pytest.raises(TypeError):
        event.delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.all().delete()
    with pytest.raises(TypeError):
        AuditEvent.objects.update(action="forged")
    assert AuditEvent.objects.get(pk=event.pk).action == "token.create"


def test_deactivating_a_user_cuts_off_their_tokens_and_is_audited(staff: User, owner: User) -> None:
    from accounts.services import user_set_active

    raw = token_create(user=owner, name="t").raw
    user_set_active(user=owner, active=False, actor=staff)

    assert_error(bearer(raw).get("/api/v1/me/"), 401)
    assert AuditEvent.objects.filter(action="user.deactivate", target_label="owner", actor=staff).exists()
    with pytest.raises(DomainError):
        user_set_active(user=staff, active=False, actor=staff)


def test_the_django_admin_cannot_change_the_audit_log(client_for: ClientFor, staff: User, owner: User) -> None:
    from django.test import Client

    token_create(user=owner, name="x")
    event = AuditEvent.objects.get(action="token.create")
    browser = Client()
    browser.force_login(User.objects.get(pk=staff.pk))
    User.objects.filter(pk=staff.pk).update(is_superuser=True)

    assert browser.get("/-/admin/accounts/auditevent/").status_code == 200
    assert browser.post(f"/-/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert browser.get("/-/admin/accounts/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_django_admin_is_for_staff_only(owner: User) -> None:
    from django.test import Client

    browser = Client()
    browser.force_login(owner)

    assert browser.get("/-/admin/")["Location"].startswith("/-/admin/login/")
