"""The embedded profile's scheduler (core/embedded.py): periodic entries at their interval,
delayed tasks waiting instead of running at once, failures logged without stopping it, and
the stalled-run alert actually fired by it against the database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from celery import current_app, shared_task
from django.utils import timezone

from accounts.models import Project, User
from automations.models import AlertFiring, AlertRule
from core import embedded
from experiments.models import Run

ROOT = Path(__file__).resolve().parents[2]
calls: list[tuple[str, float]] = []


@shared_task(name="tests.embedded_probe")
def probe(label: str) -> str:
    calls.append((label, time.monotonic()))
    return label


def wait_for(condition: object, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def scheduler() -> Iterator[embedded.Scheduler]:
    own = embedded.Scheduler()
    own.start()
    yield own
    own.stop()


@pytest.fixture
def running_global() -> Iterator[embedded.Scheduler]:
    """The module's scheduler (the one DelayAwareTask hands delayed tasks to), with eager tasks."""
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    calls.clear()
    embedded.scheduler.start()
    yield embedded.scheduler
    embedded.scheduler.stop()
    embedded.scheduler._heap.clear()
    current_app.conf.task_always_eager = previous


def test_a_periodic_job_runs_at_its_interval_and_not_before(scheduler: embedded.Scheduler) -> None:
    times: list[float] = []
    started = time.monotonic()
    scheduler.every(0.2, lambda: times.append(time.monotonic()), "tick")
    assert wait_for(lambda: len(times) >= 3)
    # the n-th run never comes before n intervals (the first one interval after start, as
    # beat does); a late run does not push the ones after it back
    early = [n for n, at in enumerate(times, start=1) if at - started < 0.2 * n - 0.01]
    assert early == [], [round(at - started, 3) for at in times]


def test_a_delayed_job_waits_and_jobs_run_in_due_order(scheduler: embedded.Scheduler) -> None:
    order: list[str] = []
    scheduler.later(0.4, lambda: order.append("late"), "late")
    scheduler.later(0.1, lambda: order.append("early"), "early")
    time.sleep(0.05)
    assert order == []
    assert wait_for(lambda: len(order) == 2)
    assert order == ["early", "late"]


def test_a_failing_job_is_logged_and_the_scheduler_goes_on(
    scheduler: embedded.Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    done = threading.Event()

    def boom() -> None:
        raise RuntimeError("broken job")

    scheduler.later(0, boom, "boom")
    scheduler.later(0.05, done.set, "after")
    assert done.wait(5)
    assert "embedded scheduler: boom failed" in caplog.text
    assert scheduler.ran == {"boom": 1, "after": 1}


def test_an_interval_must_be_positive(scheduler: embedded.Scheduler) -> None:
    with pytest.raises(ValueError, match="tick: an interval must be positive"):
        scheduler.every(0, lambda: None, "tick")


def test_a_delayed_task_waits_on_the_scheduler_instead_of_running_at_once(
    running_global: embedded.Scheduler,
) -> None:
    sent = time.monotonic()
    assert probe.apply_async(args=("later",), countdown=0.3) is None
    assert calls == []  # eager Celery alone would have run it inside this call
    assert wait_for(lambda: calls)
    assert calls[0][0] == "later"
    assert calls[0][1] - sent >= 0.29


def test_without_a_delay_an_eager_task_still_runs_at_once(running_global: embedded.Scheduler) -> None:
    assert probe.delay("now").get() == "now"
    assert [label for label, _ in calls] == ["now"]


def test_without_the_scheduler_a_delayed_eager_task_runs_as_before() -> None:
    previous = current_app.conf.task_always_eager
    current_app.conf.task_always_eager = True
    calls.clear()
    try:
        assert not embedded.scheduler.running
        probe.apply_async(args=("at once",), countdown=30)
    finally:
        current_app.conf.task_always_eager = previous
    assert [label for label, _ in calls] == ["at once"]


@pytest.mark.django_db(transaction=True)
def test_the_beat_schedule_fires_a_stalled_rule_in_process(
    project: Project, run: Run, owner: User, running_global: embedded.Scheduler
) -> None:
    # given a run quiet for 10 minutes and a rule "no new point for 5 minutes"
    Run.objects.filter(pk=run.pk).update(start_time=timezone.now() - timedelta(minutes=10))
    rule = AlertRule.objects.create(project=project, name="quiet", kind="stalled", minutes=5, created_by=owner)
    # when the embedded scheduler runs the beat entry (its interval shortened for the test)
    embedded.start({"alerts-stalled": {"task": "automations.alerts_stalled", "schedule": 0.1}})
    # then the rule fires once, on its own thread, however many times the entry runs
    assert wait_for(lambda: AlertFiring.objects.filter(rule=rule, run=run).exists())
    assert wait_for(lambda: running_global.ran.get("alerts-stalled", 0) >= 3)
    assert AlertFiring.objects.filter(rule=rule).count() == 1


def test_the_embedded_server_starts_the_scheduler_with_the_beat_schedule(tmp_path: Path) -> None:
    """config/asgi.py in the embedded profile (no REDIS_URL): the scheduler is running with
    every CELERY_BEAT_SCHEDULE entry; with ASSAY_EMBEDDED_SCHEDULER=0, or with Redis, not."""
    script = (
        "import json, config.asgi\n"
        "from django.conf import settings\n"
        "from core import embedded\n"
        "print(json.dumps({'running': embedded.scheduler.running,"
        " 'jobs': sorted(name for *_, name in embedded.scheduler._heap),"
        " 'beat': sorted(settings.CELERY_BEAT_SCHEDULE)}))\n"
    )
    base = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    base |= {"DJANGO_SETTINGS_MODULE": "config.settings", "ASSAY_VAR_DIR": str(tmp_path)}

    def run(**extra: str) -> dict[str, object]:
        done = subprocess.run(
            [sys.executable, "-c", script], cwd=ROOT, env=base | extra, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
        return result

    embedded_profile = run()
    assert embedded_profile["running"] is True
    assert embedded_profile["jobs"] == embedded_profile["beat"]
    assert "alerts-stalled" in embedded_profile["jobs"]  # type: ignore[operator]
    assert run(ASSAY_EMBEDDED_SCHEDULER="0")["running"] is False
    assert run(REDIS_URL="redis://127.0.0.1:6379/15")["running"] is False
