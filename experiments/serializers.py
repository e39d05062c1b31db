"""Input and output shapes of the tracking API. Inputs never carry ids, authors, status
transitions beyond the documented ones, or timestamps the server owns (mass assignment)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api import JSONObjectField, ProjectPathField, StrictCharField, StrictRegexField, StrictSerializer
from experiments import metrics
from experiments.models import Experiment, Figure, MetricSummary, RunStatus
from experiments.presenters import number_out
from experiments.services import INFO_SECTIONS, MAX_PARAM_VALUE, MAX_PARAMS_PER_BATCH, MAX_TAG_VALUE, MAX_TAGS_PER_BATCH


class ExperimentIn(StrictSerializer):
    name = StrictCharField(max_length=128)


class ExperimentOut(serializers.ModelSerializer[Experiment]):
    class Meta:
        model = Experiment
        fields = ["id", "name", "description", "created_at"]


@extend_schema_field(
    {
        "type": "object",
        "properties": {section: {"type": "object"} for section in sorted(INFO_SECTIONS)},
        "additionalProperties": False,
    }
)
class RunInfoField(JSONObjectField):
    """``info``: an object of known sections, each an object (checked by services.check_info)."""


def _scalar_map(max_length: int, max_items: int) -> dict[str, Any]:
    scalar = [{"type": "string", "maxLength": max_length}, {"type": "number"}, {"type": "boolean"}]
    return {"type": "object", "maxProperties": max_items, "additionalProperties": {"oneOf": scalar}}


@extend_schema_field(_scalar_map(MAX_PARAM_VALUE, MAX_PARAMS_PER_BATCH))
class ParamsField(JSONObjectField):
    """``params``: key: value, a value a string, number or boolean (stored as text)."""


@extend_schema_field(_scalar_map(MAX_TAG_VALUE, MAX_TAGS_PER_BATCH))
class TagsField(JSONObjectField):
    """``tags``: key: value, a value a string, number or boolean (stored as text)."""


class RunCreateIn(StrictSerializer):
    project = ProjectPathField(help_text='"team/project"; created if missing and allowed.')
    experiment = StrictCharField(max_length=128, required=False, default="default")
    name = StrictCharField(max_length=128, required=False, allow_null=True, default=None)
    config = JSONObjectField(required=False, default=dict, help_text="Object, at most 256 KiB as JSON.")
    tags = JSONObjectField(required=False, default=dict, help_text="Object of key: string value.")
    notes = StrictCharField(max_length=100_000, required=False, allow_blank=True, default="")
    info = RunInfoField(
        required=False,
        default=dict,
        help_text="Sections code, environment, system, error, datasets, uploads, models; at most 1 MiB.",
    )
    start_time = serializers.DateTimeField(required=False, allow_null=True, default=None)
    client_id = StrictRegexField(
        r"^[A-Za-z0-9_-]{1,64}$",
        required=False,
        allow_null=True,
        default=None,
        help_text="Your id for this run (a UUID): creating again with the same client_id returns the same run (200).",
    )


class RunUpdateIn(StrictSerializer):
    name = StrictCharField(max_length=128, required=False)
    notes = StrictCharField(max_length=100_000, required=False, allow_blank=True)
    status = serializers.ChoiceField(choices=RunStatus.choices, required=False)
    end_time = serializers.DateTimeField(required=False)
    config = JSONObjectField(required=False, help_text="Merged key by key into the run's config.")
    info = RunInfoField(required=False, help_text="Merged section by section into the run's info.")


# experiments.metrics.check_key (also: no ".." segment, which a pattern without look-arounds
# cannot say; refused with 400 naming the key).
@extend_schema_field({"type": "string", "pattern": "^[A-Za-z0-9_.: -][A-Za-z0-9_./: -]{0,249}$"})
class MetricKeyField(StrictCharField):
    pass


# A param or tag value: a string, or a number or boolean the server stores as text.
@extend_schema_field({"oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]})
class ScalarField(serializers.JSONField):
    pass


class MetricPointIn(StrictSerializer):
    """Documentation only: the log endpoint validates points with a fast validator."""

    key = MetricKeyField(max_length=metrics.MAX_KEY_LENGTH)
    step = serializers.IntegerField(min_value=0, max_value=metrics.MAX_STEP)
    value = serializers.FloatField(help_text='A finite number, or "NaN", "Infinity", "-Infinity".')
    timestamp = serializers.IntegerField(
        min_value=0, max_value=metrics.MAX_TIMESTAMP, required=False, help_text="ms since the epoch; default: now"
    )


class MetricSeriesIn(StrictSerializer):
    """Documentation only: the compact columnar form of metric points."""

    key = MetricKeyField(max_length=metrics.MAX_KEY_LENGTH)
    steps = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=metrics.MAX_STEP),
        min_length=1,
        help_text="As long as values (and timestamps)",
    )
    values = serializers.ListField(child=serializers.FloatField(), min_length=1)
    timestamps = serializers.ListField(
        child=serializers.IntegerField(min_value=0, max_value=metrics.MAX_TIMESTAMP), required=False
    )


class LogBatchIn(StrictSerializer):
    """Documentation of the log body (validated by ``services.run_log``)."""

    batch_id = StrictRegexField(
        r"^[A-Za-z0-9_-]{1,64}$", required=False, help_text="Client-chosen id (a UUID); a retried batch adds nothing."
    )
    params = serializers.DictField(child=ScalarField(), required=False, help_text="Values: at most 6,000 characters")
    tags = serializers.DictField(child=ScalarField(), required=False, help_text="Values: at most 8,000 characters")
    metrics = MetricPointIn(
        many=True, required=False, help_text=f"At most {metrics.MAX_POINTS_PER_BATCH} points in all."
    )
    series = MetricSeriesIn(many=True, required=False)


class LogBatchOut(serializers.Serializer[Any]):
    batch_id = serializers.CharField(allow_null=True)
    duplicate = serializers.BooleanField()
    points = serializers.IntegerField()


class SummaryOut(serializers.ModelSerializer[MetricSummary]):
    last = serializers.SerializerMethodField()
    min = serializers.SerializerMethodField()
    max = serializers.SerializerMethodField()

    class Meta:
        model = MetricSummary
        fields = ["key", "last", "min", "max", "last_step", "last_timestamp", "count"]

    def get_last(self, obj: MetricSummary) -> float | str | None:
        return number_out(obj.last)

    def get_min(self, obj: MetricSummary) -> float | str | None:
        return number_out(obj.min)

    def get_max(self, obj: MetricSummary) -> float | str | None:
        return number_out(obj.max)


class FigureIn(StrictSerializer):
    kind = serializers.ChoiceField(choices=Figure.Kind.choices, default=Figure.Kind.CONFUSION_MATRIX)
    name = StrictCharField(max_length=128)
    step = serializers.IntegerField(
        min_value=0, max_value=metrics.MAX_STEP, required=False, allow_null=True, default=None
    )
    labels = serializers.ListField(child=serializers.CharField(max_length=200), min_length=1, max_length=1000)
    matrix = serializers.ListField(
        child=serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=2**53 - 1)),
        help_text="One row per label, each with one count per label",
    )


class FigureOut(serializers.ModelSerializer[Figure]):
    class Meta:
        model = Figure
        fields = ["id", "kind", "name", "step", "data", "created_at"]


class MetricPointOut(serializers.Serializer[Any]):
    step = serializers.IntegerField()
    value = serializers.FloatField()
    timestamp = serializers.IntegerField()


class MetricHistoryOut(serializers.Serializer[Any]):
    key = serializers.CharField()
    total = serializers.IntegerField(help_text="Points stored for this key.")
    downsampled = serializers.BooleanField()
    method = StrictCharField(allow_null=True, help_text="minmax-lttb when downsampled")
    points = MetricPointOut(many=True)
    next = serializers.URLField(allow_null=True)
