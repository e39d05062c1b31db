"""The filter parser alone: MLflow's syntax unchanged, Assay's additions, and errors that
say where and what was expected."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from experiments.query.parser import (
    And,
    Compare,
    Field,
    FilterError,
    In,
    IsNull,
    Not,
    Or,
    numeric_text,
    parse,
    parse_order_by,
    parse_time,
)


def f(entity: str, key: str) -> Field:
    return Field(entity, key)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc > 0.9", Compare(f("metric", "acc"), ">", 0.9)),
        ("metric.acc>=1e-3", Compare(f("metric", "acc"), ">=", 0.001)),
        ("params.lr = '0.01'", Compare(f("param", "lr"), "=", "0.01")),
        ('param.lr = "0.01"', Compare(f("param", "lr"), "=", "0.01")),
        ("tags.team ILIKE '%nlp%'", Compare(f("tag", "team"), "ilike", "%nlp%")),
        ("tag.team LIKE 'a_c'", Compare(f("tag", "team"), "like", "a_c")),
        ("attributes.status = 'FAILED'", Compare(f("attribute", "status"), "=", "failed")),
        ("attribute.run_name = 'x'", Compare(f("attribute", "name"), "=", "x")),
        ("run.status != 'RUNNING'", Compare(f("attribute", "status"), "!=", "running")),
        ("metrics.`val loss` < 2", Compare(f("metric", "val loss"), "<", 2.0)),
        ('metrics."val loss" < 2', Compare(f("metric", "val loss"), "<", 2.0)),
        ("metrics.train/loss <= -1", Compare(f("metric", "train/loss"), "<=", -1.0)),
        ("params.name = 'it''s'", Compare(f("param", "name"), "=", "it's")),
        ("params.x IN ('a', 'b')", In(f("param", "x"), ("a", "b"))),
        ("params.x not in ('a')", In(f("param", "x"), ("a",), negated=True)),
        ("tags.x IS NULL", IsNull(f("tag", "x"))),
        ("tags.x is not null", IsNull(f("tag", "x"), negated=True)),
        ("attributes.created > '2026-01-01'", Compare(f("attribute", "start_time"), ">", "2026-01-01")),
    ],
)
def test_single_conditions_parse(text: str, expected: object) -> None:
    assert parse(text) == expected


def test_mlflow_conjunction_parses_unchanged() -> None:
    assert parse("metrics.acc > 0.9 and params.lr = '0.01'") == And(
        (Compare(f("metric", "acc"), ">", 0.9), Compare(f("param", "lr"), "=", "0.01"))
    )


def test_and_binds_tighter_than_or_and_not_tighter_than_and() -> None:
    tree = parse("metrics.a > 1 or not metrics.b > 2 and metrics.c > 3")
    assert tree == Or(
        (
            Compare(f("metric", "a"), ">", 1.0),
            And((Not(Compare(f("metric", "b"), ">", 2.0)), Compare(f("metric", "c"), ">", 3.0))),
        )
    )


def test_parentheses_group() -> None:
    tree = parse("metrics.acc > 0.8 and (params.optimizer = 'adam' or params.optimizer = 'sgd')")
    assert tree == And(
        (
            Compare(f("metric", "acc"), ">", 0.8),
            Or((Compare(f("param", "optimizer"), "=", "adam"), Compare(f("param", "optimizer"), "=", "sgd"))),
        )
    )


def test_keywords_are_case_insensitive() -> None:
    assert parse("metrics.a > 1 AnD metrics.b > 1") == parse("metrics.a > 1 and metrics.b > 1")


def test_an_empty_filter_is_every_run() -> None:
    assert parse("") is None
    assert parse("   ") is None


@pytest.mark.parametrize(
    ("text", "position", "expected_token"),
    [
        ("metrics.acc >", 13, "a number"),
        ("metrics.acc > 0.8 and", 21, "a field such as metrics.acc"),
        ("(metrics.a > 1", 14, ")"),
        ("metrics.a # 1", 10, "an operator (=, !=, <, <=, >, >=)"),
        ("metrics.a > 1 metrics.b > 2", 14, None),
    ],
)
def test_syntax_errors_carry_position_and_expected_tokens(text: str, position: int, expected_token: str | None) -> None:
    with pytest.raises(FilterError) as caught:
        parse(text)
    assert caught.value.position == position
    assert str(position) in caught.value.message
    if expected_token is not None:
        assert expected_token in caught.value.expected


@pytest.mark.parametrize(
    ("text", "position", "words"),
    [
        ("foo.x = 1", 0, "Unknown field"),
        ("attributes.password = 'x'", 0, "Unknown attribute"),
        ("metrics.acc = 'high'", 14, "number"),
        ("metrics.acc LIKE '%'", 17, "number"),
        ("attributes.status = 'weird'", 20, "Unknown status"),
        ("attributes.created > 'yesterday'", 21, "not a time"),
        ("attributes.name = 3", 18, "quote"),
        ("params.x LIKE 'abc\\'", 14, "backslash"),
        ("metrics.a > 1e999", 12, "out of range"),
        ("metrics. > 1", 0, None),
    ],
)
def test_meaningless_comparisons_are_errors_with_a_position(text: str, position: int, words: str | None) -> None:
    with pytest.raises(FilterError) as caught:
        parse(text)
    assert caught.value.position == position
    if words:
        assert words in caught.value.message


def test_limits_bound_the_work() -> None:
    with pytest.raises(FilterError, match="at most"):
        parse("metrics.a > 1 and " * 300 + "metrics.a > 1")
    with pytest.raises(FilterError, match="conditions"):
        parse(" and ".join(["metrics.a > 1"] * 101))
    with pytest.raises(FilterError, match="NUL"):
        parse("params.a = '\x00'")


def test_numbers_in_text_are_recognised_conservatively() -> None:
    assert [numeric_text(v) for v in ["0.01", "-1e-3", "10", ".5", "5."]] == [0.01, -0.001, 10.0, 0.5, 5.0]
    assert [numeric_text(v) for v in ["adam", "1e400", "1" * 40, " 1", "1\n", "nan", "inf", ""]] == [None] * 8


def test_time_literals() -> None:
    assert parse_time("2026-01-01", 0) == datetime(2026, 1, 1, tzinfo=UTC)
    assert parse_time("2026-01-01T12:30:00+02:00", 0) == datetime(2026, 1, 1, 10, 30, tzinfo=UTC)
    assert parse_time(1767225600000.0, 0) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(FilterError):
        parse_time("2026-13-01", 0)


@pytest.mark.parametrize(
    ("text", "entity", "key", "descending"),
    [
        ("metrics.acc DESC", "metric", "acc", True),
        ("metrics.acc", "metric", "acc", False),
        ("params.`a b` asc", "param", "a b", False),
        ("-start_time", "attribute", "start_time", True),
        ("attributes.created desc", "attribute", "start_time", True),
    ],
)
def test_order_by_items(text: str, entity: str, key: str, descending: bool) -> None:
    term = parse_order_by(text)
    assert (term.field.entity, term.field.key, term.descending) == (entity, key, descending)


@pytest.mark.parametrize("text", ["metrics.acc DESC x", "password", "author__password", "metrics.", "1 desc", ""])
def test_bad_order_by_items_are_refused(text: str) -> None:
    with pytest.raises(FilterError) as caught:
        parse_order_by(text)
    assert caught.value.source == "order_by"
