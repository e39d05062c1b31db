from __future__ import annotations

import pytest

from reviews.mentions import MAX_MENTIONS, find_mentions, mention_prefix


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@ana please look", ["ana"]),
        ("cc @Ana, @bob-2 and @ml_team.", ["ana", "bob-2", "ml_team"]),
        ("(@ana) [@bob] **@carol**", ["ana", "bob", "carol"]),
        ("@ana @ana @ANA", ["ana"]),
        ("mail ana@example.com or x@y", []),
        ("see https://example.com/@ana/posts", []),
        ("inline `@ana` code", []),
        ("double ``a `@ana` b`` span", []),
        ("```\n@ana in a fence\n```\nbut @bob outside", ["bob"]),
        ("~~~python\n@ana\n~~~", []),
        ("    @ana indented code\n\n@bob", ["bob"]),
        ("@@ana", []),
        ("@-ana", []),
        ("trailing @ana_", ["ana"]),
        ("@", []),
        ("", []),
    ],
)
def test_mentions_are_found_outside_code_and_addresses(text: str, expected: list[str]) -> None:
    assert find_mentions(text) == expected


def test_mentions_are_capped() -> None:
    text = " ".join(f"@user{i}" for i in range(MAX_MENTIONS + 10))

    assert len(find_mentions(text)) == MAX_MENTIONS


def test_the_editor_prefix_is_the_name_being_typed() -> None:
    assert mention_prefix("hi @an", 6) == "an"
    assert mention_prefix("hi @", 4) == ""
    assert mention_prefix("ana@ex", 6) is None
    assert mention_prefix("hi @ana and more", 16) is None
