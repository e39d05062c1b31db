"""The runs table (issue 20): default columns from the keys the project logs most, columns
chosen and pinned per user per project (and in saved views), runs pinned to the top, numbers
formatted one way, "compare all matching"; the layout's endpoints refuse bad input and
callers who may not see the project."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import Project, User
from core.errors import Invalid, NotFound
from experiments import search_selectors, selectors, services, table_services
from experiments.models import Run, RunsTableLayout, SavedView
from tests.factories import ProjectFactory, RunFactory

pytestmark = pytest.mark.django_db

URL = "/acme/proj/"
COLUMNS_URL = "/acme/proj/table/columns/"


def log(run: Run, *, metrics: dict[str, float], params: dict[str, str] | None = None, config: Any = None) -> None:
    services.run_log(
        run=run,
        batch_id=None,
        params=params or {},
        tags={},
        metric_rows=[
            {"key": key, "step": step, "value": value, "timestamp": 1764150000000 + step}
            for key, value in metrics.items()
            for step in range(2)
        ],
    )


@pytest.fixture
def runs(owner: User, project: Project) -> list[Run]:
    """Six runs of acme/proj: every one logs ``zeta`` and ``system/cpu``, half ``beta``, one
    ``alpha``; params likewise (``seed`` everywhere, ``lr`` in half)."""
    made = []
    for index in range(6):
        run = services.run_create(
            user=owner,
            project_path="acme/proj",
            name=f"run-{index}",
            config={"optimizer": {"lr": ["0.001", "1e-3", 0.01, 0.1, "0.5", "adam"][index]}},
        )
        metrics = {"zeta": 0.5 + index / 10, "system/cpu": 50.0}
        params = {"seed": str(index)}
        if index % 2 == 0:
            metrics["beta"] = 1.0 / (index + 1)
            params["lr"] = "0.01"
        if index == 0:
            metrics["alpha"] = 0.25
        log(run, metrics=metrics, params=params)
        made.append(run)
    return made


def web(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def headers(html: str) -> list[str]:
    return re.findall(r'data-column="([^"]+)"', html)


def body_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-run-id="([0-9a-f]+)"', html)


def errors_of(response: Any) -> list[str]:
    return [m.message for m in get_messages(response.wsgi_request)]


# --- defaults -------------------------------------------------------------------------------------


def test_default_columns_are_the_keys_the_runs_log_most_never_system(owner: User, runs: list[Run]) -> None:
    html = web(owner).get(URL).content.decode()

    shown = headers(html)
    metrics = [c for c in shown if c.startswith("metrics.")]
    assert metrics == ["metrics.zeta", "metrics.beta", "metrics.alpha"]  # by use, not alphabetically
    assert [c for c in shown if c.startswith("params.")] == ["params.seed", "params.lr"]
    assert "config.optimizer.lr" in shown
    assert not any(c.startswith("metrics.system/") for c in shown)


def test_numbers_look_the_same_whatever_column_they_are_in(owner: User, runs: list[Run]) -> None:
    html = web(owner).get(URL).content.decode()

    # config "0.001" and "1e-3" are one number, written as the metric filter writes it,
    # right-aligned, the logged text on hover; text stays text.
    assert html.count('<td class="num" title="0.001">0.001</td>') == 1
    assert html.count('<td class="num" title="1e-3">0.001</td>') == 1
    assert '<td class="mono" title="adam">adam</td>' in html


# --- chosen and pinned columns ---------------------------------------------------------------------


def test_chosen_columns_are_kept_for_that_user_and_project_only(owner: User, member: User, runs: list[Run]) -> None:
    # given
    client = web(owner)

    # when
    response = client.post(
        COLUMNS_URL,
        {
            "columns": ["params.lr", "metrics.alpha", "config.optimizer.lr"],
            "pinned": ["metrics.alpha"],
            "back": "filter=metrics.zeta+>+0&sort=-start_time&columns=metrics.beta&page=2&evil=1",
        },
    )

    # then: back to the same view, minus what the form changed and anything unknown
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert target.path == URL
    assert parse_qs(target.query) == {"filter": ["metrics.zeta > 0"], "sort": ["-start_time"], "page": ["2"]}
    html = client.get(URL).content.decode()
    assert headers(html) == ["metrics.alpha", "params.lr", "config.optimizer.lr"]  # pinned first
    assert 'class="num pinned-col" data-column="metrics.alpha" data-sticky' in html
    layout = RunsTableLayout.objects.get(user=owner)
    assert layout.columns == ["params.lr", "metrics.alpha", "config.optimizer.lr"]
    assert layout.pinned_columns == ["metrics.alpha"]
    # someone else still sees the defaults
    assert headers(web(member).get(URL).content.decode())[:2] == ["metrics.zeta", "metrics.beta"]


def test_an_address_with_columns_wins_over_the_saved_ones(owner: User, runs: list[Run]) -> None:
    table_services.table_columns_set(user=owner, project=runs[0].project, columns=["metrics.alpha"])

    html = web(owner).get(URL, {"columns": "metrics.beta,params.seed", "pin": "params.seed"}).content.decode()

    assert headers(html) == ["params.seed", "metrics.beta"]


def test_reset_goes_back_to_the_defaults(owner: User, runs: list[Run]) -> None:
    client = web(owner)
    client.post(COLUMNS_URL, {"columns": ["metrics.alpha"]})

    client.post(COLUMNS_URL, {"reset": "1"})

    assert headers(client.get(URL).content.decode())[0] == "metrics.zeta"
    assert RunsTableLayout.objects.get(user=owner).columns is None


def test_ticking_nothing_shows_no_key_columns(owner: User, runs: list[Run]) -> None:
    client = web(owner)

    client.post(COLUMNS_URL, {"back": ""})

    assert headers(client.get(URL).content.decode()) == []


@pytest.mark.parametrize(
    ("form", "field", "words"),
    [
        ({"columns": ["loss"]}, "columns", "columns are metrics.<key>"),
        ({"columns": ["metrics.never-logged"]}, "columns", "no run of this project logged it"),
        ({"columns": ["tags.x" + "y" * 300]}, "columns", "columns are metrics.<key>"),
        ({"columns": ["metrics.zeta"], "pinned": ["metrics.beta"]}, "pinned", "not one of the chosen columns"),
        ({"columns": [f"metrics.k{i}" for i in range(41)]}, "columns", "At most 40 columns"),
    ],
)
def test_a_bad_column_form_says_why_and_writes_nothing(
    owner: User, runs: list[Run], form: dict[str, Any], field: str, words: str
) -> None:
    client = web(owner)
    client.post(COLUMNS_URL, {"columns": ["metrics.alpha"]})

    response = client.post(COLUMNS_URL, form)

    assert response.status_code == 302
    (message,) = errors_of(response)
    assert message.startswith("The columns were not saved")
    assert words in message
    assert RunsTableLayout.objects.get(user=owner).columns == ["metrics.alpha"]  # as before


def test_the_service_names_the_field_it_refuses(owner: User, runs: list[Run]) -> None:
    project = runs[0].project
    with pytest.raises(Invalid) as refused:
        table_services.table_columns_set(user=owner, project=project, columns="metrics.zeta")
    assert refused.value.field == "columns"
    with pytest.raises(Invalid) as refused:
        table_services.table_columns_set(user=owner, project=project, columns=["metrics.zeta"], pinned=[1])
    assert refused.value.field == "pinned"
    assert not RunsTableLayout.objects.exists()


def test_a_key_of_another_project_is_unknown_here(owner: User, runs: list[Run], team: Any) -> None:
    other = services.run_create(user=owner, project_path="acme/other", name="elsewhere")
    log(other, metrics={"only-there": 1.0})

    response = web(owner).post(COLUMNS_URL, {"columns": ["metrics.only-there"]})

    assert "no run of this project logged it" in errors_of(response)[0]


def test_a_saved_view_keeps_the_columns_shown_and_pins(owner: User, runs: list[Run]) -> None:
    client = web(owner)
    client.post(COLUMNS_URL, {"columns": ["metrics.alpha", "params.lr"], "pinned": ["params.lr"]})
    html = client.get(URL).content.decode()
    query = re.search(r'name="query" value="([^"]*)"', html).group(1).replace("&amp;", "&")  # type: ignore[union-attr]

    client.post("/acme/proj/views/", {"name": "mine", "query": query})

    saved = parse_qs(SavedView.objects.get(owner=owner).query)
    assert saved["columns"] == ["params.lr,metrics.alpha"]  # as shown: pinned first
    assert saved["pin"] == ["params.lr"]


# --- pinned runs -----------------------------------------------------------------------------------


def test_a_pinned_run_stays_on_top_of_every_page_and_sort(owner: User, runs: list[Run]) -> None:
    # given: the oldest run, last in the default order
    client = web(owner)
    oldest = runs[0]

    # when
    response = client.post(f"/acme/proj/runs/{oldest.id}/pin/", {"pinned": "1", "back": "sort=name"})

    # then
    assert response.status_code == 302
    assert response["Location"] == f"{URL}?sort=name"
    for query in ({}, {"sort": "-metrics.zeta"}, {"filter": "metrics.zeta > 100"}):
        rows = body_rows(client.get(URL, query).content.decode())
        assert rows[0] == oldest.id, query
        assert rows.count(oldest.id) == 1  # not again below
    client.post(f"/acme/proj/runs/{oldest.id}/pin/", {"pinned": "0"})
    assert body_rows(client.get(URL).content.decode())[0] == runs[-1].id


def test_pins_are_bounded_and_a_bad_value_is_refused(owner: User, runs: list[Run], project: Project) -> None:
    client = web(owner)
    more = [RunFactory.create(project=project, experiment=runs[0].experiment, author=owner) for _ in range(20)]
    for run in more:
        client.post(f"/acme/proj/runs/{run.id}/pin/", {"pinned": "1"})

    too_many = client.post(f"/acme/proj/runs/{runs[0].id}/pin/", {"pinned": "1"})
    bad = client.post(f"/acme/proj/runs/{runs[1].id}/pin/", {"pinned": "yes"})

    assert "At most 20 pinned runs" in errors_of(too_many)[0]
    assert errors_of(bad)[-1] == "The run was not pinned: pinned is 1 (pin) or 0 (unpin)."
    assert RunsTableLayout.objects.get(user=owner).pinned_runs == [r.id for r in reversed(more)]


def test_the_pin_service_refuses_a_run_of_another_project(owner: User, runs: list[Run], team: Any) -> None:
    elsewhere = ProjectFactory.create(team=team, name="elsewhere", created_by=owner)
    with pytest.raises(NotFound):
        table_services.table_run_pin(user=owner, project=elsewhere, run=runs[0], pinned=True)


# --- who may ---------------------------------------------------------------------------------------


def test_a_viewer_keeps_a_layout_of_their_own(viewer: User, runs: list[Run]) -> None:
    client = web(viewer)

    client.post(COLUMNS_URL, {"columns": ["metrics.alpha"]})
    client.post(f"/acme/proj/runs/{runs[0].id}/pin/", {"pinned": "1"})

    layout = RunsTableLayout.objects.get(user=viewer)
    assert layout.columns == ["metrics.alpha"]
    assert layout.pinned_runs == [runs[0].id]


def test_an_outsider_gets_the_same_404_as_for_a_missing_project(outsider: User, runs: list[Run]) -> None:
    client = web(outsider)

    hidden = client.post(COLUMNS_URL, {"columns": ["metrics.alpha"]})
    missing = client.post("/acme/nothing/table/columns/", {"columns": ["metrics.alpha"]})
    pin = client.post(f"/acme/proj/runs/{runs[0].id}/pin/", {"pinned": "1"})
    pin_missing = client.post("/acme/proj/runs/0123456789abcdef0123456789abcdef/pin/", {"pinned": "1"})

    assert hidden.status_code == missing.status_code == pin.status_code == pin_missing.status_code == 404
    assert not RunsTableLayout.objects.exists()


def test_a_run_through_another_projects_address_is_not_found(owner: User, runs: list[Run], team: Any) -> None:
    ProjectFactory.create(team=team, name="elsewhere", created_by=owner)

    response = web(owner).post(f"/acme/elsewhere/runs/{runs[0].id}/pin/", {"pinned": "1"})

    assert response.status_code == 404
    assert not RunsTableLayout.objects.exists()


def test_signed_out_callers_are_sent_to_sign_in_and_get_is_refused(owner: User, runs: list[Run]) -> None:
    anonymous = Client().post(COLUMNS_URL, {"columns": ["metrics.alpha"]})
    get = web(owner).get(COLUMNS_URL)

    assert anonymous.status_code == 302
    assert anonymous["Location"].startswith("/login/")
    assert get.status_code == 405


# --- compare all matching --------------------------------------------------------------------------


def test_compare_all_matching_carries_the_filter_and_the_experiment(owner: User, runs: list[Run]) -> None:
    client = web(owner)
    html = client.get(URL, {"filter": "metrics.zeta > 0.7", "experiment": "default"}).content.decode()

    link = re.search(r'href="([^"]+)" data-testid="compare-all"', html).group(1).replace("&amp;", "&")  # type: ignore[union-attr]
    assert "Compare all 3 matching" in html
    compare = client.get(link).content.decode()

    for run in runs[3:]:
        assert run.name in compare
    for run in runs[:3]:
        assert f">{run.name}<" not in compare


def test_compare_with_an_empty_filter_compares_the_newest_runs(owner: User, runs: list[Run]) -> None:
    html = web(owner).get("/acme/proj/compare/", {"filter": ""}).content.decode()

    assert all(run.name in html for run in runs)


# --- cost --------------------------------------------------------------------------------------------


def test_the_page_costs_the_same_queries_with_pins_and_saved_columns(
    owner: User, runs: list[Run], django_assert_max_num_queries: Any
) -> None:
    client = web(owner)
    client.post(COLUMNS_URL, {"columns": ["metrics.alpha", "params.lr", "config.optimizer.lr"]})
    client.post(f"/acme/proj/runs/{runs[0].id}/pin/", {"pinned": "1"})

    with django_assert_max_num_queries(30):
        response = client.get(URL)

    assert response.status_code == 200


# --- a sort by one metric, read from the summary index ------------------------------------------


@pytest.mark.parametrize("sort", ["-metrics.zeta", "metrics.zeta", "-metrics.beta", "metrics.beta"])
def test_pages_sorted_by_a_metric_are_the_full_querys_pages(
    owner: User, runs: list[Run], project: Project, monkeypatch: pytest.MonkeyPatch, sort: str
) -> None:
    # given: ties (two runs with the same last value), runs without the key (beta), a pinned run
    for run in runs[:2]:
        log(run, metrics={"zeta": 0.42})
    client = web(owner)
    client.post(f"/acme/proj/runs/{runs[3].id}/pin/", {"pinned": "1"})
    monkeypatch.setattr("frontend.project_views.RUNS_PER_PAGE", 2)
    reference, _, _ = selectors.runs_search(project, order_by=[sort])
    expected = [r.pk for r in reference if r.pk != runs[3].id]

    # when: every page, the index walk where it applies and the full query past it
    shown: list[str] = []
    for number in (1, 2, 3):
        rows = body_rows(client.get(URL, {"sort": sort, "page": str(number)}).content.decode())
        assert rows[0] == runs[3].id  # pinned, on every page
        shown += rows[1:]

    # then
    assert shown == expected


def test_the_index_walk_stops_at_runs_without_the_key(owner: User, runs: list[Run], project: Project) -> None:
    ids = search_selectors.top_run_ids_by_metric(project, key="beta", descending=True, limit=50)

    assert ids == [runs[0].id, runs[2].id, runs[4].id]  # 1/1, 1/3, 1/5: the three that logged it
