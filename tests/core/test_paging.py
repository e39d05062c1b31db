"""core.paging: one parser for the paging parameters of every list."""

from __future__ import annotations

import pytest

from core import paging
from core.errors import Invalid


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, (0, 50)),
        ({"offset": "10", "limit": "5"}, (10, 5)),
        ({"offset": str(paging.MAX_OFFSET), "limit": "100"}, (paging.MAX_OFFSET, 100)),
        ({"offset": "-0"}, (0, 50)),
    ],
)
def test_offset_and_limit_in_range_are_taken(query: dict[str, str], expected: tuple[int, int]) -> None:
    assert paging.offset_limit(query, default_limit=50, max_limit=100) == expected


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"offset": str(2**63)}, "offset"),  # issue 17: bigint out of range was a 500
        ({"offset": str(paging.MAX_OFFSET + 1)}, "offset"),
        ({"offset": "9" * 5000}, "offset"),  # beyond Python's int() digit limit
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"offset": ""}, "offset"),
        ({"offset": " 1"}, "offset"),
        ({"offset": "1_000"}, "offset"),
        ({"offset": "\u0663"}, "offset"),  # an Arabic-Indic three: int() takes it, a client never means it
        ({"limit": "0"}, "limit"),
        ({"limit": "101"}, "limit"),
        ({"limit": "abc"}, "limit"),
        ({"limit": "1", "offset": "x"}, "offset"),
    ],
)
def test_out_of_range_or_malformed_is_refused_naming_the_parameter(query: dict[str, str], field: str) -> None:
    with pytest.raises(Invalid) as caught:
        paging.offset_limit(query, default_limit=50, max_limit=100)
    assert caught.value.field == field


def test_the_page_size_is_taken_from_the_first_name_present() -> None:
    assert paging.page_size({}, default=50, maximum=1000, names=("page_size", "max_results")) == 50
    assert paging.page_size({"max_results": "7"}, default=50, maximum=1000, names=("page_size", "max_results")) == 7
    with pytest.raises(Invalid) as caught:
        paging.page_size({"page_size": "1001"}, default=50, maximum=1000)
    assert caught.value.field == "page_size"
