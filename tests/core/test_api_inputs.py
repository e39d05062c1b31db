"""Inputs that crashed the server or poisoned data (issue 17), refused or read in one place:
the JSON body check (``core.jsonsafe`` via ``core.api.parse_json``), the request guard
(``core.http.RequestGuardMiddleware``) and the error handlers (``config/urls.py``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.test import Client
from rest_framework.test import APIClient

from accounts.models import User
from accounts.services import token_create
from experiments.models import Param, Run
from live.publish import encode
from tests.helpers import JSON, assert_error, log_path, patch_json, post_json, run_path

pytestmark = pytest.mark.django_db


def run_count() -> int:
    return Run.objects.count()


# --- bug 1: numbers round-trip through every JSON column ------------------------------------


def test_a_float_beyond_64_bits_round_trips_as_a_float(owner_client: APIClient, project: Any) -> None:
    created = post_json(owner_client, "/api/v1/runs/", {"project": "acme/proj", "config": {"x": 1e20, "y": -1.5e300}})
    assert created.status_code == 201, created.content

    read = owner_client.get(run_path(created.json()["id"]))

    assert read.status_code == 200, read.content
    config = orjson.loads(read.content)["config"]
    assert config == {"x": 1e20, "y": -1.5e300}
    assert isinstance(config["x"], float)
    # PostgreSQL's jsonb gives the float back as the integer 100000000000000000000.
    assert Run.objects.get(id=created.json()["id"]).config["x"] == 10**20


def test_a_row_written_with_an_integer_beyond_64_bits_still_reads(owner_client: APIClient, run: Run) -> None:
    """As a row written before the rule: the run, the project's run list and compare answer."""
    Run.objects.filter(id=run.id).update(config={"x": 10**20, "n": -(10**30)}, info={"system": {"bytes": 10**19}})

    detail = owner_client.get(run_path(run))
    listed = owner_client.get("/api/v1/runs/", {"project": "acme/proj"})
    compared = owner_client.get("/api/v1/compare/", {"runs": run.id})
    edited = patch_json(owner_client, run_path(run), {"config": {"lr": 0.1}, "notes": "still works"})

    assert detail.status_code == 200, detail.content
    assert orjson.loads(detail.content)["config"] == {"x": 1e20, "n": -1e30}
    assert orjson.loads(detail.content)["info"] == {"system": {"bytes": 1e19}}
    assert listed.status_code == 200, listed.content
    assert compared.status_code == 200, compared.content
    assert edited.status_code == 200, edited.content


def test_a_live_event_carrying_such_an_integer_is_encoded() -> None:
    assert orjson.loads(encode({"config": {"x": 10**20}})) == {"config": {"x": 1e20}}


@pytest.mark.parametrize("literal", [b"9223372036854775808", b"100000000000000000000", b"-9223372036854775809"])
def test_an_integer_beyond_64_bits_is_refused_and_nothing_saved(
    owner_client: APIClient, run: Run, literal: bytes
) -> None:
    created = post_json(owner_client, "/api/v1/runs/", b'{"project": "acme/proj", "config": {"x": %s}}' % literal)
    patched = patch_json(owner_client, run_path(run), b'{"config": {"deep": {"list": [1, %s]}}}' % literal)

    assert_error(created, 400, code="integer_out_of_range", field="config.x")
    assert_error(patched, 400, code="integer_out_of_range", field="config.deep.list.1")
    assert run_count() == 1
    run.refresh_from_db()
    assert run.config == {}


# --- bug 2: NUL in JSON, in paths and in query parameters ------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"project": "acme/proj", "config": {"x": "a\\u0000b"}}', "config.x"),
        (b'{"project": "acme/proj", "config": {"x\\u0000": 1}}', "config.x\\u0000"),
        (b'{"project": "acme/proj", "name": "\\u0000"}', "name"),
        (b'{"project": "acme/proj", "info": {"code": {"branch": "m\\u0000"}}}', "info.code.branch"),
    ],
)
def test_nul_in_a_json_body_is_refused_naming_the_field(
    owner_client: APIClient, project: Any, body: bytes, field: str
) -> None:
    assert_error(post_json(owner_client, "/api/v1/runs/", body), 400, code="nul_character", field=field)
    assert run_count() == 0


