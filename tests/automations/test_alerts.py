"""Metric alerts: the API (viewers read, admins write, 404 for outsiders, bad rules refused
naming the field, nothing written), and firing through the real log call — a NaN, a
threshold crossed, a run going quiet, a run worse than the experiment's best — each exactly
once per rule and run, to an in-app notification, its e-mail and a ``metric.alert`` webhook."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core import mail
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import Project, User
from automations import alerts, payloads
from automations.models import AlertFiring, AlertRule, Delivery
from experiments.models import Experiment, MetricSummary, Run, RunStatus
from reviews.models import Notification
from tests.automations.receiver import receiver
from tests.factories import ExperimentFactory, RunFactory
from tests.helpers import assert_error, log_path, patch_json, post_json

pytestmark = pytest.mark.django_db

BASE = "/api/v1/projects/acme/proj/alerts/"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    """The log path's per-process caches (rules, best values, queued firings) start empty."""
    for cache in (alerts._rules_cache, alerts._best_cache, alerts._queued):
        cache.clear()
    yield
    for cache in (alerts._rules_cache, alerts._best_cache, alerts._queued):
        cache.clear()


def create(client: APIClient, **body: Any) -> Any:
    return post_json(client, BASE, body)


def log(client: APIClient, run: Run, key: str, values: list[Any], start: int = 0) -> None:
    points = [{"key": key, "step": start + i, "value": v} for i, v in enumerate(values)]
    response = post_json(client, log_path(run), {"metrics": points})
    assert response.status_code == 200, response.content


# --- the API -------------------------------------------------------------------------------------


def test_admins_manage_rules_viewers_read_them_outsiders_see_nothing(
    owner_client: APIClient,
    member_client: APIClient,
    viewer_client: APIClient,
    outsider_client: APIClient,
    anon_client: APIClient,
    project: Project,
) -> None:
    # given a rule made by the owner (an admin)
    response = create(owner_client, kind="threshold", condition="val/loss > 2")
    assert response.status_code == 201, response.content
    rule = response.json()
    assert rule["condition"] == "val/loss > 2"
    assert (rule["key"], rule["op"], rule["value"], rule["name"]) == ("val/loss", ">", 2.0, "val/loss > 2")
    one = f"{BASE}{rule['id']}/"

    # then a viewer reads the rules and what fired, but writes nothing (403)
    assert [r["id"] for r in viewer_client.get(BASE).json()] == [rule["id"]]
    assert viewer_client.get(one).json()["id"] == rule["id"]
    assert viewer_client.get(f"{BASE}fired/").json() == []
    assert viewer_client.get(f"{one}fired/").json() == []
    assert_error(create(viewer_client, kind="nonfinite"), 403)
    assert_error(patch_json(viewer_client, one, {"enabled": False}), 403)
    assert_error(viewer_client.delete(one), 403)
    # a writer (team member) neither
    assert_error(create(member_client, kind="nonfinite"), 403)
    assert_error(member_client.delete(one), 403)
    # an outsider gets the same 404 for the project, the rule and a missing rule
    for path in (BASE, one, f"{BASE}fired/", f"{one}fired/", f"{BASE}{'0' * 32}/"):
        assert_error(outsider_client.get(path), 404)
    assert_error(patch_json(outsider_client, one, {"enabled": False}), 404)
    assert_error(outsider_client.delete(one), 404)
    assert_error(owner_client.get(f"{BASE}{'0' * 32}/"), 404)
    assert anon_client.get(BASE).status_code in (401, 403)
    assert AlertRule.objects.get().enabled is True

    # and the owner edits and deletes it
    edited = patch_json(owner_client, one, {"condition": "val/loss >= 3", "name": "loss diverged"})
    assert edited.status_code == 200, edited.content
    assert (edited.json()["condition"], edited.json()["name"]) == ("val/loss >= 3", "loss diverged")
    changed = patch_json(owner_client, one, {"kind": "stalled", "minutes": 30})
    assert changed.json()["condition"] == "no new point for 30 min"
    assert changed.json()["key"] is None
    assert owner_client.delete(one).status_code == 204
    assert not AlertRule.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({"kind": "threshold", "condition": "val/loss >> 2"}, "condition", 400),
        ({"kind": "threshold", "condition": "val/loss > two"}, "condition", 400),
        ({"kind": "threshold", "condition": "val/loss 2"}, "condition", 400),
        ({"kind": "threshold", "condition": "/etc > 2"}, "condition", 400),
        ({"kind": "threshold", "condition": "loss > nan"}, "condition", 400),
        ({"kind": "threshold", "condition": 2}, "condition", 400),
        ({"kind": "threshold", "condition": None}, "condition", 400),
        ({"kind": "threshold"}, "condition", 400),
        ({"kind": "threshold", "condition": "a > 1", "minutes": 5}, "minutes", 400),
        ({"kind": "stalled"}, "minutes", 400),
        ({"kind": "stalled", "minutes": 0}, "minutes", 400),
        ({"kind": "stalled", "minutes": "5"}, "minutes", 400),
        ({"kind": "stalled", "minutes": 2.5}, "minutes", 400),
        ({"kind": "stalled", "minutes": 10**9}, "minutes", 400),
        ({"kind": "versus_best", "key": "val/loss", "goal": "avg", "percent": 5}, "goal", 400),
        ({"kind": "versus_best", "key": "val/loss", "goal": "min", "percent": -1}, "percent", 400),
        ({"kind": "versus_best", "key": "val/loss", "goal": "min"}, "percent", 400),
        ({"kind": "versus_best", "goal": "min", "percent": 5}, "key", 400),
        ({"kind": "nonfinite", "key": "a/../b"}, "key", 400),
        ({"kind": "nonfinite", "enabled": "yes"}, "enabled", 400),
        ({"kind": "nonfinite", "name": ""}, "name", 400),
        ({"kind": "nonfinite", "owner": "x"}, "owner", 400),
        ({"kind": "nope"}, "kind", 400),
        ({}, "kind", 400),
        ({"kind": "nonfinite", "experiment": "missing"}, "experiment", 404),
    ],
)
def test_bad_rules_are_refused_naming_the_field_and_nothing_is_written(
    owner_client: APIClient, project: Project, body: dict[str, Any], field: str, status: int
) -> None:
    assert_error(post_json(owner_client, BASE, body), status, field=field)
    assert not AlertRule.objects.exists()


