# Project moved to accounts (accounts 0004): the foreign keys follow it in the migration
# state only; the table (experiments_project) and the database constraints do not change.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_project"),
        ("reviews", "0002_project_review_settings"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="projectreviewsettings",
                    name="project",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="accounts.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="reviewcounter",
                    name="project",
                    field=models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="accounts.project",
                    ),
                ),
                migrations.AlterField(
                    model_name="reviewrequest",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="review_requests",
                        to="accounts.project",
                    ),
                ),
            ],
        ),
    ]
