"""Replays of the artifact path-traversal attacks published against MLflow's artifact
handlers (CVE-2023-1177, CVE-2023-2780, CVE-2023-6015, CVE-2023-6831, CVE-2023-6909,
CVE-2024-1560, CVE-2024-2928, CVE-2024-3848 and kin) against Assay's upload, listing
and download paths, plain, URL-encoded and double-encoded. Every one is refused with a
4xx and leaves nothing behind."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from rest_framework.test import APIClient

from artifacts.models import Artifact, Blob
from experiments.models import Run
from tests.artifacts.conftest import artifacts_path, declare, log_file
from tests.helpers import assert_error

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("store_root", "eager")]

ATTACKS = {
    "plain parent": "../../../../etc/passwd",
    "parent after a folder (CVE-2023-1177)": "artifacts/../../../../../../etc/passwd",
    "dot and parent (CVE-2023-2780)": "a/./../../b",
    "url-encoded slash (CVE-2024-1560)": "..%2f..%2f..%2fetc%2fpasswd",
    "url-encoded dots": "%2e%2e/%2e%2e/etc/passwd",
    "double-encoded (CVE-2023-6015)": "%252e%252e%252f%252e%252e%252fetc%252fpasswd",
    "triple-encoded": "%25252e%25252e%25252fetc",
    "backslash (CVE-2023-6831)": "..\\..\\..\\windows\\win.ini",
    "encoded backslash": "..%5c..%5cwindows%5cwin.ini",
    "fragment (CVE-2023-6909)": "#/../../../etc/passwd",
    "fragment in the middle (CVE-2024-2928)": "model#/../../../../etc/passwd",
    "encoded fragment (CVE-2024-3848)": "model%23/../../etc/passwd",
    "query smuggling": "model?/../../etc/passwd",
    "semicolon path parameter": "model;/../../etc/passwd",
    "absolute": "/etc/passwd",
    "encoded absolute": "%2fetc%2fpasswd",
    "file URI": "file:///etc/passwd",
    "drive letter": "C:\\Windows\\win.ini",
    "dotted dots": "....//....//etc/passwd",
    "NUL truncation": "model.pkl%00.png",
    "subdirectory listing escape (CVE-2024-1560)": "subdir/..%2f..%2f..%2fetc",
}
IDS = list(ATTACKS)


@pytest.mark.parametrize("attack", list(ATTACKS.values()), ids=IDS)
def test_an_upload_under_a_traversal_path_is_refused(owner_client: APIClient, run: Run, attack: str) -> None:
    response = declare(owner_client, run, [{"path": attack, "size": 4, "sha256": "0" * 64}])

    assert_error(response, 400, code="invalid_path", field="files.0.path")
    assert Artifact.objects.count() == Blob.objects.count() == 0


@pytest.mark.parametrize("attack", list(ATTACKS.values()), ids=IDS)
def test_a_listing_under_a_traversal_path_is_refused(owner_client: APIClient, run: Run, attack: str) -> None:
    response = owner_client.get(artifacts_path(run), {"path": attack})

    assert_error(response, 400, code="invalid_path", field="path")


@pytest.mark.parametrize("attack", list(ATTACKS.values()), ids=IDS)
def test_a_download_naming_a_traversal_path_finds_nothing(
    owner_client: APIClient, run: Run, django_capture_on_commit_callbacks: Any, attack: str
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        log_file(owner_client, run, "model.bin", b"real")

    for encoded in (quote(attack, safe=""), quote(quote(attack, safe=""), safe="")):
        response = owner_client.get(f"{artifacts_path(run)}{encoded}/download/")
        assert response.status_code == 404, (encoded, response.status_code)


@pytest.mark.parametrize("token", ["../../etc/passwd", "%2e%2e%2fetc%2fpasswd", "", "objects/x/y"])
def test_the_store_endpoint_refuses_anything_but_a_signed_token(owner_client: APIClient, token: str) -> None:
    assert_error(owner_client.get("/-/store/", {"t": token}), 403, code="bad_signature")
    assert_error(
        owner_client.generic("PUT", f"/-/store/?t={quote(token)}", "x", content_type="application/octet-stream"),
        403,
        code="bad_signature",
    )
