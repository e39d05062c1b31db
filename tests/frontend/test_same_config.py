"""The run page names the runs with the same configuration (issue 22), with links."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from experiments import services

pytestmark = pytest.mark.django_db


def page(client: Client, run: Any) -> str:
    response = client.get(f"/acme/mem/runs/{run.id}/")
    assert response.status_code == 200
    return response.content.decode()


def test_the_run_page_links_runs_with_the_same_configuration(owner: User, member: User, team: Any) -> None:
    # given two runs of one configuration (spelled differently, other seeds) and another
    first = services.run_create(user=member, project_path="acme/mem", name="ana-run", config={"lr": 0.01, "seed": 1})
    second = services.run_create(user=owner, project_path="acme/mem", name="again", config={"lr": "1e-2", "seed": 2})
    other = services.run_create(user=owner, project_path="acme/mem", name="other", config={"lr": 0.1})
    web = Client()
    web.force_login(owner)
    # when / then
    html = page(web, second)
    same = re.search(r'data-testid="same-config">(.*?)</div>', html, re.S)
    assert same is not None
    assert f'href="/acme/mem/runs/{first.id}/"' in same.group(1)
    assert "ana-run" in same.group(1)
    assert "member" in same.group(1)
    assert 'data-testid="same-config"' not in page(web, other)
