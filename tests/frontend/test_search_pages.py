"""The dashboard's search and compare pages, server side: query bar, grouping, columns,
CSV export, saved views, compare, global search; and the JSON endpoints behind them."""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from experiments import services
from experiments.models import Figure, ProjectKey, Run, SavedView
from registry import services as registry_services
from tests.factories import UserFactory
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def sweep(owner: User, team: Any) -> list[Run]:
    """Five runs in acme/sweep logged through the service (so the key registry is kept)."""
    spec = [
        ("adam", 0.91, "nlp"),
        ("sgd", 0.85, "nlp"),
        ("rmsprop", 0.95, "vision"),
        ("adam", 0.70, "vision"),
        ("sgd", 0.60, "nlp"),
    ]
    runs = []
    for index, (optimizer, acc, group) in enumerate(spec):
        run = services.run_create(user=owner, project_path="acme/sweep", name=f"run-{index}")
        services.run_log(
            run=run,
            batch_id=None,
            params={"optimizer": optimizer, "lr": str(0.01 * (index + 1)), "seed": "1"},
            tags={"group": group},
            metric_rows=[
                {"key": "acc", "step": s, "value": acc * (s + 1) / 3, "timestamp": 1764150000000 + s} for s in range(3)
            ]
            + [{"key": "loss", "step": 0, "value": 1 - acc, "timestamp": 1764150000000}],
        )
        runs.append(run)
    return runs


@pytest.fixture
def web(owner: User) -> Client:
    client = Client()
    client.force_login(owner)
    return client


