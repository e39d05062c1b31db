from __future__ import annotations

import pytest

from registry.refs import (
    ModelRef,
    RefError,
    VersionRef,
    alias_name_problem,
    parse_model_ref,
    parse_version_arg,
    parse_version_ref,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v7", VersionRef("number", "v7", 7)),
        ("V12", VersionRef("number", "v12", 12)),
        ("latest", VersionRef("latest", "latest")),
        ("production", VersionRef("alias", "production")),
        ("abc1234", VersionRef("hash", "abc1234")),
        ("a" * 64, VersionRef("hash", "a" * 64)),
        ("cafe", VersionRef("alias", "cafe")),  # too short for a hash: an alias name
    ],
)
def test_version_refs_have_exactly_one_reading(text: str, expected: VersionRef) -> None:
    assert parse_version_ref(text) == expected


@pytest.mark.parametrize("text", ["", "v0", "v01", "@", "prod/uction", "x" * 65, "a b"])
def test_bad_version_refs_are_refused(text: str) -> None:
    with pytest.raises(RefError):
        parse_version_ref(text)


def test_a_full_model_reference_names_team_project_model_and_ref() -> None:
    assert parse_model_ref("acme/proj/fraud-detector@production") == ModelRef(
        "acme", "proj", "fraud-detector", VersionRef("alias", "production")
    )


def test_a_short_reference_takes_the_default_project() -> None:
    ref = parse_model_ref("fraud@v3", default_project="acme/proj")

    assert (ref.team, ref.project, ref.model, ref.ref.number) == ("acme", "proj", "fraud", 3)
    assert str(ref) == "acme/proj/fraud@v3"


def test_a_reference_without_ref_means_latest() -> None:
    assert parse_model_ref("acme/proj/fraud").ref.kind == "latest"


def test_a_short_reference_without_a_project_is_refused_with_the_fix() -> None:
    with pytest.raises(RefError, match="ASSAY_PROJECT"):
        parse_model_ref("fraud@v1")


@pytest.mark.parametrize("text", ["acme/fraud@v1", "a/b/c/d@v1", "acme/proj/Bad Name@v1", "acme/proj/../x@v1"])
def test_malformed_model_references_are_refused(text: str) -> None:
    with pytest.raises(RefError):
        parse_model_ref(text, default_project="acme/proj")


@pytest.mark.parametrize("name", ["latest", "v1", "v007", "deadbeef", "0123456789abcdef", "Prod!", ""])
def test_reserved_and_ambiguous_alias_names_are_refused(name: str) -> None:
    assert alias_name_problem(name) is not None


@pytest.mark.parametrize("name", ["production", "staging", "champion", "v2-candidate", "cafe"])
def test_ordinary_alias_names_are_accepted(name: str) -> None:
    assert alias_name_problem(name) is None


@pytest.mark.parametrize(("text", "number"), [("2", 2), ("v2", 2), ("123456", 123456), (" 7 ", 7)])
def test_a_bare_number_of_fewer_than_seven_digits_is_a_version_number(text: str, number: int) -> None:
    ref = parse_version_arg(text)

    assert (ref.kind, ref.number) == ("number", number)


@pytest.mark.parametrize("text", ["2375525", "0123456", "1234567890"])
def test_seven_or_more_digits_are_a_hash_prefix_not_a_version_number(text: str) -> None:
    # A content hash is hex, so its first 7 characters are all digits about 1 time in 27;
    # reading those as a version number made a hash-prefix lookup fail now and then.
    ref = parse_version_arg(text)

    assert (ref.kind, ref.value) == ("hash", text)
