"""SCIM 2.0 at /scim/v2/ through Django's test client: who may call it, the Error format of
every refusal, filters, pagination, ETags, groups that become teams, and what deactivation
ends. The compliance checker and the sockets run against a live server in test_scim_live.py."""

from __future__ import annotations

from io import StringIO
from typing import Any

import orjson
import pytest
from django.core.management import CommandError, call_command
from django.test import Client

from accounts import services
from accounts.models import ApiToken, AuditEvent, Membership, Team, User
from core.errors import Conflict, Invalid
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


class Scim:
    """A SCIM client as an identity provider is: a bearer token, JSON bodies."""

    def __init__(self, token: str) -> None:
        self.client = Client()
        self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"}

    def call(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        data = orjson.dumps(body) if body is not None and not isinstance(body, bytes) else body
        kwargs: dict[str, Any] = {**self.headers, **headers}
        if data is not None:
            kwargs.update(data=data, content_type="application/scim+json")
        return getattr(self.client, method.lower())(f"/scim/v2{path}", **kwargs)

    def get(self, path: str, **headers: str) -> Any:
        return self.call("GET", path, **headers)

    def post(self, path: str, body: Any) -> Any:
        return self.call("POST", path, body)

    def patch(self, path: str, *operations: dict[str, Any], **headers: str) -> Any:
        return self.call("PATCH", path, {"schemas": [PATCH], "Operations": list(operations)}, **headers)


def scim_error(response: Any, status: int, scim_type: str | None = None) -> dict[str, Any]:
    """Assert RFC 7644 §3.12's Error: schemas, status (a string), scimType, detail."""
    assert response.status_code == status, (response.status_code, response.content[:400])
    assert response["Content-Type"] == "application/scim+json"
    body: dict[str, Any] = orjson.loads(response.content)
    assert body["schemas"] == [ERROR]
    assert body["status"] == str(status)
    assert body["detail"]
    assert body.get("scimType") == scim_type, body
    return body


@pytest.fixture
def admin() -> User:
    return UserFactory.create(username="idp-admin", is_staff=True)


@pytest.fixture
def scim(admin: User) -> Scim:
    return Scim(services.token_create(user=admin, name="okta", scope="scim").raw)


def new_user(scim: Scim, user_name: str = "ana@corp.example", **extra: Any) -> dict[str, Any]:
    response = scim.post("/Users", {"schemas": [USER], "userName": user_name, **extra})
    assert response.status_code == 201, response.content
    body: dict[str, Any] = orjson.loads(response.content)
    return body


# --- who may call it ------------------------------------------------------------------------------


def test_no_token_an_api_token_or_a_revoked_token_is_refused_with_401(admin: User, scim: Scim) -> None:
    api_token = services.token_create(user=admin, name="ci").raw
    revoked = services.token_create(user=admin, name="old-idp", scope="scim")
    services.token_revoke(token=revoked.token)

    for authorization in ("", f"Bearer {api_token}", f"Bearer {revoked.raw}", "Basic eDp5", "Bearer"):
        response = Client().get("/scim/v2/Users", HTTP_AUTHORIZATION=authorization)
        scim_error(response, 401)
        assert response["WWW-Authenticate"] == 'Bearer realm="scim"'
    assert scim.get("/Users").status_code == 200


def test_a_scim_token_cannot_call_the_api_the_mlflow_api_or_open_a_socket(admin: User, scim: Scim) -> None:
    raw = scim.headers["HTTP_AUTHORIZATION"]
    api = Client().get("/api/v1/me/", HTTP_AUTHORIZATION=raw)
    mlflow = Client().get(f"/mlflow/{admin.username}/p/api/2.0/mlflow/experiments/search", HTTP_AUTHORIZATION=raw)
    assert api.status_code == 401, api.content
    assert mlflow.status_code == 401, mlflow.content
    assert services.token_authenticate(raw=raw.split()[1]) is None  # what the socket identity asks


def test_a_scim_token_of_a_user_who_lost_staff_rights_is_refused(admin: User, scim: Scim) -> None:
    admin.is_staff = False
    admin.save()
    scim_error(scim.get("/Users"), 401)


def test_only_staff_get_a_scim_token_and_only_from_the_command(admin: User) -> None:
    ana = UserFactory.create(username="ana")
    with pytest.raises(Invalid, match="site administrator"):
        services.token_create(user=ana, name="x", scope="scim")
    out = StringIO()
    call_command("create_token", "idp-admin", "--scope", "scim", "--name", "okta", stdout=out)
    assert ApiToken.objects.get(name="okta").scope == "scim"
    assert out.getvalue().startswith("asy_")
    with pytest.raises(CommandError, match="site administrator"):
        call_command("create_token", "ana", "--scope", "scim", stdout=StringIO())
    # the personal token forms offer read and write only
    client = Client()
    client.force_login(admin)
    api = client.post("/api/v1/tokens/", {"name": "sneaky", "scope": "scim"}, content_type="application/json")
    assert api.status_code == 400, api.content
    page = client.post("/settings/tokens/", {"name": "sneaky", "scope": "scim", "expires_in_days": ""})
    assert page.status_code == 400
    assert not ApiToken.objects.filter(name="sneaky").exists()


# --- users ----------------------------------------------------------------------------------------


def test_creating_a_user_with_an_email_user_name_makes_a_valid_handle(scim: Scim, admin: User) -> None:
    body = new_user(
        scim,
        "Ana.Lopez@corp.example",
        name={"givenName": "Ana", "familyName": "Lopez"},
        emails=[{"value": "ana.lopez@corp.example", "primary": True, "type": "work"}],
        externalId="00u1abc",
        phoneNumbers=[{"value": "+1 555 0100"}],  # accepted, not kept
    )

    user = User.objects.get(pk=int(body["id"]))
    assert (user.username, user.scim_user_name, user.email, user.external_id) == (
        "ana-lopez",
        "Ana.Lopez@corp.example",
        "ana.lopez@corp.example",
        "00u1abc",
    )
    assert not user.has_usable_password()
    assert Team.objects.filter(personal_owner=user, name="ana-lopez").exists()
    assert body["userName"] == "Ana.Lopez@corp.example"
    assert body["emails"] == [{"value": "ana.lopez@corp.example"}]
    assert "phoneNumbers" not in body
    assert body["meta"]["location"].endswith(f"/scim/v2/Users/{user.pk}")
    assert AuditEvent.objects.filter(action="user.create", actor=admin, data__by="scim").exists()


def test_bad_input_answers_scims_error_format_and_writes_nothing(scim: Scim) -> None:
    new_user(scim, "ana@corp.example", emails=[{"value": "ana@corp.example"}])
    before = User.objects.count()

    scim_error(scim.call("POST", "/Users", b"{not json"), 400, "invalidSyntax")
    scim_error(scim.call("POST", "/Users", b"[1, 2]"), 400, "invalidSyntax")
    missing = scim_error(scim.post("/Users", {"schemas": [USER]}), 400, "invalidValue")
    assert "userName" in missing["detail"]
    scim_error(scim.post("/Users", {"schemas": [USER], "userName": 12}), 400, "invalidValue")
    taken = scim_error(scim.post("/Users", {"schemas": [USER], "userName": "ANA@corp.example"}), 409, "uniqueness")
    assert "userName" in taken["detail"]
    scim_error(
        scim.post("/Users", {"schemas": [USER], "userName": "bob", "emails": [{"value": "ana@corp.example"}]}),
        409,
        "uniqueness",
    )
    scim_error(
        scim.post("/Users", {"schemas": [USER], "userName": "bob", "emails": [{"value": "not-an-address"}]}),
        400,
        "invalidValue",
    )
    scim_error(scim.post("/Users", {"schemas": [USER], "userName": "x" * 300}), 400, "invalidValue")
    scim_error(scim.get("/Users/999999"), 404)
    scim_error(scim.get("/Users/not-a-number"), 404)
    scim_error(scim.get("/Nope"), 404)
    scim_error(scim.call("DELETE", "/ServiceProviderConfig"), 405)
    scim_error(scim.call("POST", "/Bulk", {"schemas": []}), 501)
    assert User.objects.count() == before


def test_filters_compile_to_sql_and_unknown_attributes_are_invalid_filters(scim: Scim) -> None:
    ana = new_user(scim, "ana@corp.example", emails=[{"value": "ana@corp.example"}], externalId="e-1")
    bob = new_user(scim, "bob", emails=[{"value": "bob@other.example"}], active=False)

    def ids(expression: str) -> list[str]:
        response = scim.get("/Users?" + _query(filter=expression))
        assert response.status_code == 200, response.content
        return [r["id"] for r in orjson.loads(response.content)["Resources"]]

    assert ids('userName eq "ANA@corp.example"') == [ana["id"]]
    assert ids('userName eq "bob"') == [bob["id"]]
    assert ids('emails[value ew "other.example"]') == [bob["id"]]
    assert ids('emails.value co "corp"') == [ana["id"]]
    assert ids('externalId eq "e-1" or active eq false') == [ana["id"], bob["id"]]
    assert ids('not (active eq false) and userName sw "ana"') == [ana["id"]]
    assert ids(f'id eq "{bob["id"]}"') == [bob["id"]]
    assert ids('id eq "abc"') == []
    assert ids('meta.lastModified gt "2000-01-01T00:00:00Z" and userName pr and userName ne "idp-admin"') == [
        ana["id"],
        bob["id"],
    ]
    assert ids(f'{USER}:userName eq "bob"') == [bob["id"]]

    for bad in ('title eq "x"', "userName eq", 'active eq "yes"', 'meta.created gt "yesterday"', "x" * 2001):
        scim_error(scim.get("/Users?" + _query(filter=bad)), 400, "invalidFilter")
    searched = scim.post("/Users/.search", {"filter": 'userName eq "bob"', "attributes": ["userName"]})
    assert orjson.loads(searched.content)["Resources"] == [{"schemas": [USER], "id": bob["id"], "userName": "bob"}]


def _query(**params: str) -> str:
    from urllib.parse import urlencode

    return urlencode(params)


def test_lists_are_paged_with_start_index_and_count(scim: Scim) -> None:
    created = [new_user(scim, f"user{i}")["id"] for i in range(5)]

    def page(**params: str) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(scim.get("/Users?" + _query(**params)).content)
        return body

    everyone = page(filter='userName sw "user"')
    first = page(filter='userName sw "user"', startIndex="1", count="2")
    third = page(filter='userName sw "user"', startIndex="5", count="2")
    none = page(filter='userName sw "user"', count="0")
    assert [r["id"] for r in everyone["Resources"]] == created
    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (5, 1, 2)
    assert [r["id"] for r in first["Resources"]] == created[:2]
    assert [r["id"] for r in third["Resources"]] == created[4:]
    assert (none["totalResults"], none["Resources"]) == (5, [])
    assert page(startIndex="-3", count="1")["startIndex"] == 1
    scim_error(scim.get("/Users?count=many"), 400, "invalidValue")


def test_etags_answer_304_and_refuse_a_stale_if_match(scim: Scim) -> None:
    ana = new_user(scim, "ana")
    version = ana["meta"]["version"]
    assert version.startswith('W/"')

    assert scim.get(f"/Users/{ana['id']}", HTTP_IF_NONE_MATCH=version).status_code == 304
    changed = scim.patch(f"/Users/{ana['id']}", {"op": "replace", "path": "name.givenName", "value": "Ana"})
    assert changed.status_code == 200
    assert changed["ETag"] != version
    stale = scim.patch(
        f"/Users/{ana['id']}", {"op": "replace", "path": "active", "value": False}, HTTP_IF_MATCH=version
    )
    scim_error(stale, 412)
    assert User.objects.get(pk=int(ana["id"])).is_active
    fresh = scim.patch(
        f"/Users/{ana['id']}", {"op": "replace", "path": "active", "value": False}, HTTP_IF_MATCH=changed["ETag"]
    )
    assert fresh.status_code == 200


def test_patch_changes_what_it_names_and_bad_operations_are_refused(scim: Scim) -> None:
    ana = new_user(scim, "ana", emails=[{"value": "ana@corp.example"}])
    path = f"/Users/{ana['id']}"

    replaced = scim.patch(path, {"op": "replace", "value": {"name": {"familyName": "Lopez"}, "externalId": "x9"}})
    assert replaced.status_code == 200, replaced.content
    user = User.objects.get(pk=int(ana["id"]))
    assert (user.last_name, user.external_id, user.email) == ("Lopez", "x9", "ana@corp.example")

    scim_error(scim.patch(path, {"op": "explode", "path": "active"}), 400, "invalidValue")
    scim_error(scim.patch(path, {"op": "replace", "path": "active", "value": "maybe"}), 400, "invalidValue")
    scim_error(scim.patch(path, {"op": "remove", "path": "userName"}), 400, "mutability")
    assert User.objects.get(pk=int(ana["id"])).is_active


def test_superusers_cannot_be_changed_through_scim(scim: Scim) -> None:
    root = User.objects.create_superuser("root", "root@corp.example", "x-pass-123456")

    scim_error(scim.patch(f"/Users/{root.pk}", {"op": "replace", "path": "active", "value": False}), 403)
    scim_error(scim.call("DELETE", f"/Users/{root.pk}"), 403)
    root.refresh_from_db()
    assert root.is_active


def test_delete_deactivates_detaches_and_revokes(scim: Scim) -> None:
    ana = new_user(scim, "ana@corp.example")
    user = User.objects.get(pk=int(ana["id"]))
    token = services.token_create(user=user, name="laptop")

    assert scim.call("DELETE", f"/Users/{ana['id']}").status_code == 204

    scim_error(scim.get(f"/Users/{ana['id']}"), 404)
    user.refresh_from_db()
    token.token.refresh_from_db()
    assert not user.is_active
    assert user.scim_deleted
    assert token.token.revoked_at is not None
    assert user.session_epoch == 1
    assert AuditEvent.objects.filter(action="user.deactivate", target_id=str(user.pk), data__tokens_revoked=1).exists()
    # the userName is free again: a new hire with the same address gets a new account
    again = new_user(scim, "ana@corp.example")
    assert again["id"] != ana["id"]


def test_deactivation_ends_the_sessions_made_before(scim: Scim) -> None:
    ana = new_user(scim, "ana")
    user = User.objects.get(pk=int(ana["id"]))
    browser = Client()
    browser.force_login(user)
    assert browser.get("/").status_code == 200

    scim.patch(f"/Users/{ana['id']}", {"op": "replace", "path": "active", "value": False})
    scim.patch(f"/Users/{ana['id']}", {"op": "replace", "path": "active", "value": True})

    assert browser.get("/").status_code == 302  # signed out, though active again
    # a PUT that leaves "active" out changes nothing about it
    scim.patch(f"/Users/{ana['id']}", {"op": "replace", "path": "active", "value": False})
    put = scim.call("PUT", f"/Users/{ana['id']}", {"schemas": [USER], "userName": "ana"})
    assert put.status_code == 200
    assert orjson.loads(put.content)["active"] is False
    scim.patch(f"/Users/{ana['id']}", {"op": "replace", "path": "active", "value": True})
    fresh = Client()
    fresh.force_login(User.objects.get(pk=user.pk))
    assert fresh.get("/").status_code == 200


# --- groups ---------------------------------------------------------------------------------------


def test_a_group_becomes_a_team_with_managed_memberships(scim: Scim, admin: User) -> None:
    ana, bob = new_user(scim, "ana"), new_user(scim, "bob")

    created = scim.post(
        "/Groups", {"schemas": [GROUP], "displayName": "ML Platform", "members": [{"value": ana["id"]}]}
    )
    assert created.status_code == 201, created.content
    group = orjson.loads(created.content)
    team = Team.objects.get(pk=int(group["id"]))
    assert (team.name, team.display_name, team.scim_group) == ("ml-platform", "ML Platform", True)
    membership = Membership.objects.get(team=team, user_id=int(ana["id"]))
    assert (membership.role, membership.managed_by) == ("member", "scim")

    # PATCH adds and removes members, as Okta and Entra do
    path = f"/Groups/{group['id']}"
    added = scim.patch(path, {"op": "add", "path": "members", "value": [{"value": bob["id"]}]})
    assert [m["value"] for m in orjson.loads(added.content)["members"]] == [ana["id"], bob["id"]]
    removed = scim.patch(path, {"op": "remove", "path": f'members[value eq "{ana["id"]}"]'})
    assert [m["value"] for m in orjson.loads(removed.content)["members"]] == [bob["id"]]
    assert not Membership.objects.filter(team=team, user_id=int(ana["id"])).exists()
    user_view = orjson.loads(scim.get(f"/Users/{bob['id']}").content)
    assert user_view["groups"][0]["value"] == group["id"]

    # a managed membership cannot be edited by hand
    hand = Membership.objects.get(team=team, user_id=int(bob["id"]))
    with pytest.raises(Conflict, match="through SCIM provisioning"):
        services.team_member_remove(membership=hand, actor=admin)

    # members that do not exist are refused, nothing changes
    scim_error(scim.patch(path, {"op": "add", "path": "members", "value": [{"value": "999999"}]}), 400, "invalidValue")
    scim_error(scim.patch(path, {"op": "add", "path": "members", "value": [{"value": "x"}]}), 400, "invalidValue")
    assert list(Membership.objects.filter(team=team).values_list("user_id", flat=True)) == [int(bob["id"])]

    # DELETE detaches the team from SCIM: SCIM's memberships go, the team and hand members stay
    owner = UserFactory.create(username="owner")
    Membership.objects.create(team=team, user=owner, role="owner")
    assert scim.call("DELETE", path).status_code == 204
    scim_error(scim.get(path), 404)
    team.refresh_from_db()
    assert not team.scim_group
    assert list(Membership.objects.filter(team=team).values_list("user__username", flat=True)) == ["owner"]
    assert AuditEvent.objects.filter(action="team.member_remove", target_id=str(team.pk), data__by="scim").exists()


def test_a_mapped_group_is_its_team_with_the_mapped_role(scim: Scim, settings: Any) -> None:
    settings.ASSAY_OIDC_GROUP_MAP = {"ml-admins": ("ml", "owner")}
    ml = TeamFactory.create(name="ml")
    carol = UserFactory.create(username="carol")
    Membership.objects.create(team=ml, user=carol, role="member")  # by hand, before SCIM
    ana = new_user(scim, "ana")

    created = scim.post(
        "/Groups",
        {"schemas": [GROUP], "displayName": "ml-admins", "members": [{"value": ana["id"]}, {"value": str(carol.pk)}]},
    )

    assert created.status_code == 201, created.content
    assert orjson.loads(created.content)["id"] == str(ml.pk)
    roles = {m.user.username: (m.role, m.managed_by) for m in Membership.objects.filter(team=ml).select_related("user")}
    assert roles == {"ana": ("owner", "scim"), "carol": ("owner", "scim")}
    scim_error(scim.post("/Groups", {"schemas": [GROUP], "displayName": "ML-ADMINS"}), 409, "uniqueness")
    listed = orjson.loads(scim.get("/Groups?" + _query(filter='displayName eq "ml-admins"')).content)
    assert [g["id"] for g in listed["Resources"]] == [str(ml.pk)]
    by_member = orjson.loads(scim.get("/Groups?" + _query(filter=f'members[value eq "{carol.pk}"]')).content)
    assert by_member["totalResults"] == 1


def test_an_unmapped_group_never_takes_over_an_existing_team(scim: Scim) -> None:
    ana = new_user(scim, "ana")
    acme = TeamFactory.create(name="acme")

    for name, expected in (("ana", "ana-2"), ("acme", "acme-2")):
        created = scim.post("/Groups", {"schemas": [GROUP], "displayName": name, "members": [{"value": ana["id"]}]})
        team = Team.objects.get(pk=int(orjson.loads(created.content)["id"]))
        assert team.name == expected
        assert team.personal_owner_id is None
    assert User.objects.get(pk=int(ana["id"])).personal_team.name == "ana"
    assert not Membership.objects.filter(team=acme).exists()
    assert not Team.objects.get(pk=acme.pk).scim_group


def test_discovery_describes_what_is_stored(scim: Scim) -> None:
    config = orjson.loads(scim.get("/ServiceProviderConfig").content)
    schemas = orjson.loads(scim.get("/Schemas").content)["Resources"]
    types = orjson.loads(scim.get("/ResourceTypes").content)["Resources"]

    assert (config["patch"], config["filter"]["supported"], config["etag"], config["bulk"]["supported"]) == (
        {"supported": True},
        True,
        {"supported": True},
        False,
    )
    user = next(s for s in schemas if s["id"] == USER)
    assert [a["name"] for a in user["attributes"]] == ["userName", "name", "active", "emails", "groups"]
    assert {t["endpoint"] for t in types} == {"/Users", "/Groups"}
    assert orjson.loads(scim.get(f"/Schemas/{GROUP}").content)["id"] == GROUP


def test_what_entra_and_okta_send_is_understood(scim: Scim) -> None:
    # Entra: capitalised ops, booleans as strings, a value path on an entry not yet there, a
    # remove naming its members in "value", the enterprise extension (not kept)
    ana = new_user(
        scim,
        "ana@corp.example",
        emails=[{"value": "ana@corp.example", "type": "work", "primary": True}],
        **{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"employeeNumber": "42"}},
    )
    path = f"/Users/{ana['id']}"
    moved = scim.patch(path, {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ana.l@corp.example"})
    assert moved.status_code == 200, moved.content
    assert User.objects.get(pk=int(ana["id"])).email == "ana.l@corp.example"
    off = scim.patch(path, {"op": "Replace", "path": "active", "value": "False"})
    assert off.status_code == 200, off.content
    assert not User.objects.get(pk=int(ana["id"])).is_active

    group = orjson.loads(scim.post("/Groups", {"schemas": [GROUP], "displayName": "Eng"}).content)
    gpath = f"/Groups/{group['id']}"
    scim.patch(gpath, {"op": "Add", "path": "members", "value": [{"value": ana["id"]}]})
    removed = scim.patch(gpath, {"op": "Remove", "path": "members", "value": [{"value": ana["id"]}]})
    assert removed.status_code == 200, removed.content
    assert "members" not in orjson.loads(removed.content)

    # Okta: a full PUT of the user with the fields it keeps
    put = scim.call(
        "PUT",
        path,
        {
            "schemas": [USER],
            "id": ana["id"],
            "userName": "ana@corp.example",
            "name": {"givenName": "Ana", "familyName": "Lopez"},
            "emails": [{"primary": True, "value": "ana@corp.example", "type": "work"}],
            "active": True,
            "groups": [],
        },
    )
    assert put.status_code == 200, put.content
    user = User.objects.get(pk=int(ana["id"]))
    assert (user.is_active, user.first_name, user.email) == (True, "Ana", "ana@corp.example")
