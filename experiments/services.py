"""Every write on experiments and runs: one function per use case (projects: accounts.services)."""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import numpy as np
import orjson
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.access import can
from accounts.audit import audit_record
from accounts.models import Project, User, new_id
from accounts.services import project_get_or_create
from core import domain_events, jsonsafe
from core.errors import Conflict, Invalid, NotFound
from core.observability import POINTS_INGESTED
from core.tasks import enqueue_on_commit
from core.validation import choice, mapping, string
from experiments import events, fingerprint, metric_store, metrics
from experiments.config_values import config_entries
from experiments.models import (
    ConfigValue,
    Experiment,
    ExperimentTag,
    Figure,
    Param,
    ProjectKey,
    Run,
    RunNoteRevision,
    RunStatus,
    SavedView,
    Tag,
    TriedSettings,
)

BATCH_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_PARAM_VALUE = 6_000
MAX_TAG_VALUE = 8_000  # MLflow's limit for run tags (its client sends tags up to it)
MAX_PARAMS_PER_BATCH = 1_000
MAX_TAGS_PER_BATCH = 1_000
MAX_CONFIG_BYTES = 256 * 1024
MAX_INFO_BYTES = 1024 * 1024
# Clients' clocks drift; a start this far ahead of the server's clock is still accepted.
MAX_CLOCK_SKEW = timedelta(minutes=5)
# "uploads": what the SDK could not upload and kept for `assay sync` ({"pending": [names],
# "reason", "spool", "host"}); sync sets "pending" to [] once they are up.
# "models": what MLflow's client logs with log_model (compat/).
# "imported": what an import kept that Assay has no field for ({"source", "summary", …}).
INFO_SECTIONS = {"code", "environment", "system", "error", "datasets", "uploads", "models", "imported"}

_ADJECTIVES = "amber brisk calm dapper eager fair gentle hardy icy jolly keen lively merry noble olive plucky quiet rapid sunny tidy upbeat vivid witty young zesty".split()
_NOUNS = "river forest meadow comet harbor canyon glacier island lagoon mesa nebula orchard prairie quartz reef summit tundra valley willow aurora breeze cedar delta ember".split()


def _json_size(value: Any) -> int:
    return len(jsonsafe.dumps(value, option=orjson.OPT_NON_STR_KEYS))


def _check_mapping(value: Any, *, field: str, max_bytes: int) -> dict[str, Any]:
    value = mapping(value, field=field)
    if _json_size(value) > max_bytes:
        raise Invalid(f"{field} is larger than {max_bytes} bytes.", field=field)
    return dict(value)


def check_info(raw: Any) -> dict[str, Any]:
    info = _check_mapping(raw, field="info", max_bytes=MAX_INFO_BYTES)
    unknown = set(info) - INFO_SECTIONS
    if unknown:
        raise Invalid(
            f"Unknown run info section(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(INFO_SECTIONS))}.",
            field="info",
        )
    for section, content in info.items():
        if not isinstance(content, dict):
            raise Invalid(f"info.{section} must be a JSON object.", field=f"info.{section}")
    return info


def _check_str_map(value: Any, *, field: str, max_value: int, max_items: int, stringify: bool) -> dict[str, str]:
    if not isinstance(value, dict):
        raise Invalid(f"{field} must be an object of key: value.", field=field)
    if len(value) > max_items:
        raise Invalid(f"At most {max_items} {field} in one request.", field=field)
    out: dict[str, str] = {}
    for key, raw in value.items():
        try:
            metrics.check_key(key, f"{field}.{key}")
        except metrics.PointError as exc:
            raise Invalid(str(exc).replace("metric key", "key"), field=exc.field) from None
        if isinstance(raw, str):
            text = raw
        elif stringify and isinstance(raw, (bool, int, float)) and not (isinstance(raw, float) and raw != raw):
            text = str(raw).lower() if isinstance(raw, bool) else str(raw)
        else:
            raise Invalid(f"{field}.{key} must be a string.", field=f"{field}.{key}")
        if len(text) > max_value:
            raise Invalid(f"{field}.{key} is longer than {max_value} characters.", field=f"{field}.{key}")
        if "\x00" in text:
            raise Invalid(f"{field}.{key} contains a NUL character.", field=f"{field}.{key}")
        out[key] = text
    return out


