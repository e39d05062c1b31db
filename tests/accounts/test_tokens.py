"""API tokens: hashed at rest, shown once, revocable, and the Bearer authentication."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import ApiToken, User
from accounts.services import LAST_USED_RESOLUTION, TOKEN_PREFIX, token_authenticate, token_create, token_revoke
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects/"


def bearer(raw: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer " + raw)
    return client


def test_token_is_stored_hashed_with_a_short_clear_prefix(owner: User) -> None:
    issued = token_create(user=owner, name="laptop")

    stored = ApiToken.objects.get(pk=issued.token.pk)
    assert issued.raw.startswith(TOKEN_PREFIX)
    assert len(issued.raw) > 40
    assert stored.digest == hashlib.sha256(issued.raw.encode()).hexdigest()
    assert stored.digest != issued.raw
    assert stored.prefix == issued.raw[:12]
    assert len(stored.prefix) == 12
    # the raw token appears in no column of the row
    row_values = [str(v) for v in ApiToken.objects.filter(pk=stored.pk).values().get().values()]
    assert not any(issued.raw in value for value in row_values)


def test_each_token_is_different(owner: User) -> None:
    raws = {token_create(user=owner, name="t").raw for _ in range(5)}

    assert len(raws) == 5


def test_valid_token_authenticates_an_api_request(owner: User) -> None:
    issued = token_create(user=owner, name="ci")

    response = bearer(issued.raw).get(PROJECTS)

    assert response.status_code == 200
    assert response.json()["count"] == 0


def test_revoked_token_is_refused_with_the_error_shape(owner: User) -> None:
    issued = token_create(user=owner, name="old")
    assert bearer(issued.raw).get(PROJECTS).status_code == 200

    token_revoke(token=issued.token)

    response = bearer(issued.raw).get(PROJECTS)
    assert_error(response, 401, code="authentication_failed", field=None)
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def test_unknown_token_is_refused(db) -> None:
    response = bearer(TOKEN_PREFIX + "x" * 43).get(PROJECTS)

    assert_error(response, 401, code="authentication_failed")


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer one two", "bearer asy_a asy_b", "Bearer \u00e9t\u00e9"],
    ids=["no-token", "blank-token", "two-parts", "lowercase-two-parts", "non-ascii"],
)
def test_malformed_authorization_header_is_refused(owner: User, header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get(PROJECTS)

    assert_error(response, 401, field=None)


def test_token_without_the_prefix_is_refused(owner: User) -> None:
    issued = token_create(user=owner, name="ci")

    response = bearer(issued.raw[len(TOKEN_PREFIX) :]).get(PROJECTS)

    assert_error(response, 401)


def test_token_of_an_inactive_user_is_refused(owner: User) -> None:
    issued = token_create(user=owner, name="ci")
    owner.is_active = False
    owner.save()

    assert_error(bearer(issued.raw).get(PROJECTS), 401, code="authentication_failed")


def test_other_authorization_schemes_are_not_authenticated(owner: User) -> None:
    issued = token_create(user=owner, name="ci")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token " + issued.raw)

    assert_error(client.get(PROJECTS), 401, code="not_authenticated")


def test_create_token_command_prints_a_token_that_works(owner: User) -> None:
    out = StringIO()

    call_command("create_token", "OWNER", "--name", "deploy", stdout=out)

    raw = out.getvalue().strip()
    assert raw.startswith(TOKEN_PREFIX)
    token = ApiToken.objects.get(user=owner)
    assert token.name == "deploy"
    assert token.digest == hashlib.sha256(raw.encode()).hexdigest()
    assert bearer(raw).get(PROJECTS).status_code == 200


def test_create_token_command_refuses_an_unknown_user(db) -> None:
    with pytest.raises(CommandError, match="No user named"):
        call_command("create_token", "nobody", stdout=StringIO())
    assert ApiToken.objects.count() == 0


def test_first_use_sets_last_used_at(owner: User) -> None:
    issued = token_create(user=owner, name="ci")
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at is None
    before = timezone.now()

    bearer(issued.raw).get(PROJECTS)

    last_used_at = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert last_used_at is not None
    assert last_used_at >= before


def test_last_used_at_is_refreshed_only_after_its_resolution(owner: User) -> None:
    issued = token_create(user=owner, name="ci")
    recent = timezone.now() - timedelta(seconds=5)
    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=recent)

    token_authenticate(raw=issued.raw)
    assert ApiToken.objects.get(pk=issued.token.pk).last_used_at == recent

    stale = timezone.now() - LAST_USED_RESOLUTION - timedelta(seconds=5)
    ApiToken.objects.filter(pk=issued.token.pk).update(last_used_at=stale)
    token_authenticate(raw=issued.raw)
    refreshed = ApiToken.objects.get(pk=issued.token.pk).last_used_at
    assert refreshed is not None
    assert refreshed > stale + LAST_USED_RESOLUTION


def test_overlong_token_is_refused_without_a_lookup(owner: User) -> None:
    assert token_authenticate(raw=TOKEN_PREFIX + "a" * 300) is None
