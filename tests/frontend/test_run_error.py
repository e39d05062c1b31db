"""A failed run's page starts with its error (issue 20): the exception the SDK recorded when the
script raised (``info.error``, sdk/src/assay/run.py ``error_info``), where it was raised, and
the traceback folded below; escaped like any user text."""

from __future__ import annotations

from typing import Any

import pytest
from assay.run import error_info
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import User
from experiments.models import Run

pytestmark = pytest.mark.django_db


def train_step(batch: list[int]) -> float:
    return sum(batch) / len(batch)


def raised() -> BaseException:
    try:
        train_step([])
    except ZeroDivisionError as exc:
        return exc
    raise AssertionError("unreachable")


def finish(client: APIClient, run: Run, status: str, info: dict[str, Any]) -> None:
    response = client.patch(
        f"/api/v1/runs/{run.id}/",
        {"status": status, "end_time": timezone.now().isoformat(), "info": info},
        format="json",
    )
    assert response.status_code == 200, response.content


def page(owner: User, run: Run) -> str:
    client = Client()
    client.force_login(owner)
    return client.get(f"/acme/proj/runs/{run.id}/").content.decode()


def test_a_failed_run_shows_its_error_first(owner: User, owner_client: APIClient, run: Run) -> None:
    # given: what the SDK sends when `with assay.init(...)` sees an exception
    finish(owner_client, run, "failed", {"error": error_info(raised()), "system": {"peak_memory_mb": 12}})

    # when
    html = page(owner, run)

    # then: at the top, before the metrics; the innermost frame named; the traceback folded
    error_at = html.index('data-testid="run-error"')
    assert error_at < html.index('id="charts-title"')
    assert '<span class="mono fw-semibold" data-testid="run-error-type">ZeroDivisionError</span>' in html
    assert "division by zero" in html
    assert "test_run_error.py, line 22, in train_step" in html
    assert "<details" in html[error_at : html.index("</pre>", error_at)]
    # and not a second time in the info sections below (the raw JSON at the bottom keeps it)
    assert '">Error</h2>' not in html
    assert '">System</h2>' in html


def test_the_error_is_text_not_markup(owner: User, owner_client: APIClient, run: Run) -> None:
    finish(
        owner_client,
        run,
        "failed",
        {"error": {"type": "<b>Boom</b>", "message": "<script>alert(1)</script>", "traceback": "<img src=x>"}},
    )

    html = page(owner, run)

    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>alert(1)" not in html
    assert "&lt;b&gt;Boom&lt;/b&gt;" in html
    assert "<img src=x>" not in html


def test_a_failed_run_without_a_recorded_error_says_so(owner: User, owner_client: APIClient, run: Run) -> None:
    finish(owner_client, run, "killed", {})

    html = page(owner, run)

    assert 'data-testid="run-error"' in html
    assert "<strong>Killed</strong>, with no error recorded" in html


def test_a_finished_run_has_no_error_box(owner: User, owner_client: APIClient, run: Run) -> None:
    finish(owner_client, run, "finished", {"error": {"type": "Leftover", "message": "ignored"}})

    html = page(owner, run)

    assert 'data-testid="run-error"' not in html
    assert 'data-live-part="run-error"' in html  # the place a live update fills when it fails
