#!/bin/sh
# Restore Assay from deploy/backup.sh's folder into the database named by DATABASE_URL (it
# must exist; it may be empty) and the store named by ASSAY_ARTIFACTS. Stop web, workers and
# beat first; start them again afterwards (after `manage.py migrate` when the backup comes from
# an older release).
# Usage: deploy/restore.sh SOURCE_FOLDER
set -eu
src="${1:?usage: deploy/restore.sh SOURCE_FOLDER}"
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python}"
[ -f "$src/assay.dump" ] || { echo "no $src/assay.dump: not a backup folder" >&2; exit 2; }
pg_restore --clean --if-exists --no-owner --no-privileges --exit-on-error --dbname "$DATABASE_URL" "$src/assay.dump"
"$PYTHON" manage.py artifacts_backup --restore "$src/artifacts"
echo "restored from $src"
