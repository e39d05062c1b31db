"""Sign-in and sign-up through django-allauth: modes, login by e-mail, audit, rate limits,
and OpenID Connect against a fake provider started on loopback."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings

from accounts.models import AuditEvent, Membership, Project, Team, User
from accounts.services import invitation_create
from config import settings as production_settings
from config.env import oidc_apps
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

SIGNUP = "/accounts/signup/"
INVITATION = "/invitations/"


def signup_body(username: str = "newbie", email: str = "newbie@example.com") -> dict[str, str]:
    return {"username": username, "email": email, "password1": PASSWORD, "password2": PASSWORD}


def test_invite_only_is_the_default_and_refuses_a_plain_sign_up() -> None:
    client = Client()

    page = client.get(SIGNUP)
    client.post(SIGNUP, signup_body())

    assert production_settings.ASSAY_SIGNUP == "invite"
    assert b"closed" in page.content.lower()
    assert not User.objects.filter(username="newbie").exists()


@override_settings(ASSAY_SIGNUP="open")
def test_open_sign_up_creates_a_user_with_a_personal_team_and_no_access(project: Project) -> None:
    response = Client().post(SIGNUP, signup_body())

    assert response.status_code == 302
    user = User.objects.get(username="newbie")
    assert Team.objects.get(personal_owner=user).name == "newbie"
    from accounts import access

    assert access.role_on(user, project) is None


@override_settings(ASSAY_SIGNUP="open")
def test_sign_up_refuses_a_name_taken_by_a_team_or_reserved(team: Team) -> None:
    client = Client()

    taken = client.post(SIGNUP, signup_body(username="acme"))
    reserved = client.post(SIGNUP, signup_body(username="teams", email="t@example.com"))

    assert taken.status_code == reserved.status_code == 200
    assert not User.objects.filter(username__in=["acme", "teams"]).exists()


@override_settings(ASSAY_SIGNUP="closed")
def test_closed_sign_up_ignores_invitations(owner: User, team: Team) -> None:
    issued = invitation_create(team=team, inviter=owner, email="friend@example.com")
    client = Client()
    client.get(issued.path)

    client.post(SIGNUP, signup_body())

    assert not User.objects.filter(username="newbie").exists()


def test_an_invitation_opens_sign_up_and_then_joins_the_team(owner: User, team: Team) -> None:
    issued = invitation_create(team=team, inviter=owner, email="friend@example.com", role="member")
    client = Client()

    landing = client.get(issued.path, follow=True)
    signed_up = client.post(f"{SIGNUP}?next={INVITATION}", signup_body("friend", "friend@example.com"))
    accepted = client.post(INVITATION)

    assert landing.redirect_chain == [(INVITATION, 302)]
    assert b"Create an account" in landing.content
    assert signed_up.status_code == 302
    assert signed_up["Location"] == INVITATION
    assert accepted.status_code == 302
    assert accepted["Location"] == "/teams/acme/"
    assert Membership.objects.get(team=team, user__username="friend").role == "member"
    assert AuditEvent.objects.filter(action="team.invitation_accept", actor__username="friend").exists()
    assert client.post(INVITATION).status_code == 302  # used: nothing pending any more
    assert Membership.objects.filter(team=team, user__username="friend").count() == 1


def test_the_invitation_secret_leaves_the_address_bar_at_once(owner: User, team: Team) -> None:
    issued = invitation_create(team=team, inviter=owner, email="friend@example.com")
    client = Client()

    link = client.get(issued.path)
    page = client.get(INVITATION)

    # the link only moves its secret into the session: the page the browser shows (and every
    # Referer it sends from there) has a plain address, and no response carries the secret
    assert (link.status_code, link["Location"]) == (302, INVITATION)
    assert link["Referrer-Policy"] == "no-referrer"
    assert link["Cache-Control"] == page["Cache-Control"] == "no-store"
    assert page.status_code == 200
    assert issued.raw.encode() not in page.content
    assert issued.raw[4:].encode() not in link.content


def test_an_unknown_or_used_link_is_redirected_like_a_valid_one_and_then_refused(
    owner: User, team: Team, outsider: User
) -> None:
    issued = invitation_create(team=team, inviter=owner, username="outsider")
    client = Client()
    client.force_login(outsider)
    client.get(issued.path)
    client.post(INVITATION)

    for link in (issued.path, "/invitations/inv_not-a-real-one/", "/invitations/garbage/"):
        response = client.get(link)
        assert (response.status_code, response["Location"]) == (302, INVITATION)
        assert client.get(INVITATION).status_code == 404
    # nothing opened in this browser at all: an explanation, not an error
    assert Client().get(INVITATION).status_code == 200


def test_accepting_needs_a_signed_in_user_and_the_invited_account(owner: User, team: Team, outsider: User) -> None:
    issued = invitation_create(team=team, inviter=owner, username="outsider")
    anonymous, intruder_client = Client(), Client()
    intruder = User.objects.create_user(username="intruder", password=PASSWORD)
    intruder_client.force_login(intruder)

    anonymous.get(issued.path)
    signed_out = anonymous.post(INVITATION)
    intruder_client.get(issued.path)
    wrong = intruder_client.post(INVITATION)

    assert (signed_out.status_code, signed_out["Location"]) == (302, f"/login/?next={INVITATION}")
    assert wrong.status_code == 200
    assert b"for another account" in wrong.content
    assert not Membership.objects.filter(team=team, user__in=[outsider, intruder]).exists()


def test_login_by_username_or_email_and_both_are_audited(owner: User) -> None:
    by_name, by_email = Client(), Client()

    r1 = by_name.post("/login/", {"login": "owner", "password": PASSWORD})
    r2 = by_email.post("/login/", {"login": "owner@example.com", "password": PASSWORD})
    r3 = Client().post("/login/", {"login": "owner", "password": "not-it-at-all"})

    assert r1.status_code == r2.status_code == 302
    assert r3.status_code == 200
    assert AuditEvent.objects.filter(action="auth.sign_in", actor=owner).count() == 2
    failed = AuditEvent.objects.get(action="auth.sign_in_failed")
    assert failed.data == {"login": "owner"}
    assert failed.ip == "127.0.0.1"


def test_a_deactivated_user_cannot_sign_in_and_loses_their_session(owner: User) -> None:
    client = Client()
    client.post("/login/", {"login": "owner", "password": PASSWORD})
    User.objects.filter(pk=owner.pk).update(is_active=False)

    assert client.get("/")["Location"].startswith("/login/")
    again = Client()
    refused = again.post("/login/", {"login": "owner", "password": PASSWORD})
    assert refused.status_code in (200, 302)
    # The same client that tried: no session of the user, and the dashboard still sends it to sign in.
    assert "_auth_user_id" not in again.session
    assert again.get("/")["Location"].startswith("/login/")


# The counters live in the shared cache (Redis here, as in production): each test uses a
# login name of its own instead of clearing the cache under other tests' feet.


@override_settings(ACCOUNT_RATE_LIMITS=production_settings.ACCOUNT_RATE_LIMITS)
def test_failed_logins_are_rate_limited() -> None:
    name = f"rl-{secrets.token_hex(6)}"
    User.objects.create_user(username=name, password=PASSWORD)
    client = Client()
    for i in range(5):
        client.post("/login/", {"login": name, "password": f"wrong-{i}"})

    # even the right password is refused now, for this login name
    blocked = client.post("/login/", {"login": name, "password": PASSWORD})

    assert blocked.status_code in (200, 429)
    assert b"Too many failed login attempts" in blocked.content
    assert "_auth_user_id" not in client.session


@override_settings(ACCOUNT_RATE_LIMITS=production_settings.ACCOUNT_RATE_LIMITS)
def test_password_reset_is_rate_limited() -> None:
    email = f"rl-{secrets.token_hex(6)}@example.com"
    User.objects.create_user(username=email.split("@")[0], email=email, password=PASSWORD)
    client = Client()

    statuses = [client.post("/accounts/password/reset/", {"email": email}).status_code for _ in range(7)]

    assert 429 in statuses


def test_the_settings_pages_use_the_dashboard_layout(owner: User) -> None:
    client = Client()
    client.force_login(owner)

    for url in ("/accounts/password/change/", "/accounts/email/", "/accounts/2fa/", "/settings/"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b'data-testid="user-menu"' in response.content, url
        assert b"<script>" not in response.content, url  # CSP: no inline scripts


# --- OpenID Connect -----------------------------------------------------------------------------------


def test_oidc_providers_come_from_the_environment() -> None:
    apps = oidc_apps(
        [{"id": "corp", "name": "Corp SSO", "server_url": "https://sso.example.com", "client_id": "c", "secret": "s"}]
    )

    assert apps == [
        {
            "provider_id": "corp",
            "name": "Corp SSO",
            "client_id": "c",
            "secret": "s",
            "settings": {"server_url": "https://sso.example.com", "oauth_pkce_enabled": True},
        }
    ]
    for bad in ({"id": "x"}, [{"id": "x", "server_url": "u"}], [{"id": "x y", "server_url": "u", "client_id": "c"}]):
        with pytest.raises(ImproperlyConfigured):
            oidc_apps(bad)
    with pytest.raises(ImproperlyConfigured, match="unknown keys"):
        oidc_apps([{"id": "x", "server_url": "u", "client_id": "c", "password": "p"}])


class FakeProvider(BaseHTTPRequestHandler):
    """Discovery, token and userinfo endpoints of an OpenID Connect provider."""

    issuer = ""
    client_id = "assay-client"
    token_requests: list[dict[str, list[str]]] = []

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _json(self, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.startswith("/.well-known/openid-configuration"):
            self._json(
                {
                    "issuer": self.issuer,
                    "authorization_endpoint": f"{self.issuer}/authorize",
                    "token_endpoint": f"{self.issuer}/token",
                    "userinfo_endpoint": f"{self.issuer}/userinfo",
                    "jwks_uri": f"{self.issuer}/jwks",
                    "token_endpoint_auth_methods_supported": ["client_secret_post"],
                }
            )
        elif self.path.startswith("/userinfo"):
            self._json({"sub": "u-42", "email": "Ana.Lopez@example.com", "preferred_username": "Ana Lopez"})
        else:
            self.send_error(404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        form = parse_qs(self.rfile.read(length).decode())
        FakeProvider.token_requests.append(form)
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "sub": "u-42", "iat": now, "exp": now + 300}
        self._json(
            {
                "access_token": "provider-access-token",
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": jwt.encode(claims, "provider-signing-secret-0123456789abcdef", algorithm="HS256"),
            }
        )


@pytest.fixture
def fake_provider() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), FakeProvider)
    FakeProvider.issuer = f"http://127.0.0.1:{server.server_port}"
    FakeProvider.token_requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield FakeProvider.issuer
    server.shutdown()


def test_sign_in_with_a_fake_oidc_provider_creates_a_valid_user(fake_provider: str) -> None:
    providers = {
        "openid_connect": {
            "APPS": oidc_apps(
                [
                    {
                        "id": "fake",
                        "name": "Fake SSO",
                        "server_url": fake_provider,
                        "client_id": FakeProvider.client_id,
                        "secret": "client-secret",
                    }
                ]
            )
        }
    }
    with override_settings(SOCIALACCOUNT_PROVIDERS=providers):
        client = Client()
        login_page = client.get("/login/")
        # when: the button posts to allauth, which redirects to the provider
        start = client.post("/accounts/oidc/fake/login/")
        authorize = urlparse(start["Location"])
        query = parse_qs(authorize.query)
        # the provider sends the browser back with a code
        callback = client.get(urlparse(query["redirect_uri"][0]).path, {"code": "the-code", "state": query["state"][0]})

    assert b"Fake SSO" in login_page.content
    assert start.status_code == 302
    assert f"{authorize.scheme}://{authorize.netloc}" == fake_provider
    assert query["client_id"] == [FakeProvider.client_id]
    assert FakeProvider.token_requests[0]["code"] == ["the-code"]
    assert callback.status_code == 302, callback.content[:500]
    user = User.objects.get(email__iexact="ana.lopez@example.com")
    # a provider's display name became a valid username and personal team
    assert user.username == "ana-lopez"
    assert Team.objects.filter(personal_owner=user, name="ana-lopez").exists()
    assert AuditEvent.objects.filter(action="auth.sign_in", actor=user).exists()
