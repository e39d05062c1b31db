from __future__ import annotations

import pytest

from reviews.gates import GateError, parse


def test_the_issue_example_compares_candidate_with_current() -> None:
    gate = parse("candidate.metrics.acc >= current.metrics.acc - 0.005")

    assert gate.evaluate(candidate={"acc": 0.897}, current={"acc": 0.9}).passed is True
    assert gate.evaluate(candidate={"acc": 0.894}, current={"acc": 0.9}).passed is False


def test_boolean_operators_precedence_and_quoted_keys() -> None:
    gate = parse('not candidate.metrics.`val loss` > 0.3 AND (candidate.metrics."f1" * 2 > 1 or 1 = 0)')

    assert gate.evaluate(candidate={"val loss": 0.2, "f1": 0.6}, current=None).passed is True
    assert gate.evaluate(candidate={"val loss": 0.4, "f1": 0.6}, current=None).passed is False


def test_a_missing_value_is_reported_not_treated_as_false() -> None:
    gate = parse("candidate.metrics.acc >= current.metrics.acc")

    result = gate.evaluate(candidate={"acc": 0.9}, current={})

    assert result.passed is None
    assert result.missing == "current.metrics.acc"


def test_non_numbers_count_as_missing() -> None:
    gate = parse("candidate.metrics.acc > 0")

    assert gate.evaluate(candidate={"acc": "NaN"}, current=None).missing == "candidate.metrics.acc"
    assert gate.evaluate(candidate={"acc": True}, current=None).missing == "candidate.metrics.acc"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "candidate.metrics.acc",
        "params.lr > 1",
        "candidate.params.lr > 1",
        "candidate.metrics.acc >",
        "1 >",
        "x" * 2000,
        "__import__('os') > 1",
        "candidate.metrics.acc > 1 and",
    ],
)
def test_invalid_gates_are_refused(text: str) -> None:
    with pytest.raises(GateError):
        parse(text)


def test_the_error_names_the_position() -> None:
    with pytest.raises(GateError) as info:
        parse("candidate.metrics.acc >= ")
    assert info.value.position is not None
