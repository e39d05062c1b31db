# Retention policy of a project (issue 10: `manage.py retention`).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0005_search_perf"),
    ]

    operations = [
        migrations.AddField(
            model_name="project",
            name="run_retention_days",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="project",
            name="artifact_retention_days",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
    ]
