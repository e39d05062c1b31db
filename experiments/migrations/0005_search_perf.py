"""Search at 100,000 runs (benchmarks/SEARCH.md): the value prefix of params and tags becomes
a stored generated column with a plain (key, value_prefix, run) index, so that a param or
tag condition is an index-only scan; on PostgreSQL, extended statistics on
(key, value_prefix) let the planner estimate ``key = 'optimizer' AND value_prefix = 'adam'``
from the pair's own frequency instead of multiplying two independent guesses."""

from __future__ import annotations

from typing import Any

import django.db.models.functions.text
from django.db import migrations, models

STATISTICS = (
    ("experiments_param", "param_key_prefix_stats"),
    ("experiments_tag", "tag_key_prefix_stats"),
)


def create_statistics(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return  # SQLite (the embedded profile) has no extended statistics
    for table, name in STATISTICS:
        schema_editor.execute(
            f"CREATE STATISTICS IF NOT EXISTS {name} (dependencies, mcv) ON key, value_prefix FROM {table}"
        )
        schema_editor.execute(f"ANALYZE {table}")


def drop_statistics(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for _, name in STATISTICS:
        schema_editor.execute(f"DROP STATISTICS IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0004_search_keys_views_indexes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="param",
            name="param_key_value_run",
        ),
        migrations.RemoveIndex(
            model_name="tag",
            name="tag_key_value_run",
        ),
        migrations.AddField(
            model_name="param",
            name="value_prefix",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.text.Left("value", 100),
                output_field=models.TextField(),
            ),
        ),
        migrations.AddField(
            model_name="tag",
            name="value_prefix",
            field=models.GeneratedField(
                db_persist=True,
                expression=django.db.models.functions.text.Left("value", 100),
                output_field=models.TextField(),
            ),
        ),
        migrations.AddIndex(
            model_name="param",
            index=models.Index(fields=["key", "value_prefix", "run"], name="param_key_prefix_run"),
        ),
        migrations.AddIndex(
            model_name="tag",
            index=models.Index(fields=["key", "value_prefix", "run"], name="tag_key_prefix_run"),
        ),
        migrations.RunPython(create_statistics, drop_statistics, elidable=False),
    ]
