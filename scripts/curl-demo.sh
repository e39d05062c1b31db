#!/usr/bin/env bash
# The foundation's acceptance scenario with plain curl: create a run, log 100,000 points in
# 10 batches (one of them sent twice), read back exactly 100,000 points and a 500-point
# downsampled history; then finish the run.
#   usage: ASSAY_URL=http://127.0.0.1:8000 ASSAY_TOKEN=asy_... scripts/curl-demo.sh [team/project]
set -euo pipefail
URL=${ASSAY_URL:-http://127.0.0.1:8000}
: "${ASSAY_TOKEN:?set ASSAY_TOKEN (from /settings/tokens/)}"
PROJECT=${1:-}
if [ -z "$PROJECT" ]; then
  echo "usage: $0 team/project" >&2
  exit 2
fi
auth=(-H "Authorization: Bearer $ASSAY_TOKEN" -H "Content-Type: application/json")
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

run_id=$(curl -sf "${auth[@]}" -d "{\"project\": \"$PROJECT\", \"experiment\": \"curl-demo\"}" "$URL/api/v1/runs/" | json 'd["id"]')
echo "run $run_id"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for b in $(seq 0 9); do
  python3 - "$b" > "$tmp/batch$b.json" <<'PY'
import json, math, sys
b = int(sys.argv[1])
steps = list(range(b * 10_000, (b + 1) * 10_000))
print(json.dumps({"batch_id": f"demo-batch-{b}", "series": [
    {"key": "loss", "steps": steps, "values": [math.exp(-s / 30_000) + 0.01 * math.sin(s) for s in steps]}]}))
PY
done
for b in 0 1 2 3 4 4 5 6 7 8 9; do   # batch 4 is sent twice
  curl -sf "${auth[@]}" --data-binary "@$tmp/batch$b.json" "$URL/api/v1/runs/$run_id/log/"
  echo
done
count=0
next="$URL/api/v1/runs/$run_id/metrics/loss/?limit=50000"
while [ -n "$next" ] && [ "$next" != "None" ]; do
  curl -sf "${auth[@]}" "$next" > "$tmp/page.json"
  count=$((count + $(json 'len(d["points"])' < "$tmp/page.json")))
  next=$(json 'd["next"]' < "$tmp/page.json")
done
echo "raw points read back: $count (total $(json 'd["total"]' < "$tmp/page.json"))"
curl -sf "${auth[@]}" "$URL/api/v1/runs/$run_id/metrics/loss/?max_points=500" > "$tmp/ds.json"
echo "downsampled: $(json 'len(d["points"])' < "$tmp/ds.json") points, method $(json 'd["method"]' < "$tmp/ds.json")"
# A run stays "running" until it is ended (the SDK's run.finish() does the same).
curl -sf "${auth[@]}" -X PATCH -d '{"status": "finished"}' "$URL/api/v1/runs/$run_id/" > "$tmp/end.json"
echo "run $(json 'd["status"]' < "$tmp/end.json")"
