# Project moved to accounts (accounts 0004): the foreign keys follow it in the migration
# state only; the table (experiments_project) and the database constraints do not change.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_project"),
        ("registry", "0002_version_immutable"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="modelrepository",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="models", to="accounts.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="modelversion",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="model_versions",
                        to="accounts.project",
                    ),
                ),
            ],
        ),
    ]
