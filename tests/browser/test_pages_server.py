"""The dashboard's pages through Django's test client (no browser): query counts with a
large project, sort and column parameters, the policy's 404s. They sit beside the browser
tests because they test the same views and templates."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from pytest_django import DjangoAssertNumQueries

from accounts.models import Project, User
from experiments import services
from experiments.models import MetricSummary, Param, ProjectKey, Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def ana() -> User:
    return User.objects.create_user(username="ana", password="x-password-123")


@pytest.fixture
def ana_client(ana: User) -> Client:
    client = Client()
    client.force_login(ana)
    return client


def _big_project(user: User, runs: int) -> Project:
    """``runs`` runs with 6 metric summaries and 6 params each, written in bulk."""
    first = services.run_create(user=user, project_path=f"{user.username}/big", name="first")
    project, experiment = first.project, first.experiment
    now = timezone.now()
    created = Run.objects.bulk_create(
        Run(
            project=project,
            experiment=experiment,
            name=f"run-{i:05d}",
            author=user,
            status="finished",
            start_time=now - timedelta(minutes=i),
            end_time=now - timedelta(minutes=i) + timedelta(seconds=30 + i % 600),
        )
        for i in range(runs)
    )
    MetricSummary.objects.bulk_create(
        MetricSummary(
            run=r, key=f"m{k}", last=i * 0.001 + k, min=0.0, max=1.0, last_step=99, last_timestamp=0, count=100
        )
        for i, r in enumerate(created)
        for k in range(6)
    )
    Param.objects.bulk_create(
        Param(run=r, key=f"p{k}", value=str(i % 7)) for i, r in enumerate(created) for k in range(6)
    )
    # The key registry the log service keeps (bulk writes bypass it).
    ProjectKey.objects.bulk_create(
        [
            ProjectKey(project=project, kind=kind, key=f"{prefix}{k}")
            for kind, prefix in (("metric", "m"), ("param", "p"))
            for k in range(6)
        ],
        ignore_conflicts=True,
    )
    return project


def test_project_page_queries_do_not_grow_with_runs(
    ana: User, ana_client: Client, django_assert_max_num_queries: DjangoAssertNumQueries
) -> None:
    # given
    _big_project(ana, runs=2000)

    # when / then: a bounded number of queries, whatever the size and the sort
    for sort in ("-start_time", "metrics.m2", "-params.p1", "duration"):
        with django_assert_max_num_queries(20):
            response = ana_client.get("/ana/big/", {"sort": sort, "page": "3"})
        assert response.status_code == 200
        assert response.content.count(b'data-run-id="') == 50


def test_default_columns_are_the_first_five_metrics_and_params(ana: User, ana_client: Client) -> None:
    # given
    _big_project(ana, runs=3)

    # when
    html = ana_client.get("/ana/big/").content.decode()

    # then
    for k in range(5):
        assert f'data-column="metrics.m{k}"' in html
        assert f'data-column="params.p{k}"' in html
    assert 'data-column="metrics.m5"' not in html


def test_columns_parameter_picks_columns_and_reports_unknown_ones(ana: User, ana_client: Client) -> None:
    # given
    _big_project(ana, runs=3)

    # when
    response = ana_client.get("/ana/big/", {"columns": "metrics.m5,params.p0,metrics.nope"})

    # then
    html = response.content.decode()
    assert 'data-column="metrics.m5"' in html
    assert 'data-column="params.p0"' in html
    assert 'data-column="metrics.m0"' not in html
    assert "Unknown column &#x27;metrics.nope&#x27;" in html


def test_invalid_sort_falls_back_with_a_message(ana: User, ana_client: Client) -> None:
    # given
    _big_project(ana, runs=3)

    # when
    response = ana_client.get("/ana/big/", {"sort": "password"})

    # then
    assert response.status_code == 200
    assert "Cannot sort by &#x27;password&#x27;" in response.content.decode()


def test_unknown_experiment_filter_is_404(ana: User, ana_client: Client) -> None:
    _big_project(ana, runs=1)
    assert ana_client.get("/ana/big/", {"experiment": "nope"}).status_code == 404
    assert ana_client.get("/ana/big/", {"experiment": "default"}).status_code == 200


def test_run_under_another_projects_url_is_404(ana: User, ana_client: Client) -> None:
    # given
    run = services.run_create(user=ana, project_path="ana/one", name="r")
    services.run_create(user=ana, project_path="ana/two", name="s")

    # then
    assert ana_client.get(f"/ana/one/runs/{run.id}/").status_code == 200
    assert ana_client.get(f"/ana/two/runs/{run.id}/").status_code == 404


def test_pages_need_login(ana: User) -> None:
    run = services.run_create(user=ana, project_path="ana/one", name="r")
    client = Client()
    for url in ("/", "/ana/one/", f"/ana/one/runs/{run.id}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")


def test_pages_carry_a_csp_without_inline_scripts(ana: User, ana_client: Client) -> None:
    run = services.run_create(user=ana, project_path="ana/one", name="r")
    response = ana_client.get(f"/ana/one/runs/{run.id}/")
    csp = response["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    html = response.content.decode()
    assert "<script>" not in html  # only src= scripts and type=application/json data
    assert " style=" not in html
    assert " onclick=" not in html
