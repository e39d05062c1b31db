"""Metric alerts: rules on a project's runs, checked as points arrive, firing at most once
per rule and run, to in-app notifications (and their e-mail) and webhooks (``metric.alert``).

Kinds (``AlertRule.Kind``):

* ``threshold`` — ``condition`` "val/loss > 2" (``>``, ``>=``, ``<``, ``<=``): a point of the
  key beyond the value;
* ``nonfinite`` — NaN or ±Infinity logged for ``key`` (any key when blank);
* ``versus_best`` — the last value of ``key`` in a batch is worse than the best value any
  other run of the same experiment reached (``goal``: ``min`` or ``max`` is better) by more
  than ``percent`` % of that best;
* ``stalled`` — a running run has logged no point for ``minutes`` (a periodic task: no batch
  arrives to tell).

The log path's cost (:func:`on_batch`, called by ``experiments.services.run_log`` through
``core.domain_events``): a dict lookup for a project without rules; with rules, NumPy over
the batch's arrays per rule (never a query per point; the rules of a project are cached in
the process for ``ASSAY_ALERT_RULES_TTL`` seconds, ``versus_best``'s best values too). Only
a batch that makes a rule fire queues a task (:func:`alert_fire`, after commit), which
writes the firing under the unique (rule, run) constraint: whichever process gets there
first fires, the others find the row and do nothing.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from accounts import access
from accounts.audit import audit_record
from accounts.models import Project, User
from automations.models import AlertFiring, AlertRule
from core import domain_events
from core.errors import Conflict, Invalid, NotFound
from core.tasks import enqueue_on_commit
from core.validation import choice, string
from experiments import metrics
from experiments.models import Experiment, MetricSummary, Run, RunStatus
from reviews import services as review_services
from reviews.models import Notification

FIRE_TASK = "automations.alert_fire"
STALLED_TASK = "automations.alerts_stalled"
MAX_RULES_PER_PROJECT = 50
MAX_MINUTES = 7 * 24 * 60
MAX_PERCENT = 1_000_000.0
OPS = (">", ">=", "<", "<=")
GOALS = ("min", "max")
# Every field a rule may have; which apply to which kind (the others must be absent).
KIND_FIELDS: dict[str, set[str]] = {
    AlertRule.Kind.THRESHOLD: {"condition"},
    AlertRule.Kind.NONFINITE: {"key"},
    AlertRule.Kind.STALLED: {"minutes"},
    AlertRule.Kind.VERSUS_BEST: {"key", "goal", "percent"},
}
KIND_REQUIRED: dict[str, set[str]] = {
    AlertRule.Kind.THRESHOLD: {"condition"},
    AlertRule.Kind.NONFINITE: set(),
    AlertRule.Kind.STALLED: {"minutes"},
    AlertRule.Kind.VERSUS_BEST: {"key", "goal", "percent"},
}
SPEC_FIELDS = {"name", "kind", "experiment", "enabled", "condition", "key", "minutes", "goal", "percent"}

_CONDITION = re.compile(r"^\s*(?P<key>.+?)\s*(?P<op>>=|<=|>|<)\s*(?P<value>[^\s<>=]+)\s*$")


# --- input ---------------------------------------------------------------------------------------


def parse_condition(text: Any) -> tuple[str, str, float]:
    """``"val/loss > 2"`` -> ("val/loss", ">", 2.0); Invalid naming ``condition`` otherwise."""
    if not isinstance(text, str) or len(text) > 300:
        raise Invalid('condition must be a text like "val/loss > 2" (at most 300 characters).', field="condition")
    found = _CONDITION.match(text)
    if found is None:
        raise Invalid(
            'condition must read "<metric key> <op> <number>" with op one of >, >=, <, <= (e.g. "val/loss > 2").',
            field="condition",
        )
    try:
        key = metrics.check_key(found["key"], "condition")
    except metrics.PointError as exc:
        raise Invalid(f"condition: {exc}", field="condition") from None
    try:
        value = float(found["value"])
    except ValueError:
        raise Invalid(f"condition: {found['value']!r} is not a number.", field="condition") from None
    if not math.isfinite(value):
        raise Invalid(
            "condition: the number must be finite (use a nonfinite rule for NaN and Infinity).", field="condition"
        )
    return key, found["op"], value


def _number(value: Any, *, field: str, low: float, high: float, integer: bool = False) -> float:
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise Invalid(f"{field} must be {kind} from {low:g} to {high:g}.", field=field)
    if not math.isfinite(value) or not low <= value <= high:
        raise Invalid(f"{field} must be {kind} from {low:g} to {high:g}.", field=field)
    return float(value)


def _experiment(project: Project, name: Any) -> Experiment | None:
    if name is None:
        return None
    text = string(name, field="experiment", max_length=128)
    found = Experiment.objects.filter(project=project, name__iexact=text, deleted_at__isnull=True).first()
    if found is None:
        raise NotFound(f"No experiment {text!r} in {project.path}.", code="not_found", field="experiment")
    return found


def _apply(rule: AlertRule, spec: dict[str, Any]) -> None:
    """Check a whole rule (``spec``: the fields of SPEC_FIELDS that are set) and copy it
    onto ``rule``. Fields of another kind are refused by name, missing ones too."""
    kind = choice(spec.get("kind"), AlertRule.Kind.values, field="kind")
    for field in sorted({"condition", "key", "minutes", "goal", "percent"}):
        if field in spec and spec[field] is not None and field not in KIND_FIELDS[kind]:
            raise Invalid(f"{field} does not apply to a {kind} rule.", field=field)
    for field in sorted(KIND_REQUIRED[kind]):
        if spec.get(field) is None:
            raise Invalid(f"{field} is required for a {kind} rule.", field=field)
    rule.kind = kind
    rule.key, rule.op, rule.value, rule.minutes, rule.goal, rule.percent = "", "", None, None, "", None
    if kind == AlertRule.Kind.THRESHOLD:
        rule.key, rule.op, rule.value = parse_condition(spec["condition"])
    elif kind == AlertRule.Kind.NONFINITE:
        if spec.get("key") not in (None, ""):
            rule.key = _key(spec["key"])
    elif kind == AlertRule.Kind.STALLED:
        rule.minutes = int(_number(spec["minutes"], field="minutes", low=1, high=MAX_MINUTES, integer=True))
    else:
        rule.key = _key(spec["key"])
        rule.goal = choice(spec["goal"], GOALS, field="goal")
        rule.percent = _number(spec["percent"], field="percent", low=0, high=MAX_PERCENT)
    name = spec.get("name")
    rule.name = string(name, field="name", max_length=100) if name is not None else condition_text(rule)[:100]
    enabled = spec.get("enabled", True)
    if not isinstance(enabled, bool):
        raise Invalid("enabled must be true or false.", field="enabled")
    rule.enabled = enabled


def _key(value: Any) -> str:
    try:
        return metrics.check_key(value, "key")
    except metrics.PointError as exc:
        raise Invalid(str(exc), field="key") from None


def condition_text(rule: AlertRule) -> str:
    """The rule in one line: "val/loss > 2", "no point for 30 min", …"""
    if rule.kind == AlertRule.Kind.THRESHOLD:
        return f"{rule.key} {rule.op} {rule.value:g}"
    if rule.kind == AlertRule.Kind.NONFINITE:
        return f"NaN or Infinity in {rule.key or 'any metric'}"
    if rule.kind == AlertRule.Kind.STALLED:
        return f"no new point for {rule.minutes} min"
    better = "lower" if rule.goal == "min" else "higher"
    return f"{rule.key} {rule.percent:g}% worse than the experiment's best run ({better} is better)"


def spec_of(rule: AlertRule) -> dict[str, Any]:
    """The rule as the input fields that made it (an update merges its changes into this)."""
    spec: dict[str, Any] = {
        "name": rule.name,
        "kind": rule.kind,
        "enabled": rule.enabled,
        "experiment": rule.experiment.name if rule.experiment is not None else None,
    }
    if rule.kind == AlertRule.Kind.THRESHOLD:
        spec["condition"] = condition_text(rule)
    elif rule.kind == AlertRule.Kind.NONFINITE:
        spec["key"] = rule.key or None
    elif rule.kind == AlertRule.Kind.STALLED:
        spec["minutes"] = rule.minutes
    else:
        spec.update(key=rule.key, goal=rule.goal, percent=rule.percent)
    return spec


# --- management (alert.manage: project admins; alert.view to read) -------------------------------


def rules_of(project: Project) -> QuerySet[AlertRule]:
    return AlertRule.objects.filter(project=project).select_related("experiment", "created_by").order_by("created_at")


def rule_get(project: Project, rule_id: Any) -> AlertRule:
    """A rule of ``project``: 404 for any other id (another project's included)."""
    found = rules_of(project).filter(pk=rule_id).first() if isinstance(rule_id, str) and rule_id else None
    if found is None:
        raise NotFound("No such alert rule in this project.", code="not_found")
    return found


def firings_of(project: Project, *, rule: AlertRule | None = None, limit: int = 100) -> list[AlertFiring]:
    qs = AlertFiring.objects.filter(rule__project=project)
    if rule is not None:
        qs = qs.filter(rule=rule)
    return list(qs.select_related("rule", "run__experiment").order_by("-created_at")[:limit])


@transaction.atomic
def rule_create(*, user: User, project: Project, spec: dict[str, Any]) -> AlertRule:
    access.require(user, "alert.manage", project)
    rule = AlertRule(project=project, created_by=user)
    _apply(rule, spec)
    rule.experiment = _experiment(project, spec.get("experiment"))
    if AlertRule.objects.select_for_update().filter(project=project).count() >= MAX_RULES_PER_PROJECT:
        raise Conflict(f"A project has at most {MAX_RULES_PER_PROJECT} alert rules.", code="too_many", field="kind")
    rule.save()
    audit_record(actor=user, action="alert.create", target=rule, target_label=rule.name, project=project)
    _forget_rules(project.pk)
    return rule


@transaction.atomic
def rule_update(*, user: User, rule: AlertRule, changes: dict[str, Any]) -> AlertRule:
    """Change any field; the merged rule is checked as a whole (changing ``kind`` needs
    the new kind's fields; the old kind's are dropped)."""
    access.require(user, "alert.manage", rule.project)
    rule = (
        AlertRule.objects.select_for_update(of=("self",)).select_related("project__team", "experiment").get(pk=rule.pk)
    )
    spec = spec_of(rule)
    if "kind" in changes and changes["kind"] != rule.kind:
        spec = {k: spec[k] for k in ("name", "kind", "enabled", "experiment")}
    spec.update(changes)
    _apply(rule, spec)
    if "experiment" in changes:
        rule.experiment = _experiment(rule.project, changes["experiment"])
    rule.save()
    audit_record(
        actor=user,
        action="alert.update",
        target=rule,
        target_label=rule.name,
        project=rule.project,
        data={"fields": sorted(changes)},
    )
    _forget_rules(rule.project_id)
    return rule


@transaction.atomic
def rule_delete(*, user: User, rule: AlertRule) -> None:
    access.require(user, "alert.manage", rule.project)
    audit_record(actor=user, action="alert.delete", target=rule, target_label=rule.name, project=rule.project)
    project_id = rule.project_id
    rule.delete()
    _forget_rules(project_id)


# --- the log path: which batches may fire a rule (no query unless a cache is cold) ---------------


@dataclass(frozen=True)
class _Rule:
    id: str
    kind: str
    experiment_id: str | None
    key: str
    op: str
    value: float
    goal: str
    percent: float


_rules_cache: dict[str, tuple[float, tuple[_Rule, ...]]] = {}
_best_cache: dict[tuple[str, str, str], tuple[float, list[tuple[str, float]]]] = {}
# (rule, run) pairs this process queued a firing for, until when: later batches of a run
# that already crossed the line queue nothing more.
_queued: dict[tuple[str, str], float] = {}
_MAX_QUEUED = 100_000


def _ttl() -> float:
    return float(getattr(settings, "ALERT_RULES_TTL", 10))


def _forget_rules(project_id: str) -> None:
    """After a rule write commits, this process reads the project's rules again (other
    processes within ASSAY_ALERT_RULES_TTL seconds)."""
    transaction.on_commit(lambda: _rules_cache.pop(project_id, None))


def _rules(project_id: str) -> tuple[_Rule, ...]:
    now = time.monotonic()
    cached = _rules_cache.get(project_id)
    if cached is not None and cached[0] > now:
        return cached[1]
    rules = tuple(
        _Rule(
            id=r.id,
            kind=r.kind,
            experiment_id=r.experiment_id,
            key=r.key,
            op=r.op,
            value=r.value if r.value is not None else math.nan,
            goal=r.goal,
            percent=r.percent if r.percent is not None else math.nan,
        )
        for r in AlertRule.objects.filter(project_id=project_id, enabled=True).exclude(kind=AlertRule.Kind.STALLED)
    )
    _rules_cache[project_id] = (now + _ttl(), rules)
    return rules


def _first(mask: Any, series: metrics.Series) -> tuple[float, int] | None:
    if not mask.any():
        return None
    i = int(np.argmax(mask))
    return float(series.values[i]), int(series.steps[i])


def _beyond(values: Any, op: str, limit: float) -> Any:
    if op == ">":
        return values > limit
    if op == ">=":
        return values >= limit
    if op == "<":
        return values < limit
    return values <= limit


def best_of_others(experiment_id: str, key: str, goal: str, run_id: str, *, fresh: bool = False) -> float | None:
    """The best value of ``key`` any run of the experiment but ``run_id`` reached (its
    summary's min or max), from a per-process cache unless ``fresh``."""
    now = time.monotonic()
    cache_key = (experiment_id, key, goal)
    cached = _best_cache.get(cache_key)
    if fresh or cached is None or cached[0] <= now:
        field = "min" if goal == "min" else "max"
        order = field if goal == "min" else f"-{field}"
        # The best two: if the best is the asking run's own, the second is the others' best.
        top = list(
            MetricSummary.objects.filter(
                run__experiment_id=experiment_id, run__deleted_at__isnull=True, key=key, **{f"{field}__isnull": False}
            )
            .order_by(order)
            .values_list("run_id", field)[:2]
        )
        cached = (now + _ttl(), [(r, float(v)) for r, v in top])
        _best_cache[cache_key] = cached
    for other, value in cached[1]:
        if other != run_id and math.isfinite(value):
            return value
    return None


def worse_than_best(value: float, best: float, goal: str, percent: float) -> bool:
    margin = abs(best) * percent / 100
    return value > best + margin if goal == "min" else value < best - margin


def _hit(rule: _Rule, run: Run, series: dict[str, metrics.Series]) -> tuple[str, float, int] | None:
    """(key, value, step) of the batch's first point that fires ``rule``, else None."""
    if rule.kind == AlertRule.Kind.THRESHOLD:
        s = series.get(rule.key)
        found = _first(_beyond(s.values, rule.op, rule.value), s) if s is not None else None
        return (rule.key, *found) if found else None
    if rule.kind == AlertRule.Kind.NONFINITE:
        for key in [rule.key] if rule.key else list(series):
            s = series.get(key)
            found = _first(~np.isfinite(s.values), s) if s is not None else None
            if found:
                return (key, *found)
        return None
    if rule.kind == AlertRule.Kind.VERSUS_BEST:
        s = series.get(rule.key)
        if s is None:
            return None
        last = metrics.summarize(s)
        if not math.isfinite(last.last):
            return None
        best = best_of_others(run.experiment_id, rule.key, rule.goal, run.id)
        if best is None or not worse_than_best(last.last, best, rule.goal, rule.percent):
            return None
        return rule.key, last.last, last.last_step
    return None


def on_batch(run: Run, series: dict[str, metrics.Series]) -> None:
    """core.domain_events batch handler (in the log call, after the write): queue a firing
    for each rule this batch makes fire on ``run``."""
    rules = _rules(run.project_id)
    if not rules:
        return
    now = time.monotonic()
    for rule in rules:
        if rule.experiment_id is not None and rule.experiment_id != run.experiment_id:
            continue
        pair = (rule.id, run.id)
        if _queued.get(pair, 0.0) > now:
            continue
        hit = _hit(rule, run, series)
        if hit is None:
            continue
        if len(_queued) > _MAX_QUEUED:
            _queued.clear()
        _queued[pair] = now + max(_ttl(), 60.0)
        key, value, step = hit
        enqueue_on_commit(FIRE_TASK, rule.id, run.id, key, repr(value), str(step))


# --- firing (a worker, or the periodic check) ----------------------------------------------------


def _value_text(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.6g}"


def _message(rule: AlertRule, run: Run, key: str, value: float | None, step: int | None, best: float | None) -> str:
    at = f" at step {step}" if step is not None else ""
    if rule.kind == AlertRule.Kind.THRESHOLD:
        return f"{rule.name}: run {run.name} logged {key} = {_value_text(value)}{at} ({condition_text(rule)})"
    if rule.kind == AlertRule.Kind.NONFINITE:
        return f"{rule.name}: run {run.name} logged {_value_text(value)} for {key}{at}"
    if rule.kind == AlertRule.Kind.STALLED:
        return f"{rule.name}: run {run.name} has logged no point for {rule.minutes} min"
    return (
        f"{rule.name}: run {run.name} has {key} = {_value_text(value)}{at}, more than {rule.percent:g}% worse "
        f"than the best of experiment {run.experiment.name} ({_value_text(best)})"
    )


def run_path(run: Run) -> str:
    project = run.project
    return f"/{project.team.name}/{project.name}/runs/{run.id}/"


def alert_fire(
    *, rule_id: str, run_id: str, key: str = "", value: float | None = None, step: int | None = None
) -> AlertFiring | None:
    """Fire ``rule`` on ``run`` unless it has fired there already (then None): the firing
    row, the notifications of the rule's author and the run's author (in-app, e-mail by
    their preferences) and the ``metric.alert`` webhooks, all in one transaction.
    ``versus_best`` is checked again against the database (the log path read a cache)."""
    with transaction.atomic():
        rule = AlertRule.objects.select_related("project__team", "created_by").filter(pk=rule_id).first()
        if rule is None or not rule.enabled:
            return None
        run = (
            Run.objects.select_related("project__team", "experiment", "author")
            .filter(pk=run_id, project_id=rule.project_id, deleted_at__isnull=True)
            .first()
        )
        if run is None or (rule.experiment_id is not None and run.experiment_id != rule.experiment_id):
            return None
        best = None
        if rule.kind == AlertRule.Kind.VERSUS_BEST:
            best = best_of_others(run.experiment_id, rule.key, rule.goal, run.id, fresh=True)
            if best is None or value is None or not worse_than_best(value, best, rule.goal, rule.percent or 0.0):
                return None
        message = _message(rule, run, key, value, step, best)[:300]
        try:
            with transaction.atomic():
                firing = AlertFiring.objects.create(
                    rule=rule, run=run, key=key, value=value, step=step, message=message
                )
        except IntegrityError:  # fired already (automations_alertfiring_once)
            return None
        review_services.notify_about(
            users=[u for u in (rule.created_by, run.author) if u is not None],
            kind=Notification.Kind.METRIC_ALERT,
            project=rule.project,
            actor=None,
            link=run_path(run),
            summary=message,
        )
        domain_events.emit(
            domain_events.DomainEvent(
                type="metric.alert", project_id=rule.project_id, actor=None, data={"firing": firing.id}
            )
        )
    return firing


def stalled_check() -> int:
    """Periodic: fire every enabled ``stalled`` rule on each running run of its project (or
    experiment) whose last point (the client's time stamp of it; the run's start when it
    has none) is older than the rule's minutes. Returns how many fired."""
    fired = 0
    now = timezone.now()
    for rule in AlertRule.objects.filter(kind=AlertRule.Kind.STALLED, enabled=True).order_by("created_at"):
        cutoff = now - timedelta(minutes=rule.minutes or 0)
        runs = Run.objects.filter(
            project_id=rule.project_id, status=RunStatus.RUNNING, deleted_at__isnull=True, start_time__lt=cutoff
        )
        if rule.experiment_id is not None:
            runs = runs.filter(experiment_id=rule.experiment_id)
        quiet = (
            runs.exclude(alert_firings__rule=rule)
            .annotate(last_point=Max("summaries__last_timestamp"))
            .filter(Q(last_point__isnull=True) | Q(last_point__lt=int(cutoff.timestamp() * 1000)))
            .values_list("id", flat=True)[:1000]
        )
        for run_id in list(quiet):
            if alert_fire(rule_id=rule.id, run_id=run_id) is not None:
                fired += 1
    return fired


def firing_value(value: float | None) -> float | str | None:
    """A value for JSON: NaN and ±Infinity as the strings the metrics API uses."""
    if value is None or math.isfinite(value):
        return value
    return _value_text(value)
