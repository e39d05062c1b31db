# Project moved to accounts (accounts 0004): experiments' foreign keys follow it, then
# experiments.Project leaves the migration state. State only: the table keeps its name
# (experiments_project, see accounts.models.Project.Meta.db_table) and no row moves.
# Runs after registry 0003 and reviews 0003, so that no foreign key in the state still
# points at experiments.Project when it is deleted.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0004_project"),
        ("experiments", "0006_project_retention"),
        ("registry", "0003_project_to_accounts"),
        ("reviews", "0003_project_to_accounts"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[],
            state_operations=[
                migrations.AlterField(
                    model_name="experiment",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="experiments", to="accounts.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="run",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="runs", to="accounts.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="blob",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="blobs", to="accounts.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="artifact",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="artifacts", to="accounts.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="projectkey",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="keys", to="accounts.project"
                    ),
                ),
                migrations.AlterField(
                    model_name="savedview",
                    name="project",
                    field=models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="saved_views", to="accounts.project"
                    ),
                ),
                migrations.DeleteModel(name="Project"),
            ],
        ),
    ]