def check_params(value: Any) -> dict[str, str]:
    return _check_str_map(
        value, field="params", max_value=MAX_PARAM_VALUE, max_items=MAX_PARAMS_PER_BATCH, stringify=True
    )


def check_tags(value: Any) -> dict[str, str]:
    return _check_str_map(value, field="tags", max_value=MAX_TAG_VALUE, max_items=MAX_TAGS_PER_BATCH, stringify=True)


def _random_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randint(1, 999)}"


# --- experiments -------------------------------------------------------------------------


def experiment_get_or_create(*, project: Project, name: str) -> Experiment:
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise Invalid("experiment must be a name of 1-128 characters.", field="experiment")
    name = name.strip()
    experiment = Experiment.objects.filter(project=project, name__iexact=name).first()
    if experiment is not None:
        return experiment
    try:
        with transaction.atomic():
            return Experiment.objects.create(project=project, name=name)
    except IntegrityError:
        return Experiment.objects.get(project=project, name__iexact=name)


def _experiment_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 128:
        raise Invalid("An experiment's name is 1-128 characters.", field="name")
    if "\x00" in name:
        raise Invalid("An experiment's name may not contain a NUL character.", field="name")
    return name.strip()


def _experiment_tags(tags: Any) -> dict[str, str]:
    return _check_str_map(tags, field="tags", max_value=MAX_TAG_VALUE, max_items=MAX_TAGS_PER_BATCH, stringify=False)


@transaction.atomic
def experiment_create(*, project: Project, name: str, tags: dict[str, str] | None = None) -> Experiment:
    """A new experiment; a name taken in the project (also by a deleted experiment, which
    may be restored) is a Conflict with code ``experiment_exists``."""
    name = _experiment_name(name)
    checked_tags = _experiment_tags(tags) if tags else {}
    if Experiment.objects.filter(project=project, name__iexact=name).exists():
        raise Conflict(f"An experiment named {name!r} already exists in {project}.", code="experiment_exists")
    try:
        with transaction.atomic():
            experiment = Experiment.objects.create(project=project, name=name)
    except IntegrityError:
        raise Conflict(f"An experiment named {name!r} already exists in {project}.", code="experiment_exists") from None
    ExperimentTag.objects.bulk_create(
        [ExperimentTag(experiment=experiment, key=k, value=v) for k, v in checked_tags.items()]
    )
    return experiment


@transaction.atomic
def experiment_rename(*, experiment: Experiment, name: str) -> Experiment:
    name = _experiment_name(name)
    taken = Experiment.objects.filter(project_id=experiment.project_id, name__iexact=name).exclude(pk=experiment.pk)
    if taken.exists():
        raise Conflict(f"An experiment named {name!r} already exists.", code="experiment_exists", field="name")
    experiment.name = name
    experiment.save(update_fields=["name", "updated_at"])
    return experiment


@transaction.atomic
def experiment_delete(*, experiment: Experiment) -> Experiment:
    """Mark the experiment and its runs deleted (restorable); nothing is removed."""
    now = timezone.now()
    experiment.deleted_at = now
    experiment.save(update_fields=["deleted_at", "updated_at"])
    Run.objects.filter(experiment=experiment, deleted_at__isnull=True).update(deleted_at=now)
    return experiment


@transaction.atomic
def experiment_restore(*, experiment: Experiment) -> Experiment:
    """Undo :func:`experiment_delete`: the experiment and the runs deleted with it come back."""
    if experiment.deleted_at is not None:
        Run.objects.filter(experiment=experiment, deleted_at=experiment.deleted_at).update(deleted_at=None)
    experiment.deleted_at = None
    experiment.save(update_fields=["deleted_at", "updated_at"])
    return experiment


@transaction.atomic
def experiment_tag_set(*, experiment: Experiment, key: str, value: str) -> None:
    checked = _experiment_tags({key: value})
    ExperimentTag.objects.update_or_create(experiment=experiment, key=key, defaults={"value": checked[key]})
    experiment.save(update_fields=["updated_at"])


