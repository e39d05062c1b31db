"""Events leave the services only after commit, with the REST output's shapes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.db import transaction

from accounts.models import User
from experiments import events, services
from experiments.models import Run
from live import publish as live_publish
from live.eventlog import MemoryEventLog, event_log
from tests.conftest import ClientFor
from tests.helpers import run_path

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, dict[str, Any]]]:
    calls: list[tuple[str, str, dict[str, Any]]] = []
    real = live_publish.publish

    def spy(*, topic: str, event: str, data: dict[str, Any]) -> int | None:
        calls.append((topic, event, orjson.loads(orjson.dumps(data))))
        return real(topic=topic, event=event, data=data)

    monkeypatch.setattr(live_publish, "publish", spy)
    return calls


def test_logged_points_are_published_after_commit_only(
    run: Run, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        services.run_log(run=run, batch_id="b1", metric_rows=[{"key": "acc", "step": 3, "value": 0.9}])
    assert sent == []  # nothing before the commit
    for callback in callbacks:
        callback()
    [(topic, event, data)] = sent
    assert (topic, event) == (f"run:{run.id}", "metrics")
    assert data["points"] == {"acc": {"steps": [3], "values": [0.9]}}
    assert data["summaries"]["acc"] == {
        "key": "acc",
        "last": 0.9,
        "min": 0.9,
        "max": 0.9,
        "last_step": 3,
        "last_timestamp": data["summaries"]["acc"]["last_timestamp"],
        "count": 1,
    }


def test_a_rolled_back_write_publishes_nothing(
    run: Run, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    def update_then_fail() -> None:
        with transaction.atomic():
            services.run_update(run=run, status="finished")
            raise RuntimeError("rolled back")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        update_then_fail()
    assert sent == []


def test_a_duplicate_batch_publishes_nothing(
    run: Run, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.run_log(run=run, batch_id="same", metric_rows=[{"key": "acc", "step": 1, "value": 1}])
    with django_capture_on_commit_callbacks(execute=True):
        services.run_log(run=run, batch_id="same", metric_rows=[{"key": "acc", "step": 1, "value": 1}])
    assert len(sent) == 1


def test_big_batches_are_downsampled_keeping_first_and_last(
    run: Run, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        services.run_log(
            run=run,
            batch_id=None,
            metric_columns=[{"key": "loss", "steps": list(range(5000)), "values": [float("nan")] + [1.0] * 4999}],
        )
    [(_, _, data)] = sent
    steps = data["points"]["loss"]["steps"]
    assert len(steps) == events.LIVE_POINTS_PER_KEY
    assert (steps[0], steps[-1]) == (0, 4999)
    assert data["points"]["loss"]["values"][0] == "NaN"  # as the API writes non-finite values
    assert data["downsampled"] is True
    assert data["summaries"]["loss"]["count"] == 5000


def test_run_events_carry_the_rest_shape(
    owner: User, run: Run, sent: list[Any], client_for: ClientFor, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        created = services.run_create(user=owner, project_path="acme/proj", name="second")
    with django_capture_on_commit_callbacks(execute=True):
        services.run_update(run=run, status="failed")
    rest_created = client_for(owner).get(run_path(created)).json()
    rest_updated = client_for(owner).get(run_path(run)).json()
    assert sent[0] == ("project:acme/proj", "run.created", rest_created)
    assert sent[1] == (f"run:{run.id}", "run.updated", rest_updated)
    assert sent[2] == ("project:acme/proj", "run.updated", rest_updated)


def test_sequence_numbers_are_per_topic(run: Run) -> None:
    assert live_publish.publish(topic="run:a", event="x", data={}) == 1
    assert live_publish.publish(topic="run:a", event="x", data={}) == 2
    assert live_publish.publish(topic="run:b", event="x", data={}) == 1
    backlog = event_log().backlog("run:a", 0)
    assert backlog.complete
    assert [e.seq for e in backlog.entries] == [1, 2]


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_event_log_window(kind: str, settings: Any) -> None:
    settings.ASSAY_LIVE_LOG_SIZE = 3
    log = MemoryEventLog() if kind == "memory" else event_log()
    for n in range(5):
        assert log.append("t", "e", f'{{"n": {n}}}') == n + 1
    assert log.backlog("t", None).complete
    assert log.backlog("t", None).current == 5
    assert [e.seq for e in log.backlog("t", 2).entries] == [3, 4, 5]
    assert log.backlog("t", 1).complete is False  # 2 is gone: reload
    assert log.backlog("t", 5).entries == []
    assert log.backlog("t", 9).complete is False  # ahead of the topic: reload
    assert orjson.loads(log.backlog("t", 4).entries[0].data_json) == {"n": 4}
