"""The same batch sent concurrently (a client retrying before the first answer came back)
is stored once. Needs real transactions and one connection per thread."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts.services import team_create, token_create
from experiments.models import LogBatch, MetricSummary
from tests.factories import ExperimentFactory, ProjectFactory, RunFactory, UserFactory
from tests.helpers import log_path, post_json, rows

THREADS = 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_copies_of_a_batch_are_stored_once() -> None:
    # given a run and one client per thread
    owner = UserFactory.create(username="racer")
    project = ProjectFactory.create(team=team_create(name="race", owner=owner), name="proj")
    run = RunFactory.create(project=project, experiment=ExperimentFactory.create(project=project), author=owner)
    raw = token_create(user=owner, name="race").raw
    body = {"batch_id": str(uuid.uuid4()), "metrics": rows("loss", range(2_000))}
    barrier = threading.Barrier(THREADS)
    answers: list[Any] = []

    def send() -> None:
        try:
            client = APIClient()
            client.credentials(HTTP_AUTHORIZATION="Bearer " + raw)
            barrier.wait(timeout=10)
            response = post_json(client, log_path(run), body)
            answers.append((response.status_code, response.json()))
        finally:
            connection.close()

    # when all send the same batch at once
    threads = [threading.Thread(target=send) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    # then exactly one stored it and the rest were told it was a duplicate
    assert [status for status, _ in answers] == [200] * THREADS
    assert sorted(answer["duplicate"] for _, answer in answers) == [False] + [True] * (THREADS - 1)
    assert MetricSummary.objects.get(run=run, key="loss").count == 2_000
    assert LogBatch.objects.filter(run=run).count() == 1
