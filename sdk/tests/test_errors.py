"""Wrong URL, bad token, unknown or foreign project: one line at init, naming what to fix."""

from __future__ import annotations

import pytest
from conftest import free_port

import assay


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    assert "\n" not in text
    assert exc.__cause__ is None
    assert exc.__suppress_context__
    return text


def test_bad_token(assay_env, project, monkeypatch):
    monkeypatch.setenv("ASSAY_TOKEN", "not-a-token")
    with pytest.raises(assay.AuthenticationError) as caught:
        assay.init(project=project)
    text = _one_line(caught.value)
    assert "rejected the token" in text
    assert "ASSAY_TOKEN" in text


def test_missing_token(assay_env, project, monkeypatch):
    monkeypatch.delenv("ASSAY_TOKEN")
    with pytest.raises(assay.ConfigurationError, match="ASSAY_TOKEN"):
        assay.init(project=project)


def test_team_that_does_not_exist(assay_env):
    with pytest.raises(assay.ProjectNotFoundError) as caught:
        assay.init(project="nosuchteam/model")
    text = _one_line(caught.value)
    assert "'nosuchteam/model' not found" in text
    assert "ASSAY_PROJECT" in text


def test_team_that_is_not_yours(assay_env):
    # "admin" is the superuser's personal team; ana is not a member.
    with pytest.raises(assay.ProjectNotFoundError, match="admin/secret"):
        assay.init(project="admin/secret")


def test_malformed_project(assay_env):
    with pytest.raises(assay.ConfigurationError, match='"team/project"'):
        assay.init(project="just-a-name")


def test_unreachable_url(assay_env, project, monkeypatch):
    monkeypatch.setenv("ASSAY_URL", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(assay.ServerUnreachableError) as caught:
        assay.init(project=project)
    text = _one_line(caught.value)
    assert "Cannot reach the Assay server" in text
    assert "ASSAY_URL" in text


def test_url_that_is_not_an_assay_server(assay_env, project, monkeypatch, running_server):
    monkeypatch.setenv("ASSAY_URL", running_server.url + "/static/nothing")
    with pytest.raises(assay.AssayError) as caught:
        assay.init(project=project)
    assert "ASSAY_URL" in _one_line(caught.value)


def test_no_url_at_all(assay_env, project, monkeypatch):
    monkeypatch.delenv("ASSAY_URL")
    with pytest.raises(assay.ConfigurationError, match="ASSAY_URL"):
        assay.init(project=project)


def test_server_error_bodies_map_onto_fixed_types():
    from assay.errors import error_from_response

    error = error_from_response(
        409, b'{"error": {"code": "param_conflict", "message": "no\\nway", "field": "params.lr"}}'
    )
    assert isinstance(error, assay.ConflictError)
    assert (error.code, error.field, str(error)) == ("param_conflict", "params.lr", "no way")
    assert isinstance(error_from_response(502, b"<html>bad gateway</html>"), assay.ApiError)
    assert isinstance(error_from_response(401, b"[1, 2]"), assay.AuthenticationError)