@transaction.atomic
def experiment_tag_delete(*, experiment: Experiment, key: str) -> None:
    """Remove a tag; a tag that is not there is NotFound (as MLflow answers)."""
    deleted, _ = ExperimentTag.objects.filter(experiment=experiment, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag {key!r} on experiment {experiment.name!r}.", field="key")
    experiment.save(update_fields=["updated_at"])


# --- runs -----------------------------------------------------------------------------------


@transaction.atomic
def run_create(
    *,
    user: User,
    project_path: str,
    experiment: str = "default",
    name: str | None = None,
    config: dict[str, Any] | None = None,
    tags: dict[str, str] | None = None,
    notes: str = "",
    info: dict[str, Any] | None = None,
    start_time: datetime | None = None,
    client_id: str | None = None,
) -> Run:
    """Start a run. With ``client_id``, creating again returns the run made the first time
    (see :func:`experiments.selectors.run_of_client`), also when two creates race."""
    now = timezone.now()
    if start_time is not None and start_time > now + MAX_CLOCK_SKEW:
        # A start in the future could never be finished (end_time < start_time).
        raise Invalid("start_time is in the future.", field="start_time")
    project = project_get_or_create(user=user, path=project_path)
    exp = experiment_get_or_create(project=project, name=experiment)
    if name is not None:
        name = string(name, field="name", max_length=128, allow_blank=True)
    notes = string(notes, field="notes", max_length=100_000, allow_blank=True)
    # Only a missing field (None) means "empty": 0, false, "" or [] are refused, not stored as {}.
    config = _check_mapping(config if config is not None else {}, field="config", max_bytes=MAX_CONFIG_BYTES)
    checked_info = check_info(info if info is not None else {})
    checked_tags = check_tags(tags) if tags is not None else {}
    try:
        with transaction.atomic():
            run = Run.objects.create(
                project=project,
                experiment=exp,
                name=name or _random_run_name(),
                author=user,
                status=RunStatus.RUNNING,
                start_time=start_time or now,
                notes=notes,
                config=config,
                info=checked_info,
                client_id=client_id,
            )
    except IntegrityError:
        if client_id is None:
            raise
        return Run.objects.select_related("project__team", "experiment", "author").get(author=user, client_id=client_id)
    if checked_tags:
        Tag.objects.bulk_create([Tag(run=run, key=k, value=v) for k, v in checked_tags.items()])
    if config:
        _config_values_set(run=run)
    if notes:
        RunNoteRevision.objects.create(run=run, number=1, body=notes, author=user)
    _fingerprint_set(run=run, params={})
    events.run_created(run)
    return run


def _note_revision_add(*, run: Run, previous: str, author: User | None) -> None:
    """Record ``run.notes`` (just changed from ``previous``) as the newest revision of the
    notes. The caller holds the run's row lock. Notes written before the history existed
    become revision 1 (author unknown) so that the first diff has a left side."""
    last = RunNoteRevision.objects.filter(run=run).order_by("-number").values_list("number", flat=True).first()
    if last is None:
        last = 0
        if previous:
            RunNoteRevision.objects.create(run=run, number=1, body=previous, author=None)
            last = 1
    RunNoteRevision.objects.create(run=run, number=last + 1, body=run.notes, author=author)


@transaction.atomic
def run_notes_set(*, run: Run, user: User, notes: object) -> Run:
    """Edit a run's notes from the run page (the SDK edits them through :func:`run_update`);
    a change adds a revision with ``user`` as its author."""
    checked = string(notes, field="notes", max_length=100_000, allow_blank=True)
    return run_update(run=run, notes=checked, author=user)


TERMINAL = {RunStatus.FINISHED, RunStatus.FAILED, RunStatus.KILLED}


@transaction.atomic
def run_update(
    *,
    run: Run,
    name: str | None = None,
    notes: str | None = None,
    status: str | None = None,
    end_time: datetime | None = None,
    config: dict[str, Any] | None = None,
    info: dict[str, Any] | None = None,
    author: User | None = None,
) -> Run:
    """Rename, annotate, finish or resume a run. ``config`` and ``info`` are merged key by
    key (info by section); a terminal status sets ``end_time`` if not given, and moving
    back to ``running`` (a resumed run) clears it. Changed notes add a revision of the
    notes by ``author`` (None: not known, e.g. an MLflow client)."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    old_status = run.status
    old_notes = run.notes
    if name is not None:
        run.name = string(name, field="name", max_length=128)
    if notes is not None:
        run.notes = string(notes, field="notes", max_length=100_000, allow_blank=True)
    if config is not None:
        merged = {**run.config, **_check_mapping(config, field="config", max_bytes=MAX_CONFIG_BYTES)}
        run.config = _check_mapping(merged, field="config", max_bytes=MAX_CONFIG_BYTES)
    if info is not None:
        merged_info = dict(run.info)
        for section, content in check_info(info).items():
            merged_info[section] = {**merged_info.get(section, {}), **content}
        run.info = check_info(merged_info)
    if status is not None:
        status = choice(
            status, RunStatus.values, field="status", message=f"status must be one of {', '.join(RunStatus.values)}."
        )
        run.status = status
        if status in TERMINAL:
            run.end_time = end_time or run.end_time or timezone.now()
        else:
            run.end_time = None
    elif end_time is not None:
        run.end_time = end_time
    if run.end_time is not None and run.end_time < run.start_time:
        raise Invalid("end_time is before the run's start_time.", field="end_time")
    run.save()
    if run.notes != old_notes:
        _note_revision_add(run=run, previous=old_notes, author=author)
    if config is not None:
        _config_values_set(run=run)
        _fingerprint_set(run=run)
    events.run_updated(run, status_changed=run.status != old_status)
    if run.status != old_status and run.status in (RunStatus.FINISHED, RunStatus.FAILED):
        domain_events.emit(
            domain_events.DomainEvent(
                type=f"run.{run.status}",
                project_id=run.project_id,
                actor=None,
                data={"run": run.id, "name": run.name, "status": run.status},
            )
        )
    return run


@transaction.atomic
def run_delete(*, run: Run) -> Run:
    """Mark a run deleted (restorable): it leaves searches and the project's runs table."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.deleted_at is None:
        run.deleted_at = timezone.now()
        run.save(update_fields=["deleted_at", "updated_at"])
        events.run_updated(run, status_changed=True)  # the project's runs table drops it
    return run


@transaction.atomic
def run_restore(*, run: Run) -> Run:
    run = Run.objects.select_for_update().get(pk=run.pk)
    if run.deleted_at is not None:
        run.deleted_at = None
        run.save(update_fields=["deleted_at", "updated_at"])
        events.run_updated(run, status_changed=True)
    return run


@transaction.atomic
def run_tag_delete(*, run: Run, key: str) -> None:
    """Remove a run's tag; a tag that is not there is NotFound (as MLflow answers)."""
    deleted, _ = Tag.objects.filter(run=run, key=key).delete()
    if not deleted:
        raise NotFound(f"No tag {key!r} on run {run.id}.", field="key")
    events.run_updated(run, status_changed=False)


def _ms_now() -> int:
    return int(time.time() * 1000)


def run_log(
    *,
    run: Run,
    batch_id: str | None,
    params: Any = None,
    tags: Any = None,
    metric_rows: Any = None,
    metric_columns: Any = None,
) -> dict[str, Any]:
    """Log one batch to a run: params, tags and metric points, all or nothing.

    A batch whose ``batch_id`` the run has seen before adds nothing and answers as the
    first time did, so a client may retry any batch it is unsure about.
    """
    if batch_id is not None and (not isinstance(batch_id, str) or not BATCH_ID_PATTERN.match(batch_id)):
        raise Invalid("batch_id is 1-64 letters, digits, '-' and '_' (a UUID fits).", field="batch_id")
    # Validate everything before the transaction so that no lock is held while parsing.
    checked_params = check_params(params) if params is not None else {}
    checked_tags = check_tags(tags) if tags is not None else {}
    now_ms = _ms_now()
    try:
        series = metrics.parse_rows(metric_rows, now_ms=now_ms) if metric_rows is not None else {}
        if metric_columns is not None:
            budget = metrics.MAX_POINTS_PER_BATCH - sum(len(s) for s in series.values())
            for key, extra in metrics.parse_columns(metric_columns, now_ms=now_ms, budget=budget).items():
                series[key] = _concat(series[key], extra) if key in series else extra
    except metrics.PointError as exc:
        raise Invalid(str(exc), field=exc.field) from None
    points = sum(len(s) for s in series.values())
    if series and not checked_params and not checked_tags and connection.vendor == "postgresql":
        # The common batch (points only): one statement, no BEGIN/COMMIT round trips.
        summaries = metric_store.batch_log_points(run=run, batch_id=batch_id, series=series, points=points)
        if summaries is None:
            return {"batch_id": batch_id, "duplicate": True, "points": 0}
        transaction.on_commit(lambda: POINTS_INGESTED.inc(points))
        events.points_logged(run=run, series=series, summaries=summaries)
        domain_events.batch_logged(run, series)
        return {"batch_id": batch_id, "duplicate": False, "points": points}

    with transaction.atomic():
        if not metric_store.batch_begin(run=run, batch_id=batch_id, points=points):
            return {"batch_id": batch_id, "duplicate": True, "points": 0}
        if checked_params:
            _params_add(run=run, params=checked_params)
        if checked_tags:
            Tag.objects.bulk_create(
                [Tag(run=run, key=k, value=v) for k, v in checked_tags.items()],
                update_conflicts=True,
                unique_fields=["run", "key"],
                update_fields=["value"],
            )
        new_metric_keys: list[str] = []
        if series:
            summaries_merged: dict[str, metrics.Summary] = {}
            new_metric_keys = metric_store.points_add(run=run, series=series, summaries_out=summaries_merged)
            transaction.on_commit(lambda: POINTS_INGESTED.inc(points))
            events.points_logged(run=run, series=series, summaries=summaries_merged)
            domain_events.batch_logged(run, series)
        _project_keys_add(
            run=run,
            keys={
                ProjectKey.Kind.PARAM: list(checked_params),
                ProjectKey.Kind.TAG: list(checked_tags),
                ProjectKey.Kind.METRIC: new_metric_keys,
            },
        )
    return {"batch_id": batch_id, "duplicate": False, "points": points}


def _concat(a: metrics.Series, b: metrics.Series) -> metrics.Series:
    return metrics.Series(
        key=a.key,
        steps=np.concatenate([a.steps, b.steps]),
        values=np.concatenate([a.values, b.values]),
        timestamps=np.concatenate([a.timestamps, b.timestamps]),
    )


def _params_add(*, run: Run, params: dict[str, str]) -> None:
    existing = dict(Param.objects.filter(run=run, key__in=list(params)).values_list("key", "value"))
    for key, value in params.items():
        if key in existing and existing[key] != value:
            raise Conflict(
                f"Param {key!r} is already {existing[key]!r}; params are immutable once set.",
                code="param_conflict",
                field=f"params.{key}",
            )
    new = [Param(run=run, key=k, value=v) for k, v in params.items() if k not in existing]
    Param.objects.bulk_create(new)
    if new:
        _fingerprint_set(run=run)


def _fingerprint_set(*, run: Run, params: dict[str, str] | None = None) -> None:
    """Recompute the run's configuration fingerprint from ``run.config`` and its params
    (read from the database unless given). Inside the caller's transaction."""
    if params is None:
        params = dict(Param.objects.filter(run=run).values_list("key", "value"))
    exclude = tried_exclude_of(project_id=run.project_id)
    entries = fingerprint.effective(run.config, params, exclude=exclude)
    value = fingerprint.fingerprint_of(entries)
    if value != run.config_fingerprint or entries != run.config_canonical:
        run.config_fingerprint, run.config_canonical = value, entries
        Run.objects.filter(pk=run.pk).update(config_fingerprint=value, config_canonical=entries)


def check_config(value: Any) -> dict[str, Any]:
    """A config as run_create accepts it (an object, at most MAX_CONFIG_BYTES as JSON)."""
    return _check_mapping(value, field="config", max_bytes=MAX_CONFIG_BYTES)


def tried_exclude_of(*, project_id: str) -> list[str]:
    """The project's excluded key patterns (the defaults when it has no settings row)."""
    row = TriedSettings.objects.filter(project_id=project_id).values_list("exclude", flat=True).first()
    return list(row) if row is not None else list(fingerprint.DEFAULT_EXCLUDE)


REFINGERPRINT_BATCH = 2_000
REFINGERPRINT_TASK = "experiments.tasks.runs_refingerprint"


@transaction.atomic
def tried_settings_set(*, project: Project, actor: User, exclude: Any = None, key_metric: Any = None) -> TriedSettings:
    """Change what the fingerprint leaves out and which metric "tried?" shows (project
    admins; the caller checked ``project.update``). A changed exclusion list re-fingerprints
    every run of the project in a worker after commit (minutes for a million runs: not in a
    request); runs logged meanwhile are fingerprinted with the new list as they are written."""
    settings_row = TriedSettings.objects.select_for_update().filter(project=project).first()
    if settings_row is None:
        settings_row = TriedSettings(project=project)
    old_exclude = list(settings_row.exclude)
    if exclude is not None:
        try:
            settings_row.exclude = fingerprint.check_exclude(exclude)
        except ValueError as exc:
            raise Invalid(f"exclude {exc}", field="exclude") from None
    if key_metric is not None:
        settings_row.key_metric = string(key_metric, field="key_metric", max_length=250, allow_blank=True)
    settings_row.save()
    if settings_row.exclude != old_exclude:
        enqueue_on_commit(REFINGERPRINT_TASK, str(project.pk))
    audit_record(
        actor=actor,
        action="project.tried_settings",
        target=project,
        project=project,
        data={"exclude": settings_row.exclude, "key_metric": settings_row.key_metric},
    )
    return settings_row


def runs_refingerprint(*, project: Project, exclude: list[str]) -> int:
    """Recompute the fingerprint of every run of ``project``; returns how many changed."""
    changed = 0
    last = ""
    while True:
        rows = list(
            Run.objects.filter(project=project, pk__gt=last)
            .order_by("pk")
            .values_list("pk", "config", "config_fingerprint")[:REFINGERPRINT_BATCH]
        )
        if not rows:
            return changed
        params: dict[str, dict[str, str]] = {}
        for run_id, key, value in Param.objects.filter(run_id__in=[r[0] for r in rows]).values_list(
            "run_id", "key", "value"
        ):
            params.setdefault(run_id, {})[key] = value
        updates = []
        for run_id, config, old in rows:
            entries = fingerprint.effective(config or {}, params.get(run_id, {}), exclude=exclude)
            new = fingerprint.fingerprint_of(entries)
            if new != old:
                updates.append(Run(pk=run_id, config_fingerprint=new, config_canonical=entries))
        Run.objects.bulk_update(updates, ["config_fingerprint", "config_canonical"])
        changed += len(updates)
        last = rows[-1][0]


def _config_values_set(*, run: Run) -> None:
    """Rewrite the run's flattened config rows (what ``config.<key>`` searches) from
    ``run.config``, and register its keys. Inside the caller's transaction."""
    entries = config_entries(run.config)
    # Only what changed is written: update_config may be called often with a key or two.
    existing = dict(ConfigValue.objects.filter(run=run).values_list("key", "value"))
    stale = [key for key, value in existing.items() if entries.get(key) != value]
    if stale:
        ConfigValue.objects.filter(run=run, key__in=stale).delete()
    fresh = {key: value for key, value in entries.items() if existing.get(key) != value}
    ConfigValue.objects.bulk_create([ConfigValue(run=run, key=k, value=v) for k, v in fresh.items()])
    _project_keys_add(run=run, keys={ProjectKey.Kind.CONFIG: [k for k in fresh if k not in existing]})


def _project_keys_add(*, run: Run, keys: dict[str, list[str]]) -> None:
    """Remember the keys in the project's key registry (for completion and the column
    picker); one statement, and none when the batch holds no key new to the run."""
    rows = [ProjectKey(project_id=run.project_id, kind=kind, key=key) for kind, names in keys.items() for key in names]
    if rows:
        ProjectKey.objects.bulk_create(rows, ignore_conflicts=True)


# --- figures ---------------------------------------------------------------------------------

MAX_CONFUSION_LABELS = 1_000


@transaction.atomic
def figure_confusion_matrix_add(*, run: Run, name: str, labels: Any, matrix: Any, step: int | None = None) -> Figure:
    """Store a confusion matrix (rows: true label, columns: predicted label); a second one
    with the same name and step replaces the first."""
    if not isinstance(name, str) or not name.strip() or len(name) > 128:
        raise Invalid("name must be 1-128 characters.", field="name")
    if not isinstance(labels, list) or not labels or len(labels) > MAX_CONFUSION_LABELS:
        raise Invalid(f"labels must be a list of 1-{MAX_CONFUSION_LABELS} strings.", field="labels")
    if not all(isinstance(label, str) and 0 < len(label) <= 200 for label in labels):
        raise Invalid("Each label is a string of 1-200 characters.", field="labels")
    size = len(labels)
    if not isinstance(matrix, list) or len(matrix) != size:
        raise Invalid(f"matrix must have one row per label ({size}).", field="matrix")
    for i, row in enumerate(matrix):
        if not isinstance(row, list) or len(row) != size:
            raise Invalid(f"Row {i} of matrix must have {size} entries.", field=f"matrix.{i}")
        for j, cell in enumerate(row):
            if type(cell) is not int or cell < 0 or cell > 2**53 - 1:
                raise Invalid("Each cell is a count: an integer from 0 to 2**53 - 1.", field=f"matrix.{i}.{j}")
    if step is not None and (type(step) is not int or step < 0 or step > metrics.MAX_STEP):
        raise Invalid(f"step must be an integer between 0 and {metrics.MAX_STEP}.", field="step")
    Figure.objects.filter(run=run, kind=Figure.Kind.CONFUSION_MATRIX, name=name, step=step).delete()
    return Figure.objects.create(
        run=run, kind=Figure.Kind.CONFUSION_MATRIX, name=name, step=step, data={"labels": labels, "matrix": matrix}
    )


# --- saved views of the runs table (issue 6) ------------------------------------------------------

# The query-string parameters a saved view keeps (anything else, e.g. page, is dropped).
SAVED_VIEW_PARAMETERS = ("filter", "sort", "order_by", "columns", "pin", "group_by", "experiment")
MAX_SAVED_VIEWS_PER_PROJECT = 100


def saved_view_query(raw: str) -> str:
    """The canonical query string of a view: only the known parameters, re-encoded."""
    pairs = parse_qsl(raw, keep_blank_values=True)
    return urlencode([(name, value) for name in SAVED_VIEW_PARAMETERS for key, value in pairs if key == name])


@transaction.atomic
def saved_view_save(*, user: User, project: Project, name: str, query: str) -> SavedView:
    """Save (or overwrite, by name) one of ``user``'s views of ``project``."""
    name = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= 100:
        raise Invalid("A view's name is 1-100 characters.", field="name")
    if not isinstance(query, str) or len(query) > 8000:
        raise Invalid("A view's query is at most 8,000 characters.", field="query")
    canonical = saved_view_query(query)
    if len(canonical) > 8000:
        raise Invalid("A view's query is at most 8,000 characters.", field="query")
    existing = SavedView.objects.select_for_update().filter(project=project, owner=user, name__iexact=name).first()
    if existing is not None:
        existing.query = canonical
        existing.save(update_fields=["query", "updated_at"])
        return existing
    if SavedView.objects.filter(project=project, owner=user).count() >= MAX_SAVED_VIEWS_PER_PROJECT:
        raise Invalid(f"At most {MAX_SAVED_VIEWS_PER_PROJECT} saved views per project.", field="name")
    return SavedView.objects.create(project=project, owner=user, name=name, query=canonical)


@transaction.atomic
def saved_view_delete(*, view: SavedView) -> None:
    view.delete()


# --- imports (`assay import`: MLflow, W&B, Neptune) -------------------------------------------------

IMPORT_SOURCES = ("mlflow", "wandb", "neptune")
MAX_SOURCE_ID = 256
KEPT_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class RunImport:
    """What :func:`run_import` did: ``created`` False when the source's run was imported
    before (then nothing was written); ``id_kept`` whether the source's run id is the run's."""

    run: Run
    created: bool
    id_kept: bool


def check_source(source: Any, source_id: Any) -> tuple[str, str]:
    source = choice(
        source, IMPORT_SOURCES, field="source", message=f"source must be one of {', '.join(IMPORT_SOURCES)}."
    )
    source_id = string(source_id, field="source_id", max_length=MAX_SOURCE_ID)
    if "\x00" in source_id:
        raise Invalid("source_id contains a NUL character.", field="source_id")
    return source, source_id


def _import_author(project: Project, name: str) -> User | None:
    """The Assay user an imported author name stands for: an active user of that name who
    holds a role on the project. # SECURITY: never anyone else (a run cannot be attributed to a
    user who could not have logged it)."""
    if not name:
        return None
    user = User.objects.filter(username__iexact=name, is_active=True).first()
    return user if user is not None and can(user, "run.view", project) else None


@transaction.atomic
def run_import(
    *,
    user: User,
    project: Project,
    source: Any,
    source_id: Any,
    experiment: Any,
    name: Any = None,
    run_id: Any = None,
    status: Any = RunStatus.FINISHED,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
    author: Any = "",
    params: Any = None,
    tags: Any = None,
    config: Any = None,
    notes: Any = "",
    info: Any = None,
) -> RunImport:
    """Create the run a source system had, with its id (a 32-hex MLflow run id is kept when no
    Assay run has it), status, times and author; or, when the project holds a run imported
    from ``(source, source_id)`` already, return it and write nothing. The caller checked
    ``run.import``. Everything is validated before the first write. The run is marked
    complete by :func:`run_import_complete` once its points and files are in."""
    source, source_id = check_source(source, source_id)
    exp_name = _experiment_name(experiment) if experiment is not None else "default"
    run_name = string(name, field="name", max_length=128, allow_blank=True) if name is not None else ""
    run_status = choice(
        status, RunStatus.values, field="status", message=f"status must be one of {', '.join(RunStatus.values)}."
    )
    if run_id is not None and (not isinstance(run_id, str) or not KEPT_RUN_ID.match(run_id)):
        raise Invalid("run_id is 32 lower-case hexadecimal characters (an MLflow run id).", field="run_id")
    author_name = string(author or "", field="author", max_length=150, allow_blank=True)
    checked_notes = string(notes or "", field="notes", max_length=100_000, allow_blank=True)
    checked_config = check_config(config if config is not None else {})
    checked_info = check_info(info if info is not None else {})
    checked_params = check_params(params) if params is not None else {}
    checked_tags = check_tags(tags) if tags is not None else {}
    now = timezone.now()
    start = start_time or now
    if start > now + MAX_CLOCK_SKEW:
        raise Invalid("start_time is in the future.", field="start_time")
    if end_time is not None and end_time < start:
        raise Invalid("end_time is before start_time.", field="end_time")
    if end_time is not None and run_status == RunStatus.RUNNING:
        raise Invalid("A running run has no end_time.", field="end_time")
    # Imported before: answered only for a valid request (a bad one is refused either way).
    existing = Run.objects.filter(project=project, source=source, source_id=source_id).first()
    if existing is not None:
        return RunImport(run=existing, created=False, id_kept=existing.pk == run_id)
    matched = _import_author(project, author_name)
    exp = experiment_get_or_create(project=project, name=exp_name)
    # A kept id is the source's; an id another run holds (the same store imported into a
    # second project) cannot be, and the run gets a new one (the answer says so).
    kept = run_id is not None and not Run.objects.filter(pk=run_id).exists()
    try:
        with transaction.atomic():
            run = Run.objects.create(
                id=run_id if kept else new_id(),
                project=project,
                experiment=exp,
                name=run_name or _random_run_name(),
                author=matched or user,
                status=run_status,
                start_time=start,
                end_time=end_time,
                notes=checked_notes,
                config=checked_config,
                info=checked_info,
                source=source,
                source_id=source_id,
                source_author="" if matched is not None else author_name,
            )
    except IntegrityError:
        # Two imports of the same source run raced: the other one made it.
        existing = Run.objects.filter(project=project, source=source, source_id=source_id).first()
        if existing is None:
            raise
        return RunImport(run=existing, created=False, id_kept=existing.pk == run_id)
    if checked_tags:
        Tag.objects.bulk_create([Tag(run=run, key=k, value=v) for k, v in checked_tags.items()])
    if checked_params:
        Param.objects.bulk_create([Param(run=run, key=k, value=v) for k, v in checked_params.items()])
    if checked_config:
        _config_values_set(run=run)
    _fingerprint_set(run=run, params=checked_params)
    _project_keys_add(
        run=run, keys={ProjectKey.Kind.PARAM: list(checked_params), ProjectKey.Kind.TAG: list(checked_tags)}
    )
    events.run_created(run)
    return RunImport(run=run, created=True, id_kept=kept)


@transaction.atomic
def run_import_complete(*, run: Run) -> Run:
    """Mark an imported run's import finished (its points and files are in): a later import of
    the same source skips it whole. Completing again changes nothing."""
    run = Run.objects.select_for_update().get(pk=run.pk)
    if not run.source:
        raise Invalid("This run was not imported.", code="not_imported", field="run")
    if run.imported_at is None:
        run.imported_at = timezone.now()
        run.save(update_fields=["imported_at", "updated_at"])
    return run
