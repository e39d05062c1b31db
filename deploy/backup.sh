#!/bin/sh
# Back up Assay: the database (pg_dump, custom format) first, then the artifact store.
# Usage: deploy/backup.sh DEST_FOLDER   (env: DATABASE_URL, ASSAY_ARTIFACTS, S3_*; see docs/deploy.md)
# Database first: every object a dumped row points at is already in the store (objects are
# written before their rows are marked verified), so the copy that follows has it.
set -eu
dest="${1:?usage: deploy/backup.sh DEST_FOLDER}"
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
mkdir -p "$dest"
pg_dump --format=custom --no-owner --no-privileges --file "$dest/assay.dump" "$DATABASE_URL"
"$PYTHON" manage.py artifacts_backup "$dest/artifacts"
echo "backup written to $dest"
