"""The allauth flows end to end through the real views: e-mail verification, password
change and reset from the e-mailed link, and TOTP two-factor (enrol, then sign in with a
code). Each client has an address of its own (rate limits count per address in Redis)."""

from __future__ import annotations

import random
import re
import secrets
import time

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from django.core import mail
from django.test import Client, override_settings

from accounts.models import User
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "An0ther-long-passphrase"


def client() -> Client:
    return Client(REMOTE_ADDR=f"192.0.2.{random.randint(1, 254)}")


def link_in_last_mail(pattern: str) -> str:
    match = re.search(pattern, str(mail.outbox[-1].body))
    assert match, mail.outbox[-1].body
    return match[0]


def signed_in(c: Client) -> bool:
    return "_auth_user_id" in c.session


def verified_user(username: str = "ana") -> User:
    user = User.objects.create_user(username=username, email=f"{username}@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    return user


@override_settings(ASSAY_SIGNUP="open", ACCOUNT_EMAIL_VERIFICATION="mandatory")
def test_mandatory_verification_holds_sign_in_until_the_emailed_link_is_confirmed() -> None:
    # allauth sends one confirmation per address every 3 minutes (counted in Redis): a fresh address
    name = f"newbie{secrets.token_hex(4)}"
    email = f"{name}@example.com"
    c = client()
    signup = c.post(
        "/accounts/signup/",
        {"username": name, "email": email, "password1": PASSWORD, "password2": PASSWORD},
    )
    assert (signup.status_code, signup["Location"], len(mail.outbox)) == (302, "/accounts/confirm-email/", 1)
    assert not signed_in(c)
    assert not EmailAddress.objects.get(email=email).verified
    assert not signed_in(_login(client(), name))

    confirm = link_in_last_mail(r"/accounts/confirm-email/[^/\s]+/")
    assert client().post(confirm).status_code == 302

    assert EmailAddress.objects.get(email=email).verified
    assert signed_in(_login(client(), name))


def _login(c: Client, login: str, password: str = PASSWORD) -> Client:
    c.post("/login/", {"login": login, "password": password})
    return c


def test_password_change_needs_the_old_password() -> None:
    verified_user()
    c = _login(client(), "ana")

    wrong = c.post(
        "/accounts/password/change/",
        {"oldpassword": "not-it", "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    right = c.post(
        "/accounts/password/change/",
        {"oldpassword": PASSWORD, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )

    assert wrong.status_code == 200
    assert right.status_code == 302
    assert not signed_in(_login(client(), "ana", PASSWORD))
    assert signed_in(_login(client(), "ana", NEW_PASSWORD))


def test_password_reset_through_the_emailed_link() -> None:
    user = verified_user(f"ana{secrets.token_hex(4)}")  # reset e-mails are rate-limited per address
    c = client()

    c.post("/accounts/password/reset/", {"email": user.email})
    key_url = link_in_last_mail(r"/accounts/password/reset/key/[^/\s]+/")
    set_password = c.get(key_url)  # allauth moves the key out of the address, then shows the form
    assert set_password.status_code == 302
    done = c.post(set_password["Location"], {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert done.status_code == 302
    assert signed_in(_login(client(), user.username, NEW_PASSWORD))
    # the link works once
    assert b"invalid" in client().get(key_url, follow=True).content.lower()


def _code(secret: str, offset: int = 0) -> str:
    return str(format_hotp_value(hotp_value(secret, int(time.time()) // 30 + offset)))


@override_settings(MFA_TOTP_TOLERANCE=1)
def test_totp_enrolment_then_sign_in_asks_for_a_code() -> None:
    user = verified_user()
    c = _login(client(), "ana")
    c.post("/accounts/reauthenticate/", {"password": PASSWORD})  # allauth asks again before 2FA changes
    c.get("/accounts/2fa/totp/activate/")
    secret = str(c.session[SECRET_SESSION_KEY])

    refused = c.post("/accounts/2fa/totp/activate/", {"code": "000000" if _code(secret) != "000000" else "111111"})
    activated = c.post("/accounts/2fa/totp/activate/", {"code": _code(secret)})

    assert refused.status_code == 200
    assert activated.status_code == 302
    assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()

    # signing in now stops at the second factor until a (fresh) code is given
    second = client()
    step = second.post("/login/", {"login": "ana", "password": PASSWORD})
    assert step["Location"] == "/accounts/2fa/authenticate/"
    assert not signed_in(second)
    second.post("/accounts/2fa/authenticate/", {"code": "12345"})
    assert not signed_in(second)
    second.post("/accounts/2fa/authenticate/", {"code": _code(secret, offset=1)})
    assert signed_in(second)
