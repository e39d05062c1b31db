"""Who calls the MLflow endpoints: an Assay API token, sent as the client sends it.

- ``MLFLOW_TRACKING_TOKEN=<token>``: ``Authorization: Bearer <token>``;
- ``MLFLOW_TRACKING_USERNAME`` + ``MLFLOW_TRACKING_PASSWORD=<token>``: ``Authorization:
  Basic …`` with the token as the password; the username must be the token's user's.

The token is checked by ``accounts`` (``bearer_token``, ``token_authenticate``): an
unknown, revoked and expired token get one answer. There is no anonymous access and no
session: the MLflow API is for scripts, so it needs no CSRF protection either.
"""

from __future__ import annotations

import base64
import binascii

from django.http import HttpRequest
from rest_framework.exceptions import AuthenticationFailed

from accounts.authentication import bearer_token
from accounts.models import ApiToken, User
from accounts.services import token_authenticate

CHALLENGE = 'Bearer realm="mlflow", Basic realm="mlflow"'
_BAD_TOKEN = "The token is not valid."  # noqa: S105 - a message, not a secret


class Unauthenticated(Exception):
    """No credentials, or credentials that do not name an active token."""


def authenticate(request: HttpRequest) -> tuple[User, ApiToken]:
    header = request.META.get("HTTP_AUTHORIZATION", "").encode("latin-1", "replace")
    if not header.strip():
        raise Unauthenticated(
            "Authentication is required: set MLFLOW_TRACKING_TOKEN to an Assay API token "
            "(or MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD=<token>)."
        )
    scheme = header.split(maxsplit=1)[0].lower()
    token: ApiToken | None
    if scheme == b"basic":
        token = _basic(header)
    else:
        try:
            token = bearer_token(header)
        except AuthenticationFailed as exc:
            raise Unauthenticated(str(exc.detail)) from None
        if token is None:
            raise Unauthenticated("Unsupported Authorization scheme: use Bearer <token> or Basic.")
    if not token.user.is_active:
        raise Unauthenticated(_BAD_TOKEN)
    return token.user, token


def _basic(header: bytes) -> ApiToken:
    parts = header.split()
    if len(parts) != 2:
        raise Unauthenticated("Malformed Authorization header: expected 'Basic <base64 of user:token>'.")
    try:
        username, _, password = base64.b64decode(parts[1], validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Malformed Authorization header: expected 'Basic <base64 of user:token>'.") from None
    token = token_authenticate(raw=password)
    # SECURITY: one message for a bad token and a token of another user, so neither can be probed.
    if token is None or token.user.username.lower() != username.lower():
        raise Unauthenticated(_BAD_TOKEN)
    return token
