"""Issue 16, bug 6: floats showed at full precision (0.9916434540389972) on the model,
version and review pages; one filter (frontend/templatetags/assay.py ``num``) shortens them
and keeps the full value on hover."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from frontend.templatetags.assay import num
from registry.models import ModelVersion
from reviews import services

pytestmark = pytest.mark.django_db

FULL = 0.9916434540389972
SHOWN = f'<span class="num-value" title="{FULL!r}">0.99164</span>'


def test_the_filter_shortens_floats_only() -> None:
    assert num(FULL) == SHOWN
    assert num(3) == 3
    assert num("0.9916434540389972") == "0.9916434540389972"  # a string (a param) stays as logged
    assert num(True) is True


def test_model_version_and_review_pages_shorten_floats(member: User, v1: ModelVersion, register: Any) -> None:
    v2 = register(metrics={"acc": FULL, "loss": 0.3})
    rr, _ = services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    web = Client()
    web.force_login(member)
    for url in (
        "/acme/proj/models/fraud/",
        f"/acme/proj/models/fraud/v{v2.number}/?compare=v1",
        f"/acme/proj/reviews/{rr.number}/?tab=changes",
    ):
        page = web.get(url).content.decode()
        assert SHOWN in page, url
        assert f">{FULL!r}<" not in page, url
        assert f" {FULL!r}<" not in page, url
