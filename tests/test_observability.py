"""Request ids, JSON logs and the /metrics endpoint."""

from __future__ import annotations

import json
import logging

import pytest
from django.test import Client, override_settings

from core.observability import POINTS_INGESTED, RequestIdFilter
from tests.helpers import log_path, post_json


def test_response_carries_a_new_request_id() -> None:
    response = Client().get("/healthz")
    assert len(response["X-Request-ID"]) == 32


def test_well_formed_client_request_id_is_kept_and_malformed_one_replaced() -> None:
    assert Client().get("/healthz", HTTP_X_REQUEST_ID="trace-abc.1")["X-Request-ID"] == "trace-abc.1"
    replaced = Client().get("/healthz", HTTP_X_REQUEST_ID="bad id\n<script>")["X-Request-ID"]
    assert replaced != "bad id\n<script>"
    assert len(replaced) == 32


def test_json_log_lines_carry_the_request_id() -> None:
    from pythonjsonlogger.json import JsonFormatter

    # given a log record made while a request with a known id is served
    from core.observability import request_id_var

    token = request_id_var.set("req-42")
    try:
        record = logging.LogRecord("assay.test", logging.INFO, __file__, 1, "hello %s", ("world",), None)
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    # when it is formatted as the production profile does
    formatter = JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(request_id)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )
    line = json.loads(formatter.format(record))
    # then it is one JSON object with the id
    assert line["request_id"] == "req-42"
    assert line["message"] == "hello world"
    assert line["level"] == "INFO"


def test_metrics_are_served_to_loopback() -> None:
    Client().get("/healthz")
    response = Client().get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'assay_http_request_duration_seconds_count{method="GET",route="healthz",status="200"}' in body
    assert "assay_celery_queue_depth" in body


def test_metrics_are_hidden_from_other_addresses() -> None:
    assert Client().get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 404


@override_settings(ASSAY_METRICS_TOKEN="scrape-secret-123")
def test_metrics_accept_the_scrape_token_from_anywhere() -> None:
    ok = Client().get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer scrape-secret-123")
    wrong = Client().get("/metrics", REMOTE_ADDR="203.0.113.9", HTTP_AUTHORIZATION="Bearer nope")
    assert (ok.status_code, wrong.status_code) == (200, 404)


@pytest.mark.django_db(transaction=True)
def test_points_ingested_counts_stored_points_once(client_for, run, owner) -> None:
    before = POINTS_INGESTED._value.get()
    body = {"batch_id": "m-1", "metrics": [{"key": "loss", "step": i, "value": 1.0} for i in range(7)]}
    client = client_for(owner)
    assert post_json(client, log_path(run), body).status_code == 200
    assert post_json(client, log_path(run), body).json()["duplicate"] is True
    assert POINTS_INGESTED._value.get() - before == 7
