#!/bin/sh
# The container's roles: web | worker | beat | migrate | manage <args>. Configuration is the
# environment (docs/deploy.md); nothing here holds a secret.
set -eu
role="${1:-web}"
[ $# -gt 0 ] && shift
case "$role" in
  web)     # A fresh folder for the workers' shared Prometheus series.
           export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/assay-prometheus}"
           rm -rf "$PROMETHEUS_MULTIPROC_DIR" && mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
           exec gunicorn --config deploy/gunicorn.conf.py "$@" config.asgi:application ;;
  worker)  exec celery -A config worker --loglevel "${ASSAY_LOG_LEVEL:-info}" -Q "${ASSAY_CELERY_QUEUE:-assay}" "$@" ;;
  beat)    exec celery -A config beat --loglevel "${ASSAY_LOG_LEVEL:-info}" --schedule /var/lib/assay/celerybeat-schedule "$@" ;;
  migrate) exec python manage.py migrate --noinput "$@" ;;
  manage)  exec python manage.py "$@" ;;
  *)       echo "unknown role: $role (web|worker|beat|migrate|manage)" >&2; exit 2 ;;
esac