def test_a_bad_edit_changes_nothing(owner_client: APIClient, project: Project) -> None:
    rule = create(owner_client, kind="threshold", condition="val/loss > 2").json()
    assert_error(
        patch_json(owner_client, f"{BASE}{rule['id']}/", {"condition": "val/loss ~ 2"}), 400, field="condition"
    )
    assert_error(patch_json(owner_client, f"{BASE}{rule['id']}/", {"kind": "stalled"}), 400, field="minutes")
    assert_error(patch_json(owner_client, f"{BASE}{rule['id']}/", {"goal": "min"}), 400, field="goal")
    assert alerts.condition_text(AlertRule.objects.get()) == "val/loss > 2"


def test_another_projects_rule_is_not_found_here(owner_client: APIClient, project: Project, owner: User) -> None:
    other = Project.objects.create(team=project.team, name="other", created_by=owner)
    rule = AlertRule.objects.create(project=other, name="x", kind="nonfinite")
    assert_error(owner_client.get(f"{BASE}{rule.id}/"), 404)
    assert_error(owner_client.delete(f"{BASE}{rule.id}/"), 404)
    assert AlertRule.objects.filter(pk=rule.id).exists()


# --- firing --------------------------------------------------------------------------------------


def test_a_run_logging_a_nan_fires_once_to_a_notification_its_email_and_a_webhook(
    owner_client: APIClient,
    owner: User,
    run: Run,
    settings: Any,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    settings.WEBHOOK_ALLOW = ["127.0.0.1/32"]
    with receiver() as rx:
        # given a nonfinite rule on any key and a webhook listening for metric.alert
        hook = post_json(
            owner_client,
            "/api/v1/projects/acme/proj/webhooks/",
            {"url": rx.url, "events": ["metric.alert"], "secret": "s3cret-s3cret-s3cret"},
        )
        assert hook.status_code == 201, hook.content
        with django_capture_on_commit_callbacks(execute=True):
            rule = create(owner_client, kind="nonfinite", name="nan guard").json()
        # when the run logs finite values, then a NaN twice, then an Infinity
        with django_capture_on_commit_callbacks(execute=True):
            log(owner_client, run, "train/loss", [0.5, 0.4])
        assert not AlertFiring.objects.exists()
        with django_capture_on_commit_callbacks(execute=True):
            log(owner_client, run, "train/loss", [0.3, "NaN"], start=2)
        with django_capture_on_commit_callbacks(execute=True):
            log(owner_client, run, "train/loss", ["NaN", "Infinity"], start=4)
        # then it fired once: at the first NaN
        firing = AlertFiring.objects.get()
        assert (firing.rule_id, firing.run_id, firing.key, firing.step) == (rule["id"], run.id, "train/loss", 3)
        assert firing.message == "nan guard: run first-run logged NaN for train/loss at step 3"
        # one in-app notification of the run's author (who also made the rule), and its e-mail
        notification = Notification.objects.get()
        assert (notification.user, notification.kind, notification.request) == (owner, "metric_alert", None)
        assert notification.link == f"/acme/proj/runs/{run.id}/"
        assert [m.subject for m in mail.outbox] == [f"[Assay] {firing.message}"]
        listed = owner_client.get("/api/v1/notifications/").json()["results"]
        assert [(n["kind"], n["request"], n["url"]) for n in listed] == [
            ("metric_alert", None, f"{settings.PUBLIC_URL}/acme/proj/runs/{run.id}/")
        ]
        # one signed metric.alert delivery
        assert len(rx.requests) == 1
        sent = json.loads(rx.requests[0].body)
        assert rx.requests[0].headers["x-assay-event"] == "metric.alert"
        assert sent["data"]["alert"] == {
            "id": rule["id"],
            "name": "nan guard",
            "kind": "nonfinite",
            "condition": "NaN or Infinity in any metric",
        }
        assert (sent["data"]["key"], sent["data"]["value"], sent["data"]["step"]) == ("train/loss", "NaN", 3)
        assert sent["links"]["run"].endswith(f"/acme/proj/runs/{run.id}/")
    assert Delivery.objects.get().state == "delivered"
    # and the fired list shows it
    fired = owner_client.get(f"{BASE}fired/").json()
    assert [(f["rule"]["id"], f["run"]["id"], f["value"]) for f in fired] == [(rule["id"], run.id, "NaN")]


def test_a_run_crossing_a_threshold_fires_once_even_when_the_process_forgets(
    owner_client: APIClient, run: Run, eager: None, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        rule = create(owner_client, kind="threshold", condition="val/loss > 2").json()
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, run, "val/loss", [1.0, 1.5, 2.0])  # 2.0 is not > 2
        log(owner_client, run, "train/loss", [5.0, 6.0])  # another key
    assert not AlertFiring.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, run, "val/loss", [1.9, 2.5, 3.0], start=3)
    alerts._queued.clear()  # as a new process would: only the database knows it fired
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, run, "val/loss", [4.0], start=6)
    firing = AlertFiring.objects.get()
    assert (firing.rule_id, firing.value, firing.step) == (rule["id"], 2.5, 4)
    assert "val/loss = 2.5 at step 4 (val/loss > 2)" in firing.message
    assert Notification.objects.count() == 1


