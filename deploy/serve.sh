#!/bin/sh
# Assay's production web server: gunicorn with uvicorn workers (see deploy/gunicorn.conf.py).
# Migrations are not run here; run `python manage.py migrate` once per release before this.
# Usage: deploy/serve.sh [extra gunicorn options]   (env: ASSAY_WEB_WORKERS, ASSAY_BIND, ...)
set -eu
cd "$(dirname "$0")/.."
GUNICORN="${GUNICORN:-.venv/bin/gunicorn}"
[ -x "$GUNICORN" ] || GUNICORN=gunicorn
exec "$GUNICORN" --config deploy/gunicorn.conf.py "$@" config.asgi:application
