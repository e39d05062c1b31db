"""Blob and Artifact move from the experiments app to this one: state only.

The tables stay as they are (``experiments_blob``, ``experiments_artifact``, named through
``db_table``); nothing is written to the database. experiments 0008 removes the models
from the experiments app's state once registry 0003 points its foreign keys here.
"""

import accounts.models
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('accounts', '0004_project'),
        ('experiments', '0007_project_to_accounts'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='Blob',
                    fields=[
                        ('id', models.CharField(default=accounts.models.new_id, editable=False, max_length=32, primary_key=True, serialize=False)),
                        ('sha256', models.CharField(max_length=64)),
                        ('size', models.BigIntegerField()),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('uploaded', 'Uploaded'), ('verified', 'Verified'), ('failed', 'Failed')], default='pending', max_length=16)),
                        ('upload_id', models.CharField(blank=True, max_length=1024)),
                        ('part_size', models.BigIntegerField(blank=True, null=True)),
                        ('promoted', models.BooleanField(default=False)),
                        ('thumbnail', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='blobs', to='accounts.project')),
                    ],
                    options={
                        'db_table': 'experiments_blob',
                        'indexes': [models.Index(fields=['status', 'updated_at'], name='blob_status_updated')],
                        'constraints': [models.UniqueConstraint(fields=('project', 'sha256'), name='blob_project_sha256_unique')],
                    },
                ),
                migrations.CreateModel(
                    name='Artifact',
                    fields=[
                        ('id', models.CharField(default=accounts.models.new_id, editable=False, max_length=32, primary_key=True, serialize=False)),
                        ('path', models.CharField(max_length=1024)),
                        ('sha256', models.CharField(max_length=64)),
                        ('size', models.BigIntegerField()),
                        ('media_type', models.CharField(default='application/octet-stream', max_length=255)),
                        ('kind', models.CharField(choices=[('file', 'File'), ('model', 'Model'), ('dataset', 'Dataset')], default='file', max_length=16)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('uploaded', 'Uploaded'), ('processing', 'Processing'), ('ready', 'Ready'), ('failed', 'Failed')], default='pending', max_length=16)),
                        ('reason', models.TextField(blank=True)),
                        ('findings', models.JSONField(blank=True, default=dict)),
                        ('preview', models.JSONField(blank=True, default=dict)),
                        ('attempts', models.IntegerField(default=0)),
                        ('processed', models.IntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='artifacts', to='accounts.project')),
                        ('run', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='artifacts', to='experiments.run')),
                        ('blob', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='artifacts', to='artifacts.blob')),
                    ],
                    options={
                        'db_table': 'experiments_artifact',
                        'ordering': ['path'],
                        'indexes': [models.Index(fields=['status', 'updated_at'], name='artifact_status_updated')],
                        'constraints': [models.UniqueConstraint(fields=('run', 'path'), name='artifact_run_path_unique')],
                    },
                ),
            ],
            database_operations=[],
        ),
    ]