def test_a_second_run_fires_the_same_rule_again_and_a_disabled_or_other_experiments_rule_never(
    owner_client: APIClient,
    project: Project,
    experiment: Experiment,
    run: Run,
    owner: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    other_experiment = ExperimentFactory.create(project=project, name="other")
    with django_capture_on_commit_callbacks(execute=True):
        create(owner_client, kind="threshold", condition="loss < 0")
        create(owner_client, kind="threshold", condition="loss < 0", enabled=False, name="off")
        create(owner_client, kind="threshold", condition="loss < 0", experiment="other", name="other only")
    second = RunFactory.create(project=project, experiment=experiment, author=owner, name="second")
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, run, "loss", [-1.0])
        log(owner_client, second, "loss", [-2.0])
    assert sorted(AlertFiring.objects.values_list("run__name", "rule__name")) == [
        ("first-run", "loss < 0"),
        ("second", "loss < 0"),
    ]
    third = RunFactory.create(project=project, experiment=other_experiment, author=owner, name="third")
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, third, "loss", [-3.0])
    assert sorted(AlertFiring.objects.filter(run=third).values_list("rule__name", flat=True)) == [
        "loss < 0",
        "other only",
    ]


def test_a_run_going_quiet_fires_once_and_a_busy_or_finished_run_never(
    owner_client: APIClient,
    project: Project,
    experiment: Experiment,
    owner: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    now = timezone.now()
    long_ago = now - timedelta(minutes=40)

    def make(name: str, last_point: Any, status: str = RunStatus.RUNNING) -> Run:
        made = RunFactory.create(
            project=project, experiment=experiment, author=owner, name=name, start_time=long_ago, status=status
        )
        if last_point is not None:
            MetricSummary.objects.create(
                run=made,
                key="loss",
                last=1.0,
                min=1.0,
                max=1.0,
                last_step=1,
                last_timestamp=int(last_point.timestamp() * 1000),
                count=1,
            )
        return made

    quiet = make("quiet", now - timedelta(minutes=31))
    silent = make("never-logged", None)
    make("busy", now - timedelta(minutes=2))
    make("done", now - timedelta(minutes=35), status=RunStatus.FINISHED)
    fresh = RunFactory.create(project=project, experiment=experiment, author=owner, name="just-started")
    with django_capture_on_commit_callbacks(execute=True):
        rule = create(owner_client, kind="stalled", minutes=30).json()
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.stalled_check() == 2
    with django_capture_on_commit_callbacks(execute=True):
        assert alerts.stalled_check() == 0
    fired = dict(AlertFiring.objects.values_list("run_id", "message"))
    assert set(fired) == {quiet.id, silent.id}
    assert fired[quiet.id] == "no new point for 30 min: run quiet has logged no point for 30 min"
    assert fresh.id not in fired
    assert AlertFiring.objects.filter(rule_id=rule["id"]).count() == 2


def test_the_periodic_task_runs_the_stalled_check(project: Project, run: Run, owner: User) -> None:
    from automations.tasks import alerts_stalled_task

    Run.objects.filter(pk=run.pk).update(start_time=timezone.now() - timedelta(minutes=10))
    AlertRule.objects.create(project=project, name="quiet", kind="stalled", minutes=5, created_by=owner)
    assert alerts_stalled_task.apply().get() == 1
    assert alerts_stalled_task.apply().get() == 0


def test_a_run_worse_than_the_experiments_best_fires_once(
    owner_client: APIClient,
    project: Project,
    experiment: Experiment,
    run: Run,
    owner: User,
    eager: None,
    django_capture_on_commit_callbacks: Any,
) -> None:
    # given the experiment's best run reached val/loss 1.0 (lower is better)
    challenger = RunFactory.create(project=project, experiment=experiment, author=owner, name="challenger")
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, run, "val/loss", [2.0, 1.0])
        rule = create(owner_client, kind="versus_best", key="val/loss", goal="min", percent=20).json()
    assert rule["condition"] == "val/loss 20% worse than the experiment's best run (lower is better)"
    # when another run ends batches at 1.1 (within 20 %), then 1.3 (30 % worse), then 1.5
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, challenger, "val/loss", [3.0, 1.1])
    assert not AlertFiring.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, challenger, "val/loss", [1.3], start=2)
        log(owner_client, challenger, "val/loss", [1.5], start=3)
    firing = AlertFiring.objects.get()
    assert (firing.run_id, firing.value, firing.step) == (challenger.id, 1.3, 2)
    assert "more than 20% worse than the best of experiment default (1)" in firing.message
    # and the best run itself, compared with the others (the challenger's best, 1.1), is fine
    with django_capture_on_commit_callbacks(execute=True):
        log(owner_client, run, "val/loss", [1.05], start=2)
    assert AlertFiring.objects.count() == 1


