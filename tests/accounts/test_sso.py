"""OpenID Connect sign-in against a real provider on loopback (oidc-provider-mock): the
authorization code flow with PKCE, linking only by a verified e-mail, just-in-time accounts
on or off, clear errors for a misconfigured provider, and groups that become teams."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from allauth.socialaccount.models import SocialAccount
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from accounts import services
from accounts.adapters import clock_skew
from accounts.models import AuditEvent, Membership, Team, User
from config.env import oidc_group_map, sso_required_domains
from core.errors import Conflict, Invalid
from tests.oidc_provider import Provider, oidc_provider

pytestmark = pytest.mark.django_db

CALLBACK = "http://testserver/accounts/oidc/idp/login/callback/"
GROUP_MAP = {"ml-platform": ("ml", "owner"), "data": ("ds", "member"), "ml-readers": ("ml", "member")}


@pytest.fixture
def provider(settings: Any) -> Iterator[Provider]:
    with oidc_provider(CALLBACK) as idp:
        settings.SOCIALACCOUNT_PROVIDERS = idp.settings()
        settings.ASSAY_OIDC_GROUP_MAP = GROUP_MAP
        yield idp


def sign_in(client: Client, sub: str) -> tuple[Any, dict[str, list[str]]]:
    """Start at Assay, authorize ``sub`` on the provider's own page, come back with the code."""
    start = client.post("/accounts/oidc/idp/login/")
    assert start.status_code == 302, start.content[:300]
    authorize = start["Location"]
    page = httpx.get(authorize)
    assert page.status_code == 200, page.text[:300]
    assert "Authorize" in page.text
    answer = httpx.post(authorize, data={"sub": sub})
    assert answer.status_code == 302, answer.text[:300]
    callback = urlparse(answer.headers["location"])
    assert f"http://testserver{callback.path}" == CALLBACK
    return client.get(f"{callback.path}?{callback.query}"), parse_qs(urlparse(authorize).query)


def test_code_flow_with_pkce_creates_the_user_and_groups_become_teams(provider: Provider) -> None:
    owner = User.objects.create_user("boss", "boss@example.com", "x-pass-123456")
    ml = services.team_create(name="ml", owner=owner)
    ds = services.team_create(name="ds", owner=owner)
    provider.set_user(
        "ana-1",
        {
            "email": "ana@example.com",
            "email_verified": True,
            "preferred_username": "ana",
            "groups": ["ml-platform", "data", "other"],
        },
    )
    client = Client()

    done, query = sign_in(client, "ana-1")

    assert query["code_challenge_method"] == ["S256"]
    assert query["code_challenge"][0]
    assert done.status_code == 302, done.content[:500]
    assert done["Location"] == "/"
    ana = User.objects.get(email="ana@example.com")
    assert client.get("/").context["user"] == ana
    roles = {m.team.name: (m.role, m.managed_by) for m in Membership.objects.filter(user=ana).select_related("team")}
    assert roles == {"ana": ("owner", ""), "ml": ("owner", "idp"), "ds": ("member", "idp")}
    assert AuditEvent.objects.filter(action="team.member_add", target_id=str(ml.pk), data__by="sso:idp").exists()

    # The groups change at the provider: the next sign-in follows them.
    provider.set_user("ana-1", {"email": "ana@example.com", "email_verified": True, "groups": ["ml-readers"]})
    client.post("/logout/")
    assert client.get("/").status_code == 302  # signed out
    again, _ = sign_in(Client(), "ana-1")

    assert again.status_code == 302
    roles = {m.team.name: (m.role, m.managed_by) for m in Membership.objects.filter(user=ana).select_related("team")}
    assert roles == {"ana": ("owner", ""), "ml": ("member", "idp")}
    assert AuditEvent.objects.filter(action="team.member_remove", target_id=str(ds.pk), data__user="ana").exists()
    assert AuditEvent.objects.filter(action="team.member_role", target_id=str(ml.pk), data__to="member").exists()

    # A membership the provider manages cannot be edited by hand, by the API either.
    membership = Membership.objects.get(user=ana, team=ml)
    with pytest.raises(Conflict, match="managed by the identity provider"):
        services.team_member_remove(membership=membership, actor=owner)
    with pytest.raises(Conflict, match="managed by the identity provider"):
        services.team_member_role_set(membership=membership, role="owner", actor=owner)
    api = Client()
    api.force_login(owner)
    refused = api.delete(f"/api/v1/teams/ml/members/{ana.username}/")
    assert refused.status_code == 409, refused.content
    assert refused.json()["error"]["code"] == "managed_by_idp"


