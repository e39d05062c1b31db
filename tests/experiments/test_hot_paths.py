"""The performance work on the logging and search hot paths (benchmarks/README.md,
benchmarks/SEARCH.md) keeps behaviour: the role loaded with the run is the policy's role,
the summary merge done by one SQL upsert equals metrics.merge_summary, and param/tag
conditions on the generated prefix column match exactly as before."""

from __future__ import annotations

import functools
import random
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.test import APIClient

from accounts import access
from accounts.models import Project, ProjectGrant, ProjectRole, Team, User
from accounts.services import team_create
from core.errors import Forbidden, NotFound
from experiments import metrics
from experiments.access import access_run
from experiments.models import MetricSummary, Param, ProjectKey, Run, Tag
from experiments.query import compiler, parser
from experiments.query.parser import And, Compare, Field, In, Node
from tests.experiments.query_eval import RunData, holds, render
from tests.experiments.test_query_properties import KEYS, expressions, fixed_runs, numbers
from tests.factories import ProjectGrantFactory, UserFactory
from tests.helpers import log_path, post_json

pytestmark = pytest.mark.django_db


def _grantee(project: Project, role: ProjectRole, *, via_team: bool = False) -> User:
    user = UserFactory.create(username=f"g{uuid.uuid4().hex[:8]}")
    if via_team:
        partners: Team = team_create(name=f"t{uuid.uuid4().hex[:8]}", owner=user)
        ProjectGrantFactory.create(project=project, user=None, team=partners, role=role)
    else:
        ProjectGrantFactory.create(project=project, user=user, role=role)
    return user


@pytest.mark.parametrize(
    "who",
    ["owner", "member", "outsider", "staff", "viewer", "writer_grant", "team_maintainer_grant", "member_with_admin"],
)
@pytest.mark.parametrize("visibility", ["private", "internal"])
def test_role_loaded_with_the_run_equals_the_policy_role(
    who: str, visibility: str, request: pytest.FixtureRequest, run: Run, project: Project
) -> None:
    project.visibility = visibility
    project.save(update_fields=["visibility"])
    if who == "writer_grant":
        user = _grantee(project, ProjectRole.WRITER)
    elif who == "team_maintainer_grant":
        user = _grantee(project, ProjectRole.MAINTAINER, via_team=True)
    elif who == "member_with_admin":
        user = request.getfixturevalue("member")
        ProjectGrantFactory.create(project=project, user=user, role=ProjectRole.ADMIN)
    else:
        user = request.getfixturevalue(who)
    loaded = Run.objects.select_related("project__team").annotate(**access.role_annotations(user, prefix="project__"))
    row = loaded.get(pk=run.pk)

    assert access.role_on(user, row.project, annotated=row) == access.role_on(user, project)


def test_access_run_loads_run_and_role_in_one_query(run: Run, member: User) -> None:
    with CaptureQueriesContext(connection) as queries:
        loaded = access_run(member, run.id, action="run.log")

    assert loaded.pk == run.pk
    assert len(queries.captured_queries) == 1


def test_access_run_refuses_a_role_too_low_and_hides_from_outsiders(run: Run, viewer: User, outsider: User) -> None:
    assert access_run(viewer, run.id).pk == run.pk
    with pytest.raises(Forbidden):
        access_run(viewer, run.id, action="run.log")
    with pytest.raises(NotFound):
        access_run(outsider, run.id)


def test_a_revoked_grant_takes_effect_on_the_next_log_call(client_for: Any, run: Run, project: Project) -> None:
    user = _grantee(project, ProjectRole.WRITER)
    client: APIClient = client_for(user)
    body = {"metrics": [{"key": "loss", "step": 0, "value": 1.0}]}
    assert post_json(client, log_path(run), body).status_code == 200

    ProjectGrant.objects.filter(project=project, user=user).delete()

    assert post_json(client, log_path(run), body).status_code == 404


