"""Property tests: for generated filters (and generated runs), the compiled SQL returns
exactly the runs a straightforward Python evaluation of the same expression selects."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Project
from experiments.models import MetricSummary, Param, Run, Tag
from experiments.query import compiler, parser
from experiments.query.parser import And, Compare, Field, In, IsNull, Node, Not, Or
from tests.experiments.query_eval import RunData, holds, render
from tests.factories import ExperimentFactory

pytestmark = pytest.mark.django_db

KEYS = ["a", "b", "val loss"]
METRIC_VALUES = [-1.0, 0.0, 0.5, 0.8, 1.0, 2.5, float("inf")]
TEXT_VALUES = [
    "adam",
    "Adam",
    "sgd",
    "0.1",
    "1e-3",
    "10",
    "-2",
    "x_y",
    "a'b",
    "",
    "é",
    "1" * 40,
    "p" * 120,
    "p" * 120 + "q",
]
PATTERNS = ["a%", "%d%", "_gd", "ad_m", "%", "A%", "1%", "%\\_%", "%'%"]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
TIMES = ["2026-01-01", "2026-01-02T06:00:00Z", "2026-01-03T00:00:00+02:00", 1767225600000.0 + 3600_000]
STATUSES = list(parser.STATUSES)

keys = st.sampled_from(KEYS)
numbers = st.sampled_from([v for v in METRIC_VALUES if v != float("inf")] + [0.1, 10.0, -2.0, 0.001])
texts = st.sampled_from(TEXT_VALUES)
compare_ops = st.sampled_from(parser.COMPARE_OPS)


def metric_leaf() -> st.SearchStrategy[Node]:
    fld = keys.map(lambda k: Field("metric", k))
    return st.one_of(
        st.builds(Compare, fld, compare_ops, numbers),
        st.builds(In, fld, st.lists(numbers, min_size=1, max_size=3).map(tuple), st.booleans()),
        st.builds(IsNull, fld, st.booleans()),
    )


def kv_leaf(entity: str) -> st.SearchStrategy[Node]:
    fld = keys.map(lambda k: Field(entity, k))  # type: ignore[arg-type]
    return st.one_of(
        st.builds(Compare, fld, compare_ops, st.one_of(texts, numbers)),
        st.builds(Compare, fld, st.sampled_from(parser.TEXT_OPS), st.sampled_from(PATTERNS)),
        st.builds(In, fld, st.lists(st.one_of(texts, numbers), min_size=1, max_size=3).map(tuple), st.booleans()),
        st.builds(IsNull, fld, st.booleans()),
    )


def attribute_leaf() -> st.SearchStrategy[Node]:
    time_field = st.sampled_from(["start_time", "end_time"]).map(lambda k: Field("attribute", k))
    return st.one_of(
        st.builds(
            Compare, st.just(Field("attribute", "status")), st.sampled_from(["=", "!="]), st.sampled_from(STATUSES)
        ),
        st.builds(
            In,
            st.just(Field("attribute", "status")),
            st.lists(st.sampled_from(STATUSES), min_size=1, max_size=2).map(tuple),
            st.booleans(),
        ),
        st.builds(
            Compare,
            st.just(Field("attribute", "name")),
            st.sampled_from([*parser.COMPARE_OPS, *parser.TEXT_OPS]),
            st.sampled_from(["run-1", "run-5", "r%", "%1%"]),
        ),
        st.builds(Compare, time_field, compare_ops, st.sampled_from(TIMES)),
        st.builds(IsNull, time_field, st.booleans()),
        st.builds(Compare, st.just(Field("attribute", "duration")), compare_ops, st.sampled_from([60.0, 3600.0, 0.0])),
    )


leaves = st.one_of(metric_leaf(), kv_leaf("param"), kv_leaf("tag"), attribute_leaf())
expressions: st.SearchStrategy[Node] = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=2, max_size=3).map(lambda items: And(tuple(items))),
        st.lists(children, min_size=2, max_size=3).map(lambda items: Or(tuple(items))),
        children.map(Not),
    ),
    max_leaves=6,
)


def run_data(rng: random.Random, index: int) -> RunData:
    start = T0 + timedelta(hours=rng.randrange(0, 72))
    end = None if rng.random() < 0.3 else start + timedelta(seconds=rng.choice([0, 60, 3600, 7200]))
    return RunData(
        name=f"run-{index}",
        status=rng.choice(STATUSES),
        start_time=start,
        end_time=end,
        metrics={k: rng.choice(METRIC_VALUES) for k in KEYS if rng.random() < 0.7},
        params={k: rng.choice(TEXT_VALUES) for k in KEYS if rng.random() < 0.7},
        tags={k: rng.choice(TEXT_VALUES) for k in KEYS if rng.random() < 0.5},
    )


def store(project: Project, data: list[RunData]) -> dict[str, RunData]:
    experiment = ExperimentFactory.create(project=project, name="props")
    runs = Run.objects.bulk_create(
        Run(
            project=project,
            experiment=experiment,
            name=d.name,
            status=d.status,
            start_time=d.start_time,
            end_time=d.end_time,
        )
        for d in data
    )
    MetricSummary.objects.bulk_create(
        MetricSummary(run=r, key=k, last=v, min=v, max=v, last_step=0, last_timestamp=0, count=1)
        for r, d in zip(runs, data, strict=True)
        for k, v in d.metrics.items()
    )
    Param.objects.bulk_create(
        Param(run=r, key=k, value=v) for r, d in zip(runs, data, strict=True) for k, v in d.params.items()
    )
    Tag.objects.bulk_create(
        Tag(run=r, key=k, value=v) for r, d in zip(runs, data, strict=True) for k, v in d.tags.items()
    )
    return {r.pk: d for r, d in zip(runs, data, strict=True)}


def compiled_ids(project: Project, text: str) -> set[str]:
    qs, _, _, _ = compiler.search(Run.objects.filter(project=project), filter_text=text, order_by=[])
    return set(qs.values_list("pk", flat=True))


def check(project: Project, runs: dict[str, RunData], node: Node) -> None:
    text = render(node)
    parsed = parser.parse(text)
    assert parsed is not None
    expected = {pk for pk, d in runs.items() if holds(parsed, d)}
    assert compiled_ids(project, text) == expected, text


@pytest.fixture
def fixed_runs(project: Project) -> dict[str, RunData]:
    rng = random.Random(6)
    return store(project, [run_data(rng, i) for i in range(60)])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(node=expressions)
def test_compiled_filter_selects_what_python_evaluation_selects(
    project: Project, fixed_runs: dict[str, RunData], node: Node
) -> None:
    check(project, fixed_runs, node)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), size=st.integers(0, 25), nodes=st.lists(expressions, min_size=1, max_size=5))
def test_compiled_filter_agrees_on_generated_runs(project: Project, seed: int, size: int, nodes: list[Node]) -> None:
    # A savepoint per example: each one starts from an empty project.
    sid = transaction.savepoint()
    try:
        rng = random.Random(seed)
        runs = store(project, [run_data(rng, i) for i in range(size)])
        for node in nodes:
            check(project, runs, node)
    finally:
        transaction.savepoint_rollback(sid)


@settings(max_examples=100, deadline=None)
@given(node=expressions)
def test_rendered_filters_parse_back_to_the_same_tree(node: Node) -> None:
    def canonical(n: Node) -> Node:
        # The parser flattens nested AND/OR and lower-cases statuses; compare the flattened form.
        parsed = parser.parse(render(n))
        assert parsed is not None
        return parsed

    assert canonical(node) == canonical(canonical(node))