def test_nul_in_a_log_batch_is_refused(owner_client: APIClient, run: Run) -> None:
    body = b'{"batch_id": "b1", "params": {"lr": "0.1\\u0000"}}'

    assert_error(post_json(owner_client, log_path(run), body), 400, code="nul_character", field="params.lr")
    assert not Param.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/projects/acme/pr%00oj/",
        "/api/v1/projects/acme/proj/experiments/%00/",
        "/api/v1/runs/%00/",
        "/api/v1/runs/%00/log/",
        "/api/v1/teams/ac%00me/members/",
    ],
)
def test_nul_in_an_api_path_is_a_json_404(owner_client: APIClient, run: Run, path: str) -> None:
    for method in ("GET", "POST", "PATCH", "DELETE"):
        response = owner_client.generic(method, path, data="{}", content_type=JSON)
        assert_error(response, 404, code="not_found", field=None)


@pytest.mark.parametrize(
    ("path", "query", "field"),
    [
        ("/api/v1/runs/", {"project": "acme/proj", "q": "loss\x00"}, "q"),
        ("/api/v1/runs/", {"project": "acme\x00/proj"}, "project"),
        ("/api/v1/compare/", {"runs": "\x00"}, "runs"),
        ("/api/v1/search/", {"q": "\x00"}, "q"),
        ("/api/v1/runs/", {"project": "acme/proj", "x\x00": "1"}, "x\\u0000"),
    ],
)
def test_nul_in_a_query_parameter_is_a_400_naming_it(
    owner_client: APIClient, run: Run, path: str, query: dict[str, str], field: str
) -> None:
    assert_error(owner_client.get(path, query), 400, code="nul_character", field=field)


def test_nul_on_pages_is_a_404_or_a_400_too(owner: User, run: Run) -> None:
    browser = Client()
    browser.force_login(owner)

    in_path = browser.get("/acme/pr%00oj/")
    in_query = browser.get("/acme/proj/", {"q": "\x00"})
    in_form = browser.post("/teams/", {"name": "new\x00team"})

    assert in_path.status_code == 404
    assert in_path["Content-Type"].startswith("text/html")
    assert in_query.status_code == 400
    assert in_form.status_code == 400
    assert browser.get("/acme/proj/").status_code == 200


# --- bug 7: the API answers its own error shape for 404 and 500 --------------------------------


@pytest.mark.parametrize("path", ["/api/v1/nope/", "/api/v1/runs/x/nothing-here/", "/api/nope/", "/api/v2/runs/"])
def test_an_unknown_api_url_is_a_json_404(owner_client: APIClient, anon_client: APIClient, path: str) -> None:
    assert_error(owner_client.get(path), 404, code="not_found", field=None)
    assert_error(anon_client.post(path, data=b"{}", content_type=JSON), 404, code="not_found", field=None)


def test_an_unknown_page_is_still_an_html_404(owner: User) -> None:
    browser = Client()
    browser.force_login(owner)

    response = browser.get("/no/such/page/here/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_a_bug_behind_the_api_is_a_json_500_without_details(
    owner: User, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    from experiments import api

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(api, "access_run", broken)
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION="Bearer " + token_create(user=owner, name="t").raw)

    response = client.get(run_path(run))

    error = assert_error(response, 500, code="server_error", field=None)
    assert "secret" not in error["message"]


def test_a_bug_behind_a_page_is_still_an_html_500(owner: User, monkeypatch: pytest.MonkeyPatch) -> None:
    from accounts import selectors

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(selectors, "teams_visible_to", broken)
    browser = Client(raise_request_exception=False)
    browser.force_login(owner)

    response = browser.get("/teams/")

    assert response.status_code == 500
    assert response["Content-Type"].startswith("text/html")
    assert b"secret" not in response.content


