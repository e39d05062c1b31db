"""Mass assignment (security.md class 7): role, owner, team, state, approval, author,
timestamps and ids never ride along with a valid request. Table-driven from the URL
configuration (tests/security/test_endpoints.py): every endpoint that takes a body gets its
valid sample plus one such field it does not declare, and either refuses it (400 naming the
field: the accounts, registry and reviews serializers are strict) or ignores it (the
tracking endpoints, which the SDK calls, accept and drop unknown keys): the answer never
shows the value sent."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from rest_framework.test import APIClient

from experiments.models import Run
from tests.helpers import assert_error
from tests.security.test_endpoints import (  # noqa: F401 (fixture)
    ENDPOINTS,
    VALID_BODIES,
    build_url,
    sample_kwargs,
    send,
    snapshot,
    victim_run,
)

pytestmark = pytest.mark.django_db

UNSAFE = {"post", "put", "patch"}
# Fields that decide who may do what, or what happened: never accepted where not declared.
# Values the caller (the owner, admin of acme/proj) could not get legitimately.
PROTECTED = {
    "role": "viewer",
    "is_staff": True,
    "is_superuser": True,
    "owner": "newcomer",
    "author": "newcomer",
    "user": "newcomer",
    "created_by": "newcomer",
    "state": "merged",
    "approved": True,
    "created_at": "2020-01-01T00:00:00Z",
    "id": "f" * 32,
    "project": "owner/elsewhere",
    "team": "otherteam",
}
CASES = [(method, route, name) for method, route, name in ENDPOINTS if method in UNSAFE and name in VALID_BODIES]


class _Rollback(Exception):
    pass


@pytest.mark.parametrize(("method", "route", "name"), CASES, ids=[f"{m.upper()} {n}" for m, _, n in CASES])
def test_undeclared_protected_fields_are_refused_or_take_no_effect(
    owner_client: APIClient,
    victim_run: Run,  # noqa: F811 (the imported fixture)
    method: str,
    route: str,
    name: str,
) -> None:
    url = build_url(route, sample_kwargs(victim_run))
    problems = []
    for field in sorted(set(PROTECTED) - set(VALID_BODIES[name])):
        before = snapshot()
        try:
            with transaction.atomic():  # each field meets the same world
                response = send(owner_client, method, url, {**VALID_BODIES[name], field: PROTECTED[field]})
                problems += _problems(response, name, field, before)
                raise _Rollback
        except _Rollback:
            pass
    assert not problems, problems


def _problems(response: Any, name: str, field: str, before: dict[str, int]) -> list[str]:
    if response.status_code < 300:  # ignored: it took no effect
        shown = response.json()
        if isinstance(shown, dict) and shown.get(field) == PROTECTED[field]:
            return [f"{field}: accepted and applied ({shown})"]
        return []
    error = assert_error(response, 400)
    # named, or refused as the wrong one of two alternatives ("user" or "team" for a grant)
    if error["field"] != field and error["field"] not in VALID_BODIES[name]:
        return [f"{field}: refused naming {error['field']!r}"]
    if snapshot() != before:
        return [f"{field}: refused but something was written"]
    return []
