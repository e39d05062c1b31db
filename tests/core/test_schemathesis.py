"""A bounded Schemathesis run over a few operations: no 5xx, every answer as the schema says.

Through Django's WSGI handler in the test's transaction: quick, and it fails with Hypothesis'
shrunk example. The full run (a live ASGI server, every phase, the issue's nine checks,
negative data too, three callers) is tests/e2e/test_schemathesis_live.py.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from accounts.models import Project, User
from tests.conftest import ClientFor
from tests.openapi import api_schema

pytestmark = pytest.mark.django_db

OPERATIONS = [
    ("/api/v1/projects/", "GET"),
    ("/api/v1/audit/", "GET"),
    ("/api/v1/teams/", "GET"),
    ("/api/v1/me/", "GET"),
    ("/api/v1/projects/{team}/{project}/", "GET"),
    ("/api/v1/projects/{team}/{project}/models/", "GET"),
    ("/api/v1/projects/{team}/{project}/mentionables/", "GET"),
    ("/api/v1/notifications/", "GET"),
]


@pytest.fixture
def same_connection() -> Any:
    """Keep the test's connection (and its transaction) across WSGI requests, as Django's test
    client does."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@functools.cache
def strategy() -> Any:
    """The operations' requests as one strategy, built once: building it scans the schema and
    Schemathesis' constants pool (~0.4 s), which each of the 100 examples would otherwise redo."""
    schema = schemathesis.openapi.from_dict(api_schema())
    schema.app = get_wsgi_application()
    return st.one_of(*[schema[path][method].as_strategy() for path, method in OPERATIONS])


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(data=st.data())
def test_a_few_operations_hold_against_generated_requests(
    data: Any, client_for: ClientFor, owner: User, project: Project, same_connection: None
) -> None:
    token = _token(client_for, owner)
    case = data.draw(strategy())
    if "team" in (case.path_parameters or {}) and data.draw(st.booleans()):
        case.path_parameters = {**case.path_parameters, "team": "acme", "project": "proj"}
    case.call_and_validate(
        headers={"Authorization": token},
        checks=[not_a_server_error, status_code_conformance, response_schema_conformance],
    )


def _token(client_for: ClientFor, user: User) -> str:
    client: APIClient = client_for(user)
    header: str = client._credentials["HTTP_AUTHORIZATION"]  # type: ignore[attr-defined]
    return header
