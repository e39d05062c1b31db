"""django-allauth adapters: who may sign up, and usernames that are valid team names.

Sign-up modes (``ASSAY_SIGNUP``): ``open`` (anyone), ``invite`` (only with a pending team
invitation opened in this browser session; the default) and ``closed`` (administrators
create accounts). Sign-up through an OpenID Connect provider follows
``ASSAY_OIDC_SIGNUP`` (default on: the identity provider decides who may sign in).

# SECURITY: signing up grants nothing by itself: a new user owns only their personal team
# and sees only internal projects until someone grants them a role.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import jwt
from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.models import EmailAddress
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialLogin
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from requests import RequestException

from accounts.models import Team, User
from accounts.services import handle_generate, invitation_find
from accounts.sso import sso_required

INVITATION_SESSION_KEY = "assay_invitation"

logger = logging.getLogger("assay.sso")


def signup_mode() -> str:
    return str(settings.ASSAY_SIGNUP)


def pending_invitation_in(request: HttpRequest) -> bool:
    raw = request.session.get(INVITATION_SESSION_KEY) if hasattr(request, "session") else None
    return isinstance(raw, str) and invitation_find(raw) is not None


class AccountAdapter(DefaultAccountAdapter):  # type: ignore[misc]
    def is_open_for_signup(self, request: HttpRequest) -> bool:
        mode = signup_mode()
        if mode == "open":
            return True
        if mode == "invite":
            return pending_invitation_in(request)
        return False

    def authenticate(self, request: HttpRequest, **credentials: Any) -> Any:
        """The sign-in form's password check; refused (after the password was right, so the
        answer tells a guesser nothing) for users who must sign in through SSO."""
        user = super().authenticate(request, **credentials)
        if user is not None and sso_required(user):
            logger.info("sso: password sign-in refused for %s (SSO required)", user)
            raise ValidationError(
                'Your organisation signs in through single sign-on: use the "Sign in with …" button.',
                code="sso_required",
            )
        return user

    def clean_username(self, username: str, shallow: bool = False) -> str:
        username = super().clean_username(username, shallow=shallow)
        # Every user gets a personal team named after them, so a team's name is taken too.
        if not shallow and Team.objects.filter(name__iexact=username).exists():
            raise ValidationError("This name is taken by a team; choose another.")
        return username

    def generate_unique_username(self, txts: list[str | None], regex: str | None = None) -> str:
        """A free username that is also a valid, free team name (``ana-lopez``, ``ana-lopez-2``)."""
        return handle_generate(txts)


class SocialAccountAdapter(DefaultSocialAccountAdapter):  # type: ignore[misc]
    def is_open_for_signup(self, request: HttpRequest, sociallogin: SocialLogin) -> bool:
        return (bool(settings.ASSAY_OIDC_SIGNUP) and signup_mode() != "closed") or pending_invitation_in(request)

    def populate_user(self, request: HttpRequest, sociallogin: SocialLogin, data: dict[str, Any]) -> Any:
        user = super().populate_user(request, sociallogin, data)
        # The provider's preferred_username may not be a valid team name: let the account
        # adapter derive a valid one from it (or from the e-mail address).
        username = getattr(user, "username", "") or ""
        user.username = AccountAdapter(request).generate_unique_username([username, data.get("email"), "user"])
        return user

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """A provider's e-mail links to an existing account only when the provider says it is
        verified (allauth's e-mail authentication, which looks at verified addresses alone,
        has then already found the account). An *unverified* claim naming an existing
        account's address is refused here rather than offered a sign-up form.

        # SECURITY: anyone can put any address in an account at a provider that does not
        # verify e-mail; linking on it would hand them the existing account.
        """
        skew = clock_skew(sociallogin.account.extra_data or {})
        if skew is not None:
            raise ImmediateHttpResponse(sso_error_response(request, sociallogin.account.provider, ClockSkew(skew)))
        if sociallogin.is_existing:
            return
        provider = sociallogin.account.provider
        for address in sociallogin.email_addresses:
            if address.verified:
                continue
            taken = (
                User.objects.filter(email__iexact=address.email).exists()
                or EmailAddress.objects.filter(email__iexact=address.email).exists()
            )
            if taken:
                logger.warning(
                    "sso: %s signed in with an unverified e-mail claim that names an existing account; refused",
                    provider,
                )
                raise ImmediateHttpResponse(
                    sso_failure_page(
                        request,
                        title="This account cannot be linked",
                        message=(
                            "An Assay account already uses this e-mail address, but the identity provider "
                            "did not say the address is verified, so the two are not linked. Sign in with "
                            "your password, or ask your identity provider's administrator to verify the "
                            "address (the email_verified claim)."
                        ),
                        status=403,
                    )
                )

    def on_authentication_error(
        self,
        request: HttpRequest,
        provider: Any,
        error: Any = None,
        exception: BaseException | None = None,
        extra_context: dict[str, Any] | None = None,
    ) -> None:
        if str(error) == "cancelled":
            return  # allauth's own "sign-in cancelled" page
        app = getattr(provider, "app", None)
        provider_id = getattr(app, "provider_id", "") or getattr(provider, "id", "?")
        raise ImmediateHttpResponse(sso_error_response(request, provider_id, exception, error))


class ClockSkew(Exception):
    """The ID token's times do not fit this server's clock, beyond ``ASSAY_OIDC_CLOCK_LEEWAY``."""


def clock_skew(extra_data: dict[str, Any], now: float | None = None) -> str | None:
    """Why the ID token of a sign-in is not valid by this server's clock, or None.

    allauth checks ``exp`` (without leeway) but not ``iat`` when it fetched the token itself,
    so a provider whose clock runs ahead would pass: both are checked here, with the leeway."""
    claims = extra_data.get("id_token") or {}
    current = time.time() if now is None else now
    leeway = settings.ASSAY_OIDC_CLOCK_LEEWAY
    iat, exp = claims.get("iat"), claims.get("exp")
    if isinstance(iat, int | float) and iat > current + leeway:
        return (
            f"the ID token was issued in the future (iat): {int(iat - current)} s ahead of this "
            f"server's clock (leeway {leeway} s)"
        )
    if isinstance(exp, int | float) and exp < current - leeway:
        return f"the ID token expired (exp) {int(current - exp)} s ago by this server's clock (leeway {leeway} s)"
    return None


def _clock_cause(exception: BaseException | None) -> str | None:
    """The clock problem behind an exception (allauth wraps PyJWT's in "Invalid id_token")."""
    seen = 0
    while exception is not None and seen < 5:
        if isinstance(exception, ClockSkew):
            return str(exception)
        if isinstance(exception, jwt.ExpiredSignatureError):
            return f"the ID token expired (exp) by this server's clock: {exception}"
        if isinstance(exception, jwt.ImmatureSignatureError | jwt.InvalidIssuedAtError):
            return f"the ID token was issued in the future (iat) by this server's clock: {exception}"
        exception = exception.__cause__ or exception.__context__
        seen += 1
    return None


def sso_error_explanation(exception: BaseException | None) -> str:
    """What the person signing in reads about a failed OIDC exchange (the details go to the log)."""
    if _clock_cause(exception) is not None:
        return (
            "The identity provider's token was not valid at this time: the clocks of Assay's server "
            "and the provider may disagree. Tell your administrator."
        )
    text = str(exception or "")
    if isinstance(exception, RequestException) and getattr(exception, "response", None) is None:
        return "Assay could not reach the identity provider. Try again later; if it persists, tell your administrator."
    if "invalid_client" in text or "401" in text or "Unauthorized" in text:
        return (
            "The identity provider refused Assay's client credentials (client id or secret). "
            "An administrator must correct the provider in ASSAY_OIDC_PROVIDERS."
        )
    if any(word in text for word in ("iat", "exp", "expired", "nbf", "not yet valid")):
        return (
            "The identity provider's token was not valid at this time: the clocks of Assay's server "
            "and the provider may disagree. Tell your administrator."
        )
    return "The identity provider's answer could not be used. Tell your administrator; the details are in the log."


def sso_error_response(
    request: HttpRequest, provider_id: str, exception: BaseException | None, error: Any = None
) -> HttpResponse:
    """The page shown when a sign-in through an OpenID Connect provider fails, logged for the
    administrator (provider id, error, exception; never a secret or a token)."""
    cause = _clock_cause(exception)
    logger.error(
        "sso: sign-in through %r failed: %s: %s%s",
        provider_id,
        error or type(exception).__name__,
        exception,
        f" ({cause})" if cause and cause != str(exception) else "",
    )
    return sso_failure_page(
        request,
        title="Sign-in through your identity provider failed",
        message=sso_error_explanation(exception),
        status=502 if isinstance(exception, RequestException) else 401,
    )


def sso_failure_page(request: HttpRequest, *, title: str, message: str, status: int) -> HttpResponse:
    return render(request, "account/sso_error.html", {"title": title, "message": message}, status=status)
