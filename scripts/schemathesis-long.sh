#!/usr/bin/env bash
# The longer Schemathesis run of issue 17: the same test as `make test` runs
# (tests/e2e/test_schemathesis_live.py: a seeded project on PostgreSQL, uvicorn, every phase,
# the issue's checks, as the owner, a read-only token and an unprivileged user), with more
# examples per operation and several seeds. Needs `make services`; takes about 15 minutes
# on an idle 2-core machine. Prints one SUMMARY line; record it in scripts/README.md.
#
#   scripts/schemathesis-long.sh                 # 10 examples, seeds 1 and 2
#   ASSAY_ST_MAX_EXAMPLES=50 ASSAY_ST_SEEDS=4,5 scripts/schemathesis-long.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export ASSAY_ST_MAX_EXAMPLES="${ASSAY_ST_MAX_EXAMPLES:-10}"
export ASSAY_ST_SEEDS="${ASSAY_ST_SEEDS:-1,2}"
export PYTHONPATH="$PWD/sdk/src${PYTHONPATH:+:$PYTHONPATH}"
log="${TMPDIR:-/tmp}/assay-schemathesis-long.log"
start=$(date +%s)
status=0
.venv/bin/pytest -q -s -p no:cacheprovider --timeout 3600 \
  tests/e2e/test_schemathesis_live.py >"$log" 2>&1 || status=$?
echo "$(grep -h '^SUMMARY' "$log" | tail -1) seconds=$(( $(date +%s) - start )) (full output: $log)"
exit "$status"