def test_a_single_point_log_call_runs_few_statements(member_client: APIClient, run: Run) -> None:
    body = {"batch_id": "b-1", "metrics": [{"key": "loss", "step": 0, "value": 1.0}]}
    post_json(member_client, log_path(run), body)  # first call: registers the key
    body = {"batch_id": "b-2", "metrics": [{"key": "loss", "step": 1, "value": 0.5}]}

    with CaptureQueriesContext(connection) as queries:
        response = post_json(member_client, log_path(run), body)

    assert response.status_code == 200
    # (SAVEPOINT/RELEASE: the test's own transaction turns BEGIN/COMMIT into savepoints)
    statements = [q["sql"] for q in queries.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    # token, run + role, then one statement that locks the run, records the batch id, stores
    # the chunk, merges the summary and registers new keys (no SELECT of the summaries, no
    # membership or grant queries, no BEGIN/COMMIT of its own).
    assert len(statements) == 3, statements
    assert statements[2].startswith("WITH run_row AS"), statements[2]


def _random_batch(rng: random.Random, key: str) -> list[dict[str, Any]]:
    points = []
    for _ in range(rng.randint(1, 5)):
        value: Any = rng.choice([rng.uniform(-10, 10), rng.uniform(-10, 10), "NaN", "Infinity", "-Infinity"])
        points.append({"key": key, "step": rng.randint(0, 20), "value": value, "timestamp": rng.randint(0, 5)})
    return points


def _summary_of(points: list[dict[str, Any]]) -> metrics.Summary:
    series = metrics.parse_rows(points, now_ms=0)
    return metrics.summarize(next(iter(series.values())))


def test_the_sql_summary_merge_equals_merge_summary(owner_client: APIClient, run: Run) -> None:
    rng = random.Random(2)
    for index in range(12):
        key = f"k{index}"
        batches = [_random_batch(rng, key) for _ in range(rng.randint(1, 5))]
        for batch in batches:
            assert post_json(owner_client, log_path(run), {"metrics": batch}).status_code == 200
        expected = functools.reduce(
            lambda old, new: metrics.merge_summary(old, new),
            [_summary_of(b) for b in batches[1:]],
            _summary_of(batches[0]),
        )
        row = MetricSummary.objects.get(run=run, key=key)
        last = row.last if row.last is not None else float("nan")
        got = metrics.Summary(last, row.min, row.max, row.last_step, row.last_timestamp, row.count)
        assert repr(got) == repr(expected)  # repr: NaN equals NaN


def test_only_keys_new_to_the_run_are_registered(owner_client: APIClient, run: Run) -> None:
    post_json(owner_client, log_path(run), {"metrics": [{"key": "a", "step": 0, "value": 1.0}]})
    ProjectKey.objects.filter(project=run.project).delete()

    post_json(
        owner_client,
        log_path(run),
        {"metrics": [{"key": "a", "step": 1, "value": 1.0}, {"key": "b", "step": 0, "value": 1.0}]},
    )

    assert list(ProjectKey.objects.filter(project=run.project).values_list("kind", "key")) == [("metric", "b")]


def test_param_and_tag_conditions_read_the_prefix_column(run: Run) -> None:
    qs, _, _, _ = compiler.search(
        Run.objects.all(), filter_text="params.optimizer = 'adam' and tags.team IN ('nlp', 'cv')", order_by=[]
    )
    sql = str(qs.query)

    assert sql.count('"value_prefix"') == 2
    assert "LEFT(" not in sql.upper()


def test_long_values_sharing_the_prefix_still_compare_exactly(run: Run, project: Project, experiment: Any) -> None:
    other = Run.objects.create(project=project, experiment=experiment, name="other", start_time=run.start_time)
    head = "x" * 100
    Param.objects.create(run=run, key="p", value=head + "a")
    Param.objects.create(run=other, key="p", value=head + "b")
    Tag.objects.create(run=run, key="t", value=head)
    Tag.objects.create(run=other, key="t", value=head + "b")

    def names(filter_text: str) -> list[str]:
        qs, _, _, _ = compiler.search(Run.objects.all(), filter_text=filter_text, order_by=["name"])
        return [r.name for r in qs]

    assert Param.objects.get(run=run).value_prefix == head
    assert names(f"params.p = '{head}a'") == ["first-run"]
    assert names(f"params.p IN ('{head}b', 'zzz')") == ["other"]
    assert names(f"tags.t = '{head}'") == ["first-run"]
    assert names(f"tags.t != '{head}'") == ["other"]


# --- metric conditions moved onto the order-by join (compiler.split_for_order) -------------------

__all__ = ["fixed_runs"]  # the property tests' 60 generated runs (a fixture)

_on_ordered_key = st.one_of(
    st.builds(
        Compare, st.sampled_from(KEYS).map(lambda k: Field("metric", k)), st.sampled_from(parser.COMPARE_OPS), numbers
    ),
    st.builds(
        In,
        st.sampled_from(KEYS).map(lambda k: Field("metric", k)),
        st.lists(numbers, min_size=1, max_size=3).map(tuple),
        st.booleans(),
    ),
)


def _expected_order(runs: dict[str, RunData], selected: set[str], key: str, descending: bool) -> list[str]:
    """Nulls (no such metric) last either way, then by id; +Inf is the greatest number."""
    present = sorted(pk for pk in selected if key in runs[pk].metrics)
    present.sort(key=lambda pk: runs[pk].metrics[key], reverse=descending)  # stable: ties stay by id
    return present + sorted(pk for pk in selected if key not in runs[pk].metrics)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    extra=st.lists(_on_ordered_key, min_size=0, max_size=2),
    node=st.one_of(st.none(), expressions),
    key=st.sampled_from(KEYS),
    descending=st.booleans(),
)
def test_ordering_by_a_filtered_metric_selects_and_orders_like_python(
    project: Project, fixed_runs: dict[str, RunData], extra: list[Node], node: Node | None, key: str, descending: bool
) -> None:
    items = [*extra, *([node] if node is not None else [])]
    if not items:
        return
    whole = items[0] if len(items) == 1 else And(tuple(items))
    text = render(whole)
    parsed = parser.parse(text)
    assert parsed is not None
    selected = {pk for pk, d in fixed_runs.items() if holds(parsed, d)}
    order = f"metrics.{'`' + key + '`' if ' ' in key else key} {'DESC' if descending else 'ASC'}"

    qs, _, _, _ = compiler.search(Run.objects.filter(project=project), filter_text=text, order_by=[order])

    assert list(qs.values_list("pk", flat=True)) == _expected_order(fixed_runs, selected, key, descending), text


