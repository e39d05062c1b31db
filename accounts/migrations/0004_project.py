# Project moves from the experiments app to accounts (issue 15: one owner per concept).
#
# State only: the table keeps its name (Project.Meta.db_table = "experiments_project") and
# every foreign key keeps pointing at it, so nothing in the database changes and no row
# moves. experiments 0007 then deletes experiments.Project from the migration state, after
# every app's foreign keys point at accounts.Project (accounts here, registry 0003,
# reviews 0003, experiments 0007).

import django.db.models.deletion
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

import accounts.models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_tokens_scope_invitations_audit"),
        ("experiments", "0006_project_retention"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.CreateModel(
                    name="Project",
                    fields=[
                        (
                            "id",
                            models.CharField(
                                default=accounts.models.new_id,
                                editable=False,
                                max_length=32,
                                primary_key=True,
                                serialize=False,
                            ),
                        ),
                        ("name", models.SlugField(max_length=64)),
                        ("description", models.TextField(blank=True, max_length=10000)),
                        (
                            "visibility",
                            models.CharField(
                                choices=[("private", "Private"), ("internal", "Internal")],
                                default="private",
                                max_length=16,
                            ),
                        ),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        ("run_retention_days", models.PositiveIntegerField(blank=True, null=True)),
                        ("artifact_retention_days", models.PositiveIntegerField(blank=True, null=True)),
                        (
                            "created_by",
                            models.ForeignKey(
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "team",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="projects",
                                to="accounts.team",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "experiments_project",
                        "ordering": ["team__name", "name"],
                        "constraints": [
                            models.UniqueConstraint(
                                models.F("team"),
                                django.db.models.functions.text.Lower("name"),
                                name="project_team_name_ci_unique",
                            )
                        ],
                    },
                ),
                migrations.AlterField(
                    model_name="auditevent",
                    name="project",
                    field=models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="audit_events",
                        to="accounts.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="projectgrant",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="grants",
                        to="accounts.project",
                    ),
                ),
            ],
        ),
    ]