def test_a_verified_email_links_to_the_existing_account(provider: Provider) -> None:
    bob = User.objects.create_user("bob", "bob@example.com", "x-pass-123456")
    provider.set_user("bob-at-idp", {"email": "Bob@example.com", "email_verified": True})

    done, _ = sign_in(Client(), "bob-at-idp")

    assert done.status_code == 302, done.content[:500]
    assert SocialAccount.objects.get(uid="bob-at-idp").user == bob
    assert User.objects.filter(email__iexact="bob@example.com").count() == 1


def test_an_unverified_email_claim_does_not_link_to_an_existing_account(provider: Provider) -> None:
    bob = User.objects.create_user("bob", "bob@example.com", "x-pass-123456")
    provider.set_user("mallory", {"email": "bob@example.com", "email_verified": False})
    client = Client()

    refused, _ = sign_in(client, "mallory")

    assert refused.status_code == 403
    assert b"did not say the address is verified" in refused.content
    assert not SocialAccount.objects.exists()
    assert client.get("/").status_code == 302  # not signed in
    bob.refresh_from_db()
    assert bob.has_usable_password()


def test_just_in_time_accounts_can_be_turned_off(provider: Provider, settings: Any) -> None:
    settings.ASSAY_OIDC_SIGNUP = False
    provider.set_user("newcomer", {"email": "new@example.com", "email_verified": True})

    refused, _ = sign_in(Client(), "newcomer")

    assert b"closed" in refused.content.lower() or refused.status_code in (302, 403)
    assert not User.objects.filter(email="new@example.com").exists()


