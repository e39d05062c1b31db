"""Blob and Artifact now belong to the artifacts app (artifacts 0001): removed from this
app's state only; their tables (experiments_blob, experiments_artifact) stay, kept by the
artifacts models' db_table."""

from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('experiments', '0007_project_to_accounts'),
        ('artifacts', '0001_initial'),
        # The registry's foreign keys point at the artifacts app first.
        ('registry', '0004_artifacts_app'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(name='Artifact'),
                migrations.DeleteModel(name='Blob'),
            ],
            database_operations=[],
        ),
    ]
