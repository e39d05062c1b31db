"""MLflow's filter strings for the registry and logged-model searches (compat/search_filter.py):
pure, no database."""

from __future__ import annotations

import pytest

from compat import search_filter
from compat.search_filter import Clause, FilterError

ATTRS = {"name", "run_id", "version_number"}


def test_clauses_joined_by_and_with_quoted_and_dotted_tag_keys() -> None:
    text = "name LIKE 'fr%' AND tags.`mlflow.prompt.is_prompt` != 'true' and tags.a.b = \"x\" AND version_number >= 2"

    assert search_filter.parse(text, attributes=ATTRS) == [
        Clause("attribute", "name", "LIKE", "fr%"),
        Clause("tag", "mlflow.prompt.is_prompt", "!=", "true"),
        Clause("tag", "a.b", "=", "x"),
        Clause("attribute", "version_number", ">=", 2.0),
    ]


def test_in_lists_and_escaped_quotes() -> None:
    assert search_filter.parse("run_id IN ('a', 'b''c') AND name NOT IN ('x')", attributes=ATTRS) == [
        Clause("attribute", "run_id", "IN", ("a", "b'c")),
        Clause("attribute", "name", "NOT IN", ("x",)),
    ]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("owner = 'x'", "Invalid attribute key 'owner'"),
        ("name = 'x' OR name = 'y'", "joined by AND"),
        ("name ~ 'x'", "unexpected text"),
        ("name =", "ends too early"),
        ("name LIKE 3", "quoted string"),
        ("params.alpha = '1'", "not searchable here"),
        ("run_id IN 'a'", "parentheses"),
        ("tags. = 'x'", "unexpected text"),
    ],
)
def test_a_bad_filter_says_what_is_wrong(text: str, says: str) -> None:
    with pytest.raises(FilterError, match=says):
        search_filter.parse(text, attributes=ATTRS)


@pytest.mark.parametrize(
    ("clause", "value", "expected"),
    [
        (Clause("attribute", "name", "LIKE", "fr%"), "fraud", True),
        (Clause("attribute", "name", "LIKE", "Fr%"), "fraud", False),
        (Clause("attribute", "name", "ILIKE", "%RA_d"), "fraud", True),
        (Clause("attribute", "version_number", ">", 2.0), 3, True),
        (Clause("attribute", "version_number", ">", 2.0), "not a number", False),
        (Clause("tag", "stage", "!=", "prod"), None, True),  # an absent tag differs from every value
        (Clause("tag", "stage", "=", "prod"), None, False),
        (Clause("attribute", "run_id", "NOT IN", ("a",)), "b", True),
    ],
)
def test_matching(clause: Clause, value: object, expected: bool) -> None:
    assert search_filter.matches(clause, value) is expected


def test_names_compare_lower_cased_as_assay_stores_them() -> None:
    clauses = search_filter.names_lowered(search_filter.parse("name = 'Fraud'", attributes=ATTRS))
    assert search_filter.matches(clauses[0], "fraud")


def test_order_and_page_tokens() -> None:
    assert search_filter.order_keys(["name DESC", "version_number"], allowed=ATTRS, default=[]) == [
        ("name", False),
        ("version_number", True),
    ]
    with pytest.raises(FilterError, match="order_by key"):
        search_filter.order_keys(["size"], allowed=ATTRS, default=[])
    assert search_filter.read_page_token(search_filter.page_token(40)) == 40
    for bad in ("garbage", search_filter.page_token(-1)):
        with pytest.raises(FilterError, match="page token"):
            search_filter.read_page_token(bad)
