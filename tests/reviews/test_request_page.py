"""The request page offers a dismissal only where reviews.policy allows one: a standing
approval or request for changes, to a maintainer (the template holds no rule of its own)."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from registry.models import ModelVersion
from reviews import services

pytestmark = pytest.mark.django_db


def _page(user: User, number: int) -> str:
    web = Client()
    web.force_login(user)
    response = web.get(f"/acme/proj/reviews/{number}/")
    assert response.status_code == 200
    return response.content.decode()


def test_a_maintainer_may_dismiss_standing_decisive_reviews_only(
    member: User, maintainer: User, maint2: User, v2: ModelVersion
) -> None:
    rr, _ = services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    approval, _ = services.review_submit(
        user=maintainer, review_request=rr, verdict="approve", body="", version_hash=v2.content_hash
    )
    remark, _ = services.review_submit(
        user=maint2, review_request=rr, verdict="comment", body="a remark", version_hash=v2.content_hash
    )

    as_maintainer = _page(maint2, rr.number)
    assert f'id="dismiss-{approval.id}"' in as_maintainer
    assert f'id="dismiss-{remark.id}"' not in as_maintainer  # a comment is not dismissable
    assert 'id="dismiss-' not in _page(member, rr.number)  # a writer may dismiss nothing

    services.review_dismiss(user=maint2, review=approval, reason="stale")
    assert 'id="dismiss-' not in _page(maint2, rr.number)  # already dismissed
