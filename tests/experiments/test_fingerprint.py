"""The configuration fingerprint (issue 22): one fingerprint per configuration, whatever its
spelling, key order or number format; any real change gives another; excluded keys are ignored."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.fingerprint import DEFAULT_EXCLUDE, check_exclude, differences, effective, fingerprint, is_excluded

KEYS = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8).filter(
    lambda k: not is_excluded(k, DEFAULT_EXCLUDE)
)
LEAVES = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12),
    st.booleans(),
    st.text(alphabet="xyz-_ ", max_size=5).filter(lambda s: s.strip().lower() not in ("", "none", "null")),
)
FLAT = st.dictionaries(KEYS, LEAVES, min_size=1, max_size=8)


def spelled(value: Any, style: int) -> Any:
    """Another spelling of one leaf: as text, as an exponent, as a float."""
    if isinstance(value, bool):
        return ["true" if value else "false", "True" if value else "False", value][style % 3]
    if isinstance(value, int):
        return [str(value), float(value) if abs(value) < 2**53 else value, value][style % 3]
    if isinstance(value, float):
        return [repr(value), f"{value:.17e}", value][style % 3]
    return value


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    """The same flat keys, nested under one group (``g.k``) in reverse order."""
    return {"g": dict(reversed(list(flat.items())))}


@settings(max_examples=150, deadline=None)
@given(FLAT, st.integers(min_value=0, max_value=2), st.randoms(use_true_random=False))
def test_spellings_orders_and_number_formats_share_one_fingerprint(flat: dict[str, Any], style: int, rnd: Any) -> None:
    items = list(flat.items())
    rnd.shuffle(items)
    respelled = {key: spelled(value, style) for key, value in items}
    assert fingerprint(respelled) == fingerprint(flat)
    # nesting and dotted keys are one key space
    assert fingerprint(nested(flat)) == fingerprint({f"g.{k}": v for k, v in respelled.items()})


@settings(max_examples=150, deadline=None)
@given(FLAT, st.data())
def test_any_real_change_gives_another_fingerprint(flat: dict[str, Any], data: st.DataObject) -> None:
    key = data.draw(st.sampled_from(sorted(flat)))
    canonical = effective(flat, {})
    new = data.draw(LEAVES.filter(lambda v: effective({key: v}, {})[key] != canonical[key]))
    assert fingerprint({**flat, key: new}) != fingerprint(flat)
    extra = data.draw(KEYS.filter(lambda k: k not in flat))
    assert fingerprint({**flat, extra: 1}) != fingerprint(flat)
    smaller = {k: v for k, v in flat.items() if k != key}
    assert fingerprint(smaller) != fingerprint(flat)


@settings(max_examples=100, deadline=None)
@given(FLAT, st.integers(), st.text(max_size=20))
def test_excluded_keys_are_ignored(flat: dict[str, Any], seed: int, path: str) -> None:
    with_noise = {**flat, "seed": seed, "trainer": {"random_state": seed, "output_dir": path}, "data_path": path}
    assert fingerprint(with_noise) == fingerprint(flat)
    assert fingerprint(with_noise, exclude=[]) != fingerprint(flat, exclude=[])


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"lr": 0.01}, {"lr": 1e-2}),
        ({"lr": 0.01}, {"lr": "0.01"}),
        ({"lr": 0.01}, {"lr": "1E-2"}),
        ({"epochs": 10}, {"epochs": 10.0}),
        ({"epochs": 10}, {"epochs": "10"}),
        ({"amp": True}, {"amp": "True"}),
        ({"opt": {"name": "adam", "lr": 0.1}}, {"opt.lr": "0.1", "opt.name": "adam"}),
        ({"betas": [0.9, 0.999]}, {"betas": ["0.9", 9.99e-1]}),
    ],
)
def test_known_spellings_agree(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert fingerprint(a) == fingerprint(b)


@pytest.mark.parametrize(
    ("a", "b"),
    [({"lr": 0.01}, {"lr": 0.011}), ({"name": "adam"}, {"name": "Adam"}), ({"x": "1"}, {"x": "1a"})],
)
def test_real_differences_differ(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert fingerprint(a) != fingerprint(b)


def test_a_logged_param_wins_over_the_config_key() -> None:
    assert effective({"lr": 0.1, "bs": 32}, {"lr": "0.2"}) == {"bs": 32, "lr": 0.2}
    assert fingerprint({"lr": 0.1}, {"lr": "0.2"}) == fingerprint({"lr": 0.2})


def test_differences_count_missing_keys() -> None:
    assert differences({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == ["b", "c"]


@pytest.mark.parametrize("bad", ["seed", [""], [1], ["a b"], ["x" * 251], ["p"] * 101])
def test_bad_exclude_lists_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError):
        check_exclude(bad)
