"""Issue 16, bug 5: the model page's alias history names a merge's review request as a
``#N`` link (it showed the raw id), and the versions table links each version's run."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import User
from registry import services as registry_services
from registry.models import ModelVersion
from reviews import services

pytestmark = pytest.mark.django_db


def test_the_alias_history_links_the_review_and_the_versions_link_their_run(
    member: User, owner: User, v2: ModelVersion
) -> None:
    rr, _ = services.review_request_open(
        user=member, project=v2.repository.project, model="fraud", version=v2.number, alias="production", title="v2"
    )
    registry_services.alias_move(
        alias="production",
        version=v2,
        user=owner,
        merge=registry_services.ReviewMerge(
            review_request_id=rr.id, number=rr.number, alias="production", version_id=v2.id
        ),
    )
    web = Client()
    web.force_login(member)
    page = web.get("/acme/proj/models/fraud/").content.decode()

    cells = re.findall(r'<td data-testid="alias-move-review">(.*?)</td>', page)
    assert cells[0] == f'<a href="/acme/proj/reviews/{rr.number}/">#{rr.number}</a>'
    assert rr.id not in page
    runs = re.findall(r'<td data-testid="version-run">(.*?)</td>', page)
    assert runs[0].startswith(f'<a href="/acme/proj/runs/{v2.source_run_id}/">')