def _html(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return str(response.content.decode())


def test_the_log_service_keeps_the_key_registry(sweep: list[Run]) -> None:
    keys = set(ProjectKey.objects.filter(project=sweep[0].project).values_list("kind", "key"))
    assert keys == {
        ("param", "optimizer"),
        ("param", "lr"),
        ("param", "seed"),
        ("tag", "group"),
        ("metric", "acc"),
        ("metric", "loss"),
    }


def test_query_bar_filters_the_runs_table(web: Client, sweep: list[Run]) -> None:
    html = _html(
        web.get(
            "/acme/sweep/",
            {
                "filter": "metrics.acc > 0.8 and (params.optimizer = 'adam' or params.optimizer = 'sgd')",
                "sort": "-metrics.acc",
            },
        )
    )
    assert html.count('data-run-id="') == 2
    assert html.index(f'data-run-id="{sweep[0].id}"') < html.index(f'data-run-id="{sweep[1].id}"')


def test_an_invalid_filter_says_where_and_shows_no_runs(web: Client, sweep: list[Run]) -> None:
    html = _html(web.get("/acme/sweep/", {"filter": "metrics.acc > and"}))
    assert 'data-testid="filter-error" data-position="14"' in html
    assert "expected" in html
    assert 'data-run-id="' not in html


def test_group_by_a_param_aggregates_metric_columns(web: Client, sweep: list[Run]) -> None:
    html = _html(web.get("/acme/sweep/", {"group_by": "params.optimizer", "columns": "metrics.acc"}))
    assert 'data-testid="groups-table"' in html
    assert 'data-group="adam"' in html
    assert 'data-group="sgd"' in html
    assert 'data-group="rmsprop"' in html
    # adam: 0.91 and 0.70 -> mean 0.805
    adam_row = html[html.index('data-group="adam"') : html.index("</tr>", html.index('data-group="adam"'))]
    assert ">2<" in adam_row
    assert "0.805" in adam_row


def test_group_by_refuses_metrics(web: Client, sweep: list[Run]) -> None:
    html = _html(web.get("/acme/sweep/", {"group_by": "metrics.acc"}))
    assert "Cannot group by" in html


def test_tag_columns_can_be_chosen(web: Client, sweep: list[Run]) -> None:
    html = _html(web.get("/acme/sweep/", {"columns": "tags.group,params.optimizer"}))
    assert 'data-column="tags.group"' in html
    assert ">vision<" in html


def test_csv_export_follows_the_view_and_neutralises_formulas(owner: User, web: Client, sweep: list[Run]) -> None:
    Run.objects.filter(pk=sweep[0].pk).update(name='=HYPERLINK("http://evil")')
    response = web.get(
        "/acme/sweep/export.csv", {"filter": "params.optimizer = 'adam'", "columns": "metrics.acc,tags.group"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert rows[0][-2:] == ["metrics.acc", "tags.group"]
    assert len(rows) == 3
    names = {row[1] for row in rows[1:]}
    assert '\'=HYPERLINK("http://evil")' in names


def test_saved_views_are_saved_opened_and_deleted_by_their_owner(
    web: Client, sweep: list[Run], member: User, outsider: User
) -> None:
    query = "filter=metrics.acc+%3E+0.8&group_by=params.optimizer&page=3&evil=1"
    response = web.post("/acme/sweep/views/", {"name": "good adam", "query": query})
    assert response.status_code == 302
    view = SavedView.objects.get()
    assert view.query == "filter=metrics.acc+%3E+0.8&group_by=params.optimizer"
    assert response["Location"] == f"/acme/sweep/?{view.query}"
    assert "good adam" in _html(web.get("/acme/sweep/"))
    assert web.get(f"/acme/sweep/views/{view.id}/")["Location"] == f"/acme/sweep/?{view.query}"

    # Saving again under the same name overwrites.
    web.post("/acme/sweep/views/", {"name": "Good Adam", "query": "filter=metrics.acc+%3E+0.9"})
    assert SavedView.objects.get().query == "filter=metrics.acc+%3E+0.9"

    # Another user (even a team member) neither opens nor deletes it: 404.
    other = Client()
    other.force_login(member)
    assert other.get(f"/acme/sweep/views/{view.id}/").status_code == 404
    assert other.post(f"/acme/sweep/views/{view.id}/delete/").status_code == 404
    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.post("/acme/sweep/views/", {"name": "x", "query": ""}).status_code == 404
    assert SavedView.objects.count() == 1

    assert web.post(f"/acme/sweep/views/{view.id}/delete/").status_code == 302
    assert not SavedView.objects.exists()


def test_saving_a_view_without_a_name_saves_nothing(web: Client, sweep: list[Run]) -> None:
    response = web.post("/acme/sweep/views/", {"name": "  ", "query": "filter=x"}, follow=True)
    assert "The view was not saved" in response.content.decode()
    assert not SavedView.objects.exists()


def test_saving_a_view_needs_the_csrf_token(owner: User, sweep: list[Run]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(owner)
    assert client.post("/acme/sweep/views/", {"name": "v", "query": ""}).status_code == 403
    assert not SavedView.objects.exists()


def test_compare_page_shows_differences_and_the_best_values(web: Client, sweep: list[Run]) -> None:
    Figure.objects.create(
        run=sweep[0],
        kind=Figure.Kind.CONFUSION_MATRIX,
        name="cm",
        data={"labels": ["a", "b"], "matrix": [[1, 0], [0, 1]]},
    )
    ids = ",".join(r.id for r in sweep[:3])
    html = _html(web.get("/acme/sweep/compare/", {"runs": ids}))
    diff = html[
        html.index('data-testid="params-diff"') : html.index("</table>", html.index('data-testid="params-diff"'))
    ]
    assert "optimizer" in diff
    assert "lr" in diff
    assert "seed" not in diff  # the same in every run
    metrics_table = html[html.index('data-testid="metrics-compare"') :]
    acc_row = metrics_table[metrics_table.index(">acc<") : metrics_table.index("</tr>", metrics_table.index(">acc<"))]
    assert acc_row.count('data-best="true"') == 1
    assert acc_row.index('data-best="true"') > acc_row.index("0.85")  # run-2 (0.95) is the last column
    loss_row = metrics_table[
        metrics_table.index(">loss<") : metrics_table.index("</tr>", metrics_table.index(">loss<"))
    ]
    assert loss_row.count('data-best="true"') == 1
    assert 'id="compare-config"' in html
    assert 'data-testid="confusion-matrices"' in html
    # only the run that logged the matrix gets a card; the other two are named in one line
    figures = html[html.index('data-testid="confusion-matrices"') :]
    assert figures.count("data-heatmap") == 1
    missing = figures[figures.index('data-testid="figure-missing"') :]
    assert "Not logged by 2 of the compared runs:" in missing
    assert sweep[1].name in missing
    assert sweep[2].name in missing
    assert "for this run" not in html


def test_compare_page_takes_a_filter(web: Client, sweep: list[Run]) -> None:
    html = _html(web.get("/acme/sweep/compare/", {"filter": "params.optimizer = 'sgd'"}))
    assert "Compare 2 runs" in html


def test_compare_page_refuses_runs_of_another_project_or_invisible_ones(
    web: Client, sweep: list[Run], outsider: User
) -> None:
    foreign = services.run_create(user=outsider, project_path="outsider/own", name="theirs")
    assert web.get("/acme/sweep/compare/", {"runs": f"{sweep[0].id},{foreign.id}"}).status_code == 404
    other = services.run_create(user=sweep[0].author, project_path="acme/other", name="x")  # type: ignore[arg-type]
    assert web.get("/acme/sweep/compare/", {"runs": f"{sweep[0].id},{other.id}"}).status_code == 404
    stranger = Client()
    stranger.force_login(outsider)
    assert stranger.get("/acme/sweep/compare/", {"runs": sweep[0].id}).status_code == 404


def test_global_search_finds_what_the_user_may_see(web: Client, sweep: list[Run], outsider: User) -> None:
    html = _html(web.get("/-/search/", {"q": "run-3"}))
    assert f"/acme/sweep/runs/{sweep[3].id}/" in html
    assert "vision" not in _html(web.get("/-/search/", {"q": "zzz"}))
    by_tag = _html(web.get("/-/search/", {"q": "vision"}))
    assert f"/acme/sweep/runs/{sweep[2].id}/" in by_tag
    stranger = Client()
    stranger.force_login(outsider)
    assert "/acme/sweep/" not in _html(stranger.get("/-/search/", {"q": "run"}))
    registry_services.model_create(user=sweep[0].author, project=sweep[0].project, name="sweep-ranker")  # type: ignore[arg-type]
    models = _html(web.get("/-/search/", {"q": "ranker"}))
    assert 'href="/acme/sweep/models/sweep-ranker/"' in models
    assert "sweep-ranker" not in _html(stranger.get("/-/search/", {"q": "ranker"}))


# --- the JSON endpoints ---------------------------------------------------------------------------


def test_keys_endpoint_completes_from_the_registry(owner_client: APIClient, sweep: list[Run]) -> None:
    body = owner_client.get("/api/v1/projects/acme/sweep/keys/", {"q": "o"}).json()
    assert body["params"] == ["optimizer"]
    assert body["metrics"] == ["loss"]
    assert "author" in body["attributes"]
    limited = owner_client.get("/api/v1/projects/acme/sweep/keys/", {"limit": 1}).json()
    assert limited["params"] == ["lr"]
    assert limited["truncated"] is True
    assert_error(owner_client.get("/api/v1/projects/acme/sweep/keys/", {"limit": 0}), 400, field="limit")


def test_compare_endpoint_answers_every_series_in_one_request(owner_client: APIClient, sweep: list[Run]) -> None:
    ids = ",".join(r.id for r in sweep[:2])
    body = owner_client.get("/api/v1/compare/", {"runs": ids, "keys": "acc", "max_points": "2"}).json()
    assert [r["name"] for r in body["runs"]] == ["run-0", "run-1"]
    series = body["series"][sweep[0].id]["acc"]
    assert series["total"] == 3
    assert series["downsampled"] is True
    assert len(series["steps"]) == len(series["values"]) == 2
    assert body["runs"][0]["params"]["optimizer"] == "adam"


@pytest.mark.parametrize(
    ("query", "field"),
    [({}, "runs"), ({"runs": "x", "max_points": "1"}, "max_points"), ({"runs": "x", "keys": "../etc"}, "keys")],
)
def test_compare_endpoint_refuses_bad_input(
    owner_client: APIClient, sweep: list[Run], query: dict[str, str], field: str
) -> None:
    if query.get("runs") == "x":
        query["runs"] = sweep[0].id
    assert_error(owner_client.get("/api/v1/compare/", query), 400, field=field)


def test_compare_endpoint_is_not_found_when_any_run_is_invisible(
    owner_client: APIClient, client_for: Any, sweep: list[Run]
) -> None:
    stranger = UserFactory.create(username="stranger")
    theirs = services.run_create(user=stranger, project_path="stranger/p", name="theirs")
    assert_error(owner_client.get("/api/v1/compare/", {"runs": f"{sweep[0].id},{theirs.id}"}), 404, code="not_found")


def test_history_export_streams_raw_points_as_csv(owner_client: APIClient, sweep: list[Run]) -> None:
    response = owner_client.get(
        "/api/v1/export/histories/", {"project": "acme/sweep", "filter": "params.optimizer = 'adam'", "keys": "acc"}
    )
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.getvalue().decode())))
    assert rows[0] == ["run_id", "run_name", "key", "step", "value", "timestamp"]
    assert len(rows) == 1 + 2 * 3
    assert {row[2] for row in rows[1:]} == {"acc"}


def test_history_export_streams_parquet_equal_to_the_csv(owner_client: APIClient, sweep: list[Run]) -> None:
    query = {"project": "acme/sweep", "filter": "params.optimizer = 'adam'"}
    response = owner_client.get("/api/v1/export/histories/", {**query, "format": "parquet"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    assert response["Content-Disposition"] == 'attachment; filename="histories.parquet"'
    table = pq.read_table(pa.BufferReader(response.getvalue()))
    assert table.column_names == ["run_id", "run_name", "key", "step", "value", "timestamp"]
    as_csv = list(csv.reader(io.StringIO(owner_client.get("/api/v1/export/histories/", query).getvalue().decode())))
    assert len(as_csv) - 1 == table.num_rows == 2 * (3 + 1)
    for row, record in zip(as_csv[1:], table.to_pylist(), strict=True):
        assert row[:3] == [record["run_id"], record["run_name"], record["key"]]
        assert (int(row[3]), float(row[4]), int(row[5])) == (record["step"], record["value"], record["timestamp"])
    assert_error(owner_client.get("/api/v1/export/histories/", {**query, "format": "xlsx"}), 400, field="format")


def test_history_export_refuses_a_bad_filter_with_its_position(owner_client: APIClient, sweep: list[Run]) -> None:
    response = owner_client.get("/api/v1/export/histories/", {"project": "acme/sweep", "filter": "metrics.acc >"})
    assert response.status_code == 400
    assert response.json()["error"]["position"] == 13


def test_global_search_endpoint_needs_text(owner_client: APIClient, sweep: list[Run]) -> None:
    assert_error(owner_client.get("/api/v1/search/"), 400, field="q")
    found = owner_client.get("/api/v1/search/", {"q": "sweep"}).json()
    assert [p["path"] for p in found["projects"]] == ["acme/sweep"]
