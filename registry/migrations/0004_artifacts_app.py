"""ModelVersion.artifact and .blob point at the artifacts app, where Blob and Artifact moved:
state only (the tables and their foreign-key constraints are unchanged)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('artifacts', '0001_initial'),
        ('registry', '0003_project_to_accounts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name='modelversion',
                    name='artifact',
                    field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='model_versions', to='artifacts.artifact'),
                ),
                migrations.AlterField(
                    model_name='modelversion',
                    name='blob',
                    field=models.ForeignKey(null=True, on_delete=django.db.models.deletion.PROTECT, related_name='model_versions', to='artifacts.blob'),
                ),
            ],
            database_operations=[],
        ),
    ]
