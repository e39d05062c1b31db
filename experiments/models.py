"""Experiments, runs and what a run logs (projects are ``accounts.Project``).

Metric points are stored as *chunks*: one row per (run, key, logged batch) holding the
batch's steps, values and timestamps as packed little-endian arrays (see metrics.py).
A 10,000-point batch is then one INSERT of a few rows instead of 10,000 rows, and a
1,000,000-point history is read as ~100 rows and decoded with NumPy. The per-key
summary (last, min, max, last step, count) is kept current in the same transaction and
is what search and sort use.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Left, Lower

from accounts.models import Project, new_id
from experiments.fingerprint import DEFAULT_EXCLUDE


class Experiment(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="experiments")
    name = models.CharField(max_length=128)
    description = models.TextField(blank=True, max_length=10_000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Deleted through the MLflow API (soft, restorable, as MLflow's lifecycle stage "deleted").
    deleted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint("project", Lower("name"), name="experiment_project_name_ci_unique")]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ExperimentTag(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="experimenttag_experiment_key_unique")
        ]
        ordering = ["key"]


class RunStatus(models.TextChoices):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    KILLED = "killed"


class Run(models.Model):
    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    # Denormalised from experiment so that visibility filters need no join.
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="runs")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="runs")
    name = models.CharField(max_length=128)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="runs")
    status = models.CharField(max_length=16, choices=RunStatus.choices, default=RunStatus.RUNNING)
    start_time = models.DateTimeField()
    end_time = models.DateTimeField(null=True, blank=True)
    notes = models.TextField(blank=True)
    config = models.JSONField(default=dict, blank=True)
    # Structured run info: {"code": {...}, "environment": {...}, "system": {...}, "error": {...}}
    info = models.JSONField(default=dict, blank=True)
    # The client's own id for this run (the SDK sends a UUID), so that a retried create,
    # or an offline run synced twice, answers with the run made the first time.
    client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001 - NULL: "no id", outside the unique constraint
    # sha256 of the effective configuration (config + params, experiments/fingerprint.py),
    # kept in step by the run services: "has this configuration been tried?".
    config_fingerprint = models.CharField(max_length=64, blank=True, default="")
    # The canonical effective configuration the fingerprint hashes (flat, normalised, excluded
    # keys left out): what the "near runs" scan compares in SQL.
    config_canonical = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Deleted through the MLflow API (soft, restorable; MLflow's lifecycle stage "deleted").
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Imported runs (``assay import``, experiments/imports.py): the source system ("mlflow",
    # "wandb", "neptune") and the run's id there, unique in a project, which is what makes a
    # second import add nothing; the source's author name when no Assay user has it; and
    # when the import of the run finished (None while it is under way: a re-run resumes it).
    source = models.CharField(max_length=16, blank=True, default="")
    source_id = models.CharField(max_length=256, blank=True, default="")
    source_author = models.CharField(max_length=150, blank=True, default="")
    imported_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["author", "client_id"],
                condition=models.Q(client_id__isnull=False),
                name="run_author_client_id_unique",
            ),
            models.UniqueConstraint(
                fields=["project", "source", "source_id"],
                condition=~models.Q(source=""),
                name="run_project_source_id_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["project", "-start_time"], name="run_project_start"),
            models.Index(fields=["experiment", "-start_time"], name="run_experiment_start"),
            models.Index(fields=["project", "config_fingerprint", "-start_time"], name="run_project_fingerprint"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def duration_seconds(self) -> float | None:
        if self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


# Search indexes on params and tags lead with the key and hold the value's first
# VALUE_PREFIX characters (a whole value may be 6,000 characters, beyond a btree entry's
# ~2,700 bytes), then the run: ``params.optimizer = 'adam'`` is an index-only range scan.
# The prefix is a stored generated column, not an expression index: PostgreSQL cannot
# answer from an expression index without visiting the heap, and it keeps (extended)
# statistics on a column (migration 0005). The query compiler filters on ``value_prefix``.
VALUE_PREFIX = 100


class Param(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="params")
    key = models.CharField(max_length=250)
    value = models.TextField()
    value_prefix = models.GeneratedField(
        expression=Left("value", VALUE_PREFIX), output_field=models.TextField(), db_persist=True
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="param_run_key_unique")]
        indexes = [models.Index(fields=["key", "value_prefix", "run"], name="param_key_prefix_run")]
        ordering = ["key"]


class Tag(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="tags")
    key = models.CharField(max_length=250)
    value = models.TextField()
    value_prefix = models.GeneratedField(
        expression=Left("value", VALUE_PREFIX), output_field=models.TextField(), db_persist=True
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="tag_run_key_unique")]
        indexes = [models.Index(fields=["key", "value_prefix", "run"], name="tag_key_prefix_run")]
        ordering = ["key"]


class ConfigValue(models.Model):
    """One leaf of a run's config, flattened with dots (experiments/config_values.py), kept
    in step with ``Run.config`` by the run services: what ``config.<key>`` searches, and the
    config columns of tables and exports read. Indexed as params are."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="config_values")
    key = models.CharField(max_length=250)
    value = models.TextField()
    value_prefix = models.GeneratedField(
        expression=Left("value", VALUE_PREFIX), output_field=models.TextField(), db_persist=True
    )

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="configvalue_run_key_unique")]
        indexes = [models.Index(fields=["key", "value_prefix", "run"], name="configvalue_key_prefix_run")]
        ordering = ["key"]


