"""DRF authentication by ``Authorization: Bearer <token>``."""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.models import ApiToken, User
from accounts.services import token_authenticate

AUTHENTICATE_HEADER = 'Bearer realm="api"'


def bearer_token(header: bytes) -> ApiToken | None:
    """The token of an ``Authorization`` header's value: None when the header is not a bearer
    one (another scheme may apply); AuthenticationFailed when it is but the token is bad.
    Asked by the DRF authentication below and by the log call's fast path (experiments/hotpath.py)."""
    parts = header.split()
    if not parts or parts[0].lower() != b"bearer":
        return None
    if len(parts) != 2:
        raise AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
    try:
        raw = parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise AuthenticationFailed("The token is not valid.") from None
    token = token_authenticate(raw=raw)
    if token is None:
        # SECURITY: one message for unknown, revoked and inactive, so tokens cannot be probed.
        raise AuthenticationFailed("The token is not valid.")
    return token


class BearerTokenAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[User, Any] | None:
        token = bearer_token(get_authorization_header(request))
        return None if token is None else (token.user, token)

    def authenticate_header(self, request: Request) -> str:
        return AUTHENTICATE_HEADER