# --- bug 8: the body limit, before the body is read ------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/api/v1/runs/"),
        ("patch", "/api/v1/runs/{run}/"),
        ("post", "/api/v1/runs/{run}/log/"),
        ("post", "/api/v1/teams/"),
        ("post", "/api/v1/projects/acme/proj/models/"),
        ("put", "/api/v1/runs/{run}/"),
    ],
)
def test_a_body_over_the_limit_is_a_413_before_it_is_read(
    owner_client: APIClient, run: Run, settings: Any, method: str, path: str
) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    # The declared length is past the limit; the 2 bytes behind it would fail a reader that
    # trusted it (the test client refuses to read more than it has).
    response = owner_client.generic(
        method.upper(), path.format(run=run.id), data="{}", content_type=JSON, CONTENT_LENGTH="1001"
    )

    error = assert_error(response, 413, code="too_large", field=None)
    assert "1000" in error["message"]
    assert run_count() == 1


def test_a_body_within_the_limit_is_read(owner_client: APIClient, project: Any, settings: Any) -> None:
    body = orjson.dumps({"project": "acme/proj", "notes": "x" * 500})
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = len(body)

    assert post_json(owner_client, "/api/v1/runs/", body).status_code == 201


def test_a_page_post_over_the_limit_is_a_413_too(owner: User, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    browser = Client()
    browser.force_login(owner)

    response = browser.post("/teams/", {"name": "x" * 2000})

    assert response.status_code == 413


# --- bug 10 (part): duplicate keys -------------------------------------------------------------


def test_duplicate_keys_are_refused(owner_client: APIClient, run: Run) -> None:
    created = post_json(owner_client, "/api/v1/runs/", b'{"project": "acme/proj", "project": "other/one"}')
    logged = post_json(
        owner_client,
        log_path(run),
        b'{"batch_id": "b1", "metrics": [{"key": "loss", "step": 1, "value": 1.0, "value": 2.0}]}',
    )

    assert_error(created, 400, code="duplicate_key", field="project")
    assert_error(logged, 400, code="duplicate_key", field="metrics.0.value")
    assert run_count() == 1


def test_compare_of_runs_without_metrics_answers(owner_client: APIClient, run: Run) -> None:
    # Found with the test above: the history query of no keys was "IN ()", a 500 on PostgreSQL.
    response = owner_client.get("/api/v1/compare/", {"runs": run.id})

    assert response.status_code == 200, response.content


# --- found by Schemathesis against the schema (issue 17) ------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"params": None}, "params"),
        ({"tags": None}, "tags"),
        ({"batch_id": None, "metrics": [{"key": "a", "step": 0, "value": 1.0}]}, "batch_id"),
        ({"series": [{"key": "a", "steps": [0], "values": [1.0], "timestamps": None}]}, "series.0.timestamps"),
    ],
)
def test_null_where_the_log_schema_forbids_it_is_refused(
    owner_client: APIClient, run: Run, body: dict[str, Any], field: str
) -> None:
    response = post_json(owner_client, f"/api/v1/runs/{run.id}/log/", body)
    assert_error(response, 400, field=field)
    assert not run.batches.exists()


def test_a_media_type_that_is_not_a_string_is_refused(owner_client: APIClient, run: Run) -> None:
    # An object was falsy, so it became the default type; a MIME type is a string or "".
    file = {"path": "model.pkl", "size": 1, "sha256": "0" * 64, "media_type": {}}
    response = post_json(owner_client, f"/api/v1/runs/{run.id}/artifacts/", {"files": [file]})
    assert_error(response, 400, field="files.0.media_type")
    blank = post_json(owner_client, f"/api/v1/runs/{run.id}/artifacts/", {"files": [{**file, "media_type": ""}]})
    assert blank.status_code == 201, blank.content
