"""A database-level guard: an UPDATE that changes an ingredient of a model version fails.

The services have no such update path and ModelVersion.save() refuses one; this trigger
also stops raw SQL and QuerySet.update(). Only description and tags may change, and the
run and artifact links may become NULL (their rows were deleted; the version keeps copies).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations

COLUMNS = [
    "repository_id",
    "project_id",
    "number",
    "content_hash",
    "blob_id",
    "binary_sha256",
    "binary_size",
    "binary_path",
    "source_run_ref",
    "source_run_name",
    "source_experiment",
    "code",
    "config",
    "params",
    "datasets",
    "environment",
    "metrics",
    "parent_hashes",
    "author_label",
    "created_at",
]
TABLE = "registry_modelversion"


def _postgres_changed() -> str:
    checks = [f"NEW.{c}::text IS DISTINCT FROM OLD.{c}::text" for c in COLUMNS]
    checks.append("(NEW.source_run_id IS NOT NULL AND NEW.source_run_id IS DISTINCT FROM OLD.source_run_id)")
    checks.append("(NEW.artifact_id IS NOT NULL AND NEW.artifact_id IS DISTINCT FROM OLD.artifact_id)")
    return " OR ".join(checks)


def _sqlite_changed() -> str:
    checks = [f"NEW.{c} IS NOT OLD.{c}" for c in COLUMNS]
    checks.append("(NEW.source_run_id IS NOT NULL AND NEW.source_run_id IS NOT OLD.source_run_id)")
    checks.append("(NEW.artifact_id IS NOT NULL AND NEW.artifact_id IS NOT OLD.artifact_id)")
    return " OR ".join(checks)


def create_guard(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            f"""
            CREATE OR REPLACE FUNCTION registry_version_immutable() RETURNS trigger AS $$
            BEGIN
              IF {_postgres_changed()} THEN
                RAISE EXCEPTION 'model versions are immutable: only description and tags may change'
                  USING ERRCODE = 'integrity_constraint_violation';
              END IF;
              RETURN NEW;
            END;
            $$ LANGUAGE plpgsql;
            """
        )
        schema_editor.execute(
            f"CREATE TRIGGER registry_version_immutable BEFORE UPDATE ON {TABLE} "
            "FOR EACH ROW EXECUTE FUNCTION registry_version_immutable();"
        )
    elif vendor == "sqlite":
        schema_editor.execute(
            f"CREATE TRIGGER registry_version_immutable BEFORE UPDATE ON {TABLE} "
            f"FOR EACH ROW WHEN {_sqlite_changed()} "
            "BEGIN SELECT RAISE(ABORT, 'model versions are immutable: only description and tags may change'); END;"
        )


def drop_guard(apps: Any, schema_editor: Any) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS registry_version_immutable ON {TABLE};")
        schema_editor.execute("DROP FUNCTION IF EXISTS registry_version_immutable();")
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER IF EXISTS registry_version_immutable;")


class Migration(migrations.Migration):
    dependencies = [("registry", "0001_initial")]

    operations = [migrations.RunPython(create_guard, drop_guard)]
