#!/bin/sh
# Assay's production web server: gunicorn with uvicorn workers (see deploy/gunicorn.conf.py).
# Migrations are not run here; run `python manage.py migrate` once per release before this.
# Usage: deploy/serve.sh [extra gunicorn options]   (env: ASSAY_WEB_WORKERS, ASSAY_BIND, ...)
set -eu
cd "$(dirname "$0")/.."
GUNICORN="${GUNICORN:-.venv/bin/gunicorn}"
[ -x "$GUNICORN" ] || GUNICORN=gunicorn
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python
# Pages link the hashed names of collected static files (config/settings.py, STORAGES): collect
# them first; a no-op when no source changed since the last collection.
"$PYTHON" manage.py collectstatic_if_changed -v 0
exec "$GUNICORN" --config deploy/gunicorn.conf.py "$@" config.asgi:application
