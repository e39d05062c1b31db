"""assay.search_runs and `assay runs list --filter/--order-by` against a real server."""

from __future__ import annotations

import pytest

import assay
from assay import cli


@pytest.fixture
def sweep(assay_env, project):
    for name, optimizer, acc in [("a", "adam", 0.91), ("b", "sgd", 0.85), ("c", "rmsprop", 0.97), ("d", "adam", 0.7)]:
        with assay.init(project=project, name=name, config={"optimizer": optimizer}) as run:
            assay.log_params({"optimizer": optimizer})
            run.log({"acc": acc})
    return project


def test_search_runs_filters_and_orders(sweep):
    rows = assay.search_runs(
        sweep,
        "metrics.acc > 0.8 and (params.optimizer = 'adam' or params.optimizer = 'sgd')",
        order_by="metrics.acc DESC",
        as_pandas=False,
    )
    assert [r["name"] for r in rows] == ["a", "b"]
    assert rows[0]["params.optimizer"] == "adam"
    assert rows[0]["metrics.acc"] == pytest.approx(0.91)


def test_search_runs_follows_cursors_to_max_results(sweep):
    api = assay.Api()
    everything = api.search_runs(sweep, order_by=["params.optimizer", "metrics.acc DESC"], max_results=None)
    assert [r.name for r in everything] == ["a", "d", "c", "b"]
    pages = list(api.iter_runs(sweep, order_by="metrics.acc ASC", limit=3))
    assert [r.name for r in pages] == ["d", "b", "a"]


def test_search_runs_returns_a_dataframe_when_pandas_is_there(sweep):
    pd = pytest.importorskip("pandas")
    frame = assay.search_runs(sweep, "params.optimizer = 'adam'", order_by="name")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame["name"]) == ["a", "d"]


def test_a_bad_filter_is_a_validation_error_naming_the_position(sweep):
    with pytest.raises(assay.ValidationError) as caught:
        assay.search_runs(sweep, "metrics.acc >", as_pandas=False)
    assert "position 13" in str(caught.value)


def test_cli_runs_list_takes_a_filter_and_order(sweep, capsys):
    assert (
        cli.main(
            [
                "runs",
                "list",
                "--project",
                sweep,
                "--filter",
                "params.optimizer = 'adam'",
                "--order-by",
                "metrics.acc DESC",
            ]
        )
        == 0
    )
    header, *rows = capsys.readouterr().out.splitlines()
    # the last column is the --order-by key: only the adam runs, best first
    assert header.split()[-1] == "METRICS.ACC"
    assert [row.split()[-1] for row in rows] == ["0.91", "0.7"]
