"""core.jsonsafe: the one check of JSON bodies (wide integers, NUL, duplicate keys) and the
one encoder that copes with integers beyond 64 bits (issue 17, bugs 1, 2 and 10)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from core import jsonsafe
from core.errors import Invalid


def refusal(raw: bytes) -> Invalid:
    with pytest.raises(Invalid) as caught:
        jsonsafe.loads(raw)
    return caught.value


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"config": {"x": 9223372036854775808}}', "config.x"),  # 2**63: orjson keeps it as an int
        (b'{"config": {"x": -9223372036854775809}}', "config.x"),  # orjson would round it to a float
        (b'{"config": {"x": 100000000000000000000}}', "config.x"),  # orjson would round it to a float
        (b'{"metrics": [{"step": 1}, {"step": 18446744073709551616}]}', "metrics.1.step"),
        (b"123456789012345678901234567890", None),
    ],
)
def test_integers_outside_64_bits_are_refused_naming_the_field(raw: bytes, field: str | None) -> None:
    error = refusal(raw)

    assert error.field == field
    assert error.code == "integer_out_of_range"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"x": 9223372036854775807, "y": -9223372036854775808}',
        b'{"x": 1e20, "y": -1e300, "z": 100000000000000000000.0, "w": 1.5e-300}',
        b'{"id": "12345678901234567890123", "ns": 1764150000000000000}',
    ],
)
def test_64_bit_integers_floats_and_long_digit_strings_pass(raw: bytes) -> None:
    assert jsonsafe.loads(raw) == orjson.loads(raw)


def test_floats_stay_floats() -> None:
    value = jsonsafe.loads(b'{"x": 1e20}')

    assert isinstance(value["x"], float)
    assert value["x"] == 1e20


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"config": {"a": "x\\u0000y"}}', "config.a"),
        (b'{"config": {"a\\u0000": 1}}', "config.a\\u0000"),
        (b'{"reviewers": ["ann", "\\u0000"]}', "reviewers.1"),
        (b'"\\u0000"', None),
    ],
)
def test_nul_in_a_string_or_a_key_is_refused_naming_the_field(raw: bytes, field: str | None) -> None:
    error = refusal(raw)

    assert error.field == field
    assert error.code == "nul_character"


def test_an_escaped_backslash_before_u0000_is_not_a_nul() -> None:
    assert jsonsafe.loads(b'{"path": "C:\\\\u0000"}') == {"path": "C:\\u0000"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"project": "a/b", "project": "c/d"}', "project"),
        (b'{"config": {"x": 1, "y": 2, "x": 3}}', "config.x"),
        (b'{"metrics": [{"key": "a"}, {"key": "b", "key": "c"}]}', "metrics.1.key"),
        # The dropped value holds colons: the colon count still differs.
        (b'{"a": "x:y", "a": 1}', "a"),
        # Colons written as \u003a force the exact check.
        (b'{"a": "\\u003a", "a": ":"}', "a"),
        (b'{"a": {"b": 1}, "a": {"b": 1}}', "a"),
    ],
)
def test_duplicate_keys_are_refused_naming_the_field(raw: bytes, field: str) -> None:
    error = refusal(raw)

    assert error.field == field
    assert error.code == "duplicate_key"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"url": "http://x:80/a:b", "time": "12:30:00", "k:e:y": {"a": ":"}}',
        b'{"a": "\\u003a", "b": "\\u003A"}',
        b'[{"a": 1}, {"a": 1}]',  # the same key in two objects is no duplicate
        b'{"a": {"a": {"a": 1}}}',
        b"[]",
        b"{}",
    ],
)
def test_no_false_duplicates(raw: bytes) -> None:
    assert jsonsafe.loads(raw) == orjson.loads(raw)


def test_an_sdk_batch_is_checked_without_the_slow_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """A log batch of 1,000 points, with colons in its keys and strings, passes on the scans
    of the raw bytes alone (the exact parse would cost several times the whole check)."""

    monkeypatch.setattr(jsonsafe, "_check", _slow)
    batch = {
        "batch_id": "b-1",
        "params": {"optimizer": "adam", "data": "s3://bucket/train:v2"},
        "tags": {"started": "2026-01-01T12:30:00Z"},
        "metrics": [
            {"key": "val/loss:top1", "step": i, "value": 0.5 / (i + 1), "timestamp": 1764150000000 + i}
            for i in range(1000)
        ],
    }

    assert jsonsafe.loads(orjson.dumps(batch)) == batch


def test_invalid_json_is_still_a_decode_error() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        jsonsafe.loads(b'{"a": ')


def test_dumps_writes_integers_beyond_64_bits_as_floats() -> None:
    value: dict[str, Any] = {"x": 10**20, "y": [-(10**30), 5], "ok": 2**63 - 1, "flag": True, "huge": 10**400}

    assert orjson.loads(jsonsafe.dumps(value)) == {
        "x": 1e20,
        "y": [-1e30, 5],
        "ok": 2**63 - 1,
        "flag": True,
        "huge": str(10**400),
    }


def test_dumps_leaves_other_errors_alone() -> None:
    with pytest.raises(orjson.JSONEncodeError):
        jsonsafe.dumps({"x": object()})


@pytest.mark.parametrize(
    "raw",
    [
        b"[0.0005005005005005005, 0.00050050050050050050]",
        b"[1.5e+0000000000000000000300]",
        b'{"at": 1764150000000, "step": 999999999999999999}',
    ],
)
def test_long_digit_runs_of_floats_and_18_digit_integers_take_no_slow_parse(
    raw: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jsonsafe, "_check", _slow)

    assert jsonsafe.loads(raw) == orjson.loads(raw)


def _slow(raw: bytes) -> None:
    raise AssertionError("the exact check ran")
