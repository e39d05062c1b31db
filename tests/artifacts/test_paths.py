"""artifacts/paths.py: the artifact-path rule of security.md class 1, as plain unit tests."""

from __future__ import annotations

import pytest

from artifacts.paths import MAX_PATH_LENGTH, PathError, file_name, normalize_path

REFUSED = {
    "parent segment": "../etc/passwd",
    "parent inside": "model/../../secret",
    "dot segment": "./model.pkl",
    "trailing parent": "a/..",
    "leading slash": "/etc/passwd",
    "double slash": "a//b",
    "trailing slash": "a/b/",
    "backslash": "..\\..\\windows\\win.ini",
    "backslash in name": "a\\b",
    "drive letter": "C:/Windows/system.ini",
    "drive letter relative": "c:evil",
    "NUL": "model.pkl\x00.png",
    "newline": "a\nb",
    "escape": "a\x1b[31mred",
    "DEL": "a\x7fb",
    "bidi override": "model\u202egnp.exe",
    "semicolon": "a;b",
    "question mark": "a?b=c",
    "hash": "a#b",
    "encoded parent": "%2e%2e/secret",
    "encoded slash parent": "..%2fsecret",
    "double-encoded parent": "%252e%252e%252fsecret",
    "triple-encoded parent": "%25252e%25252e/secret",
    "encoded leading slash": "%2fetc/passwd",
    "encoded backslash": "..%5c..%5cwin.ini",
    "encoded NUL": "model.pkl%00.png",
    "encoded hash smuggling": "a%23/../b",
    "encoded question mark": "file%3f.txt",
    "empty": "",
    "only a dot": ".",
    "space-padded segment": " a/b",
    "too long": "a" * (MAX_PATH_LENGTH + 1),
    "long segment": "a" * 256,
    "bad utf-8 escape": "%ff%fe",
    "mlflow CVE-2023-1177 style": "artifacts/../../../../../../etc/passwd",
    "mlflow CVE-2023-6909 fragment": "#/../../../../etc/passwd",
    "mlflow CVE-2024-1560 subdir": "subdir/..%2f..%2f..%2fetc",
}


@pytest.mark.parametrize("raw", list(REFUSED.values()), ids=list(REFUSED))
def test_a_dangerous_path_is_refused(raw: str) -> None:
    with pytest.raises(PathError):
        normalize_path(raw)


@pytest.mark.parametrize("raw", [None, 3, b"a", ["a"]])
def test_a_non_string_path_is_refused(raw: object) -> None:
    with pytest.raises(PathError, match="string"):
        normalize_path(raw)


def test_the_reason_names_the_problem() -> None:
    with pytest.raises(PathError, match=r"'\.\.' segment"):
        normalize_path("%252e%252e/x")
    with pytest.raises(PathError, match="backslash"):
        normalize_path("a\\b")
    with pytest.raises(PathError, match="NUL"):
        normalize_path("a\x00")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("model.pkl", "model.pkl"),
        ("model/weights.safetensors", "model/weights.safetensors"),
        ("plots/loss curve.png", "plots/loss curve.png"),
        ("data/spaced%20name.csv", "data/spaced name.csv"),
        ("a%2Fb.txt", "a/b.txt"),
        ("cafe\u0301.txt", "café.txt"),  # NFC
        ("...hidden", "...hidden"),
        ("v1.0..2/x", "v1.0..2/x"),
        ("x/" * 10 + "y", "x/" * 10 + "y"),
    ],
)
def test_a_good_path_is_normalised(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


def test_a_path_of_the_maximum_length_is_accepted() -> None:
    raw = "/".join(["a" * 200] * 5)[:MAX_PATH_LENGTH]
    assert normalize_path(raw) == raw


def test_file_name_is_the_last_segment() -> None:
    assert file_name("a/b/model.onnx") == "model.onnx"
    assert file_name("model.onnx") == "model.onnx"
