"""Issue 16, bug 8: the Changes tab of a request whose alias holds nothing yet shows the
candidate's whole contents as new (params and config, metrics, binary, code, environment,
data), not only its metrics; with a base it still shows the diff."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from registry.models import ModelVersion
from reviews import services

pytestmark = pytest.mark.django_db


def _rows(page: str) -> dict[tuple[str, str], str]:
    """(kind, key) → the Change cell, from the diff table."""
    found = re.findall(
        r'<tr data-testid="diff-row" data-kind="([^"]+)" data-key="([^"]*)">.*?</th>\s*<td>([^<]*)</td>', page, re.S
    )
    return {(kind, key): change.strip() for kind, key, change in found}


def _changes(user: User, number: int) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(f"/acme/proj/reviews/{number}/?tab=changes")
    assert response.status_code == 200
    return response.content.decode()


def test_a_first_candidate_shows_everything_it_holds_as_new(member: User, register: Any) -> None:
    candidate: ModelVersion = register(metrics={"acc": 0.9, "loss": 0.3})
    rr, _ = services.review_request_open(
        user=member, project=candidate.project, model="fraud", version="v1", alias="production", title="First"
    )

    page = _changes(member, rr.number)
    rows = _rows(page)

    assert 'data-testid="changes-all-new"' in page
    expected = {
        ("param", "seed"),  # a logged param
        ("param", "optimizer.lr"),  # the run's config, flattened
        ("param", "epochs"),
        ("metric", "acc"),
        ("metric", "loss"),
        ("file", "model.pkl"),
        ("code", "commit"),
        ("code", "command"),
        ("environment", "python"),
        ("environment", "os"),
        ("package", "numpy"),
        ("package", "scikit-learn"),
        ("dataset", "train"),
    }
    assert expected <= set(rows), sorted(rows)
    assert set(rows.values()) == {"new"}
    assert "3.11.9" in page
    assert "train.py --epochs 3" in page


def test_with_a_base_the_tab_is_a_diff(member: User, v2: ModelVersion) -> None:
    rr, _ = services.review_request_open(
        user=member, project=v2.project, model="fraud", version="v2", alias="production", title="Second"
    )

    page = _changes(member, rr.number)
    rows = _rows(page)

    assert 'data-testid="changes-all-new"' not in page
    assert rows[("metric", "acc")].startswith("changed")
    assert rows[("file", "model.pkl")] == "binary changed"
    assert ("code", "commit") not in rows  # the same commit: nothing to show
