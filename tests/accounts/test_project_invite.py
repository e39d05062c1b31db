"""Inviting a teammate into a project (issue 16, "a second reviewer"): from the project's
access page, its review requests and a personal team's page; by username (the role is
granted at once) or by e-mail (an invitation link whose acceptance grants the role). Who may
invite is accounts.access's ``project.invite``; refused input is a form error naming the
field, with nothing written."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client

from accounts.models import AuditEvent, Invitation, Membership, Project, ProjectGrant, ProjectRole, User
from accounts.services import team_create
from tests.factories import ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

INVITE = "/acme/proj/access/invite/"


def web(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def grants_of(project: Project) -> list[tuple[str, str]]:
    return sorted(
        (g.user.username, ProjectRole(g.role).label) for g in ProjectGrant.objects.filter(project=project) if g.user
    )


# --- permissions --------------------------------------------------------------------------------


def test_an_admin_invites_an_existing_user_by_username_with_the_role_chosen(project: Project, owner: User) -> None:
    bob = UserFactory.create(username="bob")
    response = web(owner).post(INVITE, {"invitee": "Bob", "role": "maintainer"}, follow=True)
    assert response.redirect_chain[-1][0] == "/acme/proj/access/"
    assert "bob is now maintainer of acme/proj" in response.content.decode().replace("Bob", "bob")
    assert grants_of(project) == [("bob", "maintainer")]
    assert AuditEvent.objects.filter(action="grant.create", project=project).count() == 1
    # the new maintainer may now approve: the policy says so
    from accounts import access

    assert access.can(bob, "review.merge", project)


@pytest.mark.parametrize("who", ["member", "viewer"])
def test_writers_and_viewers_may_not_invite(project: Project, who: str, member: User, viewer: User) -> None:
    UserFactory.create(username="bob")
    user = member if who == "member" else viewer
    response = web(user).post(INVITE, {"invitee": "bob", "role": "maintainer"})
    assert response.status_code == 403
    assert not ProjectGrant.objects.filter(user__username="bob").exists()


def test_an_outsider_gets_a_404_and_nothing_changes(project: Project, outsider: User) -> None:
    UserFactory.create(username="bob")
    assert web(outsider).post(INVITE, {"invitee": "bob", "role": "admin"}).status_code == 404
    assert grants_of(project) == []


def test_the_invite_forms_appear_only_for_those_who_may_invite(project: Project, owner: User, member: User) -> None:
    assert 'data-testid="invite-people"' in web(owner).get("/acme/proj/").content.decode()
    assert 'data-testid="invite-people"' not in web(member).get("/acme/proj/").content.decode()
    assert 'data-testid="invite-form"' in web(owner).get("/acme/proj/access/").content.decode()
    assert 'data-testid="invite-form"' not in web(member).get("/acme/proj/access/").content.decode()


def test_an_invitation_by_username_may_send_back_to_the_page_it_came_from_but_never_off_site(
    project: Project, owner: User
) -> None:
    UserFactory.create(username="bob")
    UserFactory.create(username="carol")
    back = "/acme/proj/reviews/1/"
    response = web(owner).post(INVITE, {"invitee": "bob", "role": "writer", "next": back})
    assert response.status_code == 302
    assert response["Location"] == back
    response = web(owner).post(INVITE, {"invitee": "carol", "role": "writer", "next": "https://evil.example/"})
    assert response["Location"] == "/acme/proj/access/"


# --- bad input ----------------------------------------------------------------------------------


def _error_page(response: object) -> str:
    assert response.status_code == 400  # type: ignore[attr-defined]
    return str(response.content.decode())  # type: ignore[attr-defined]


def test_an_unknown_user_is_a_form_error_on_the_invitee_with_the_values_kept(project: Project, owner: User) -> None:
    page = _error_page(web(owner).post(INVITE, {"invitee": "nobody", "role": "writer"}))
    assert "Not invited: No active user named &#x27;nobody&#x27;: invite them by e-mail instead." in page
    field = re.search(r'<input[^>]*id="invitee"[^>]*>', page)
    assert field is not None
    assert "is-invalid" in field.group(0)
    assert 'value="nobody"' in field.group(0)
    assert re.search(r'<option value="writer" selected>', page)
    assert grants_of(project) == []
    assert not Invitation.objects.exists()


def test_a_deactivated_user_cannot_be_invited(project: Project, owner: User) -> None:
    UserFactory.create(username="gone", is_active=False)
    assert "No active user named" in _error_page(web(owner).post(INVITE, {"invitee": "gone", "role": "writer"}))
    assert grants_of(project) == []


@pytest.mark.parametrize("role", ["owner", "", "40", "Maintainer"])
def test_a_role_that_is_not_a_project_role_is_refused(project: Project, owner: User, role: str) -> None:
    UserFactory.create(username="bob")
    page = _error_page(web(owner).post(INVITE, {"invitee": "bob", "role": role}))
    assert "role must be one of viewer, writer, maintainer, admin." in page
    assert re.search(r'<select class="[^"]*is-invalid[^"]*" id="invite-role"', page)
    assert grants_of(project) == []


@pytest.mark.parametrize("invitee", ["", "   ", "bob@", "a@b@c", "x" * 300])
def test_a_blank_or_malformed_invitee_is_refused(project: Project, owner: User, invitee: str) -> None:
    page = _error_page(web(owner).post(INVITE, {"invitee": invitee, "role": "writer"}))
    assert "Not invited:" in page
    assert not Invitation.objects.exists()
    assert grants_of(project) == []


def test_someone_who_already_holds_the_role_is_a_duplicate(project: Project, owner: User, member: User) -> None:
    # member is a writer through the team: a writer invitation is a duplicate, a maintainer one raises them
    page = _error_page(web(owner).post(INVITE, {"invitee": "member", "role": "writer"}))
    assert "Not invited: member is already writer of acme/proj." in page
    assert grants_of(project) == []
    assert web(owner).post(INVITE, {"invitee": "member", "role": "maintainer"}).status_code == 302
    assert grants_of(project) == [("member", "maintainer")]
    page = _error_page(web(owner).post(INVITE, {"invitee": "member", "role": "maintainer"}))
    assert "member is already maintainer of acme/proj." in page
    assert grants_of(project) == [("member", "maintainer")]


def test_inviting_yourself_is_refused(project: Project, owner: User) -> None:
    # the owner is admin already, so a lower role is a duplicate; any role is refused
    page = _error_page(web(owner).post(INVITE, {"invitee": "owner", "role": "admin"}))
    assert "You cannot invite yourself." in page


def test_a_second_pending_invitation_to_the_same_address_is_a_duplicate(
    project: Project, owner: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        first = web(owner).post(INVITE, {"invitee": "dana@example.com", "role": "maintainer"})
    assert first.status_code == 200
    page = _error_page(web(owner).post(INVITE, {"invitee": "DANA@example.com", "role": "writer"}))
    assert "An invitation to DANA@example.com for acme/proj is pending: revoke it to send a new one." in page
    assert Invitation.objects.count() == 1
    assert len(mail.outbox) == 1


# --- by e-mail: the link, its acceptance ---------------------------------------------------------


def test_an_email_invitation_shows_its_link_once_and_accepting_it_grants_the_role(
    project: Project, owner: User, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = web(owner).post(INVITE, {"invitee": "dana@example.com", "role": "maintainer"})
    page = response.content.decode()
    assert response["Cache-Control"] == "no-store"
    link = re.search(r'data-testid="invitation-url">([^<]+)<', page)
    assert link is not None
    assert "(maintainer of acme/proj)" in page
    assert [m.to for m in mail.outbox] == [["dana@example.com"]]
    assert link.group(1) in mail.outbox[0].body
    assert "the project acme/proj on Assay as maintainer" in mail.outbox[0].body
    # the access page lists it as pending (without its link)
    listing = web(owner).get("/acme/proj/access/").content.decode()
    assert "dana@example.com" in listing
    assert link.group(1) not in listing

    dana = UserFactory.create(username="dana", email="dana@example.com")
    guest = web(dana)
    path = link.group(1).split("://", 1)[1].split("/", 1)[1]
    opened = guest.get("/" + path, follow=True).content.decode()
    assert "invites you to the project <strong>acme/proj</strong> as <strong>maintainer</strong>" in opened
    accepted = guest.post("/invitations/", follow=True)
    assert accepted.redirect_chain[-1][0] == "/acme/proj/"
    assert "You are now maintainer of acme/proj." in accepted.content.decode()
    assert grants_of(project) == [("dana", "maintainer")]
    assert not Membership.objects.filter(team=project.team, user=dana).exists()  # a project role, no team seat


def test_a_pending_project_invitation_can_be_revoked_from_the_access_page(project: Project, owner: User) -> None:
    web(owner).post(INVITE, {"invitee": "dana@example.com", "role": "writer"})
    invitation = Invitation.objects.get()
    response = web(owner).post(f"/acme/proj/access/invitations/{invitation.pk}/revoke/")
    assert response.status_code == 302
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None


# --- the personal team's page and the review page -------------------------------------------------


def test_a_personal_team_page_explains_itself_and_invites_into_its_projects(owner: User, outsider: User) -> None:
    ProjectFactory.create(team=owner.personal_team, name="digits", created_by=owner)
    UserFactory.create(username="bob")
    page = web(owner).get("/teams/owner/").content.decode()
    assert "Every user has a personal team named after them" in page
    assert "invite them into a project" in page
    assert re.search(r'<select[^>]*id="invite-project"[^>]*><option value="digits"', page)

    response = web(owner).post("/teams/owner/invite/", {"project": "digits", "invitee": "bob", "role": "maintainer"})
    assert response.status_code == 302
    assert grants_of(Project.objects.get(name="digits")) == [("bob", "maintainer")]
    bad = web(owner).post("/teams/owner/invite/", {"project": "digits", "invitee": "nobody", "role": "maintainer"})
    assert bad.status_code == 400
    assert "No active user named" in bad.content.decode()
    # nobody invites into another user's personal projects
    assert web(outsider).post(
        "/teams/owner/invite/", {"project": "digits", "invitee": "outsider", "role": "admin"}
    ).status_code in (403, 404)
    assert grants_of(Project.objects.get(name="digits")) == [("bob", "maintainer")]


def test_a_team_that_is_not_personal_keeps_its_own_invitations(owner: User) -> None:
    team_create(name="lab", owner=owner)
    page = web(owner).get("/teams/lab/").content.decode()
    assert "Every user has a personal team" not in page
    assert 'id="invitee"' in page