def default_tried_exclude() -> list[str]:
    return list(DEFAULT_EXCLUDE)


class TriedSettings(models.Model):
    """A project's settings for "has this been tried?" (no row: the defaults). Edited by
    project admins through ``/api/v1/projects/{team}/{project}/tried/settings/``."""

    project = models.OneToOneField(Project, primary_key=True, on_delete=models.CASCADE, related_name="tried_settings")
    # Key patterns left out of the fingerprint (experiments/fingerprint.py).
    exclude = models.JSONField(default=default_tried_exclude)
    # The metric shown for matched runs; blank: the metric most of the matched runs have.
    key_metric = models.CharField(max_length=250, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)


class MetricSummary(models.Model):
    """Per run and key: kept current with every batch, used for search, sort and tables."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="summaries")
    key = models.CharField(max_length=250)
    last = models.FloatField(null=True)
    min = models.FloatField(null=True)
    max = models.FloatField(null=True)
    last_step = models.BigIntegerField()
    last_timestamp = models.BigIntegerField()
    count = models.BigIntegerField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "key"], name="summary_run_key_unique")]
        # (key, last, run): a metric condition is an index-only range scan that yields run ids.
        indexes = [models.Index(fields=["key", "last", "run"], name="summary_key_last_run")]
        ordering = ["key"]


class MetricChunk(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metric_chunks")
    key = models.CharField(max_length=250)
    count = models.IntegerField()
    min_step = models.BigIntegerField()
    max_step = models.BigIntegerField()
    steps = models.BinaryField()  # int64 little-endian
    values = models.BinaryField()  # float64 little-endian, NaN and ±Inf allowed
    timestamps = models.BinaryField()  # int64 ms since the epoch, little-endian

    class Meta:
        indexes = [models.Index(fields=["run", "key", "min_step"], name="chunk_run_key_step")]


class LogBatch(models.Model):
    """Remembers a client's batch id so that a retried batch adds nothing."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="batches")
    batch_id = models.CharField(max_length=64)
    points = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["run", "batch_id"], name="batch_run_id_unique")]


class Figure(models.Model):
    class Kind(models.TextChoices):
        CONFUSION_MATRIX = "confusion_matrix"

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="figures")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    name = models.CharField(max_length=128)
    step = models.BigIntegerField(null=True, blank=True)
    data = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "step"]


# --- search (issue 6) -------------------------------------------------------------------------


class ProjectKey(models.Model):
    """Every metric, param and tag key logged in a project, kept by the log service, so that
    the key completion and the column picker never scan a project's param rows."""

    class Kind(models.TextChoices):
        METRIC = "metric"
        PARAM = "param"
        TAG = "tag"
        CONFIG = "config"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="keys")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    key = models.CharField(max_length=250)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "kind", "key"], name="projectkey_unique")]
        ordering = ["kind", "key"]


class SavedView(models.Model):
    """A user's named runs-table view of a project: the filter, ordering, columns and
    grouping, as the query string of the project page (shareable by URL)."""

    id = models.CharField(primary_key=True, max_length=32, default=new_id, editable=False)
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="saved_views")
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_views")
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=8000)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint("project", "owner", Lower("name"), name="savedview_project_owner_name_unique")
        ]
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