def test_a_versus_best_firing_queued_from_a_stale_cache_is_checked_again(
    project: Project, experiment: Experiment, run: Run, owner: User
) -> None:
    rule = AlertRule.objects.create(
        project=project, name="r", kind="versus_best", key="loss", goal="max", percent=10, created_by=owner
    )
    MetricSummary.objects.create(
        run=run, key="loss", last=1.0, min=1.0, max=1.0, last_step=1, last_timestamp=1, count=1
    )
    other = RunFactory.create(project=project, experiment=experiment, author=owner, name="other")
    # 0.95 is not 10 % below the best (1.0): the worker refuses what a stale cache queued
    assert alerts.alert_fire(rule_id=rule.id, run_id=other.id, key="loss", value=0.95, step=1) is None
    assert alerts.alert_fire(rule_id=rule.id, run_id=other.id, key="loss", value=0.5, step=2) is not None
    assert alerts.alert_fire(rule_id=rule.id, run_id=other.id, key="loss", value=0.4, step=3) is None


def test_a_project_without_rules_costs_the_log_path_one_cached_lookup(
    owner_client: APIClient, run: Run, django_assert_num_queries: Any
) -> None:
    log(owner_client, run, "loss", [1.0])  # warms the rule cache (and everything else)
    alerts._rules_cache[run.project_id] = (alerts._rules_cache[run.project_id][0], ())
    from experiments.metrics import parse_rows

    series = parse_rows([{"key": "loss", "step": 5, "value": 2.0}], now_ms=0)
    with django_assert_num_queries(0):
        alerts.on_batch(run, series)


def test_the_chat_line_of_an_alert() -> None:
    payload = {
        "event": "metric.alert",
        "project": {"path": "acme/proj"},
        "links": {"project": "http://x/acme/proj/", "run": "http://x/acme/proj/runs/r1/"},
        "data": {"message": "nan guard: run r logged NaN for loss at step 3"},
    }
    assert payloads.body(payload, "slack") == {
        "text": "Alert in acme/proj: nan guard: run r logged NaN for loss at step 3\nhttp://x/acme/proj/runs/r1/"
    }