def test_a_filtered_metric_order_is_an_inner_join_sorted_without_nulls_last(run: Run) -> None:
    qs, keys, _, _ = compiler.search(
        Run.objects.all(), filter_text="metrics.acc > 0.8 and params.optimizer = 'adam'", order_by=["metrics.acc DESC"]
    )
    sql = str(qs.query)

    assert "INNER JOIN" in sql
    assert "NULLS LAST" not in sql
    assert sql.count("experiments_metricsummary") == 1  # no EXISTS left for the moved condition
    assert keys[0].nullable is False


def test_a_negated_or_nested_metric_condition_is_not_moved() -> None:
    for text in (
        "metrics.acc != 0.8",
        "metrics.acc NOT IN (1, 2)",
        "not metrics.acc > 1",
        "metrics.acc > 1 or tags.a = 'b'",
    ):
        node = parser.parse(text)
        rest, moved = compiler.split_for_order(node, [parser.parse_order_by("metrics.acc DESC")])
        assert moved == {}, text
        assert rest == node, text


def _fields(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items() if k != "_state" and not k.startswith("_prefetched")}


@pytest.mark.parametrize("who", ["owner", "member", "outsider", "staff", "viewer", "anonymous"])
def test_the_compiled_run_query_builds_what_the_orm_builds(
    who: str, request: pytest.FixtureRequest, run: Run, project: Project
) -> None:
    """access_run's query is compiled once (core/querycache.py); the instances it builds
    (run, project, team, experiment, author, the role annotations, JSON and datetimes) must
    equal the ORM's, and the policy must give the same answer."""
    from django.contrib.auth.models import AnonymousUser

    user: Any = AnonymousUser() if who == "anonymous" else request.getfixturevalue(who)
    run.config = {"lr": 0.01, "layers": [64, 32], "name": "o'brien <b>"}
    run.save(update_fields=["config"])
    expected = (
        Run.objects.select_related("project__team", "experiment", "author")
        .annotate(**access.role_annotations(user, prefix="project__"))
        .get(pk=run.pk)
    )
    try:
        loaded: Run | None = access_run(user, run.id)
    except NotFound:
        loaded = None

    if access.role_on(user, project) is None:
        assert loaded is None
        return
    assert loaded is not None
    assert _fields(loaded) == _fields(expected)
    assert loaded.config == {"lr": 0.01, "layers": [64, 32], "name": "o'brien <b>"}
    pairs = [
        (loaded.project, expected.project),
        (loaded.project.team, expected.project.team),
        (loaded.experiment, expected.experiment),
        (loaded.author, expected.author),
    ]
    for got, want in pairs:
        assert _fields(got) == _fields(want)
    assert access.role_on(user, loaded.project, annotated=loaded) == access.role_on(user, project)


def test_a_compiled_query_answers_none_for_no_row_and_refuses_non_exact_lookups(run: Run) -> None:
    from core.querycache import CompiledQuery

    by_name = CompiledQuery(Run, lambda name: Run.objects.filter(name=name)[:1], placeholders=["(no such name)"])
    assert by_name.first(run.name) == run
    assert by_name.first("no-such-run") is None
    # iexact turns the value into a pattern: the placeholder is no longer found as-is.
    fuzzy = CompiledQuery(Run, lambda name: Run.objects.filter(name__contains=name)[:1], placeholders=["(x)"])
    with pytest.raises(ValueError, match="placeholder"):
        fuzzy.first(run.name)