def test_a_wrong_client_secret_shows_a_clear_error_and_is_logged(
    provider: Provider, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = provider.settings(secret="not-the-secret")
    provider.set_user("ana-1", {"email": "ana@example.com", "email_verified": True})

    with caplog.at_level(logging.ERROR, logger="assay.sso"):
        failed, _ = sign_in(Client(), "ana-1")

    assert failed.status_code == 401
    assert b"refused Assay&#x27;s client credentials" in failed.content
    assert any("sign-in through 'idp' failed" in r.getMessage() for r in caplog.records)
    assert "not-the-secret" not in caplog.text
    assert not User.objects.filter(email="ana@example.com").exists()


def test_an_unreachable_discovery_document_shows_a_clear_error_and_is_logged(
    provider: Provider, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = provider.settings(url="http://127.0.0.1:9")  # nothing listens

    with caplog.at_level(logging.ERROR, logger="assay.sso"):
        failed = Client().post("/accounts/oidc/idp/login/")

    assert failed.status_code == 502
    assert b"could not reach the identity provider" in failed.content
    assert any("sign-in through 'idp' failed" in r.getMessage() for r in caplog.records)


def test_the_group_map_is_validated_with_clear_errors() -> None:
    assert oidc_group_map("ml-platform=ml:owner, data=ds:member,") == {
        "ml-platform": ("ml", "owner"),
        "data": ("ds", "member"),
    }
    assert oidc_group_map("") == {}
    for raw, message in [
        ("ml-platform", "must be group=team:role"),
        ("g=ml", "must be group=team:role"),
        ("g=Not A Team:owner", "is not a team name"),
        ("g=ml:admin", "role must be owner or member"),
        ("g=ml:owner,g=ds:member", "mapped twice"),
    ]:
        with pytest.raises(ImproperlyConfigured, match=message):
            oidc_group_map(raw)


def test_personal_and_unmapped_teams_are_left_alone(provider: Provider) -> None:
    owner = User.objects.create_user("boss", "boss@example.com", "x-pass-123456")
    ds = services.team_create(name="ds", owner=owner)
    provider.set_user("ana-1", {"email": "ana@example.com", "email_verified": True, "groups": "data"})
    sign_in(Client(), "ana-1")
    ana = User.objects.get(email="ana@example.com")
    services.team_member_add(team=services.team_create(name="side", owner=owner), user=ana, actor=owner)
    provider.set_user("ana-1", {"email": "ana@example.com", "email_verified": True, "groups": []})

    sign_in(Client(), "ana-1")

    assert set(Membership.objects.filter(user=ana).values_list("team__name", flat=True)) == {"ana", "side"}
    assert not Team.objects.filter(name="ml").exists()  # a mapped team that is missing is not created
    assert not Membership.objects.filter(team=ds, user=ana).exists()


# --- SSO required -----------------------------------------------------------------------------------


def test_sso_required_refuses_the_password_form_but_api_tokens_keep_working(settings: Any) -> None:
    settings.ASSAY_SSO_REQUIRED_DOMAINS = ["corp.example"]
    ana = User.objects.create_user("ana", "ana@Corp.example", "x-pass-123456")
    User.objects.create_user("eve", "eve@elsewhere.example", "x-pass-123456")
    User.objects.create_superuser("root", "root@corp.example", "x-pass-123456")
    User.objects.create_user("stan", "stan@corp.example", "x-pass-123456", is_staff=True)
    raw = services.token_create(user=ana, name="ci").raw

    refused = Client().post("/login/", {"login": "ana", "password": "x-pass-123456"})
    wrong = Client().post("/login/", {"login": "ana", "password": "not-it"})
    other = Client().post("/login/", {"login": "eve", "password": "x-pass-123456"})
    root = Client().post("/login/", {"login": "root", "password": "x-pass-123456"})
    admin = Client().post("/-/admin/login/", {"username": "stan", "password": "x-pass-123456"})
    api = Client().get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert refused.status_code == 200
    assert b"signs in through single sign-on" in refused.content
    assert "_auth_user_id" not in refused.wsgi_request.session
    assert b"signs in through single sign-on" not in wrong.content  # a wrong password learns nothing
    assert other.status_code == 302
    assert root.status_code == 302  # superusers are the break-glass account
    assert b"signs in through single sign-on" in admin.content
    assert api.status_code == 200, api.content


def test_the_sso_required_domains_are_validated() -> None:
    assert sso_required_domains(["Corp.example", "@example.org", "*"]) == ["corp.example", "example.org", "*"]
    for bad in (["corp"], ["not a domain.com"], ["a@b.com"]):
        with pytest.raises(ImproperlyConfigured, match="is not an e-mail domain"):
            sso_required_domains(bad)


OIDC_APP = [{"provider_id": "corp", "name": "Corp", "client_id": "c", "secret": "", "settings": {}}]


def test_a_team_can_require_sso_of_its_members(settings: Any) -> None:
    # given a team with an owner, a member, a superuser member and a provider configured
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": OIDC_APP}}
    owner = User.objects.create_user("olga", "olga@example.org", "x-pass-123456")
    ana = User.objects.create_user("ana", "ana@example.org", "x-pass-123456")
    root = User.objects.create_superuser("root", "root@example.org", "x-pass-123456")
    eve = User.objects.create_user("eve", "eve@example.org", "x-pass-123456")
    ml = services.team_create(name="ml", owner=owner)
    for user in (ana, root):
        Membership.objects.create(team=ml, user=user, role="member")
    raw = services.token_create(user=ana, name="ci").raw

    # a member who is no owner may not turn it on; an outsider does not see the team
    as_ana, as_eve, as_owner = Client(), Client(), Client()
    as_ana.force_login(ana)
    as_eve.force_login(eve)
    as_owner.force_login(owner)
    assert as_ana.post("/teams/ml/sso/", {"sso_required": "on"}).status_code == 403
    assert as_eve.post("/teams/ml/sso/", {"sso_required": "on"}).status_code == 404
    assert not Team.objects.get(pk=ml.pk).sso_required

    # when the owner turns it on
    assert as_owner.post("/teams/ml/sso/", {"sso_required": "on"}).status_code == 302
    assert Team.objects.get(pk=ml.pk).sso_required
    assert AuditEvent.objects.filter(action="team.sso_required", target_id=str(ml.pk), data__required=True).exists()

    # then the members' password sign-in is refused (after a right password only), the
    # superuser's and an outsider's is not, and API tokens keep working
    refused = Client().post("/login/", {"login": "ana", "password": "x-pass-123456"})
    assert refused.status_code == 200
    assert b"signs in through single sign-on" in refused.content
    assert "_auth_user_id" not in refused.wsgi_request.session
    wrong = Client().post("/login/", {"login": "ana", "password": "not-it"})
    assert b"signs in through single sign-on" not in wrong.content
    assert Client().post("/login/", {"login": "root", "password": "x-pass-123456"}).status_code == 302
    assert Client().post("/login/", {"login": "eve", "password": "x-pass-123456"}).status_code == 302
    assert Client().get("/api/v1/teams/", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 200

    # and turning it off lets them in again
    assert as_owner.post("/teams/ml/sso/", {}).status_code == 302
    assert Client().post("/login/", {"login": "ana", "password": "x-pass-123456"}).status_code == 302


def test_a_team_cannot_require_sso_without_a_provider_nor_a_personal_team(settings: Any) -> None:
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": []}}
    owner = User.objects.create_user("olga", "olga@example.org", "x-pass-123456")
    ml = services.team_create(name="ml", owner=owner)
    with pytest.raises(Invalid, match="No identity provider is configured"):
        services.team_sso_required_set(team=ml, required=True, actor=owner)
    browser = Client()
    browser.force_login(owner)
    page = browser.post("/teams/ml/sso/", {"sso_required": "on"}, follow=True)
    assert b"No identity provider is configured" in page.content
    ml.refresh_from_db()
    assert not ml.sso_required
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": OIDC_APP}}
    with pytest.raises(Invalid, match="personal team"):
        services.team_sso_required_set(team=owner.personal_team, required=True, actor=owner)


class SkewedClock:
    """``time`` as the provider's token code sees it: its clock ``offset`` seconds off ours."""

    def __init__(self, offset: float) -> None:
        self.offset = offset

    def time(self) -> float:
        return time.time() + self.offset


@pytest.mark.parametrize(
    ("offset", "what"),
    [(600, "issued in the future (iat)"), (-7200, "expired (exp)")],
    ids=["provider-clock-ahead", "provider-clock-behind"],
)
def test_a_clock_skew_beyond_the_leeway_shows_a_clear_error_and_is_logged(
    provider: Provider, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, offset: int, what: str
) -> None:
    # given a provider whose clock is 10 minutes ahead of Assay's (or 2 hours behind): the ID
    # token it signs is not yet valid (or already expired) by Assay's clock
    for module in ("authlib.oidc.core.grants.util", "authlib.oidc.core.grants._legacy"):
        monkeypatch.setattr(f"{module}.time", SkewedClock(offset))
    provider.set_user("ana-1", {"email": "ana@example.com", "email_verified": True})

    # when a person signs in through it
    with caplog.at_level(logging.ERROR, logger="assay.sso"):
        failed, _ = sign_in(Client(), "ana-1")

    # then the page says the clocks may disagree, the log says which claim, nobody is signed in
    assert failed.status_code == 401
    assert b"the clocks of Assay" in failed.content
    assert "_auth_user_id" not in failed.wsgi_request.session
    logged = [r.getMessage() for r in caplog.records if "sign-in through 'idp' failed" in r.getMessage()]
    assert logged, caplog.text
    assert what in logged[0], logged[0]
    assert not User.objects.filter(email="ana@example.com").exists()


def test_a_skew_within_the_leeway_signs_in(provider: Provider, monkeypatch: pytest.MonkeyPatch) -> None:
    for module in ("authlib.oidc.core.grants.util", "authlib.oidc.core.grants._legacy"):
        monkeypatch.setattr(f"{module}.time", SkewedClock(60))  # leeway: ASSAY_OIDC_CLOCK_LEEWAY=120
    provider.set_user("ana-1", {"email": "ana@example.com", "email_verified": True})

    done, _ = sign_in(Client(), "ana-1")

    assert done.status_code == 302, done.content[:300]
    assert User.objects.filter(email="ana@example.com").exists()


def test_clock_skew_reads_iat_and_exp_with_the_leeway(settings: Any) -> None:
    settings.ASSAY_OIDC_CLOCK_LEEWAY = 120
    now = 1_800_000_000
    assert clock_skew({"id_token": {"iat": now + 100, "exp": now + 3700}}, now) is None
    assert "issued in the future (iat): 121 s ahead" in str(clock_skew({"id_token": {"iat": now + 121}}, now))
    assert "expired (exp) 121 s ago" in str(clock_skew({"id_token": {"iat": now - 4000, "exp": now - 121}}, now))
    assert clock_skew({"userinfo": {"sub": "x"}}, now) is None  # no ID token, nothing to check
