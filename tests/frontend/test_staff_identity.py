"""The staff identity page: what the environment configures (providers, never a secret),
group mappings, SCIM tokens (create, shown once; revoke) and the last SCIM sync."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts import services
from accounts.models import ApiToken, AuditEvent, User
from tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

APPS = [
    {
        "provider_id": "corp",
        "name": "Corp SSO",
        "client_id": "assay-client",
        "secret": "s3cret-value-never-shown",
        "settings": {"server_url": "https://sso.corp.example/realms/main", "oauth_pkce_enabled": True},
    }
]


@pytest.fixture
def staff_client(settings: Any) -> Client:
    settings.SOCIALACCOUNT_PROVIDERS = {"openid_connect": {"APPS": APPS}}
    settings.ASSAY_OIDC_GROUP_MAP = {"ml-platform": ("ml", "owner"), "data": ("ds", "member")}
    client = Client()
    client.force_login(UserFactory.create(username="root-admin", is_staff=True))
    return client


def test_non_staff_get_403_and_anonymous_the_login_page() -> None:
    member = Client()
    member.force_login(UserFactory.create(username="ana"))

    assert member.get("/-/staff/identity/").status_code == 403
    assert member.post("/-/staff/identity/scim-tokens/", {"name": "x"}).status_code == 403
    assert Client().get("/-/staff/identity/").status_code == 302
    assert not ApiToken.objects.exists()


def test_the_page_shows_the_configuration_but_never_the_secret(staff_client: Client) -> None:
    TeamFactory.create(name="ml")
    sso_team = TeamFactory.create(name="locked", sso_required=True)

    page = staff_client.get("/-/staff/identity/")

    assert page.status_code == 200
    html = page.content.decode()
    assert "https://sso.corp.example/realms/main" in html
    assert "assay-client" in html
    assert "s3cret" not in html
    assert "/accounts/oidc/corp/login/callback/" in html
    assert 'href="/accounts/oidc/corp/login/?next=/-/staff/identity/"' in html  # the test sign-in link
    assert "ml-platform" in html
    assert "missing: create it" in html  # team ds does not exist
    assert f'href="/teams/{sso_team.name}/"' in html


def test_a_scim_token_is_shown_once_used_for_the_last_sync_and_revoked(staff_client: Client) -> None:
    created = staff_client.post("/-/staff/identity/scim-tokens/", {"name": "okta"})
    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    token = ApiToken.objects.get(name="okta")
    assert token.scope == "scim"
    raw = created.context["issued"].raw
    assert raw in created.content.decode()
    assert raw not in staff_client.get("/-/staff/identity/").content.decode()

    # the identity provider calls: the page shows the last sync and the last change
    idp = Client()
    idp.post(
        "/scim/v2/Users",
        data=b'{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ana"}',
        content_type="application/scim+json",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    page = staff_client.get("/-/staff/identity/")
    assert page.context["last_sync"] is not None
    assert page.context["last_change"].action == "user.create"
    assert "user.create" in page.content.decode()

    revoked = staff_client.post(f"/-/staff/identity/scim-tokens/{token.pk}/revoke/")
    assert revoked.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(action="token.revoke", target_id=token.pk).exists()
    refused = idp.get("/scim/v2/Users", HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert refused.status_code == 401


def test_bad_input_is_refused_and_unknown_tokens_are_404(staff_client: Client) -> None:
    admin = User.objects.get(username="root-admin")
    api_token = services.token_create(user=admin, name="laptop")

    empty = staff_client.post("/-/staff/identity/scim-tokens/", {"name": ""})
    long = staff_client.post("/-/staff/identity/scim-tokens/", {"name": "x" * 101})
    assert empty.status_code == 400
    assert long.status_code == 400
    assert "name must be 1-100 characters" in empty.content.decode()
    assert not ApiToken.objects.filter(scope="scim").exists()
    # an ordinary API token is not revoked from here
    assert staff_client.post(f"/-/staff/identity/scim-tokens/{api_token.token.pk}/revoke/").status_code == 404
    assert staff_client.post(f"/-/staff/identity/scim-tokens/{'f' * 32}/revoke/").status_code == 404
    api_token.token.refresh_from_db()
    assert api_token.token.revoked_at is None
