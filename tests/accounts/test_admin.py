"""Django's admin (/-/admin/): site administrators only, and every edit of users, teams,
memberships and grants lands in the audit log. Forms are read from the admin's own pages
and submitted as a browser would, so the test goes through the admin's real views."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.test import Client

from accounts.models import AuditEvent, Membership, Project, ProjectGrant, ProjectRole, Team, User
from accounts.services import token_create

pytestmark = pytest.mark.django_db

ADMIN = "/-/admin/accounts/"


class _Form(HTMLParser):
    """The fields of the page's main form (the one posting to the page), as a browser sends them."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[str, list[str]] = {}
        self._select: str | None = None
        self._textarea: str | None = None
        self._in_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form"):
            self._in_form = True
        if not self._in_form:
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type") not in {"submit", "button"}:
            if a.get("type") in {"checkbox", "radio"} and "checked" not in a:
                return
            self.fields.setdefault(name, []).append(a.get("value", "on" if a.get("type") == "checkbox" else ""))
        elif tag == "select" and name:
            self._select = name
            self.fields.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.fields[self._select].append(a.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.fields[name] = [""]

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.fields[self._textarea][0] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self._in_form = False


def form_of(client: Client, url: str) -> dict[str, Any]:
    page = client.get(url)
    assert page.status_code == 200, url
    parser = _Form()
    parser.feed(page.content.decode())
    return {k: v if len(v) != 1 else v[0] for k, v in parser.fields.items() if v}


def submit(client: Client, url: str, **changes: Any) -> Any:
    data = form_of(client, url)
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    data["_save"] = "Save"
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    return response


@pytest.fixture
def admin_client(db: None) -> tuple[Client, User]:
    root = User.objects.create_user(username="root", password="x", is_staff=True, is_superuser=True)
    client = Client(REMOTE_ADDR="203.0.113.9")
    client.force_login(root)
    return client, root


def test_only_site_administrators_get_in(owner: User, staff: User) -> None:
    signed_in, anonymous, staffer = Client(), Client(), Client()
    signed_in.force_login(owner)
    staffer.force_login(staff)  # is_staff without superuser: a site administrator all the same

    assert anonymous.get(ADMIN + "user/").status_code == 302
    assert signed_in.get(ADMIN + "user/").status_code == 302  # to the admin's login
    assert signed_in.get(ADMIN + "projectgrant/").status_code == 302
    assert staffer.get(ADMIN + "projectgrant/").status_code == 200
    assert staffer.get(ADMIN + "user/").status_code == 200


def test_deactivating_and_promoting_a_user_is_audited(admin_client: tuple[Client, User], member: User) -> None:
    client, root = admin_client

    submit(client, f"{ADMIN}user/{member.pk}/change/", is_active=None, is_staff="on")

    member.refresh_from_db()
    assert (member.is_active, member.is_staff) == (False, True)
    event = AuditEvent.objects.get(action="admin.change", target_id=str(member.pk))
    assert (event.actor, event.target_type, event.ip) == (root, "accounts.user", "203.0.113.9")
    assert event.data["values"] == {"is_active": False, "is_staff": True, "is_superuser": False}
    changed = event.data["changes"][0]["changed"]["fields"]
    assert {"Active", "Staff status"} <= set(changed)


def test_a_password_set_in_the_admin_is_audited_without_the_password(
    admin_client: tuple[Client, User], member: User
) -> None:
    client, _ = admin_client
    secret = "a-Very-secret-pass-9"

    response = client.post(
        f"{ADMIN}user/{member.pk}/password/",
        {"password1": secret, "password2": secret, "usable_password": "true"},
    )

    assert response.status_code == 302
    event = AuditEvent.objects.get(action="admin.change", target_id=str(member.pk))
    assert secret not in str(event.data)


def test_team_memberships_edited_inline_are_audited(
    admin_client: tuple[Client, User], team: Team, member: User
) -> None:
    client, _ = admin_client
    row = next(
        i
        for i in range(2)
        if form_of(client, f"{ADMIN}team/{team.pk}/change/")[f"memberships-{i}-user"] == str(member.pk)
    )

    submit(client, f"{ADMIN}team/{team.pk}/change/", **{f"memberships-{row}-role": "owner"})

    assert Membership.objects.get(team=team, user=member).role == "owner"
    event = AuditEvent.objects.get(action="admin.change", target_type="accounts.team")
    assert event.data["values"]["members"] == {"owner": "owner", "member": "owner"}
    assert "membership" in str(event.data["changes"]).lower()


def test_grants_added_changed_and_deleted_in_the_admin_are_audited_in_the_project(
    admin_client: tuple[Client, User], project: Project, outsider: User
) -> None:
    client, _ = admin_client

    submit(
        client,
        f"{ADMIN}projectgrant/add/",
        project=project.pk,
        user=str(outsider.pk),
        role=str(int(ProjectRole.VIEWER)),
    )
    grant = ProjectGrant.objects.get(project=project, user=outsider)
    submit(client, f"{ADMIN}projectgrant/{grant.pk}/change/", role=str(int(ProjectRole.ADMIN)))
    deleted = client.post(f"{ADMIN}projectgrant/{grant.pk}/delete/", {"post": "yes"})

    assert deleted.status_code == 302
    assert not ProjectGrant.objects.filter(pk=grant.pk).exists()
    events = list(AuditEvent.objects.filter(action__startswith="admin.", project=project).order_by("id"))
    assert [(e.action, e.data["values"]["role"]) for e in events] == [
        ("admin.add", "viewer"),
        ("admin.change", "admin"),
        ("admin.delete", "admin"),
    ]
    assert {e.project_label for e in events} == {"acme/proj"}
    assert all(e.data["values"]["grantee"] == "user:outsider" for e in events)


def test_a_bulk_delete_audits_every_object(admin_client: tuple[Client, User]) -> None:
    client, _ = admin_client
    doomed = [User.objects.create_user(username=f"doomed{i}") for i in range(3)]

    response = client.post(
        f"{ADMIN}user/",
        {"action": "delete_selected", "_selected_action": [u.pk for u in doomed], "post": "yes"},
    )

    assert response.status_code == 302
    assert not User.objects.filter(username__startswith="doomed").exists()
    assert sorted(AuditEvent.objects.filter(action="admin.delete").values_list("target_label", flat=True)) == [
        "doomed0",
        "doomed1",
        "doomed2",
    ]


def test_the_audit_log_cannot_be_edited_in_the_admin(admin_client: tuple[Client, User], member: User) -> None:
    client, _ = admin_client
    event = AuditEvent.objects.create(actor=member, actor_label="member", action="x.test")

    assert client.get(f"/-/admin/accounts/auditevent/{event.pk}/change/").status_code == 200  # view only
    assert client.post(f"/-/admin/accounts/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert client.get("/-/admin/accounts/auditevent/add/").status_code == 403
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_the_in_app_staff_pages_audit_user_administration(staff: User, member: User, owner: User) -> None:
    browser, refused = Client(REMOTE_ADDR="198.51.100.7"), Client()
    browser.force_login(staff)
    refused.force_login(owner)

    assert refused.post(f"/-/staff/users/{member.username}/deactivate/").status_code == 403
    for action in ("deactivate", "reactivate", "make-admin", "remove-admin"):
        assert browser.post(f"/-/staff/users/{member.username}/{action}/").status_code == 302

    events = AuditEvent.objects.filter(target_type="accounts.user", target_id=str(member.pk)).order_by("id")
    assert [(e.action, e.actor_label, e.ip) for e in events] == [
        (name, "staffer", "198.51.100.7")
        for name in ("user.deactivate", "user.reactivate", "user.make_admin", "user.remove_admin")
    ]


def test_a_staff_deactivation_ends_sessions_and_revokes_tokens_as_scim_does(staff: User, member: User) -> None:
    # given a member signed in, with a token
    token = token_create(user=member, name="ci").token
    session = Client()
    session.force_login(member)
    assert session.get("/").status_code == 200
    staffer = Client()
    staffer.force_login(staff)

    # when staff deactivate the account, then reactivate it
    assert staffer.post(f"/-/staff/users/{member.username}/deactivate/").status_code == 302
    assert staffer.post(f"/-/staff/users/{member.username}/reactivate/").status_code == 302

    # then the token stays revoked and the old session stays signed out
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert session.get("/")["Location"].startswith("/login/")
    event = AuditEvent.objects.get(action="user.deactivate", target_id=str(member.pk))
    assert event.data["tokens_revoked"] == 1


def test_the_admin_index_has_one_accounts_section(db: None) -> None:
    """Issue 16, bug 18: allauth's app and ours were both titled "Accounts"."""
    staff = User.objects.create_user(username="boss", password="pw-123456789", is_staff=True, is_superuser=True)
    web = Client()
    web.force_login(staff)
    page = web.get("/-/admin/").content.decode()

    captions = [c.strip() for c in re.findall(r"<caption>\s*<a [^>]*>([^<]+)</a>", page)]
    assert captions.count("Accounts") == 1
    assert "Users, teams and projects" in captions
